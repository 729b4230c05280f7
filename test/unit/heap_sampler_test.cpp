#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <vector>

#include "record/heap_sampler.h"

using gprof::record::next_sample_interval;
using gprof::record::SamplerRng;
using gprof::record::scale_heap_sample;

TEST_CASE("rate 1 samples every allocation, rate 0 none") {
    SamplerRng rng{42};
    for (int i = 0; i < 100; ++i) CHECK(next_sample_interval(1, rng) == 0);
    CHECK(next_sample_interval(0, rng) >= (int64_t{64} << 20));
}

TEST_CASE("intervals are exponential with the rate as mean") {
    // For Exp(mean m): mean m, standard deviation m, P(X > m) = 1/e, median m ln 2. With n draws
    // the sample mean has standard error m / sqrt(n); 5 standard errors is a bound that holds for
    // any seed with overwhelming probability.
    for (uint64_t seed : {1ULL, 0xdeadbeefULL, 0x123456789ULL}) {
        for (int64_t rate : {int64_t{4096}, int64_t{65536}, int64_t{524288}}) {
            SamplerRng rng{seed};
            constexpr int n = 200000;
            std::vector<double> xs(n);
            double sum = 0, sum_sq = 0;
            int above_mean = 0;
            for (int i = 0; i < n; ++i) {
                xs[i] = static_cast<double>(next_sample_interval(rate, rng));
                sum += xs[i];
                sum_sq += xs[i] * xs[i];
                if (xs[i] > rate) ++above_mean;
            }
            double m = static_cast<double>(rate);
            double mean = sum / n;
            double sd = std::sqrt(sum_sq / n - mean * mean);
            INFO("seed " << seed << " rate " << rate << " mean " << mean << " sd " << sd);
            CHECK(std::abs(mean - m) < 5 * m / std::sqrt(n));
            CHECK(std::abs(sd - m) < 0.02 * m);
            double p = static_cast<double>(above_mean) / n;
            // Binomial standard error of a proportion near 1/e.
            CHECK(std::abs(p - std::exp(-1.0)) < 5 * std::sqrt(0.25 / n));
        }
    }
}

TEST_CASE("an allocation of S bytes is sampled with probability 1 - exp(-S/rate)") {
    // Drive the real per-thread sampler with allocations of one size and count samples.
    gprof::record::set_mem_profile_rate(65536);
    for (size_t size : {size_t{1024}, size_t{65536}, size_t{262144}}) {
        constexpr int n = 200000;
        int sampled = 0;
        for (int i = 0; i < n; ++i) sampled += gprof::record::should_sample(size) ? 1 : 0;
        double p = static_cast<double>(sampled) / n;
        // After each sample a fresh interval X ~ Exp(rate) is drawn and the next sample is the
        // allocation number ceil(X/S), whose mean is sum_k P(X > kS) = 1 / (1 - exp(-S/rate)):
        // the fraction sampled is 1 - exp(-S/rate), the probability the writer un-samples with.
        double expected = 1 - std::exp(-static_cast<double>(size) / 65536.0);
        INFO("size " << size << " p " << p << " expected " << expected);
        CHECK(std::abs(p - expected) < 5 * std::sqrt(expected * (1 - expected) / n) + 0.002);
    }
    gprof::record::set_mem_profile_rate(524288);
}

TEST_CASE("an allocator's intervals: the same rule, never 0") {
    // allocator_sample_interval() draws from the calling thread's generator with the process's
    // rate, and must hand jemalloc a wait of at least one byte.
    gprof::record::hand_sampling_to_allocator();
    gprof::record::set_mem_profile_rate(4096);
    constexpr int n = 200000;
    double sum = 0;
    int64_t least = INT64_MAX;
    for (int i = 0; i < n; ++i) {
        int64_t x = gprof::record::allocator_sample_interval();
        sum += static_cast<double>(x);
        least = std::min(least, x);
    }
    CHECK(least >= 1);
    CHECK(std::abs(sum / n - 4096.0) < 5 * 4096.0 / std::sqrt(n) + 1);
    // Rate 0, or the shims sampling (the C API handed it to them): the allocator only looks again.
    gprof::record::set_mem_profile_rate(0);
    CHECK(gprof::record::allocator_sample_interval() == gprof::record::kAllocatorRecheckBytes);
    gprof::record::set_mem_profile_rate(4096);
    gprof::record::set_allocator_samples(false);
    CHECK(gprof::record::allocator_sample_interval() == gprof::record::kAllocatorRecheckBytes);
    CHECK_FALSE(gprof::record::allocator_samples());
    gprof::record::set_mem_profile_rate(524288);
}

