// gprof's own stack walk (unwind/fast_walk.h) against glibc's backtrace(), which walks with
// libgcc's unwinder: an independent reading of the same call frame information. Every walk here
// must equal it frame for frame, including the walks that reuse the previous walk's frames; and
// the rule parser (unwind/frame_rules.h) on call frame information written by hand.
#include "unwind/fast_walk.h"

#include <alloca.h>
#include <execinfo.h>
#include <pthread.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "unwind/frame_rules.h"
#include "unwind/thread_bounds.h"

using namespace gprof::unwind;

namespace {

#define NOINLINE __attribute__((noinline))

struct Walker {
    RecentWalks recent;
    LocalRules rules;
    WalkStats stats;
    uintptr_t lo = 0, hi = 0;
    PcRange skip;
    int walks = 0, mismatches = 0, bad_tags = 0;
    const WalkMemory* last = nullptr;

    // No Catch2 assertion here: walkers are made in several threads at once, and Catch2's are
    // for the test's own thread.
    Walker() {
        pthread_attr_t attr;
        if (pthread_getattr_np(pthread_self(), &attr) != 0)
            return;  // lo = hi = 0: every walk fails
        void* base = nullptr;
        size_t size = 0;
        pthread_attr_getstack(&attr, &base, &size);
        pthread_attr_destroy(&attr);
        lo = reinterpret_cast<uintptr_t>(base);
        hi = lo + size;
    }
};

thread_local volatile int g_sink;  // per thread: walkers run in several at once

// The tag a caller of fast_walk would keep for pcs[0, i]: a function of those frames alone.
uint32_t tag_of(uint32_t outer, uintptr_t pc) {
    return static_cast<uint32_t>(((outer + pc) * 0x9E3779B97F4A7C15ULL) >> 33) | 1;
}

// Walks from here with both walkers and compares. backtrace()'s first address is this function's
// own return address; fast_walk leaves out its start frame (this one) and writes return addresses
// minus one. Also checks the tags the walk kept: those it says are the caller's are still those
// of the same root-side frames (and tags the rest, as a caller would).
NOINLINE void walk_here(Walker* w) {
    Registers start;
    gprof_caller_registers(&start);
    WalkMemory* m = fast_walk(start, w->lo, w->hi, w->skip, &w->recent, &w->rules, &w->stats);
    w->last = m;
    int n = m != nullptr ? m->depth : -1;
    void* truth[512];
    int t = backtrace(truth, 512);
    ++w->walks;
    uintptr_t pcs[WalkMemory::kCapacity];  // leaf first, as backtrace() writes
    for (int i = 0; i < n; ++i) pcs[i] = m->pcs[n - 1 - i];
    // truth[0] is this function (preceded by the sanitizers' interceptor of backtrace() where
    // there is one): the walks meet at this function's caller.
    int skip = 1;
    if (w->skip.lo == w->skip.hi)
        while (skip < 3 && n > 0 && reinterpret_cast<uintptr_t>(truth[skip]) - 1 != pcs[0]) ++skip;
    int rest = 0;
    for (int i = skip; i < t; ++i) {
        uintptr_t pc = reinterpret_cast<uintptr_t>(truth[i]) - 1;
        if (!w->skip.contains(pc)) truth[rest++] = truth[i];
    }
    const bool cut = m != nullptr && m->count == WalkMemory::kCapacity;
    bool same = n >= 0 && (n == rest || (cut && rest > n));
    for (int i = 0; same && i < n; ++i) same = pcs[i] == reinterpret_cast<uintptr_t>(truth[i]) - 1;
    if (!same) {
        ++w->mismatches;
        UNSCOPED_INFO("walk " << w->walks << ": fast_walk " << n << " frames, backtrace " << rest);
    }
    if (m != nullptr) {
        bool ok = m->tagged >= 0 && m->tagged <= n;
        uint32_t tag = 0;
        for (int i = 0; ok && i < m->tagged; ++i) ok = m->tags[i] == (tag = tag_of(tag, m->pcs[i]));
        w->bad_tags += !ok;
        tag = m->tagged > 0 ? m->tags[m->tagged - 1] : 0;
        for (int i = m->tagged; i < n; ++i) m->tags[i] = tag = tag_of(tag, m->pcs[i]);
        m->tagged = n;
    }
    g_sink = n;
}

// Frames of three shapes: rsp-based (the -O2 default), rbp-based through alloca (the CFA then
// follows rbp), and with a frame pointer kept.
NOINLINE void chain(Walker* w, const int* shapes, int depth);

NOINLINE void plain_frame(Walker* w, const int* shapes, int depth) {
    volatile char pad[24];
    pad[0] = static_cast<char>(depth);
    chain(w, shapes + 1, depth - 1);
    g_sink = pad[0];
}

NOINLINE void alloca_frame(Walker* w, const int* shapes, int depth) {
    auto* buffer = static_cast<volatile char*>(alloca(16 + 16 * (shapes[0] % 7)));
    buffer[0] = static_cast<char>(depth);
    chain(w, shapes + 1, depth - 1);
    g_sink = buffer[0];
}

__attribute__((noinline, optimize("no-omit-frame-pointer"))) void pointer_frame(Walker* w,
                                                                                const int* shapes,
                                                                                int depth) {
    volatile long pad[3];
    pad[0] = depth;
    chain(w, shapes + 1, depth - 1);
    g_sink = static_cast<int>(pad[0]);
}

NOINLINE void chain(Walker* w, const int* shapes, int depth) {
    if (depth == 0) {
        walk_here(w);
        return;
    }
    switch (shapes[0] % 3) {
        case 0:
            plain_frame(w, shapes, depth);
            break;
        case 1:
            alloca_frame(w, shapes, depth);
            break;
        default:
            pointer_frame(w, shapes, depth);
            break;
    }
}

// Two callers with the same frame: the leaf's stack pointer and instruction pointer are the same
// from both, only the return address above differs.
NOINLINE void path_a(Walker* w) {
    volatile int pad[8];
    pad[0] = 1;
    walk_here(w);
    g_sink = pad[0];
}

NOINLINE void path_b(Walker* w) {
    volatile int pad[8];
    pad[0] = 2;
    walk_here(w);
    g_sink = pad[0] + 1;
}

// A walk on the way down and on the way back at every level: the stack grows past the walk
// memory's capacity one frame at a time, each walk a frame deeper or shallower than the last.
NOINLINE void walk_every_level(Walker* w, int depth) {
    volatile char pad[16];
    pad[0] = static_cast<char>(depth);
    walk_here(w);
    if (depth > 0) walk_every_level(w, depth - 1);
    walk_here(w);
    g_sink = pad[0];
}

void run_shapes(Walker& w, int walks, unsigned seed) {
    std::vector<int> shapes(200);
    for (int i = 0; i < walks; ++i) {
        // Mostly the same outer frames with a changing inner part, as a program allocating in
        // a loop has: the case reuse is for.
        seed = seed * 1103515245u + 12345u;
        constexpr int kOuter = 16;
        int depth = kOuter + 1 + static_cast<int>((seed >> 16) % 8);
        for (int j = 0; j < depth; ++j)
            shapes[j] = j < kOuter ? j : static_cast<int>((seed >> (j % 16)) & 0xff);
        chain(&w, shapes.data(), depth);
    }
}

}  // namespace

