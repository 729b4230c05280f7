// What the heap profile cannot see: memory the program did not get through malloc (an allocator
// linked into it, pymalloc's arenas, a JVM's heap, large mmap buffers, a library opened with
// RTLD_DEEPBIND in glibc mode). Compared at each dump: the process's anonymous resident memory
// against what the backing allocator and gprof's own tables hold.
#pragma once

#include <cstdint>

namespace gprof::heap_coverage {

// Before a dump: says once, in a note in every profile's comments (and a `gprof:` line where
// stderr is a terminal, or with GPROF_LOG=1: a compiler says it in every process of a build),
// when most of the process's anonymous memory is neither the allocator's nor gprof's.
void check();

// The rule, for tests: `anonymous` resident bytes of which `seen` are the allocator's or gprof's.
bool mostly_unseen(uint64_t anonymous, uint64_t seen);

}  // namespace gprof::heap_coverage
