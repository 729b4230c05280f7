#include "record/heap_profile.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <thread>
#include <vector>

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
    h->start(false);
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
    h->start(false);
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

TEST_CASE("a snapshot taken while other threads allocate and free never shows more frees") {
    auto h = std::make_unique<HeapProfile>();
    h->start(false);
    constexpr int kObjects = 30000;
    auto addr = [](int i) {
        return reinterpret_cast<void*>(uintptr_t{0x20000000} + uintptr_t(i % 64) * 64);
    };
    // Spins, then yields: on a loaded machine the other thread may not be running.
    auto wait_until = [](auto done) {
        for (int spins = 0; !done(); ++spins)
            if (spins > 200) std::this_thread::yield();
    };
    std::atomic<int> produced{0}, consumed{0};
    // One thread allocates, another frees what it allocated: their counts land in different
    // stripes, and a snapshot reads the stripes one after another while both go on.
    std::thread allocator([&] {
        for (int i = 0; i < kObjects; ++i) {
            // In lockstep: allocations lead frees by at most one, so a snapshot that read the
            // allocations before an alloc-and-free completed and the frees after it would see one
            // free too many.
            wait_until([&] { return i - consumed.load(std::memory_order_acquire) < 1; });
            h->record_alloc(addr(i), 64, 3);
            produced.store(i + 1, std::memory_order_release);
        }
    });
    std::thread freer([&] {
        for (int i = 0; i < kObjects; ++i) {
            wait_until([&] { return produced.load(std::memory_order_acquire) > i; });
            h->record_free(addr(i));
            consumed.store(i + 1, std::memory_order_release);
        }
    });
    int snapshots = 0, negative = 0;
    while (consumed.load(std::memory_order_acquire) < kObjects) {
        for (const HeapBucket& b : buckets(*h)) negative += b.frees > b.allocs;
        ++snapshots;
    }
    allocator.join();
    freer.join();
    CHECK(negative == 0);
    CHECK(snapshots > 0);
    auto bs = buckets(*h);
    REQUIRE(bs.size() == 1);
    CHECK(bs[0].allocs == uint64_t{kObjects});
    CHECK(bs[0].frees == uint64_t{kObjects});
}

TEST_CASE(
    "placed samples: a free reads the bitmap only for page-aligned pointers or while an "
    "unaligned sample lives") {
    auto h = std::make_unique<HeapProfile>();
    h->start(true);
    constexpr size_t kPage = HeapProfile::kSampleAlignment;
    std::vector<char> memory(16 * kPage);
    auto* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(memory.data()) + kPage - 1) &
                                         ~uintptr_t{kPage - 1});
    void* page = base;            // placed: page-aligned
    void* unaligned = base + 48;  // a sample gprof could not place
    void* neighbour = base + 64;  // unsampled, in another 16-byte granule
    void* other = base + kPage + 32;
    CHECK_FALSE(h->maybe_sampled(page));
    h->record_alloc(page, 100, 1);
    CHECK(h->maybe_sampled(page));
    CHECK_FALSE(h->maybe_sampled(unaligned));
    CHECK_FALSE(h->maybe_sampled(other));

    h->record_alloc(unaligned, 24, 2);
    CHECK(h->maybe_sampled(unaligned));        // counted, then found in the bitmap
    CHECK_FALSE(h->maybe_sampled(neighbour));  // read from the bitmap: clear
    uint32_t token = h->record_free(unaligned);
    CHECK(token != 0);
    CHECK_FALSE(h->maybe_sampled(unaligned));
    h->restore(unaligned, token);  // a failed realloc: it lives on, and is counted again
    CHECK(h->maybe_sampled(unaligned));
    CHECK(h->record_free(unaligned) != 0);
    CHECK_FALSE(h->maybe_sampled(unaligned));
    CHECK(h->record_free(page) != 0);
    CHECK_FALSE(h->maybe_sampled(page));

    // A second life of an address that was never freed through gprof replaces the first and is
    // counted once.
    h->record_alloc(unaligned, 24, 2);
    h->record_alloc(unaligned, 24, 2);
    CHECK(h->record_free(unaligned) != 0);
    CHECK_FALSE(h->maybe_sampled(unaligned));
}

TEST_CASE("samples not placed: every free reads the bitmap") {
    auto h = std::make_unique<HeapProfile>();
    h->start(false);
    std::vector<char> memory(1 << 16);
    void* a = &memory[48];
    CHECK_FALSE(h->maybe_sampled(a));
    h->record_alloc(a, 24, 1);
    CHECK(h->maybe_sampled(a));
    CHECK(h->record_free(a) != 0);
    CHECK_FALSE(h->maybe_sampled(a));
}