TEST_CASE("fast walk: equal to glibc's backtrace() on frames of every shape, reused or walked",
          "[unwind]") {
    Walker w;
    run_shapes(w, 400, 1);
    CHECK(w.mismatches == 0);
    CHECK(w.stats.failed == 0);
    // Reuse happened, and fewer frames were walked than written.
    CHECK(w.stats.frames_reused > 0);
    CHECK(w.stats.frames_walked < w.stats.frames_reused);
    // The tags kept for the frames reused still hold.
    CHECK(w.bad_tags == 0);
}

TEST_CASE("fast walk: a caller that changed under the same stack pointer is walked, not reused",
          "[unwind]") {
    Walker w;
    for (int i = 0; i < 50; ++i) {
        if (i % 3 == 0)
            path_a(&w);
        else
            path_b(&w);
    }
    CHECK(w.mismatches == 0);
    CHECK(w.stats.failed == 0);
    // Both stacks stay among the recent walks: after the first of each, every walk is one of them.
    CHECK(w.stats.repeated == static_cast<uint64_t>(w.walks - 2));
    CHECK(w.bad_tags == 0);
}

TEST_CASE(
    "fast walk: a deep stack is cut at the memory's capacity and the next walk is still exact",
    "[unwind]") {
    Walker w;
    std::vector<int> shapes(200, 0);
    for (int i = 0; i < 6; ++i) {
        chain(&w, shapes.data(), i % 2 ? 170 : 30);
        REQUIRE(w.last != nullptr);
        if (i % 2) CHECK(w.last->count == WalkMemory::kCapacity);  // cut
        shapes[0] = i;  // vary the innermost frame's shape
    }
    CHECK(w.mismatches == 0);
    CHECK(w.stats.failed == 0);
    CHECK(w.bad_tags == 0);
}

