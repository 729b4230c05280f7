#include "record/threads.h"

#include <new>

namespace gprof::record {
namespace {

constinit ThreadRegistry g_registry;
constinit std::atomic<bool> g_creations_on{true};

uint32_t home(pid_t tid, uint32_t slots) {
    return (static_cast<uint32_t>(tid) * 0x9E3779B1u) & (slots - 1);
}

}  // namespace

// In static storage rather than on the heap, never destroyed: gprof's start-up takes nothing
// from the allocator.
StackCounters& thread_creations() {
    alignas(StackCounters) static unsigned char storage[sizeof(StackCounters)];
    static StackCounters* counters = new (storage) StackCounters(1u << 14);
    return *counters;
}

void set_thread_creations_on(bool on) {
    // Made now, at start-up, if not before: a first use in a program thread could be under way
    // (its function-local static's guard taken) when another thread forks, and the child's
    // at-exit dump would then wait for that guard for ever.
    if (on) thread_creations();
    g_creations_on.store(on, std::memory_order_relaxed);
}

bool thread_creations_on() { return g_creations_on.load(std::memory_order_relaxed); }

ThreadRegistry& thread_registry() { return g_registry; }

void ThreadRegistry::add(pid_t tid, uint32_t creation_stack, bool own) {
    uint32_t i = home(tid, kSlots);
    for (uint32_t probes = 0; probes < kSlots; ++probes, i = (i + 1) & (kSlots - 1)) {
        Slot& s = slots_[i];
        int32_t seen = s.tid.load(std::memory_order_relaxed);
        if (seen != 0 && seen != kTombstone) continue;
        // Publish the values first; a reader that matches the tid then sees them.
        if (s.tid.compare_exchange_strong(seen, -2, std::memory_order_acquire)) {
            s.stack.store(creation_stack, std::memory_order_relaxed);
            s.own.store(own, std::memory_order_relaxed);
            s.tid.store(tid, std::memory_order_release);
            live_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
    }
    // Full (32768 live threads): the thread runs on, unregistered, as if made by clone.
}

void ThreadRegistry::remove(pid_t tid) {
    Slot* s = const_cast<Slot*>(find(tid));
    if (s == nullptr) return;
    s->tid.store(kTombstone, std::memory_order_release);
    live_.fetch_sub(1, std::memory_order_relaxed);
}

const ThreadRegistry::Slot* ThreadRegistry::find(pid_t tid) const {
    uint32_t i = home(tid, kSlots);
    for (uint32_t probes = 0; probes < kSlots; ++probes, i = (i + 1) & (kSlots - 1)) {
        int32_t seen = slots_[i].tid.load(std::memory_order_acquire);
        if (seen == tid) return &slots_[i];
        if (seen == 0) return nullptr;
    }
    return nullptr;
}

uint32_t ThreadRegistry::creation_stack(pid_t tid) const {
    const Slot* s = find(tid);
    return s ? s->stack.load(std::memory_order_relaxed) : 0;
}

bool ThreadRegistry::is_own(pid_t tid) const {
    const Slot* s = find(tid);
    return s && s->own.load(std::memory_order_relaxed);
}

}  // namespace gprof::record
