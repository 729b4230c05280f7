// What gprof knows of the program's threads: where each was created (the threadcreate profile
// counts every pthread_create since start, by the creator's stack), which threads are alive with
// their creation stack, and which threads are gprof's own (left out of the threads profile).
//
// Threads that do not pass pthread_create (the main thread, thrd_create, raw clone) are simply not
// in the registry: they are the program's, with no creation stack.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "record/stack_counters.h"

namespace gprof::record {

StackCounters& thread_creations();
// Whether pthread_create records the creator's stack: from the first call (threads made by other
// libraries' constructors count too) until start-up hands down GPROF_PROFILES.
void set_thread_creations_on(bool on);
bool thread_creations_on();

class ThreadRegistry {
public:
    // A thread started through pthread_create; `own`: one of gprof's threads.
    void add(pid_t tid, uint32_t creation_stack, bool own);
    void remove(pid_t tid);
    // The creation stack of a live registered thread (0: unknown), and whether it is gprof's.
    uint32_t creation_stack(pid_t tid) const;
    bool is_own(pid_t tid) const;
    size_t live() const { return live_.load(std::memory_order_relaxed); }

private:
    static constexpr uint32_t kSlots = 1u << 15;
    static constexpr int32_t kTombstone = -1;
    struct Slot {
        std::atomic<int32_t> tid{0};  // 0: never used; kTombstone: freed
        std::atomic<uint32_t> stack{0};
        std::atomic<bool> own{false};
    };
    const Slot* find(pid_t tid) const;
    Slot slots_[kSlots];
    std::atomic<size_t> live_{0};
};

ThreadRegistry& thread_registry();

}  // namespace gprof::record
