// The walk of a stack that a signal interrupted, from inside the handler: the CPU profile's
// samples. The interrupted code may hold any lock (the allocator's, the loader's, gprof's rule
// table's) and be in the middle of gprof's own walk, so this walk takes no lock, allocates nothing,
// makes no system call and keeps no memory of earlier walks. Frame rules come from
// signal_frame_rule (unwind/frame_rules.h); a frame without one ends the walk, and the sample keeps
// the frames read so far.
#pragma once

#include <ucontext.h>

#include <cstdint>

#include "unwind/fast_walk.h"

namespace gprof::unwind {

struct ContextWalk {
    int depth = 0;
    bool complete = false;        // reached the outermost frame
    bool cut = false;             // deeper than `max`: the innermost frames were kept
    bool unknown_module = false;  // stopped at code outside the published module list
};

// Walks the interrupted context's stack. pcs gets, leaf first, the interrupted instruction's
// address + 1 (so that every entry reads as a return address, as the profile builder expects),
// then each caller's return address; frames whose address lies in `skip` (gprof's own image) are
// left out. Reads memory only inside the interrupted thread's stack, as stack_bounds_at says.
ContextWalk walk_interrupted(const ucontext_t& context, PcRange skip, uintptr_t* pcs, int max);

// The readable stack around `sp` in the calling thread (which a signal interrupted at `sp`): the
// thread's own bounds when known and sp lies inside them; else, for a thread glibc created, from
// sp up to its thread descriptor, which sits at the top of its stack; else {0, 0} (unknown: a
// signal stack, a coroutine's stack).
struct StackRange {
    uintptr_t lo, hi;
};
StackRange stack_bounds_at(uintptr_t sp);

}  // namespace gprof::unwind