TEST_CASE("fast walk: a stack growing past the capacity a frame at a time, reusing each walk",
          "[unwind]") {
    Walker w;
    walk_every_level(&w, 2 * WalkMemory::kCapacity);
    CHECK(w.walks == 2 * (2 * WalkMemory::kCapacity + 1));
    CHECK(w.mismatches == 0);
    CHECK(w.stats.failed == 0);
    CHECK(w.bad_tags == 0);
    CHECK(w.stats.frames_reused > 0);
}

TEST_CASE("fast walk: return addresses in the range left out are not in the stack", "[unwind]") {
    // This test program's own text: left out, the stack is the C library's frames below main().
    extern char __executable_start[], etext[];
    Walker w;
    w.skip = {reinterpret_cast<uintptr_t>(__executable_start), reinterpret_cast<uintptr_t>(etext)};
    run_shapes(w, 50, 3);
    CHECK(w.mismatches == 0);
    CHECK(w.stats.failed == 0);
    CHECK(w.bad_tags == 0);
    REQUIRE(w.last != nullptr);
    CHECK(w.last->depth > 0);
    CHECK(w.last->depth < 5);
    CHECK(w.stats.frames_reused > w.stats.frames_walked);
}

TEST_CASE("fast walk: other threads' stacks, and rules forgotten between walks", "[unwind]") {
    int mismatches = -1;
    uint64_t failed = 1;
    std::thread t([&] {
        Walker w;
        run_shapes(w, 100, 7);
        forget_frame_rules();
        run_shapes(w, 100, 8);
        mismatches = w.mismatches;
        failed = w.stats.failed;
    });
    t.join();
    CHECK(mismatches == 0);
    CHECK(failed == 0);
    uint64_t before = frame_rules_generation();
    forget_frame_rules();
    CHECK(frame_rules_generation() == before + 2);
    CHECK(cached_frame_rules() == 0);
    Walker w;
    run_shapes(w, 20, 9);
    CHECK(w.mismatches == 0);
    CHECK(cached_frame_rules() > 0);
}

TEST_CASE("fast walk: a stack outside the given bounds is refused, not read", "[unwind]") {
    Walker w;
    Registers start;
    gprof_caller_registers(&start);
    // Bounds that end just above this frame: the callers' frames lie outside.
    CHECK(fast_walk(start, w.lo, start.sp + 16, w.skip, &w.recent, &w.rules) == nullptr);
    CHECK(w.recent.used == 0);
    CHECK(fast_walk(start, start.sp + 4096, w.hi, w.skip, &w.recent, &w.rules) == nullptr);
}

// ---------------------------------------------------------------------------------------------
// The rule parser on call frame information written by hand: an .eh_frame_hdr with one FDE.

namespace {

struct HandCfi {
    std::vector<uint8_t> bytes = std::vector<uint8_t>(4096, 0);
    static constexpr size_t kCie = 64, kFde = 256;
    static constexpr uintptr_t kFunctionOffset = 0x10000;  // never executed: only its address
    static constexpr uint32_t kFunctionSize = 0x100;

    uintptr_t base() const { return reinterpret_cast<uintptr_t>(bytes.data()); }
    uintptr_t function() const { return base() + kFunctionOffset; }
    void put32(size_t at, uint32_t v) { memcpy(&bytes[at], &v, 4); }

    // augmentation "zR" (or "zRS"), code align 1, data align -8, return address column 16,
    // CIE instructions: def_cfa rsp+8, return address at cfa-8.
    HandCfi(const std::vector<uint8_t>& fde_instructions, bool signal_frame = false) {
        // .eh_frame_hdr: version, eh_frame_ptr pcrel|sdata4, count udata4, table datarel|sdata4
        bytes[0] = 1, bytes[1] = 0x1b, bytes[2] = 0x03, bytes[3] = 0x3b;
        put32(4, static_cast<uint32_t>(kCie - 4));
        put32(8, 1);
        put32(12, static_cast<uint32_t>(kFunctionOffset));
        put32(16, static_cast<uint32_t>(kFde));
        std::vector<uint8_t> cie = {0, 0, 0, 0, 1, 'z', 'R'};
        if (signal_frame) cie.push_back('S');
        cie.insert(cie.end(), {0, 1, 0x78, 16, 1, 0x1b, 0x0c, 7, 8, 0x90, 1});
        while ((cie.size() + 4) % 8) cie.push_back(0);
        put32(kCie, static_cast<uint32_t>(cie.size()));
        memcpy(&bytes[kCie + 4], cie.data(), cie.size());
        std::vector<uint8_t> fde(12, 0);
        fde.push_back(0);  // augmentation data length
        fde.insert(fde.end(), fde_instructions.begin(), fde_instructions.end());
        while ((fde.size() + 4) % 8) fde.push_back(0);
        put32(kFde, static_cast<uint32_t>(fde.size()));
        memcpy(&bytes[kFde + 4], fde.data(), fde.size());
        put32(kFde + 4, static_cast<uint32_t>(kFde + 4 - kCie));               // back to the CIE
        put32(kFde + 8, static_cast<uint32_t>(kFunctionOffset - (kFde + 8)));  // pcrel start
        put32(kFde + 12, kFunctionSize);
    }

