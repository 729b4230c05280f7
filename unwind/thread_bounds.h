// The calling thread's stack bounds, which walks need: gprof's own walk reads only inside them;
// libunwind's reads outside them take a checked path.
//
// They are never looked up from the allocation path: pthread_getattr_np takes the thread's own
// lock and allocates under it, so a program's pthread_getattr_np whose allocation was sampled
// would wait for itself. warm_up() learns the main thread's; the start trampoline of
// preload/thread_shims.cpp sets those of every thread it sees created. In a thread gprof did not
// see start (a raw clone, a thread started before gprof's constructor) they stay unknown, and
// libunwind walks its stacks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gprof::unwind {

struct StackBounds {
    uintptr_t lo, hi;  // [lo, hi); hi == 0: not known yet; hi == 1: unknown

    // Whether the size bytes at addr all lie in [lo, hi), with no wrap-around: a walk asked to
    // read at 2^64 - 8 (a frame rule applied to a zero CFA) must not pass as inside the stack.
    bool holds(uintptr_t addr, size_t size) const {
        return addr >= lo && addr <= hi && size <= hi - addr;
    }
};
extern constinit thread_local StackBounds t_stack_bounds [[gnu::tls_model("initial-exec")]];

inline const StackBounds& thread_bounds() { return t_stack_bounds; }

// The calling thread's bounds from pthread_getattr_np.
void learn_thread_stack();
// The main thread's bounds, called from it: those pthread_getattr_np gives (glibc 2.36: the top is
// the end of __libc_stack_end's page, the bottom RLIMIT_STACK below the end of the mapping that
// holds it, cut at the mapping below), without its reading /proc/self/maps through stdio
// (its first malloc, and a thousand lines parsed: about 150 000 instructions in every process).
// The mapping's end comes from exec's layout instead: the program's file name (AT_EXECFN) is the
// first string exec copies, a few bytes under the very end of the stack's mapping. The cut never
// applies with a finite limit, which Linux keeps free of mappings below the stack (mmap_base),
// so an unlimited stack, or a layout not as described, takes pthread_getattr_np's answer.
void learn_main_thread_stack();
// The same from the process's layout alone; false where it is not as described above.
bool main_stack_from_layout(StackBounds* out);
// For a thread glibc created with a stack of `stack_size` bytes: its thread descriptor sits at the
// top of that stack (x86-64 glibc, its own stacks and ones given with pthread_attr_setstack
// alike), so everything between a frame and the descriptor is the stack. The lower bound is
// conservative (it only measures the room left, stack_room()). Left unknown where the thread's
// frame is not where that layout puts it.
void set_thread_stack(size_t stack_size);

// Bytes of stack left below the calling frame: on the thread's own stack, or on the alternate
// signal stack (one sigaltstack() call, made only off the thread's stack); SIZE_MAX on a stack of
// neither (a coroutine's, whose size no one tells, or a thread's whose bounds are unknown).
size_t stack_room();
// The room a sample should have left where the allocator samples itself: jemalloc's profiler
// makes a thread's sampling record at its first sample, several KiB deep, and then gprof walks.
constexpr size_t kSampleStackRoom = size_t{16} << 10;

}  // namespace gprof::unwind