TEST_CASE("a new rate of 1 samples the thread's next allocation, as Go's") {
    gprof::record::set_mem_profile_rate(1 << 30);
    CHECK_FALSE(gprof::record::should_sample(100));  // a fresh interval of about 1 GiB
    gprof::record::set_mem_profile_rate(1);
    // The interval drawn under the old rate ends at once: the slow path sees the new rate.
    gprof::record::t_sampler.bytes_left = 0;
    CHECK(gprof::record::should_sample(100));
    CHECK(gprof::record::should_sample(100));
    gprof::record::set_mem_profile_rate(524288);
}

TEST_CASE("Go's un-sampling: each pair scaled by 1/(1-exp(-avg/rate))") {
    // Nothing sampled, or every allocation recorded: unchanged.
    CHECK(scale_heap_sample(0, 0, 524288).count == 0);
    CHECK(scale_heap_sample(0, 100, 524288).bytes == 0);
    CHECK(scale_heap_sample(7, 700, 1).count == 7);
    CHECK(scale_heap_sample(7, 700, 1).bytes == 700);
    CHECK(scale_heap_sample(7, 700, 0).count == 7);

    // One sampled 512 KiB object at the default rate stood for 1/(1-e^-1) = 1.582 objects.
    auto s = scale_heap_sample(1, 524288, 524288);
    CHECK(s.count == 1);  // int64(1.582)
    CHECK(s.bytes == static_cast<int64_t>(524288 / (1 - std::exp(-1.0))));

    // Small objects: p ~ S/rate, so the scale is ~ rate/S.
    s = scale_heap_sample(100, 100 * 64, 524288);
    double scale = 1 / (1 - std::exp(-64.0 / 524288));
    CHECK(s.count == static_cast<int64_t>(100 * scale));
    CHECK(s.bytes == static_cast<int64_t>(6400 * scale));
    CHECK(std::abs(static_cast<double>(s.count) - 100.0 * 524288 / 64) <
          100.0 * 524288 / 64 * 0.001);

    // Huge objects are certain to be sampled: scale -> 1.
    s = scale_heap_sample(3, int64_t{3} << 30, 524288);
    CHECK(s.count == 3);
    CHECK(s.bytes == int64_t{3} << 30);
}

TEST_CASE("un-sampling by the size the sampler counted") {
    // jemalloc counts a 33-byte object as its 48-byte size class: the probability it was sampled
    // is that of 48 bytes, while the profile reports the 33 bytes asked for.
    double scale = 1 / (1 - std::exp(-48.0 / 524288));
    auto s = scale_heap_sample(1000, 33000, 524288, 48);
    CHECK(s.count == static_cast<int64_t>(1000 * scale));
    CHECK(s.bytes == static_cast<int64_t>(33000 * scale));
    // The counted size changes the scale, not the reported size's share: bytes / count stays 33.
    CHECK(std::abs(static_cast<double>(s.bytes) / static_cast<double>(s.count) - 33.0) < 0.01);
    // Without a counted size, or with the same one: Go's formula on the reported average.
    CHECK(scale_heap_sample(1000, 33000, 524288, 33).count ==
          scale_heap_sample(1000, 33000, 524288).count);
    // Rate 1 is never scaled.
    CHECK(scale_heap_sample(5, 165, 1, 48).count == 5);
}
