// Capturing the calling thread's stack: libunwind's unw_backtrace (DWARF CFI, so it works on
// Debian's binaries built without frame pointers), with gprof's own frames removed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gprof::unwind {

// Go keeps 128 frames since Go 1.23; deeper stacks are cut at the root end.
constexpr int kMaxFrames = 128;

// Initialises libunwind and warms its caches with one walk. Called from gprof's constructor;
// until it has run, capture() returns 0 frames (a sample taken during the process's very first
// allocations, maybe under glibc's exit lock, must not start libunwind).
void warm_up();
bool ready();

// Fills `pcs` with return addresses, leaf first, starting at the first frame outside libgprof.so
// (the program's call site, or the library function that called the allocator). Returns the
// number of frames. No system call, no lock of gprof's; libunwind may allocate (the caller holds
// the re-entry guard).
int capture(uintptr_t* pcs, int max);

// Whether `pc` lies inside libgprof.so.
bool in_gprof(uintptr_t pc);

}  // namespace gprof::unwind
