#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "record/alloc_counters.h"

using gprof::record::AllocCounts;
using gprof::record::read_alloc_counts;
using gprof::record::thread_counters;

TEST_CASE("per-thread counters add up exactly across threads that come and go") {
    AllocCounts before = read_alloc_counts();
    constexpr int kThreads = 8, kRounds = 3, kOps = 20000;
    for (int round = 0; round < kRounds; ++round) {
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([] {
                for (int i = 0; i < kOps; ++i) {
                    thread_counters().count_malloc(3);
                    if (i % 2 == 0) thread_counters().count_free();
                }
            });
        }
        // Reading while the threads write must not disturb them.
        for (int i = 0; i < 100; ++i) (void)read_alloc_counts();
        for (auto& t : threads) t.join();
    }
    AllocCounts after = read_alloc_counts();
    // Other tests' allocations don't pass through these counters (no LD_PRELOAD here), so the
    // difference is exactly ours.
    CHECK(after.mallocs - before.mallocs == uint64_t{kThreads} * kRounds * kOps);
    CHECK(after.frees - before.frees == uint64_t{kThreads} * kRounds * kOps / 2);
    CHECK(after.alloc_bytes - before.alloc_bytes == uint64_t{kThreads} * kRounds * kOps * 3);
}

TEST_CASE("a thread's slot is reused after it exits") {
    gprof::record::CounterSlot* first = nullptr;
    gprof::record::CounterSlot* second = nullptr;
    std::thread([&] { first = &thread_counters(); }).join();
    std::thread([&] { second = &thread_counters(); }).join();
    CHECK(first == second);
    CHECK_FALSE(first->shared);
}

TEST_CASE("uncount_free takes one back") {
    AllocCounts before = read_alloc_counts();
    thread_counters().count_free();
    thread_counters().count_free();
    thread_counters().uncount_free();
    CHECK(read_alloc_counts().frees - before.frees == 1);
}
