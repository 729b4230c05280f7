#include "record/alloc_counters.h"

#include <pthread.h>
#include <sched.h>

namespace gprof::record {

constinit thread_local CounterSlot* t_counter_slot [[gnu::tls_model("initial-exec")]] = nullptr;

namespace {

constexpr size_t kSlots = 1024;  // 64 KiB of .bss; pages untouched until threads need them

// All constant-initialised: usable from the first malloc, before any constructor.
constinit CounterSlot g_slots[kSlots];
constinit CounterSlot g_overflow{.shared = true};
constinit AllocCounts g_retired;          // counts of exited threads; guarded by g_lock
constinit CounterSlot* g_free = nullptr;  // guarded by g_lock
constinit size_t g_next_unused = 0;       // guarded by g_lock
constinit std::atomic_flag g_lock = ATOMIC_FLAG_INIT;

// A spin lock: held for a few instructions, never across a call that could allocate, so it is
// safe inside malloc. (A pthread mutex would be interposed by gprof's own lock profiler.)
void lock() {
    while (g_lock.test_and_set(std::memory_order_acquire)) sched_yield();
}
void unlock() { g_lock.clear(std::memory_order_release); }

enum : int { kKeyNone, kKeyCreating, kKeyReady };
constinit std::atomic<int> g_key_state{kKeyNone};
pthread_key_t g_key;

constinit thread_local bool t_attaching [[gnu::tls_model("initial-exec")]] = false;

void fold_into_retired(CounterSlot& s) {
    g_retired.mallocs += s.mallocs.exchange(0, std::memory_order_relaxed);
    g_retired.frees += s.frees.exchange(0, std::memory_order_relaxed);
    g_retired.alloc_bytes += s.alloc_bytes.exchange(0, std::memory_order_relaxed);
}

void release_slot_locked(CounterSlot* s) {
    fold_into_retired(*s);
    s->in_use = false;
    s->next_free = g_free;
    g_free = s;
}

// Runs at thread exit; later allocations of this thread go to the overflow slot.
void on_thread_exit(void* slot) {
    t_counter_slot = &g_overflow;
    lock();
    release_slot_locked(static_cast<CounterSlot*>(slot));
    unlock();
}

bool ensure_key() {
    int state = g_key_state.load(std::memory_order_acquire);
    if (state == kKeyReady) return true;
    if (state == kKeyNone &&
        g_key_state.compare_exchange_strong(state, kKeyCreating, std::memory_order_acquire)) {
        // pthread_key_create neither allocates nor locks: safe from the first malloc.
        if (pthread_key_create(&g_key, on_thread_exit) != 0) {
            g_key_state.store(kKeyNone, std::memory_order_release);
            return false;
        }
        g_key_state.store(kKeyReady, std::memory_order_release);
        return true;
    }
    return false;  // another thread is creating it: use the overflow slot this once
}

}  // namespace

CounterSlot* attach_counter_slot() {
    if (t_attaching || !ensure_key()) return &g_overflow;
    t_attaching = true;
    lock();
    CounterSlot* s = g_free;
    if (s) {
        g_free = s->next_free;
    } else if (g_next_unused < kSlots) {
        s = &g_slots[g_next_unused++];
    }
    if (s) s->in_use = true;
    unlock();
    if (s == nullptr) {
        t_attaching = false;
        t_counter_slot = &g_overflow;
        return &g_overflow;
    }
    // With gprof's key among the first 32 of the process this stores into the thread descriptor
    // without allocating; if it does allocate, that allocation is counted in the overflow slot.
    pthread_setspecific(g_key, s);
    t_counter_slot = s;
    t_attaching = false;
    return s;
}

AllocCounts read_alloc_counts() {
    lock();
    AllocCounts sum = g_retired;
    auto add = [&sum](const CounterSlot& s) {
        sum.mallocs += s.mallocs.load(std::memory_order_relaxed);
        sum.frees += s.frees.load(std::memory_order_relaxed);
        sum.alloc_bytes += s.alloc_bytes.load(std::memory_order_relaxed);
    };
    for (size_t i = 0; i < g_next_unused; ++i) add(g_slots[i]);
    add(g_overflow);
    unlock();
    return sum;
}

void counters_prepare_fork() { lock(); }
void counters_parent_after_fork() { unlock(); }

void counters_child_after_fork() {
    CounterSlot* mine = t_counter_slot;
    for (size_t i = 0; i < g_next_unused; ++i) {
        CounterSlot* s = &g_slots[i];
        if (s->in_use && s != mine) release_slot_locked(s);
    }
    unlock();
}

}  // namespace gprof::record
