#include "record/contention.h"

#include <cpuid.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <new>

namespace gprof::record {
namespace {

std::atomic<int64_t> g_block_rate{0};
std::atomic<int64_t> g_mutex_fraction{0};

constinit thread_local uint64_t t_random [[gnu::tls_model("initial-exec")]] = 0;

void update_switch() {
    g_lock_profiling.store(g_block_rate.load(std::memory_order_relaxed) > 0 ||
                               g_mutex_fraction.load(std::memory_order_relaxed) > 0,
                           std::memory_order_relaxed);
}

int64_t monotonic_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Waits are timed with the TSC, cheaper to read than clock_gettime (three reads per contended
// lock). It is calibrated against CLOCK_MONOTONIC without spending any start-up time: the first
// waits are timed with clock_gettime while a reference pair (TSC, ns) is kept, and once 20 ms have
// passed the ratio is fixed. Both give nanoseconds on the same base, so a wait that straddles the
// switch is still measured right. Without an invariant TSC (start_contention() asks the CPU)
// clock_gettime is kept.
struct TscClock {
    std::atomic<bool> usable{false};
    std::atomic<double> ns_per_tick{0};
    std::atomic<uint64_t> ref_ticks{0};
    std::atomic<int64_t> ref_ns{0};
};
TscClock g_tsc;

// CPUID leaf 0x80000007, EDX bit 8: the TSC ticks at a constant rate in every power state (what
// Linux reports as constant_tsc and nonstop_tsc). One instruction; no file to read at start-up.
bool cpu_has_invariant_tsc() {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx)) return false;
    return (edx >> 8) & 1;
}

}  // namespace

std::atomic<bool> g_lock_profiling{false};
constinit WaitRegistry g_wait_registry;
constinit thread_local int t_thread_id [[gnu::tls_model("initial-exec")]] = 0;

int cache_thread_id() {
    t_thread_id = static_cast<int>(gettid());
    return t_thread_id;
}

int64_t block_profile_rate() { return g_block_rate.load(std::memory_order_relaxed); }

void set_block_profile_rate(int64_t rate_ns) {
    g_block_rate.store(rate_ns < 0 ? 0 : rate_ns, std::memory_order_relaxed);
    update_switch();
}

int64_t mutex_profile_fraction() { return g_mutex_fraction.load(std::memory_order_relaxed); }

void set_mutex_profile_fraction(int64_t fraction) {
    g_mutex_fraction.store(fraction < 0 ? 0 : fraction, std::memory_order_relaxed);
    update_switch();
}

// In static storage rather than on the heap, never destroyed: gprof's start-up takes nothing
// from the allocator.
StackCounters& block_counters() {
    alignas(StackCounters) static unsigned char storage[sizeof(StackCounters)];
    static StackCounters* counters = new (storage) StackCounters(1u << 16);
    return *counters;
}

StackCounters& mutex_counters() {
    alignas(StackCounters) static unsigned char storage[sizeof(StackCounters)];
    static StackCounters* counters = new (storage) StackCounters(1u << 16);
    return *counters;
}

void start_contention() {
    block_counters();
    mutex_counters();
    // The forking thread's id is the parent's; the child's threads are new.
    pthread_atfork(nullptr, nullptr, [] { t_thread_id = 0; });
    g_tsc.usable.store(cpu_has_invariant_tsc(), std::memory_order_relaxed);
}

int64_t block_sample(int64_t delay_ns, int64_t rate, uint64_t random, int64_t* delay_total) {
    if (rate <= 0) return 0;
    if (delay_ns <= 0) delay_ns = 1;
    if (rate == 1 || delay_ns >= rate) {
        *delay_total = delay_ns;
        return StackCounters::kCountUnit;
    }
    // Kept with probability about delay/rate (Go's blocksampled), then un-biased.
    if (static_cast<int64_t>(random % static_cast<uint64_t>(rate)) > delay_ns) return 0;
    *delay_total = rate;
    return rate * StackCounters::kCountUnit / delay_ns;
}

int64_t mutex_release_delay(int64_t dt0, int64_t dtail, uint32_t waiters) {
    if (waiters == 0) return 0;
    if (dt0 < 0) dt0 = 0;
    if (dtail < 0) dtail = 0;
    return dt0 + (dtail + dt0) / 2 * static_cast<int64_t>(waiters - 1);
}

uint64_t contention_random() {
    uint64_t x = t_random;
    if (x == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = (static_cast<uint64_t>(gettid()) << 32) ^ static_cast<uint64_t>(ts.tv_nsec) ^
            0x9E3779B97F4A7C15ULL;
        if (x == 0) x = 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t_random = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int64_t now_ns() {
    double ratio = g_tsc.ns_per_tick.load(std::memory_order_relaxed);
    if (ratio > 0) [[likely]] {
        uint64_t ticks = __rdtsc() - g_tsc.ref_ticks.load(std::memory_order_relaxed);
        return g_tsc.ref_ns.load(std::memory_order_relaxed) +
               static_cast<int64_t>(static_cast<double>(ticks) * ratio);
    }
    int64_t ns = monotonic_ns();
    if (!g_tsc.usable.load(std::memory_order_relaxed)) return ns;
    uint64_t ticks = __rdtsc();
    uint64_t ref_ticks = g_tsc.ref_ticks.load(std::memory_order_acquire);
    if (ref_ticks == 0) {
        g_tsc.ref_ns.store(ns, std::memory_order_relaxed);
        uint64_t expected = 0;
        g_tsc.ref_ticks.compare_exchange_strong(expected, ticks, std::memory_order_release);
    } else if (ns - g_tsc.ref_ns.load(std::memory_order_relaxed) > 20 * 1000 * 1000 &&
               ticks > ref_ticks) {
        double r = static_cast<double>(ns - g_tsc.ref_ns.load(std::memory_order_relaxed)) /
                   static_cast<double>(ticks - ref_ticks);
        g_tsc.ns_per_tick.store(r, std::memory_order_relaxed);
    }
    return ns;
}

uint32_t WaitRegistry::arrive(const void* lock, int64_t now) {
    uint32_t i = index(lock);
    Slot& s = slots_[i];
    uintptr_t key = reinterpret_cast<uintptr_t>(lock);
    base::SpinGuard hold(s.guard);
    uintptr_t owner = keys_[i].load(std::memory_order_relaxed);
    if (owner != 0 && owner != key) {
        collisions_.fetch_add(1, std::memory_order_relaxed);
        return 0;
    }
    if (s.waiters == 0) {
        s.head_since = now;
        keys_[i].store(key, std::memory_order_relaxed);
    }
    s.tail_since = now;
    ++s.waiters;
    return i + 1;
}

void WaitRegistry::leave(uint32_t ticket, const void* lock) {
    if (ticket == 0) return;
    Slot& s = slots_[ticket - 1];
    base::SpinGuard hold(s.guard);
    if (keys_[ticket - 1].load(std::memory_order_relaxed) != reinterpret_cast<uintptr_t>(lock) ||
        s.waiters == 0)
        return;
    if (--s.waiters == 0) keys_[ticket - 1].store(0, std::memory_order_relaxed);
}

int64_t WaitRegistry::release(const void* lock, int64_t now) {
    uint32_t i = index(lock);
    Slot& s = slots_[i];
    base::SpinGuard hold(s.guard);
    if (keys_[i].load(std::memory_order_relaxed) != reinterpret_cast<uintptr_t>(lock)) return 0;
    int64_t delay = mutex_release_delay(now - s.head_since, now - s.tail_since, s.waiters);
    s.head_since = now;
    s.tail_since = now;
    return delay;
}

}  // namespace gprof::record
