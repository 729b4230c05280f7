// A sample's stack: the calling thread's return addresses, leaf first, starting at the first frame
// outside libgprof.so (the program's call site, or the library function that called the
// allocator). gprof's own walk first (unwind/fast_walk.h: no system call, no lock but the rule
// table's when it learns a new rule), reusing the thread's recent walks; libunwind's
// (unwind/libunwind.h) for the stacks it cannot read.
#pragma once

#include <cstddef>
#include <cstdint>

#include "unwind/fast_walk.h"

// libgprof.so's own image, from the ELF header to the end of .bss (hidden symbols: this
// library's, not the executable's).
extern "C" char __ehdr_start[] __attribute__((visibility("hidden")));
extern "C" char _end[] __attribute__((visibility("hidden")));

namespace gprof::unwind {

// Go keeps 128 frames since Go 1.23; deeper stacks are cut at the root end.
constexpr int kMaxFrames = 128;
// What a capture writes into before it leaves out gprof's own frames: callers give it this many
// entries, and get at most kMaxFrames back. One buffer rather than two: a sample may run on an
// 8 KiB alternate signal stack.
constexpr int kCaptureRoom = kMaxFrames + 8;

// From gprof's constructor: the main thread's stack bounds and the threads' walk memories
// (libunwind is opened when first needed: unwind/libunwind.h). Until it has run, captures return
// 0 frames (a sample taken during the process's very first allocations, maybe under glibc's exit
// lock, must not start anything).
void warm_up();
// Whether captures work (warm_up() has run).
bool ready();

// Fills `pcs` (kCaptureRoom entries) with return addresses, leaf first; returns how many (at most
// `max`). A thread's first walk takes its memory of walks, so the caller holds the re-entry guard.
int capture(uintptr_t* pcs, int max);
// capture() from a frame of the calling thread that is still live (gprof_caller_registers() in it):
// its callers, without walking the frames between (gprof's own, on a sample's path).
int capture_from(const Registers& start, uintptr_t* pcs, int max);

// capture_from() for a sampled allocation, root first and without a copy: the stack as the
// thread's memory of walks holds it, valid until the thread's next capture, at most kMaxFrames
// deep (the leaf-most). Where gprof's walk kept the stack, `tags` holds a value of the caller's
// for each frame, kept from one capture to the next: tags[0, *tagged) are what the caller stored
// there for the same root-side frames, and the caller may store the rest and raise *tagged to
// match (the heap profile keeps each frame's stack-table node there). Elsewhere (libunwind walked
// it into `scratch`, kCaptureRoom entries; the stack was cut) tags and tagged are null.
struct RootFirstStack {
    const uintptr_t* pcs;
    int depth;
    uint32_t* tags;
    int* tagged;
    bool truncated;  // the stack was deeper than kMaxFrames: these are its innermost frames
};
RootFirstStack capture_root_first(const Registers& start, uintptr_t* scratch);

// fork(): the locks of gprof's walk (its frame rules, its pool of threads' walk memories), taken
// before and released after it in both processes.
void prepare_fork();
void after_fork();

// Whether `pc` lies inside libgprof.so. Inline: every capture asks for every frame.
inline bool in_gprof(uintptr_t pc) {
    return pc >= reinterpret_cast<uintptr_t>(__ehdr_start) &&
           pc < reinterpret_cast<uintptr_t>(_end);
}

}  // namespace gprof::unwind
