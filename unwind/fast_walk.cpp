#include "unwind/fast_walk.h"

#include <cstring>
#include <utility>

#include "unwind/frame_rules.h"
#include "unwind/stack_word.h"

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

// Reuse is tried at most this often per walk (each try checks the words of every frame above).
constexpr int kMaxReuseTries = 2;

// Whether every word the walk `m` read from its frame `from` outward (toward frames[0]) still
// holds what it read. One branch for all of them: a walk that is reused checks them all anyway.
bool still_holds(const WalkMemory& m, int from) {
    uintptr_t differ = 0;
    for (int i = 0, n = m.words_to[from]; i < n; ++i)
        differ |= load_stack_word(m.words[i].at) ^ m.words[i].value;
    return differ == 0;
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

using Frame = WalkMemory::Frame;
constexpr int kCapacity = WalkMemory::kCapacity;
constexpr int kWalks = RecentWalks::kWalks;

template <typename F>
bool same_frame(const F& f, const Registers& s) {
    return f.sp == s.sp && f.ip == s.ip && (!f.bp_matters || f.bp == s.bp);
}

// Makes the walk at order[position] the most recent one.
WalkMemory* make_recent(RecentWalks* recent, int position) {
    uint8_t slot = recent->order[position];
    for (int i = position; i > 0; --i) recent->order[i] = recent->order[i - 1];
    recent->order[0] = slot;
    return &recent->walks[slot];
}

// The reuse check: the position in `order` of a recent walk that is this one exactly (its start
// is `start`, and every word it read above is unchanged), or -1.
int find_repeat(RecentWalks* recent, const Registers& start, uint64_t generation) {
    for (int i = 0; i < recent->used; ++i) {
        RecentWalks::Start& top = recent->starts[recent->order[i]];
        if (!top.reusable || top.generation != generation || !same_frame(top, start)) continue;
        WalkMemory& m = recent->walks[recent->order[i]];
        if (!still_holds(m, m.count - 1)) continue;
        m.frames[m.count - 1].bp = top.bp = start.bp;  // equal wherever it matters
        return i;
    }
    return -1;
}

// What the step loop found: the frames it walked, leaf first, and how it ended.
struct Steps {
    Frame* out;                 // the frames walked: the caller's scratch, or memory->frames
    int n = 0;                  // out[0, n), not counting the frame matched
    int matched = -1;           // the source's frame this walk reached (reuse), or -1
    bool stepped_last = false;  // the last walked frame's step ran (it did not end at a rule)
    bool complete = false;      // the walk reached the end of the stack (or a matched frame)
    uintptr_t end_word_at = 0, end_word = 0;  // the return address below 0x4000 that ended it
    uintptr_t matched_bp = 0;   // the rbp this walk reached the frame matched with
};

// The step loop: walks from `start` outward, frame by frame, until the end of the stack, a frame
// of `source` whose words still hold (while `reuse` allows, within its first kScratch frames), or
// kCapacity frames. The first kScratch frames go to `scratch`, later ones (reuse no longer
// possible) to memory->frames. False when a frame has no usable rule or leaves [lo, hi).
bool walk_frames(const Registers& start, uintptr_t lo, uintptr_t hi, const WalkMemory& source,
                 bool reuse, Frame* scratch, int scratch_size, WalkMemory* memory,
                 LocalRules* rules, Steps* steps) {
    Steps& w = *steps;
    w.out = scratch;
    Registers s = start;
    int k = source.count - 1;  // cursor into source.frames, from its start outward
    int tries = 0;
    for (;;) {
        if (w.n == scratch_size && w.out == scratch) {
            memcpy(memory->frames, scratch, sizeof(Frame) * static_cast<size_t>(scratch_size));
            w.out = memory->frames;
            reuse = false;
        }
        if (s.sp < lo || s.sp >= hi) return false;
        if (reuse && w.n > 0 && tries < kMaxReuseTries) {  // the start was tried already
            while (k >= 0 && source.frames[k].sp < s.sp) --k;
            // The walk kept must fit: the source's frames up to k, and the n walked below it.
            if (k >= 0 && k + 1 + w.n <= kCapacity && same_frame(source.frames[k], s)) {
                ++tries;
                if (still_holds(source, k)) {
                    w.matched = k;
                    w.matched_bp = s.bp;
                    w.complete = true;
                    w.stepped_last = true;  // the outermost frame walked stepped to it
                    return true;
                }
            }
        }
        Frame& f = w.out[w.n];
        f = {s.ip, s.sp, s.bp, 0, false, false, false};
        const PackedRule rule = rule_for(s.ip - 1, rules);
        if (!rule.has_rule()) return false;
        f.cfa_by_bp = rule.cfa_is_rbp();
        f.bp_saved = rule.rbp_saved();
        ++w.n;
        if (rule.outermost()) {
            w.stepped_last = false;
            w.complete = true;
            return true;
        }
        uintptr_t cfa =
            (rule.cfa_is_rbp() ? s.bp : s.sp) + static_cast<intptr_t>(rule.cfa_offset());
        // The caller's frame lies above this one, inside the stack: anything else is a stack this
        // walk cannot read (or a broken rbp chain), left to libunwind.
        if (cfa <= s.sp || cfa - 8 < lo || cfa > hi) return false;
        uintptr_t ra = load_stack_word(cfa - 8);
        uintptr_t bp = s.bp;
        if (rule.rbp_saved()) {
            uintptr_t at = cfa + static_cast<intptr_t>(rule.rbp_offset());
            if (at < lo || at > hi - 8) return false;
            bp = load_stack_word(at);
            f.saved_bp_at = at;
        }
        w.stepped_last = true;
        if (ra < kLowestReturnAddress) {
            w.complete = true;
            w.end_word_at = cfa - 8;
            w.end_word = ra;
            return true;
        }
        if (w.n == kCapacity) return true;  // cut short: the frames above are unknown
        s = {ra, cfa, bp};
    }
}

// The memory update: writes the walk into `memory`, root first: the source's frames up to the
// one matched (with the stack and tags they carry), then the frames walked, outermost first;
// which frames' rbp the rest depends on; the words each step read; and the stack.
void keep_walk(const Steps& w, const WalkMemory& source, PcRange skip, WalkMemory* memory,
               WalkStats* stats) {
    // Below, `old_depth` is how many of memory->pcs may be those of this stack already, with
    // their tags.
    const int n = w.n;
    const int matched = w.matched;
    int base = 0;  // frames kept from the source
    int old_depth = memory->depth;
    bool matched_pc = false;  // the frame matched has its return address in the stack already
    if (matched >= 0) {
        matched_pc = matched < source.count - 1;  // it was not the source's start
        int pcs = source.pcs_before[matched] +
                  (matched_pc && !skip.contains(source.frames[matched].ip - 1) ? 1 : 0);
        int tagged = source.tagged < pcs ? source.tagged : pcs;
        memcpy(memory->frames, source.frames, sizeof(Frame) * static_cast<size_t>(matched + 1));
        memcpy(memory->pcs_before, source.pcs_before,
               sizeof(uint16_t) * static_cast<size_t>(matched + 1));
        memcpy(memory->pcs, source.pcs, sizeof(uintptr_t) * static_cast<size_t>(pcs));
        memcpy(memory->tags, source.tags, sizeof(uint32_t) * static_cast<size_t>(tagged));
        memcpy(memory->words, source.words,
               sizeof(WalkMemory::Word) * static_cast<size_t>(source.words_to[matched]));
        memcpy(memory->words_to, source.words_to,
               sizeof(uint16_t) * static_cast<size_t>(matched + 1));
        memory->tagged = tagged;
        old_depth = pcs;
        memory->frames[matched].bp = w.matched_bp;  // equal wherever it matters (bp_matters)
        base = matched + 1;
        for (int i = 0; i < n; ++i) memory->frames[base + i] = w.out[n - 1 - i];
        if (stats != nullptr) stats->frames_reused += static_cast<uint64_t>(matched);
    } else if (w.out != memory->frames) {
        for (int i = 0; i < n; ++i) memory->frames[i] = w.out[n - 1 - i];
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
        if (i == base && !w.stepped_last) {
            f.bp_matters = false;
        } else {
            if (!matters_above) f.saved_bp_at = 0;
            f.bp_matters = f.cfa_by_bp || (!f.bp_saved && matters_above);
        }
        matters_above = f.bp_matters;
    }

    // The words the walked frames' steps read, with the values they read, for a later reuse.
    int words = base > 0 ? memory->words_to[base - 1] : 0;
    for (int i = base; i < count; ++i) {
        if (i == 0) {
            if (w.end_word_at != 0) memory->words[words++] = {w.end_word_at, w.end_word};
        } else {
            const Frame& caller = memory->frames[i - 1];
            memory->words[words++] = {caller.sp - 8, caller.ip};
            if (memory->frames[i].saved_bp_at != 0)
                memory->words[words++] = {memory->frames[i].saved_bp_at, caller.bp};
        }
        memory->words_to[i] = static_cast<uint16_t>(words);
    }

    // The stack: the return address of every frame but the start. Those of the frames kept are in
    // place (the frame matched's own among them unless it was the source's start); a return
    // address written where memory->pcs had the same one keeps its tag.
    int depth = 0;
    int first = 0;  // the first frame whose return address is (re)written
    if (matched >= 0) {
        depth = old_depth;
        first = matched_pc ? matched + 1 : matched;
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
    memory->count = count;
    memory->depth = depth;
}

}  // namespace

WalkMemory* fast_walk(const Registers& start, uintptr_t lo, uintptr_t hi, PcRange skip,
                      RecentWalks* recent, LocalRules* rules, WalkStats* stats) {
    const uint64_t generation = frame_rules_generation();
    if (rules->generation != generation) {
        *rules = LocalRules{};
        rules->generation = generation;
    }
    if (stats != nullptr) ++stats->walks;

    if (int i = find_repeat(recent, start, generation); i >= 0) {
        if (stats != nullptr) {
            ++stats->repeated;
            const WalkMemory& m = recent->walks[recent->order[i]];
            stats->frames_reused += static_cast<uint64_t>(m.count - 1);
        }
        return make_recent(recent, i);
    }

    // Otherwise walked, into the least recent walk's place, reusing the most recent one's outer
    // frames where it reaches one of them (most walks do within a few frames).
    const WalkMemory& source = recent->walks[recent->order[0]];
    WalkMemory* memory = &recent->walks[recent->order[kWalks - 1]];  // unused ones first
    RecentWalks::Start& top = recent->starts[recent->order[kWalks - 1]];
    const bool reuse = recent->used > 0 && recent->starts[recent->order[0]].reusable &&
                       recent->starts[recent->order[0]].generation == generation;
    // The frames walked, leaf first, are kept here while a reuse is still possible.
    constexpr int kScratch = 16;
    Frame scratch[kScratch];
    Steps steps;
    if (!walk_frames(start, lo, hi, source, reuse, scratch, kScratch, memory, rules, &steps)) {
        // Nothing of a walk that failed: the next one walks from scratch.
        memory->count = memory->depth = memory->tagged = 0;
        top.reusable = false;
        if (stats != nullptr) ++stats->failed;
        return nullptr;
    }
    keep_walk(steps, source, skip, memory, stats);

    const Frame& start_frame = memory->frames[memory->count - 1];
    top = {start_frame.sp, start_frame.ip, start_frame.bp,
           generation,     steps.complete, start_frame.bp_matters};
    if (recent->used < kWalks) ++recent->used;
    return make_recent(recent, kWalks - 1);
}

}  // namespace gprof::unwind
