#include <catch2/catch.hpp>
#include <set>
#include <thread>
#include <vector>

#include "record/stack_table.h"

using gprof::record::StackTable;

namespace {
std::vector<uintptr_t> make_stack(uint64_t seed, int depth) {
    std::vector<uintptr_t> s(static_cast<size_t>(depth));
    for (int i = 0; i < depth; ++i) s[static_cast<size_t>(i)] = 0x400000 + seed * 131 + static_cast<uint64_t>(i) * 7;
    return s;
}
}  // namespace

TEST_CASE("stacks are interned once and read back unchanged") {
    StackTable t(size_t{16} << 20);
    auto a = make_stack(1, 10), b = make_stack(2, 10), c = make_stack(1, 9);
    uint32_t ia = t.intern(a.data(), 10);
    uint32_t ib = t.intern(b.data(), 10);
    uint32_t ic = t.intern(c.data(), 9);
    CHECK(ia != 0);
    CHECK(ib != 0);
    CHECK(ic != 0);
    CHECK(ia != ib);
    CHECK(ia != ic);
    CHECK(t.intern(a.data(), 10) == ia);
    CHECK(t.count() == 3);
    const uintptr_t* pcs;
    REQUIRE(t.frames(ib, &pcs) == 10);
    CHECK(std::vector<uintptr_t>(pcs, pcs + 10) == b);
    CHECK(t.frames(0, &pcs) == 0);
    uint32_t empty = t.intern(nullptr, 0);
    CHECK(empty != 0);
    CHECK(t.frames(empty, &pcs) == 0);
}

TEST_CASE("concurrent interning gives one id per distinct stack") {
    StackTable t(size_t{64} << 20);
    constexpr int kThreads = 4, kStacks = 5000;
    std::vector<std::vector<uint32_t>> ids(kThreads, std::vector<uint32_t>(kStacks));
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; ++th) {
        threads.emplace_back([&, th] {
            for (int i = 0; i < kStacks; ++i) {
                int k = (i + th * 1237) % kStacks;  // each thread starts elsewhere
                auto s = make_stack(static_cast<uint64_t>(k), 1 + k % 40);
                ids[static_cast<size_t>(th)][static_cast<size_t>(k)] =
                    t.intern(s.data(), static_cast<int>(s.size()));
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(t.count() == kStacks);
    CHECK(t.dropped() == 0);
    std::set<uint32_t> distinct;
    for (int k = 0; k < kStacks; ++k) {
        for (int th = 1; th < kThreads; ++th) CHECK(ids[static_cast<size_t>(th)][static_cast<size_t>(k)] == ids[0][static_cast<size_t>(k)]);
        distinct.insert(ids[0][static_cast<size_t>(k)]);
        const uintptr_t* pcs;
        auto s = make_stack(static_cast<uint64_t>(k), 1 + k % 40);
        REQUIRE(t.frames(ids[0][static_cast<size_t>(k)], &pcs) == static_cast<int>(s.size()));
        CHECK(std::vector<uintptr_t>(pcs, pcs + s.size()) == s);
    }
    CHECK(distinct.size() == kStacks);
}

TEST_CASE("the memory cap drops new stacks and counts them") {
    StackTable t(size_t{3} << 20);  // the 1 MiB index plus two 1 MiB chunks
    uint32_t last = 1;
    int interned = 0;
    for (int i = 0; i < 20000 && last != 0; ++i) {
        auto s = make_stack(static_cast<uint64_t>(i), 100);
        last = t.intern(s.data(), 100);
        if (last) ++interned;
    }
    CHECK(last == 0);
    CHECK(t.dropped() == 1);
    CHECK(t.bytes_used() <= (size_t{3} << 20));
    // Known stacks still resolve once full.
    auto first = make_stack(0, 100);
    CHECK(t.intern(first.data(), 100) == 1);
    CHECK(interned > 1000);
}
