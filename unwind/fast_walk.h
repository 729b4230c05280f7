// gprof's own walk of the calling thread's stack, for sampled allocations: the x86-64 rules of
// unwind/frame_rules.h applied frame by frame, and the outer frames of the thread's previous walk
// reused when they are provably unchanged.
//
// Why: at GPROF_MEM_PROFILE_RATE=1 a program like python3 allocates about a million times a second
// from stacks 15-25 frames deep, most of whose frames are the previous sample's; libunwind walks
// every frame every time, a chain of dependent loads that costs more than the rest of a sample.
//
// Why reuse is exact. The step from a frame to its caller is a function of the frame's instruction
// pointer, its stack pointer, its rbp (only where a rule reads rbp, directly or by passing it up
// unchanged to a frame whose rule reads it), and the words of stack memory the step reads (the
// return address, and the saved rbp where it matters). So when this walk reaches a frame whose
// instruction pointer, stack pointer and (where it matters) rbp are those of a frame of the
// previous walk, and every word the previous walk read from there outward still holds the value it
// read, this walk would read the same words and reach the same frames: they are copied instead of
// walked. Checking a word is a load and a compare, and the loads do not depend on each other, where
// walking a frame is a hash look-up and loads that each wait for the last. A thread's previous walk
// is kept in its WalkMemory; a walk that fails, or whose rules may have changed (a library was
// unloaded), leaves nothing to reuse.
//
// Memory: the walk reads only inside the thread's stack [lo, hi); a frame outside it (a signal's
// alternate stack, a coroutine's stack) ends the walk as failed, and the caller walks with
// libunwind, which handles them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "unwind/frame_rules.h"

namespace gprof::unwind {

struct Registers {
    uintptr_t ip;  // a return address: rules are looked up at ip - 1
    uintptr_t sp;
    uintptr_t bp;
};

// The registers of the caller of this function, as they are right after it returns: ip is its
// return address, sp the caller's stack pointer after the return. No system call.
extern "C" __attribute__((visibility("hidden"))) void gprof_caller_registers(Registers* out);

// A thread's last walk, as its next walk may reuse it, root first: the state of every frame and
// the words of stack memory each step read, with the values it read; and the stack itself, as
// return addresses minus one (the callers of the start frame, root first, without those in the
// range the walk was told to leave out), with a value of the caller's for each (a sample's path
// keeps the stack table's node there: record/heap_events.cpp). Root first, because what a walk
// keeps of the last one is its outer frames: they stay where they are, and the new inner frames are
// written after them.
struct WalkMemory {
    static constexpr int kCapacity = 144;
    struct Frame {
        uintptr_t ip, sp, bp;
        uintptr_t saved_bp_at;  // where the step from this frame read the caller's rbp, if that
                                // value matters to a later step; else 0
        bool bp_matters;        // the walk from this frame on depends on this frame's rbp
        bool cfa_by_bp;         // this frame's rule: CFA from rbp
        bool bp_saved;          // this frame's rule: rbp saved
    };
    // A word a step read: the return address, the saved rbp where it matters, and the return
    // address below 0x4000 that ended the walk (libunwind's trace ends there too).
    struct Word {
        uintptr_t at, value;
    };
    Frame frames[kCapacity];         // frames[0] is the outermost, frames[count - 1] the start
    Word words[2 * kCapacity];       // root first: those of the step from frames[0] (to the end
                                     // of the stack), then from frames[1] to frames[0], ...
    uint16_t words_to[kCapacity];    // words_to[i]: how many are those of the steps from
                                     // frames[0, i]: what a reuse from frames[i] checks
    uintptr_t pcs[kCapacity];        // the stack, root first: `depth` of them
    uint16_t pcs_before[kCapacity];  // pcs_before[i]: how many of pcs come from frames[0, i)
    uint32_t tags[kCapacity];        // the caller's, one per pc; fast_walk never writes them
    int count = 0;
    int depth = 0;
    int tagged = 0;  // tags[0, tagged) are the caller's for pcs[0, tagged) as they are
};

// A thread's last few walks, kept root first (WalkMemory), most recent first by `order`. A program
// allocating in a loop often alternates between a few call paths (python3 at rate 1: three in four
// samples are one of the last four stacks exactly): a walk whose start frame is one of these
// walks' start, with every word that walk read above it unchanged, is that walk again, and walks
// nothing. Otherwise the walk reuses the outer frames of
// the most recent one and is written over the least recent.
struct RecentWalks {
    static constexpr int kWalks = 4;
    // The start frame of each walk, side by side for the search for a walk that repeats, and
    // whether the walk may be reused at all.
    struct Start {
        uintptr_t sp = 0, ip = 0, bp = 0;
        uint64_t generation = 0;  // frame_rules_generation() when it was walked
        bool reusable = false;    // ended where the stack ends, with every word it read known
        bool bp_matters = false;
    };
    Start starts[kWalks];
    uint8_t order[kWalks] = {0, 1, 2, 3};  // walks[order[0]] is the most recent
    int used = 0;  // walks[order[0, used)] were written (a thread's first walks touch no other)
    WalkMemory walks[kWalks];
};

// Return addresses a walk leaves out of the stack: [lo, hi) (gprof's own image, for gprof).
struct PcRange {
    uintptr_t lo = 0, hi = 0;
    bool contains(uintptr_t pc) const { return pc >= lo && pc < hi; }
};

// A thread's own small cache of frame rules in front of the process's (cached_frame_rule): a
// walk looks up a rule per frame it walks, and the same few (gprof's own frames above every sample,
// the program's allocating functions) nearly every time. Direct-mapped; emptied when the process's
// rules are (frame_rules_generation()).
struct LocalRules {
    static constexpr int kSlots = 256;
    struct Slot {
        uintptr_t address = 0;
        PackedRule rule;
    };
    Slot slots[kSlots];
    uint64_t generation = 0;
};

struct WalkStats {
    uint64_t walks = 0, failed = 0, frames_walked = 0, frames_reused = 0;
    uint64_t repeated = 0;  // walks that were a recent walk exactly
};

// Walks from `start` (a frame of the calling thread) outward and returns the walk, the most recent
// of `recent` now: its stack is pcs, root first, `depth` of them (each caller's return address
// minus one; the frame of `start` itself is not written, as unw_backtrace leaves out its own, nor
// any address in `skip`). Null when a frame has no usable rule or leaves [lo, hi): the caller then
// walks with libunwind. The thread's recent walks are reused where they provably still hold (a
// walk that fails leaves the one it was written over empty); `rules` is the thread's LocalRules.
// The walk returned has tagged <= depth, and its tags[0, tagged) are those its caller stored for
// the same root-side pcs. A stack deeper than WalkMemory::kCapacity frames is cut: its leaf-most
// frames are kept, and the next walk walks it again.
WalkMemory* fast_walk(const Registers& start, uintptr_t lo, uintptr_t hi, PcRange skip,
                      RecentWalks* recent, LocalRules* rules, WalkStats* stats = nullptr);

}  // namespace gprof::unwind
