#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "record/heap_profile.h"

using gprof::record::HeapBucket;
using gprof::record::HeapProfile;

namespace {
std::vector<HeapBucket> buckets(HeapProfile& h) {
    std::vector<HeapBucket> out(h.bucket_count() + 16);
    out.resize(h.snapshot(out.data(), out.size()));
    return out;
}
}  // namespace

TEST_CASE("live samples are exact: alloc, free, realloc restore") {
    auto h = std::make_unique<HeapProfile>();
    h->start();
    std::vector<char> memory(1 << 16);
    void* a = &memory[16];
    void* b = &memory[4096];
    CHECK_FALSE(h->maybe_sampled(a));
    h->record_alloc(a, 100, 7);
    h->record_alloc(b, 100, 7);
    CHECK(h->maybe_sampled(a));
    CHECK(h->maybe_sampled(b));
    auto bs = buckets(*h);
    REQUIRE(bs.size() == 1);
    CHECK(bs[0].stack_id == 7);
    CHECK(bs[0].allocs == 2);
    CHECK(bs[0].alloc_bytes == 200);
    CHECK(bs[0].frees == 0);

    uint32_t token = h->record_free(a);
    CHECK(token != 0);
    CHECK(h->record_free(a) == 0);  // already gone
    bs = buckets(*h);
    CHECK(bs[0].frees == 1);
    CHECK(bs[0].free_bytes == 100);
    h->restore(a, token);
    bs = buckets(*h);
    CHECK(bs[0].frees == 0);
    CHECK(h->record_free(a) != 0);
    CHECK(h->record_free(b) != 0);
    bs = buckets(*h);
    CHECK(bs[0].frees == 2);
    CHECK_FALSE(h->maybe_sampled(a));
    CHECK_FALSE(h->maybe_sampled(b));
}

TEST_CASE("many live samples across shards, with growth and deletion, never lose one") {
    auto h = std::make_unique<HeapProfile>();
    h->start();
    constexpr int kThreads = 4, kPer = 20000;
    std::atomic<int> lost{0};  // Catch2's assertions are not thread-safe: count, check after join
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            // Fake, distinct, 16-aligned addresses per thread.
            auto addr = [t](int i) {
                return reinterpret_cast<void*>(uintptr_t{0x10000000} * (t + 1) + uintptr_t(i) * 48);
            };
            for (int i = 0; i < kPer; ++i) h->record_alloc(addr(i), 48, 1 + (i % 5));
            for (int i = 0; i < kPer; i += 2) lost += h->record_free(addr(i)) == 0;
            for (int i = 1; i < kPer; i += 2) lost += !h->maybe_sampled(addr(i));
            for (int i = 1; i < kPer; i += 2) lost += h->record_free(addr(i)) == 0;
        });
    }
    for (auto& th : threads) th.join();
    CHECK(lost == 0);
    uint64_t allocs = 0, frees = 0;
    for (const HeapBucket& b : buckets(*h)) {
        allocs += b.allocs;
        frees += b.frees;
        CHECK(b.alloc_bytes == b.allocs * 48);
        CHECK(b.free_bytes == b.frees * 48);
    }
    CHECK(allocs == uint64_t{kThreads} * kPer);
    CHECK(frees == allocs);
    CHECK(h->dropped() == 0);
}
