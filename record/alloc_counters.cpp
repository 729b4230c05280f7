#include "record/alloc_counters.h"

#include <pthread.h>

#include "record/spin_lock.h"

namespace gprof::record {

constinit thread_local ThreadAllocCounts t_alloc_counts [[gnu::tls_model("initial-exec")]] = {};

namespace {

// All constant-initialised: usable from the first malloc, before any constructor.
constinit SpinLock g_lock;
constinit ThreadAllocCounts* g_head = nullptr;  // guarded by g_lock
constinit AllocCounts g_retired;                // counts of exited threads; guarded by g_lock

enum : int { kKeyNone, kKeyCreating, kKeyReady };
constinit std::atomic<int> g_key_state{kKeyNone};
pthread_key_t g_key;

void add(AllocCounts& sum, const ThreadAllocCounts& c) {
    sum.mallocs += c.mallocs.load(std::memory_order_relaxed);
    sum.frees += c.frees.load(std::memory_order_relaxed);
    sum.alloc_bytes += c.alloc_bytes.load(std::memory_order_relaxed);
}

void unlist_locked(ThreadAllocCounts* c) {
    add(g_retired, *c);
    (c->prev ? c->prev->next : g_head) = c->next;
    if (c->next) c->next->prev = c->prev;
    c->listed = false;
}

// Runs at thread exit, while the thread-local block is still valid.
void on_thread_exit(void* block) {
    auto* c = static_cast<ThreadAllocCounts*>(block);
    SpinGuard guard(g_lock);
    if (c->listed) unlist_locked(c);
    // What this thread counts from now on is not seen by readers: zero it so a block reused by a
    // later thread (glibc caches thread stacks, TLS included) does not start with stale counts.
    c->mallocs.store(0, std::memory_order_relaxed);
    c->frees.store(0, std::memory_order_relaxed);
    c->alloc_bytes.store(0, std::memory_order_relaxed);
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
    return g_key_state.load(std::memory_order_acquire) == kKeyReady;
}

}  // namespace

void list_thread_counts() {
    ThreadAllocCounts* c = &t_alloc_counts;
    if (c->listed) return;
    {
        SpinGuard guard(g_lock);
        c->prev = nullptr;
        c->next = g_head;
        if (g_head) g_head->prev = c;
        g_head = c;
        c->listed = true;
    }
    // The main thread never runs key destructors; others fold their counts at exit. With gprof's
    // key among the process's first 32 this stores into the thread descriptor without allocating.
    if (ensure_key()) pthread_setspecific(g_key, c);
}

AllocCounts read_alloc_counts() {
    SpinGuard guard(g_lock);
    AllocCounts sum = g_retired;
    for (const ThreadAllocCounts* c = g_head; c; c = c->next) add(sum, *c);
    return sum;
}

void counters_prepare_fork() { g_lock.lock(); }
void counters_parent_after_fork() { g_lock.unlock(); }

void counters_child_after_fork() {
    ThreadAllocCounts* mine = &t_alloc_counts;
    for (ThreadAllocCounts* c = g_head; c;) {
        ThreadAllocCounts* next = c->next;
        if (c != mine) unlist_locked(c);
        c = next;
    }
    g_lock.unlock();
}

}  // namespace gprof::record
