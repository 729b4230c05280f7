#include "unwind/fast_walk.h"

#include <cstring>

#include "unwind/frame_rules.h"

// The registers of the caller, as they are once this returns: [rsp] is the return address, and
// rsp + 8 the caller's stack pointer after the return. The CFI makes it walkable like any leaf.
asm(R"(
    .text
    .p2align 4
    .globl gprof_caller_registers
    .hidden gprof_caller_registers
    .type gprof_caller_registers, @function
gprof_caller_registers:
    .cfi_startproc
    endbr64
    movq (%rsp), %rax
    movq %rax, 0(%rdi)
    leaq 8(%rsp), %rax
    movq %rax, 8(%rdi)
    movq %rbp, 16(%rdi)
    ret
    .cfi_endproc
    .size gprof_caller_registers, .-gprof_caller_registers
)");

namespace gprof::unwind {
namespace {

// A word of the thread's stack, read in assembly: the words a walk reads belong to other frames,
// which a sanitizer's instrumentation would take for out-of-bounds accesses.
[[gnu::always_inline]] inline uintptr_t load_word(uintptr_t address) {
    uintptr_t v;
    asm("movq %1, %0" : "=r"(v) : "m"(*reinterpret_cast<const uintptr_t*>(address)));
    return v;
}

// libunwind's trace stops at a return address below this (a zeroed or garbage slot).
constexpr uintptr_t kLowestAddress = 0x4000;
// Reuse is tried at most this often per walk (each try checks the words of every frame above).
constexpr int kMaxReuseTries = 2;

// Whether every word the walk `m` read from its frame `from` outward still holds what it read.
bool still_holds(const WalkMemory& m, int from) {
    for (int i = from; i + 1 < m.count; ++i) {
        const WalkMemory::Frame& caller = m.frames[i + 1];
        if (load_word(caller.sp - 8) != caller.ip) return false;
        if (m.frames[i].saved_bp_at != 0 && load_word(m.frames[i].saved_bp_at) != caller.bp)
            return false;
    }
    return m.end_word_at == 0 || load_word(m.end_word_at) == m.end_word;
}

[[gnu::always_inline]] inline PackedRule rule_for(uintptr_t address, LocalRules* rules) {
    LocalRules::Slot& slot =
        rules->slots[(address ^ (address >> 6) ^ (address >> 12)) & (LocalRules::kSlots - 1)];
    if (slot.address == address) [[likely]]
        return slot.rule;
    PackedRule rule = cached_frame_rule(address);
    slot.address = address;
    slot.rule = rule;
    return rule;
}

}  // namespace

int fast_walk(const Registers& start, uintptr_t lo, uintptr_t hi, uintptr_t* pcs, int max,
              WalkMemory* memory, LocalRules* rules, bool* unchanged, WalkStats* stats) {
    using Frame = WalkMemory::Frame;
    const uint64_t generation = frame_rules_generation();
    if (rules->generation != generation) {
        *rules = LocalRules{};
        rules->generation = generation;
    }
    if (unchanged != nullptr) *unchanged = false;
    if (max > WalkMemory::kCapacity - 1) max = WalkMemory::kCapacity - 1;
    if (stats != nullptr) ++stats->walks;
    bool reuse = memory->reusable && memory->generation == generation && memory->count > 0;

    // The frames walked are kept here while a reuse of the last walk's frames is still possible
    // (most walks find one within a few frames); past it the walk writes over the last one.
    constexpr int kScratch = 16;
    Frame scratch[kScratch];
    Frame* out = scratch;
    auto fail = [&] {
        memory->count = 0;  // no memory of a walk that failed: the next one walks from scratch
        if (stats != nullptr) ++stats->failed;
        return -1;
    };
    Registers s = start;
    int n = 0;        // frames walked (out[0, n))
    int written = 0;  // pcs written
    int total = 0;    // frames in the new memory
    int k = 0;        // cursor into memory->frames, by stack pointer
    int tries = 0;
    bool reused = false;
    bool stepped_last = false;  // the last walked frame's step ran (it did not end at a rule)
    bool complete = false;      // the walk reached the end of the stack
    uintptr_t end_word_at = 0, end_word = 0;
    for (;;) {
        if (n == kScratch && out == scratch) {
            memcpy(memory->frames, scratch, sizeof scratch);
            out = memory->frames;
            reuse = false;
        }
        if (s.sp < lo || s.sp >= hi) return fail();
        out[n] = {s.ip, s.sp, s.bp, 0, false, false, false};
        if (reuse && tries < kMaxReuseTries) {
            while (k < memory->count && memory->frames[k].sp < s.sp) ++k;
            const Frame* same = k < memory->count ? &memory->frames[k] : nullptr;
            if (same != nullptr && same->sp == s.sp && same->ip == s.ip &&
                (!same->bp_matters || same->bp == s.bp)) {
                ++tries;
                if (still_holds(*memory, k)) {
                    int tail = memory->count - k - 1;
                    int room = max - written;
                    int copied = tail < room ? tail : room;
                    for (int i = 1; i <= copied; ++i) pcs[written++] = memory->frames[k + i].ip - 1;
                    if (unchanged != nullptr && n == k && copied == tail) {
                        int i = 1;
                        while (i < n && scratch[i].ip == memory->frames[i].ip) ++i;
                        *unchanged = i >= n;
                    }
                    // The new memory: the frames walked, then the last walk's from the match on.
                    if (n != k)
                        memmove(&memory->frames[n], &memory->frames[k],
                                sizeof(Frame) * static_cast<size_t>(copied + 1));
                    memcpy(memory->frames, scratch, sizeof(Frame) * static_cast<size_t>(n));
                    total = n + copied + 1;
                    complete = copied == tail;
                    end_word_at = memory->end_word_at;
                    end_word = memory->end_word;
                    stepped_last = true;  // frames[n] keeps the rbp flags it had
                    reused = true;
                    if (stats != nullptr) stats->frames_reused += static_cast<uint64_t>(copied);
                    break;
                }
            }
        }
        const PackedRule rule = rule_for(s.ip - 1, rules);
        if (!rule.has_rule()) return fail();
        out[n].cfa_by_bp = rule.cfa_is_rbp();
        out[n].bp_saved = rule.rbp_saved();
        ++n;
        if (rule.outermost()) {
            stepped_last = false;
            complete = true;
            break;
        }
        uintptr_t cfa =
            (rule.cfa_is_rbp() ? s.bp : s.sp) + static_cast<intptr_t>(rule.cfa_offset());
        // The caller's frame lies above this one, inside the stack: anything else is a stack this
        // walk cannot read (or a broken rbp chain), left to libunwind.
        if (cfa <= s.sp || cfa - 8 < lo || cfa > hi) return fail();
        uintptr_t ra = load_word(cfa - 8);
        uintptr_t bp = s.bp;
        if (rule.rbp_saved()) {
            uintptr_t at = cfa + static_cast<intptr_t>(rule.rbp_offset());
            if (at < lo || at > hi - 8) return fail();
            bp = load_word(at);
            out[n - 1].saved_bp_at = at;
        }
        stepped_last = true;
        if (ra < kLowestAddress) {
            complete = true;
            end_word_at = cfa - 8;
            end_word = ra;
            break;
        }
        if (written == max) break;  // cut short: the frames above are unknown
        pcs[written++] = ra - 1;
        s = {ra, cfa, bp};
    }
    if (!reused) {
        if (out == scratch) memcpy(memory->frames, scratch, sizeof(Frame) * static_cast<size_t>(n));
        total = n;
    }
    if (stats != nullptr) stats->frames_walked += static_cast<uint64_t>(n);

    // Which walked frames' rbp the rest depends on, from the outermost walked frame inward; the
    // saved rbp words that nothing depends on are not checked by a later reuse.
    bool matters_above = reused ? memory->frames[n].bp_matters : false;
    for (int i = n - 1; i >= 0; --i) {
        Frame& f = memory->frames[i];
        if (i == n - 1 && !stepped_last) {
            f.bp_matters = false;
        } else {
            if (!matters_above) f.saved_bp_at = 0;
            f.bp_matters = f.cfa_by_bp || (!f.bp_saved && matters_above);
        }
        matters_above = f.bp_matters;
    }
    memory->count = total;
    memory->reusable = complete;
    memory->end_word_at = end_word_at;
    memory->end_word = end_word;
    memory->generation = generation;
    return written;
}

}  // namespace gprof::unwind
