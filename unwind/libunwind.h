// libunwind's walks: for the stacks gprof's own walk (unwind/fast_walk.h) cannot read (signal
// frames, alternate signal stacks, coroutines, code without call frame information), and for other
// threads' stacks in the threads profile (unwind/thread_stacks.h).
//
// libunwind.so.8 is opened with RTLD_LOCAL, never linked: it also defines the C++ exception ABI
// (_Unwind_RaiseException...), and as a dependency of a preloaded library it would take over a
// program's exceptions. It is opened when first needed, not at start-up: with it comes liblzma,
// two libraries to map and relocate (about a quarter of gprof's start-up), and most processes
// never need it (a short one takes no sample; gprof's own walk reads nearly every stack). Never
// from the allocation path, which may run inside the dynamic loader: a sample that needs it asks
// the dumper thread to open it and waits (ensure_libunwind, set_libunwind_loader); dumps open it
// themselves (the threads profile walks with it). Its memory reads are gprof's (no descriptor: the
// calling thread's stack read directly, other pages checked with process_vm_readv), and the
// validation pipe its initialisation opens is closed again at once.
#pragma once

#include <cstdint>

#include <ucontext.h>

namespace gprof::unwind {

// Opens libunwind and walks once, so that its one-time initialisation and its caches for the
// start-up path happen here rather than inside the first sampled malloc. False (with a gprof:
// line) where libunwind cannot be used: stacks are then not walked by it.
bool load_libunwind();
bool libunwind_ready();

// load_libunwind() once in the process, from whichever thread asks first; a thread that asks
// while another loads waits up to wait_ms for it. Not from the allocation path.
bool ensure_libunwind(int wait_ms = 5000);
// Who opens libunwind for a sample: `ask` makes another thread call ensure_libunwind() soon and
// returns true, or returns false if it cannot. Without one, samples do without libunwind.
void set_libunwind_loader(bool (*ask)());
// For a sample whose stack gprof's own walk could not read: whether libunwind can walk it,
// asking for it to be opened and waiting up to kSampleLoadWaitMs for it, while the process's
// kSampleLoadBudgetMs of such waits last. A sample that finds no libunwind keeps no stack.
bool libunwind_for_sample();
constexpr int kSampleLoadWaitMs = 500;
constexpr int kSampleLoadBudgetMs = 2000;
// In a fork's child: a load under way in another thread of the parent will never end here, so
// libunwind is not used in this process (nothing waits for it).
void libunwind_child_after_fork();

// A thread's first kStepwiseWalks libunwind walks step by step (capture_once); later ones use
// unw_backtrace, whose first call in a thread maps and fills a 256 KiB frame cache, which pays
// for itself only in a thread that keeps sampling.
constexpr uint32_t kStepwiseWalks = 16;

// The calling thread's stack, leaf first, without gprof's frames, at most `max` frames (pcs holds
// kCaptureRoom entries). Each step of a walk takes libunwind's global cache lock between two
// sigprocmask calls.
int libunwind_capture(uintptr_t* pcs, int max);

// capture() for a one-off walk (the calling thread's stack in a dump): the same frames, walked
// step by step, without unw_backtrace's frame cache.
int capture_once(uintptr_t* pcs, int max);

// Walks the stack that a register context describes: a signal handler's context (`interrupted`:
// its instruction pointer is the interrupted instruction, stored + 1 so that every frame reads as a
// return address) or registers known for a thread parked in a system call (its instruction pointer
// follows the syscall instruction: already a return address). Frames inside libgprof.so are left
// out. Memory is read with checks, so a stack that changes under the walk gives a short or wrong
// stack, never a fault. An interrupted context's walk allocates nothing (the thread may have been
// stopped inside the allocator, holding its lock). If `end` is given, it tells where the walk
// stopped: the last frame's stack pointer, and whether it reached the outermost frame.
struct WalkEnd {
    uintptr_t sp = 0;
    bool complete = false;
};
int capture_context(ucontext_t* context, bool interrupted, uintptr_t* pcs, int max,
                    WalkEnd* end = nullptr);

// Whether the calling thread runs a signal handler that interrupted libgprof.so's code (its
// allocator, its recorder), directly or through glibc's (a lock's wait, a memcpy): that code may
// hold a lock which anything gprof does next on this thread would wait for, for ever. Where
// libunwind is not loaded, the signal frame is found on the stack by glibc's restorer instead.
// False when neither can tell. Allocates nothing.
bool handler_interrupted_gprof();
// A cheap look before that one: false when the calling thread runs on its own stack with no signal
// frame of glibc's restorer above this one (one scan of the stack in use), true otherwise.
bool maybe_in_signal_handler();

}  // namespace gprof::unwind
