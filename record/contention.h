// The block and mutex profiles' state and Go's rules for them (docs/design.md, "Lock profiling").
//
// block (Go's SetBlockProfileRate, rate in ns): a wait of at least `rate` is always kept; a shorter
// one with probability delay/rate, then counted as rate/delay waits of `rate` ns each (Go 1.17's
// saveBlockEventStack). The stack is the waiter's.
// mutex (Go's SetMutexProfileFraction): a contended release is kept with probability 1/fraction and
// counted as `fraction` events of fraction x delay (Go 1.20), the delay being the waiting during
// the releaser's critical section as Go 1.22 computes it (golang/go#61015). The stack is the
// releaser's. Only calls through the interposed functions are seen; a waiter registers here
// (WaitRegistry) when its try-lock fails, so a release finds it by the lock's address. Go owns its
// wait queues and samples at the release; gprof samples at the waiter instead (mutex_sampled),
// so that 99 in 100 contended waits (at the default fraction) touch no shared table: a release
// that finds sampled waiters is kept. With one waiter per release (two threads, or a lock's
// usual hand-off) that is the same 1 in `fraction`; the delay stays unbiased with more waiters,
// whose releases are then kept more often than 1 in `fraction` (each waiter's release counts).
#pragma once

#include <atomic>
#include <cstdint>

#include "base/spin_lock.h"
#include "record/stack_counters.h"

namespace gprof::record {

// The current settings (GPROF_* at start; the C API may change them).
int64_t block_profile_rate();
void set_block_profile_rate(int64_t rate_ns);
int64_t mutex_profile_fraction();
void set_mutex_profile_fraction(int64_t fraction);

// Whether any lock bookkeeping is on: the hooks' first test.
extern std::atomic<bool> g_lock_profiling;

StackCounters& block_counters();
StackCounters& mutex_counters();

// Go's block sampling decision for a wait of `delay_ns` at `rate`: 0 when the wait is not kept,
// otherwise the count in thousandths and, in *delay_total, the delay to add.
int64_t block_sample(int64_t delay_ns, int64_t rate, uint64_t random, int64_t* delay_total);

// Go 1.22's charge for one release: head waited dt0, tail dtail, `waiters` in all.
int64_t mutex_release_delay(int64_t dt0, int64_t dtail, uint32_t waiters);

// A thread-local random number (xorshift64*) for the sampling decisions.
uint64_t contention_random();

// Whether a waiter is tracked for the mutex profile: 1 in mutex_profile_fraction(), never at 0.
inline bool mutex_sampled() {
    int64_t fraction = mutex_profile_fraction();
    if (fraction <= 1) return fraction == 1;
    return contention_random() % static_cast<uint64_t>(fraction) == 0;
}

// Monotonic nanoseconds.
int64_t now_ns();

// The calling thread's id (gettid), kept per thread: the owner glibc records in a mutex it locks,
// for the shims that lock a plain mutex themselves. Reset in a forked child (start_contention).
extern constinit thread_local int t_thread_id [[gnu::tls_model("initial-exec")]];
int cache_thread_id();
inline int thread_id() {
    int id = t_thread_id;
    if (id == 0) [[unlikely]]
        id = cache_thread_id();
    return id;
}

// Waiters per lock address, for charging releasers. A fixed table of slots; a lock whose slot is
// taken by another lock is not tracked for the mutex profile (counted in collisions()).
class WaitRegistry {
public:
    // A waiter arrives at `lock` at time `now`. Returns its slot + 1, or 0 when not tracked.
    uint32_t arrive(const void* lock, int64_t now);
    // The waiter got the lock (or gave up).
    void leave(uint32_t ticket, const void* lock);

    // The fast test a release makes: may waiters be registered for `lock`?
    // One load from a compact array of the tracked locks' addresses (32 KiB, all zero in a
    // program without contention), not from a global count that every waiter would write.
    bool maybe_waiting(const void* lock) const {
        return keys_[index(lock)].load(std::memory_order_relaxed) ==
               reinterpret_cast<uintptr_t>(lock);
    }
    // A release of `lock` at `now`: the delay to charge it with (0 if nobody waits). The remaining
    // waiters' clocks restart at `now`, so the next release is charged only its own share.
    int64_t release(const void* lock, int64_t now);

    uint64_t collisions() const { return collisions_.load(std::memory_order_relaxed); }

private:
    static constexpr uint32_t kSlots = 4096;
    struct Slot {
        base::SpinLock guard;
        uint32_t waiters = 0;
        int64_t head_since = 0;  // when the longest-waiting waiter's current wait began
        int64_t tail_since = 0;  // when the latest waiter arrived
    };
    static uint32_t index(const void* lock) {
        return static_cast<uint32_t>((reinterpret_cast<uintptr_t>(lock) >> 3) * 0x9E3779B97F4A7C15ULL >>
                                     52);
    }
    std::atomic<uintptr_t> keys_[kSlots] = {};  // the lock each slot tracks; 0: free
    Slot slots_[kSlots];
    std::atomic<uint64_t> collisions_{0};
};

// Constant-initialised: valid before any constructor.
extern WaitRegistry g_wait_registry;
inline WaitRegistry& wait_registry() { return g_wait_registry; }

// Starts the state from the configuration; called from gprof's constructor.
void start_contention();

}  // namespace gprof::record