    bool rule_at(uintptr_t offset, FrameRule* rule) const {
        return parse_frame_rule(bytes.data(), function() + offset, rule);
    }
};

}  // namespace

TEST_CASE("frame rules: a frame-pointer prologue, instruction by instruction", "[unwind]") {
    // push %rbp; mov %rsp,%rbp; ... : advance 1, def_cfa_offset 16, rbp at cfa-16, advance 3,
    // def_cfa_register rbp.
    HandCfi cfi({0x41, 0x0e, 16, 0x86, 2, 0x43, 0x0d, 6});
    FrameRule r;
    REQUIRE(cfi.rule_at(0, &r));
    CHECK((!r.cfa_is_rbp && r.cfa_offset == 8 && !r.rbp_saved && !r.outermost));
    REQUIRE(cfi.rule_at(1, &r));
    CHECK((!r.cfa_is_rbp && r.cfa_offset == 16 && r.rbp_saved && r.rbp_offset == -16));
    REQUIRE(cfi.rule_at(3, &r));
    CHECK((!r.cfa_is_rbp && r.cfa_offset == 16));
    REQUIRE(cfi.rule_at(4, &r));
    CHECK((r.cfa_is_rbp && r.cfa_offset == 16 && r.rbp_saved && r.rbp_offset == -16));
    REQUIRE(cfi.rule_at(HandCfi::kFunctionSize - 1, &r));
    CHECK(r.cfa_is_rbp);
    // Outside the function, and before the first FDE: no rule.
    CHECK_FALSE(cfi.rule_at(HandCfi::kFunctionSize, &r));
    CHECK_FALSE(parse_frame_rule(cfi.bytes.data(), cfi.function() - 1, &r));
}

TEST_CASE("frame rules: remember and restore state bring the CFA back too", "[unwind]") {
    // advance 2, def_cfa_offset 32, remember, advance 2, def_cfa_offset 8 (an early return),
    // advance 1, restore (back to 32).
    HandCfi cfi({0x42, 0x0e, 32, 0x0a, 0x42, 0x0e, 8, 0x41, 0x0b});
    FrameRule r;
    REQUIRE(cfi.rule_at(2, &r));
    CHECK(r.cfa_offset == 32);
    REQUIRE(cfi.rule_at(4, &r));
    CHECK(r.cfa_offset == 8);
    REQUIRE(cfi.rule_at(5, &r));
    CHECK(r.cfa_offset == 32);
    // A restore without a remember is malformed.
    HandCfi bad({0x41, 0x0b});
    CHECK_FALSE(bad.rule_at(1, &r));
    CHECK(bad.rule_at(0, &r));
}

TEST_CASE("frame rules: the end of the stack, and the frames left to libunwind", "[unwind]") {
    FrameRule r;
    // DW_CFA_undefined rip: the outermost frame (_start, clone3).
    HandCfi outermost({0x07, 16});
    REQUIRE(outermost.rule_at(0, &r));
    CHECK(r.outermost);
    // A CFA computed by an expression (PLT stubs): none.
    HandCfi expression({0x41, 0x0f, 2, 0x77, 8});
    CHECK(expression.rule_at(0, &r));
    CHECK_FALSE(expression.rule_at(1, &r));
    // A CFA from another register (stack realignment through r10): none.
    HandCfi r10({0x41, 0x0c, 10, 0});
    CHECK_FALSE(r10.rule_at(1, &r));
    // The return address moved elsewhere than CFA-8: none.
    HandCfi moved_ra({0x41, 0x90, 2});
    CHECK_FALSE(moved_ra.rule_at(1, &r));
    // rbp in another register: none.
    HandCfi rbp_in_register({0x41, 0x09, 6, 3});
    CHECK_FALSE(rbp_in_register.rule_at(1, &r));
    // A signal frame ('S'): none.
    HandCfi signal_frame({}, true);
    CHECK_FALSE(signal_frame.rule_at(0, &r));
    // An unknown opcode: none, rather than a guess.
    HandCfi unknown({0x41, 0x3f});
    CHECK_FALSE(unknown.rule_at(1, &r));
}

