#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "record/alloc_counters.h"

using gprof::record::AllocCounts;
using gprof::record::read_alloc_counts;

namespace {
void count_some(int ops) {
    gprof::record::list_thread_counts();
    for (int i = 0; i < ops; ++i) {
        gprof::record::count_malloc(3);
        if (i % 2 == 0) gprof::record::count_free();
    }
}
}  // namespace

TEST_CASE("per-thread counters add up exactly across threads that come and go") {
    AllocCounts before = read_alloc_counts();
    constexpr int kThreads = 8, kRounds = 3, kOps = 20000;
    for (int round = 0; round < kRounds; ++round) {
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) threads.emplace_back(count_some, kOps);
        // Reading while the threads write and exit must not disturb them.
        for (int i = 0; i < 100; ++i) (void)read_alloc_counts();
        for (auto& t : threads) t.join();
    }
    AllocCounts after = read_alloc_counts();
    // Nothing else in this process counts (no LD_PRELOAD), so the difference is exactly ours.
    CHECK(after.mallocs - before.mallocs == uint64_t{kThreads} * kRounds * kOps);
    CHECK(after.frees - before.frees == uint64_t{kThreads} * kRounds * kOps / 2);
    CHECK(after.alloc_bytes - before.alloc_bytes == uint64_t{kThreads} * kRounds * kOps * 3);
}

TEST_CASE("the main thread's counts are read live, and uncount_free takes one back") {
    gprof::record::list_thread_counts();
    AllocCounts before = read_alloc_counts();
    gprof::record::count_malloc(10);
    gprof::record::count_free();
    gprof::record::count_free();
    gprof::record::uncount_free();
    AllocCounts after = read_alloc_counts();
    CHECK(after.mallocs - before.mallocs == 1);
    CHECK(after.alloc_bytes - before.alloc_bytes == 10);
    CHECK(after.frees - before.frees == 1);
}
