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

TEST_CASE("a snapshot taken while other threads allocate and free never shows more frees") {
    auto h = std::make_unique<HeapProfile>();
    h->start();
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

TEST_CASE("frees look samples up only once the shims have taken one") {
    auto h = std::make_unique<HeapProfile>();
    h->start();
    std::vector<char> memory(1 << 16);
    void* a = &memory[48];
    void* neighbour = &memory[64];  // another 16-byte granule
    void* reported = &memory[4096];
    CHECK_FALSE(h->maybe_sampled(a));
    // An allocator's sample: its end is reported, so frees still do not look.
    h->record_reported_alloc(reported, 24, 32, 1);
    CHECK_FALSE(h->maybe_sampled(reported));
    CHECK_FALSE(h->maybe_sampled(a));
    h->record_alloc(a, 24, 1);
    CHECK(h->maybe_sampled(a));
    CHECK_FALSE(h->maybe_sampled(neighbour));  // read from the bitmap: clear
    CHECK_FALSE(h->maybe_sampled(reported));   // the allocator's samples are not in the bitmap
    CHECK(h->record_reported_free(reported, h->births(reported)) != 0);
    CHECK(h->record_free(a) != 0);
    CHECK_FALSE(h->maybe_sampled(a));

    // A second life of an address that was never freed through gprof replaces the first, whose
    // end is counted.
    h->record_alloc(a, 24, 2);
    h->record_alloc(a, 24, 2);
    CHECK(h->record_free(a) != 0);
    CHECK(h->record_free(a) == 0);
    CHECK_FALSE(h->maybe_sampled(a));
    for (const HeapBucket& b : buckets(*h))
        if (b.stack_id == 2) CHECK(b.frees == b.allocs);
}

TEST_CASE("an allocator's samples: a late free ends only the life it was read for") {
    auto h = std::make_unique<HeapProfile>();
    h->start();
    std::vector<char> memory(1 << 16);
    void* a = &memory[0];
    void* b = &memory[4096];
    void* c = &memory[8192];
    auto bucket = [&](uint32_t stack) {
        for (const HeapBucket& x : buckets(*h))
            if (x.stack_id == stack) return x;
        return HeapBucket{};
    };

    // A free reported in time.
    h->record_reported_alloc(b, 100, 112, 1);
    CHECK(h->record_reported_free(b, h->births(b)) != 0);
    CHECK(bucket(1).frees == 1);

    // A realloc that moved: jemalloc read a's record (births(a) then: S), freed the block, and
    // another thread was handed the address and sampled it before the old end was reported.
    h->record_reported_alloc(a, 33, 48, 2);
    uint32_t s = h->births(a);
    h->record_reported_alloc(a, 200, 224, 3);  // the new life: the old one ends here
    CHECK(h->record_reported_free(a, s) == 0);  // the late report leaves the new life alone
    CHECK(bucket(2).allocs == 1);
    CHECK(bucket(2).frees == 1);
    CHECK(bucket(3).allocs == 1);
    CHECK(bucket(3).frees == 0);
    CHECK(h->record_reported_free(a, h->births(a)) != 0);
    CHECK(bucket(3).frees == 1);

    // A realloc in place, sampled again: the new record first, then the old one's end.
    h->record_reported_alloc(c, 16 << 20, 16 << 20, 4);
    s = h->births(c);
    h->record_reported_alloc(c, 8 << 20, 8 << 20, 5);
    CHECK(h->record_reported_free(c, s) == 0);
    CHECK(bucket(4).frees == 1);
    CHECK(bucket(5).frees == 0);
}

TEST_CASE("buckets: the size the sampler counted is part of the key") {
    auto h = std::make_unique<HeapProfile>();
    h->start();
    std::vector<char> memory(1 << 16);
    h->record_reported_alloc(&memory[0], 33, 48, 1);
    h->record_reported_alloc(&memory[64], 33, 48, 1);
    h->record_reported_alloc(&memory[128], 33, 64, 1);  // 33 bytes asked with an alignment
    h->record_alloc(&memory[192], 33, 1);                // the shims count what was asked
    std::map<uint64_t, HeapBucket> by_sampled;
    for (const HeapBucket& b : buckets(*h)) by_sampled[b.sampled_size] = b;
    REQUIRE(by_sampled.size() == 3);
    CHECK(by_sampled[48].allocs == 2);
    CHECK(by_sampled[48].alloc_bytes == 66);
    CHECK(by_sampled[64].allocs == 1);
    CHECK(by_sampled[33].allocs == 1);
    for (auto& [sampled, b] : by_sampled) CHECK(b.size == 33);
}

TEST_CASE("buckets: an index that grows while threads add and find buckets loses none") {
    auto h = std::make_unique<HeapProfile>();
    h->start();
    // 4 threads, each 60 000 samples over 20 000 (stack, size) keys, most of them shared: the
    // index grows from 4 096 heads past 20 000 buckets while look-ups run.
    constexpr int kThreads = 4, kKeys = 20000, kSamples = 60000;
    std::vector<char> memory(size_t{kThreads} * kSamples * 16);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kSamples; ++i) {
                int key = (i * 7 + t * 1237) % kKeys;
                void* p = &memory[(size_t{static_cast<size_t>(t)} * kSamples + i) * 16];
                h->record_alloc(p, 16 + static_cast<size_t>(key % 1000), 1 + key / 1000);
            }
        });
    }
    for (auto& th : threads) th.join();
    auto all = buckets(*h);
    REQUIRE(all.size() == static_cast<size_t>(kKeys));
    std::map<std::pair<uint32_t, uint64_t>, uint64_t> allocs;
    for (const HeapBucket& b : all) allocs[{b.stack_id, b.size}] += b.allocs;
    CHECK(allocs.size() == static_cast<size_t>(kKeys));  // each key once
    uint64_t total = 0;
    for (const auto& [key, n] : allocs) total += n;
    CHECK(total == uint64_t{kThreads} * kSamples);
    CHECK(h->dropped() == 0);
}