TEST_CASE("frame rules: packed as the caches keep them", "[unwind]") {
    FrameRule r{-123456, -40, true, true, false};
    REQUIRE(PackedRule::fits(r));
    PackedRule p = PackedRule::of(r);
    CHECK(p.has_rule());
    CHECK(p.cfa_offset() == -123456);
    CHECK(p.rbp_offset() == -40);
    CHECK(p.cfa_is_rbp());
    CHECK(p.rbp_saved());
    CHECK_FALSE(p.outermost());
    CHECK_FALSE(PackedRule().has_rule());
    CHECK_FALSE(PackedRule::fits(FrameRule{8, 1 << 20, false, true, false}));
}

TEST_CASE("frame rules: the process's table grows past its first size and keeps every answer",
          "[unwind]") {
    forget_frame_rules();
    // Addresses in no module: each has no rule, and is remembered as such.
    const size_t n = kRuleSlots;  // twice what the first table takes before it grows
    size_t with_rule = 0;
    for (size_t i = 0; i < n; ++i) with_rule += cached_frame_rule(0x1000 + 16 * i).has_rule();
    CHECK(with_rule == 0);
    CHECK(cached_frame_rules() == n);
    // A function of this program: a rule, the same as parsed directly.
    auto here = reinterpret_cast<uintptr_t>(&walk_here) + 4;
    FrameRule direct;
    REQUIRE(find_frame_rule(here, &direct));
    PackedRule cached = cached_frame_rule(here);
    REQUIRE(cached.has_rule());
    CHECK(cached.bits() == PackedRule::of(direct).bits());
    CHECK(cached_frame_rule(here).bits() == cached.bits());  // from the table now
    CHECK(cached_frame_rules() == n + 1);
    forget_frame_rules();
    CHECK(cached_frame_rules() == 0);
}

TEST_CASE("fast walk: threads walking while the rules are forgotten again and again", "[unwind]") {
    // The process's table is read without a lock while another thread empties it (a dlclose);
    // every walk must still equal backtrace(): a look-up that overlaps an emptying finds nothing
    // and parses the rule afresh.
    std::atomic<bool> stop{false};
    std::atomic<int> forgotten{0};
    std::thread forgetter([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            forget_frame_rules();
            forgotten.fetch_add(1, std::memory_order_relaxed);
            std::this_thread::yield();
        }
    });
    constexpr int kThreads = 3;
    std::atomic<int> mismatches{0}, failed{0};
    std::vector<std::thread> walkers;
    for (int t = 0; t < kThreads; ++t) {
        walkers.emplace_back([&, t] {
            Walker w;
            run_shapes(w, 150, 100u + static_cast<unsigned>(t));
            mismatches += w.mismatches;
            failed += static_cast<int>(w.stats.failed);
        });
    }
    for (std::thread& t : walkers) t.join();
    stop.store(true);
    forgetter.join();
    CHECK(mismatches == 0);
    CHECK(failed == 0);
    CHECK(forgotten > 0);
}

TEST_CASE("stack bounds: a read that wraps around the address space is not inside the stack",
          "[unwind]") {
    // What crashed PostgreSQL's background writer under a dump signal: libunwind asked to read
    // the word at 2^64 - 8, which addr + 8 <= hi took for a stack address (addr + 8 wraps to 0).
    const gprof::unwind::StackBounds bounds{0x7ffd00000000, 0x7ffd00100000};
    CHECK_FALSE(bounds.holds(UINTPTR_MAX - 7, 8));
    CHECK_FALSE(bounds.holds(UINTPTR_MAX, 1));
    CHECK(bounds.holds(0x7ffd00000000, 8));
    CHECK(bounds.holds(0x7ffd000ffff8, 8));
    CHECK_FALSE(bounds.holds(0x7ffd000ffff9, 8));  // its last byte past hi
    CHECK_FALSE(bounds.holds(0x7ffcfffffff8, 8));  // below lo
    // Bounds not known yet (hi 0) or unknown (hi 1) hold nothing.
    CHECK_FALSE((gprof::unwind::StackBounds{0, 0}.holds(0, 8)));
    CHECK_FALSE((gprof::unwind::StackBounds{0, 1}.holds(0, 8)));
    CHECK_FALSE((gprof::unwind::StackBounds{0, 0}.holds(UINTPTR_MAX - 7, 8)));
}
