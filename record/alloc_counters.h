// Exact process-wide allocation counts (Go's MemStats.Mallocs, Frees and TotalAlloc) for the
// price of three thread-local additions.
//
// Each thread counts in its own thread-local block and is its only writer, so an increment is a
// relaxed load and store, with no lock prefix, no pointer to follow and no branch. A thread's block
// joins a process-wide list at its first allocation (the sampler's start, already a slow path) and
// leaves it at thread exit (a pthread key destructor), its counts moving to the retired totals. A
// reader sums the list under its lock.
//
// What is not counted: the few frees glibc makes while tearing a thread down after the key
// destructors have run.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gprof::record {

struct AllocCounts {
    uint64_t mallocs = 0;
    uint64_t frees = 0;
    uint64_t alloc_bytes = 0;  // requested bytes, cumulative
};

struct ThreadAllocCounts {
    std::atomic<uint64_t> mallocs;
    std::atomic<uint64_t> frees;
    std::atomic<uint64_t> alloc_bytes;
    ThreadAllocCounts* prev;  // the process-wide list, guarded by its lock
    ThreadAllocCounts* next;
    bool listed;

    static void bump(std::atomic<uint64_t>& c, uint64_t n) {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
};

extern constinit thread_local ThreadAllocCounts t_alloc_counts [[gnu::tls_model("initial-exec")]];

inline void count_malloc(size_t size) {
    ThreadAllocCounts& c = t_alloc_counts;
    ThreadAllocCounts::bump(c.mallocs, 1);
    ThreadAllocCounts::bump(c.alloc_bytes, size);
}
inline void count_free() { ThreadAllocCounts::bump(t_alloc_counts.frees, 1); }
inline void uncount_free() {  // a failed realloc: its free did not happen
    ThreadAllocCounts::bump(t_alloc_counts.frees, UINT64_MAX);  // wraps: minus one
}

// Puts the calling thread's block on the list (once per thread; from the sampler's start).
void list_thread_counts();

// The exact totals over every thread that ever ran.
AllocCounts read_alloc_counts();

// fork(): the lock is held across fork; in the child only the forking thread survives, so every
// other block is retired.
void counters_prepare_fork();
void counters_parent_after_fork();
void counters_child_after_fork();

}  // namespace gprof::record
