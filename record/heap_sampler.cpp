#include "record/heap_sampler.h"

#include <time.h>
#include <unistd.h>

#include <atomic>

#include "base/config.h"
#include "base/math.h"

namespace gprof::record {

constinit thread_local SamplerState t_sampler [[gnu::tls_model("initial-exec")]] = {};

namespace {

constexpr int64_t kOffRecheckBytes = int64_t{64} << 20;
constinit std::atomic<int64_t> g_rate{kDefaultMemProfileRate};
constinit std::atomic<bool> g_allocator_samples{false};
constinit std::atomic<bool> g_allocator_can_sample{false};

uint64_t seed_for_thread() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t seed = static_cast<uint64_t>(ts.tv_nsec) * 0x9E3779B97F4A7C15ULL ^
                    reinterpret_cast<uintptr_t>(&t_sampler) ^
                    (static_cast<uint64_t>(getpid()) << 32);
    return seed ? seed : 0x853C49E6748FEA9BULL;
}

// A thread's first draw starts its Poisson process: seeds its generator.
void start(SamplerState& s) {
    s.started = true;
    s.rng.state = seed_for_thread();
}

}  // namespace

int64_t next_sample_interval(int64_t rate, SamplerRng& rng) {
    // Off: look again after 64 MiB, so a rate set later through the C API takes effect in every
    // thread without a second check on the fast path.
    if (rate <= 0) return kOffRecheckBytes;
    if (rate == 1) return 0;
    // u is uniform on (0, 1]: 53 random bits, never 0, so log(u) is finite.
    double u = static_cast<double>((rng.next() >> 11) + 1) * 0x1.0p-53;
    double x = -gprof_log(u) * static_cast<double>(rate);
    if (x >= 0x1.0p62) return INT64_C(1) << 62;
    return static_cast<int64_t>(x + 0.5);
}

int64_t mem_profile_rate() {
    return g_rate.load(std::memory_order_relaxed);
}

void set_mem_profile_rate(int64_t rate) {
    g_rate.store(rate < 0 ? 0 : rate, std::memory_order_relaxed);
}

ScaledPair scale_heap_sample(int64_t count, int64_t bytes, int64_t rate, double sampled_avg) {
    if (count == 0 || bytes == 0) return {0, 0};
    if (rate <= 1) return {count, bytes};
    double avg =
        sampled_avg > 0 ? sampled_avg : static_cast<double>(bytes) / static_cast<double>(count);
    double scale = 1 / (1 - gprof_exp(-avg / static_cast<double>(rate)));
    return {static_cast<int64_t>(static_cast<double>(count) * scale),
            static_cast<int64_t>(static_cast<double>(bytes) * scale)};
}

void hand_sampling_to_allocator() {
    g_allocator_can_sample.store(true, std::memory_order_relaxed);
    g_allocator_samples.store(true, std::memory_order_relaxed);
}

bool allocator_can_sample() {
    return g_allocator_can_sample.load(std::memory_order_relaxed);
}

void set_allocator_samples(bool on) {
    if (allocator_can_sample()) g_allocator_samples.store(on, std::memory_order_relaxed);
}

bool allocator_samples() {
    return g_allocator_samples.load(std::memory_order_relaxed);
}

int64_t allocator_sample_interval() {
    SamplerState& s = t_sampler;
    if (!s.started) start(s);
    // Checked each time: a rate of 0 or the shims sampling may have been set since the last draw.
    int64_t rate = allocator_samples() ? mem_profile_rate() : 0;
    if (rate <= 0) return kAllocatorRecheckBytes;
    int64_t bytes = next_sample_interval(rate, s.rng);
    return bytes > 0 ? bytes : 1;
}

bool sampler_slow_path(size_t size) noexcept {
    SamplerState& s = t_sampler;
    int64_t rate = allocator_samples() ? 0 : mem_profile_rate();
    if (!s.started) {
        // A thread's first allocation: start its Poisson process here. The allocation is sampled
        // only if the first interval ends within it.
        start(s);
        s.rate = rate;
        s.bytes_left = next_sample_interval(rate, s.rng) - static_cast<int64_t>(size);
        if (s.bytes_left > 0) return false;
    }
    if (s.rate != rate) {
        // The rate changed (C API): this allocation was counted down under the old one. Start
        // afresh, as at a thread's first allocation (at rate 1, this one is sampled, as Go samples
        // every allocation once MemProfileRate is 1).
        s.rate = rate;
        s.bytes_left = next_sample_interval(rate, s.rng) - static_cast<int64_t>(size);
        if (s.bytes_left > 0 || rate <= 0) return false;
        s.bytes_left = next_sample_interval(rate, s.rng);
        return true;
    }
    // Go draws a fresh interval after each sample; no remainder carries over.
    s.bytes_left = next_sample_interval(rate, s.rng);
    return rate > 0;
}

}  // namespace gprof::record
