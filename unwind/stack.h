// Capturing the calling thread's stack: libunwind's unw_backtrace (DWARF CFI, so it works on
// Debian's binaries built without frame pointers), with gprof's own frames removed.
#pragma once

#include <cstddef>
#include <cstdint>

#include <ucontext.h>

#include "unwind/fast_walk.h"

// libgprof.so's own image, from the ELF header to the end of .bss (hidden symbols: this
// library's, not the executable's).
extern "C" char __ehdr_start[] __attribute__((visibility("hidden")));
extern "C" char _end[] __attribute__((visibility("hidden")));

namespace gprof::unwind {

// Go keeps 128 frames since Go 1.23; deeper stacks are cut at the root end.
constexpr int kMaxFrames = 128;
// What capture() writes into before it leaves out gprof's own frames (the shim, the facade, the
// sampler...): callers give it this many entries, and get at most kMaxFrames back. One buffer
// rather than two: a sample may run on an 8 KiB alternate signal stack, with the signal's own
// frame, the allocator and libunwind's walk on it too.
constexpr int kCaptureRoom = kMaxFrames + 8;

// Initialises libunwind and warms its caches with one walk. Called from gprof's constructor;
// until it has run, capture() returns 0 frames (a sample taken during the process's very first
// allocations, maybe under glibc's exit lock, must not start libunwind).
void warm_up();
bool ready();

// The calling thread's stack bounds, which walks need (gprof's own walk reads only inside them;
// libunwind's reads outside them take a checked path). They are never looked up from the
// allocation path: pthread_getattr_np takes the thread's own lock and allocates under it, so a
// program's pthread_getattr_np whose allocation was sampled would wait for itself. warm_up() asks
// pthread_getattr_np for the main thread's; the start trampoline of preload/thread_shims.cpp sets
// every thread's it sees created (set_thread_stack). In a thread gprof did not see start (a raw
// clone, a thread started before gprof's constructor) they stay unknown: libunwind walks its
// stacks.
void learn_thread_stack();
// For a thread glibc created with a stack of `stack_size` bytes: its thread descriptor sits at the
// top of that stack (x86-64 glibc, its own stacks and ones given with pthread_attr_setstack
// alike), so everything between a frame and the descriptor is the stack. The lower bound is
// conservative (walks never read below the frame they start from: it only measures the room left,
// stack_room()). Left unknown where the thread's frame is not where that layout puts it.
void set_thread_stack(size_t stack_size);

// Bytes of stack left below the calling frame: on the thread's own stack, or on the alternate
// signal stack (one sigaltstack() call, made only off the thread's stack); SIZE_MAX on a stack of
// neither (a coroutine's, whose size no one tells, or a thread's whose bounds are unknown).
size_t stack_room();
// The room a sample should have left where the allocator samples itself: jemalloc's profiler
// makes a thread's sampling record at its first sample, several KiB deep (Debian's jemalloc with
// prof:true crashes a thread that allocates within 4 KiB of its stack's end), and then gprof walks.
constexpr size_t kSampleStackRoom = size_t{16} << 10;

// Where gprof's own walk cannot read a stack (unwind/fast_walk.h), libunwind walks it: a thread's
// first kStepwiseWalks such walks step by step (capture_once); later ones use unw_backtrace, whose
// first call in a thread maps and fills a 256 KiB frame cache: 64 page faults, about 1.2 ms here,
// which pays for itself only in a thread that keeps sampling.
constexpr uint32_t kStepwiseWalks = 16;

// Fills `pcs` (kCaptureRoom entries) with return addresses, leaf first, starting at the first
// frame outside libgprof.so (the program's call site, or the library function that called the
// allocator). Returns the number of frames. Frames of libgprof.so deeper in the stack (the start
// routine it wraps around every thread) are left out too. gprof's own walk first
// (unwind/fast_walk.h: no system call, no lock but the rule table's when it learns a new rule; a
// thread's first walk allocates its memory of walks, so the caller holds the re-entry guard);
// libunwind's for the stacks it gives up on,
// where each unw_step (the first kStepwiseWalks walks, and frames new to unw_backtrace's frame
// cache) takes libunwind's global cache lock between two sigprocmask calls.
int capture(uintptr_t* pcs, int max);
// capture() from a frame of the calling thread that is still live (gprof_caller_registers() in it):
// its callers, without walking the frames between (gprof's own, on a sample's path).
int capture_from(const Registers& start, uintptr_t* pcs, int max);

// capture_from() for a sampled allocation, root first and without a copy: the stack as the
// thread's memory of walks holds it (unwind/fast_walk.h), valid until the thread's next capture,
// at most kMaxFrames deep (the leaf-most). Where gprof's walk kept the stack, `tags` holds a value
// of the caller's for each frame, kept from one capture to the next: tags[0, *tagged) are what the
// caller stored there for the same root-side frames, and the caller may store the rest and raise
// *tagged to match (the heap profile keeps each frame's stack-table node there, so a stack that
// shares its outer frames with the thread's previous sample is named from where they part).
// Elsewhere (libunwind walked it into `scratch`, kCaptureRoom entries; the stack was cut) tags
// and tagged are null.
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

// capture() for a one-off walk (the calling thread's stack in a dump): the same frames, walked
// step by step, without unw_backtrace's frame cache (see kStepwiseWalks), which is worth its cost
// for a thread that samples, not for one walk.
int capture_once(uintptr_t* pcs, int max);

// Walks the stack that a register context describes: a signal handler's context (`interrupted`:
// its instruction pointer is the interrupted instruction, stored + 1 so that every frame reads as a
// return address) or registers known for a thread parked in a system call (its instruction pointer
// follows the syscall instruction: already a return address). Frames inside libgprof.so are left
// out, as in capture(). Memory is read with the same checks, so a stack that changes under the walk
// gives a short or wrong stack, never a fault. An interrupted context's walk allocates nothing (the
// thread may have been stopped inside the allocator, holding its lock).
// If `end` is given, it tells where the walk stopped: the last frame's stack pointer, and whether
// the walk reached the outermost frame (libunwind's step returned 0) rather than failing.
struct WalkEnd {
    uintptr_t sp = 0;
    bool complete = false;
};
int capture_context(ucontext_t* context, bool interrupted, uintptr_t* pcs, int max,
                    WalkEnd* end = nullptr);

// Whether `pc` lies inside libgprof.so. Inline: capture() asks for every frame.
inline bool in_gprof(uintptr_t pc) {
    return pc >= reinterpret_cast<uintptr_t>(__ehdr_start) &&
           pc < reinterpret_cast<uintptr_t>(_end);
}

}  // namespace gprof::unwind
