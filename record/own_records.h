// Whether this process has recorded anything of its own: a heap sample, a thread's creation, a
// wait on a lock. False in a forked child until it does: its records until then are its parent's,
// and its at-exit dump writes nothing (a shell's subshell, a worker that only exits, would
// otherwise repeat its parent's profiles in a file each).
#pragma once

#include <atomic>

namespace gprof::record {

extern std::atomic<bool> g_forked;
extern std::atomic<bool> g_recorded_since_fork;

// From every recorder. Read first: after the first record, the line is only read.
inline void note_own_record() {
    if (!g_recorded_since_fork.load(std::memory_order_relaxed))
        g_recorded_since_fork.store(true, std::memory_order_relaxed);
}

// fork(), in the child.
inline void forget_own_records() {
    g_forked.store(true, std::memory_order_relaxed);
    g_recorded_since_fork.store(false, std::memory_order_relaxed);
}

// A forked child that has recorded nothing since the fork.
inline bool records_are_parents() {
    return g_forked.load(std::memory_order_relaxed) &&
           !g_recorded_since_fork.load(std::memory_order_relaxed);
}

}  // namespace gprof::record
