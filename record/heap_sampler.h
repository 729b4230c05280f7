// Which allocations the heap profile samples: Go's MemProfileRate rule. Each thread counts down
// the bytes until its next sample; the counts are drawn from an exponential distribution with
// mean `rate`, so samples form a Poisson process over allocated bytes and an allocation of S bytes
// is sampled with probability 1 - exp(-S/rate), whatever the sizes around it. That probability is
// what the writer divides by to un-sample (Go's scaleHeapSample).
//
// The fast path is one thread-local subtraction and a compare; everything else is out of line.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gprof::record {

// A small, fast generator for the sampler (xorshift64*; quality is ample for exponential draws).
struct SamplerRng {
    uint64_t state;
    uint64_t next() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return state * 0x2545F4914F6CDD1DULL;
    }
};

// Bytes until the next sample, for the given rate (Go's nextSample): rate 1 samples every
// allocation, anything above draws from Exp(1/rate); rate 0 samples nothing.
int64_t next_sample_interval(int64_t rate, SamplerRng& rng);

struct SamplerState {
    int64_t bytes_left;  // <= 0 after an allocation: take the slow path
    int64_t rate;        // the rate bytes_left was drawn for
    SamplerRng rng;
    bool started;
};

extern constinit thread_local SamplerState t_sampler [[gnu::tls_model("initial-exec")]];

// The slow path: decides whether this allocation is sampled and draws the next interval.
bool sampler_slow_path(size_t size) noexcept;

// Counts `size` down; true when the interval has run out and the slow path must decide.
inline bool interval_ended(size_t size) {
    SamplerState& s = t_sampler;
    s.bytes_left -= static_cast<int64_t>(size);
    return s.bytes_left <= 0;
}

inline bool should_sample(size_t size) {
    if (!interval_ended(size)) [[likely]]
        return false;
    return sampler_slow_path(size);
}

// The process's MemProfileRate: Go's default (kDefaultMemProfileRate) until the process's first
// allocation hands down GPROF_MEM_PROFILE_RATE (preload/backing.cpp), then that until changed
// through the C API.
int64_t mem_profile_rate();
void set_mem_profile_rate(int64_t rate);

// Go's un-sampling of a heap profile's values: `count` sampled objects of `bytes` in all stand
// for count / (1 - exp(-avg / rate)) objects, and as many times their bytes, where avg is the
// average size the sampler counted (`sampled_avg`: a size class where the allocator samples by
// it; else bytes / count). Rates 0 and 1 keep the values.
struct ScaledPair {
    int64_t count;
    int64_t bytes;
};
ScaledPair scale_heap_sample(int64_t count, int64_t bytes, int64_t rate, double sampled_avg = 0);

// Where the backing allocator draws the intervals itself and reports its samples (gprof's jemalloc
// at the higher rates: preload/jemalloc_sampling.cpp), the countdown above stays off, so no
// allocation is sampled twice. Set at the process's first allocation; a rate set later through
// the C API may hand sampling back to the shims and again to the allocator
// (set_allocator_samples), but only an allocator that sampled from the start can.
void hand_sampling_to_allocator();
bool allocator_samples();
bool allocator_can_sample();
void set_allocator_samples(bool on);
// For such an allocator: the bytes until the calling thread's next sample, drawn by the same rule
// as the countdown's (at least 1). While the rate is 0 or the shims sample, it is
// kAllocatorRecheckBytes: the allocator's sampling event then only looks at the rate again.
int64_t allocator_sample_interval();
constexpr int64_t kAllocatorRecheckBytes = int64_t{1} << 20;

}  // namespace gprof::record
