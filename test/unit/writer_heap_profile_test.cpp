#include <catch2/catch.hpp>
#include <cmath>

#include "writer/heap_profile.h"

using gprof::writer::scale_heap_sample;

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
    CHECK(std::abs(static_cast<double>(s.count) - 100.0 * 524288 / 64) < 100.0 * 524288 / 64 * 0.001);

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
