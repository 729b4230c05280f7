// The lock of gprof's tables. Held for a few hundred nanoseconds at most and never across a call
// that could allocate or block, so spinning (then yielding) beats sleeping, and it cannot be a
// pthread mutex: those are interposed by gprof's own lock profiler and used by the program.
#pragma once

#include <sched.h>

#include <atomic>

namespace gprof::base {

class SpinLock {
public:
    void lock() {
        for (int spins = 0;; ++spins) {
            if (!locked_.load(std::memory_order_relaxed) &&
                !locked_.exchange(true, std::memory_order_acquire))
                return;
            if (spins > 64) sched_yield();
            else __builtin_ia32_pause();
        }
    }
    bool try_lock() {
        return !locked_.load(std::memory_order_relaxed) &&
               !locked_.exchange(true, std::memory_order_acquire);
    }
    void unlock() { locked_.store(false, std::memory_order_release); }

private:
    std::atomic<bool> locked_{false};
};

class SpinGuard {
public:
    explicit SpinGuard(SpinLock& l) : lock_(l) { lock_.lock(); }
    ~SpinGuard() { lock_.unlock(); }
    SpinGuard(const SpinGuard&) = delete;
    SpinGuard& operator=(const SpinGuard&) = delete;

private:
    SpinLock& lock_;
};

}  // namespace gprof::base
