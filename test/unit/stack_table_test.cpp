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
    auto a = make_stack(1, 10), b = make_stack(2, 10);
    std::vector<uintptr_t> c(a.begin() + 1, a.end());
    uint32_t ia = t.intern(a.data(), 10);
    uint32_t ib = t.intern(b.data(), 10);
    uint32_t ic = t.intern(c.data(), 9);
    CHECK(ia != 0);
    CHECK(ib != 0);
    CHECK(ic != 0);
    CHECK(ia != ib);
    CHECK(ia != ic);
    CHECK(t.intern(a.data(), 10) == ia);
    // c is a's outer 9 frames: a is c with one more frame at the leaf, and shares its nodes.
    CHECK(t.count() == 20);
    CHECK(t.child(ic, a[0]) == ia);
    CHECK(t.depth(ia) == 10);
    CHECK(t.depth(ic) == 9);
    uintptr_t pcs[StackTable::kMaxDepth];
    REQUIRE(t.frames(ib, pcs, StackTable::kMaxDepth) == 10);
    CHECK(std::vector<uintptr_t>(pcs, pcs + 10) == b);
    REQUIRE(t.frames(ib, pcs, 4) == 4);  // the leaf-most four
    CHECK(std::vector<uintptr_t>(pcs, pcs + 4) == std::vector<uintptr_t>(b.begin(), b.begin() + 4));
    CHECK(t.frames(0, pcs, StackTable::kMaxDepth) == 0);
    CHECK(t.intern(nullptr, 0) == 0);  // the empty stack
    CHECK(t.depth(0) == 0);
}

TEST_CASE("a stack deeper than the table keeps its leaf-most frames") {
    StackTable t(size_t{16} << 20);
    auto deep = make_stack(7, StackTable::kMaxDepth + 10);
    uint32_t id = t.intern(deep.data(), static_cast<int>(deep.size()));
    REQUIRE(id != 0);
    CHECK(t.depth(id) == StackTable::kMaxDepth);
    std::vector<uintptr_t> pcs(StackTable::kMaxDepth);
    REQUIRE(t.frames(id, pcs.data(), StackTable::kMaxDepth) == StackTable::kMaxDepth);
    CHECK(pcs == std::vector<uintptr_t>(deep.begin(), deep.begin() + StackTable::kMaxDepth));
    CHECK(t.child(id, 0x1234) == 0);  // no deeper
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
    CHECK(t.dropped() == 0);
    std::set<uint32_t> distinct;
    for (int k = 0; k < kStacks; ++k) {
        for (int th = 1; th < kThreads; ++th) CHECK(ids[static_cast<size_t>(th)][static_cast<size_t>(k)] == ids[0][static_cast<size_t>(k)]);
        distinct.insert(ids[0][static_cast<size_t>(k)]);
        uintptr_t pcs[StackTable::kMaxDepth];
        auto s = make_stack(static_cast<uint64_t>(k), 1 + k % 40);
        REQUIRE(t.frames(ids[0][static_cast<size_t>(k)], pcs, StackTable::kMaxDepth) ==
                static_cast<int>(s.size()));
        CHECK(std::vector<uintptr_t>(pcs, pcs + s.size()) == s);
    }
    CHECK(distinct.size() == kStacks);
}

TEST_CASE("the memory cap drops new stacks and counts them") {
    StackTable t(size_t{3} << 20);  // the index and about 2.8 MiB of nodes (17 bytes each)
    uint32_t last = 1, first_id = 0;
    int interned = 0;
    for (int i = 0; i < 20000 && last != 0; ++i) {
        auto s = make_stack(static_cast<uint64_t>(i), 100);
        last = t.intern(s.data(), 100);
        if (i == 0) first_id = last;
        if (last) ++interned;
    }
    CHECK(last == 0);
    CHECK(t.dropped() == 1);
    CHECK(t.bytes_used() <= (size_t{3} << 20));
    // Known stacks still resolve once full.
    auto first = make_stack(0, 100);
    CHECK(first_id != 0);
    CHECK(t.intern(first.data(), 100) == first_id);
    CHECK(interned > 1000);
}
