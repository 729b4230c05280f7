#include "unwind/fast_walk.h"

#include <cstring>
#include <utility>

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

// Whether every word the walk `m` read from its frame `from` outward (toward frames[0]) still
// holds what it read.
bool still_holds(const WalkMemory& m, int from) {
    for (int i = from; i > 0; --i) {
        const WalkMemory::Frame& caller = m.frames[i - 1];
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

int fast_walk(const Registers& start, uintptr_t lo, uintptr_t hi, PcRange skip, WalkMemory* memory,
              LocalRules* rules, int* shared, WalkStats* stats) {
    using Frame = WalkMemory::Frame;
    constexpr int kCapacity = WalkMemory::kCapacity;
    const uint64_t generation = frame_rules_generation();
    if (rules->generation != generation) {
        *rules = LocalRules{};
        rules->generation = generation;
    }
    if (shared != nullptr) *shared = 0;
    if (stats != nullptr) ++stats->walks;
    bool reuse = memory->reusable && memory->generation == generation && memory->count > 0;

    // The frames walked, leaf first, are kept here while a reuse of the last walk's frames is
    // still possible (most walks find one within a few frames); past it the walk writes them into
    // the memory, leaf first, and turns them round at the end.
    constexpr int kScratch = 16;
    Frame scratch[kScratch];
    Frame* out = scratch;
    auto fail = [&] {
        // No memory of a walk that failed: the next one walks from scratch.
        memory->count = memory->depth = memory->tagged = 0;
        if (stats != nullptr) ++stats->failed;
        return -1;
    };
    Registers s = start;
    int n = 0;                  // frames walked (out[0, n)), not counting the one matched
    int matched = -1;           // the last walk's frame this walk reached (index into memory)
    int k = memory->count - 1;  // cursor into memory->frames, from its start outward
    int tries = 0;
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
        if (reuse && tries < kMaxReuseTries) {
            while (k >= 0 && memory->frames[k].sp < s.sp) --k;
            if (k >= 0) {
                const Frame& same = memory->frames[k];
                if (same.sp == s.sp && same.ip == s.ip && (!same.bp_matters || same.bp == s.bp)) {
                    ++tries;
                    if (still_holds(*memory, k)) {
                        matched = k;
                        break;
                    }
                }
            }
        }
        out[n] = {s.ip, s.sp, s.bp, 0, false, false, false};
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
        if (n == kCapacity) break;  // cut short: the frames above are unknown
        s = {ra, cfa, bp};
    }

    // The new memory, root first: the last walk's frames up to the one matched, then the frames
    // walked, outermost first.
    const int old_count = memory->count;
    const int old_depth = memory->depth;
    int base = 0;  // frames kept from the last walk
    if (matched >= 0) {
        memory->frames[matched].bp = s.bp;  // equal to the last walk's wherever that matters
        base = matched + 1;
        for (int i = 0; i < n; ++i) memory->frames[base + i] = out[n - 1 - i];
        end_word_at = memory->end_word_at;
        end_word = memory->end_word;
        complete = true;
        stepped_last = true;  // the outermost frame walked stepped to the one matched
        if (stats != nullptr) stats->frames_reused += static_cast<uint64_t>(matched);
    } else if (out == scratch) {
        for (int i = 0; i < n; ++i) memory->frames[i] = out[n - 1 - i];
    } else {
        for (int i = 0, j = n - 1; i < j; ++i, --j) std::swap(memory->frames[i], memory->frames[j]);
    }
    const int count = base + n;
    if (stats != nullptr) stats->frames_walked += static_cast<uint64_t>(n);

    // Which walked frames' rbp the rest depends on, from the outermost walked frame inward; the
    // saved rbp words that nothing depends on are not checked by a later reuse.
    bool matters_above = matched >= 0 ? memory->frames[matched].bp_matters : false;
    for (int i = base; i < count; ++i) {
        Frame& f = memory->frames[i];
        if (i == base && !stepped_last) {
            f.bp_matters = false;
        } else {
            if (!matters_above) f.saved_bp_at = 0;
            f.bp_matters = f.cfa_by_bp || (!f.bp_saved && matters_above);
        }
        matters_above = f.bp_matters;
    }

    // The stack: the return address of every frame but the start. Those of the frames kept are in
    // place already, up to the frame matched, whose own is there unless it was the last start (or
    // is the start now); a return address written where the last walk had the same one is still
    // shared.
    int depth = 0;
    int first = 0;  // the first frame whose return address is (re)written
    if (matched >= 0) {
        depth = memory->pcs_before[matched];
        first = matched;
        if (n > 0 && matched < old_count - 1) {
            if (!skip.contains(memory->frames[matched].ip - 1)) ++depth;
            first = matched + 1;
        }
    }
    int same = depth;
    for (int i = first; i < count; ++i) {
        memory->pcs_before[i] = static_cast<uint16_t>(depth);
        if (i == count - 1) break;  // the start: no return address of its own
        uintptr_t pc = memory->frames[i].ip - 1;
        if (skip.contains(pc)) continue;
        if (same == depth && depth < old_depth && memory->pcs[depth] == pc) ++same;
        memory->pcs[depth++] = pc;
    }
    if (memory->tagged > same) memory->tagged = same;
    if (shared != nullptr) *shared = same;

    memory->count = count;
    memory->depth = depth;
    memory->reusable = complete;
    memory->end_word_at = end_word_at;
    memory->end_word = end_word;
    memory->generation = generation;
    return depth;
}

}  // namespace gprof::unwind
