/* gprof's C API, like Go's runtime/pprof: optional, for programs that want to talk to the
   profiler they run under. Every function is a weak reference, so a program that includes this
   header links and runs without gprof: test a function's address before calling it.

     #include "gprof.h"
     struct gprof_memstats m;
     if (gprof_read_memstats && gprof_read_memstats(&m, sizeof m) == 0) ...
*/
#ifndef GPROF_H
#define GPROF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* runtime.MemStats, for the fields that mean something outside Go. mallocs, frees, total_alloc
   and heap_objects are the heap profile's un-sampled estimates (what go tool pprof shows as
   alloc_objects, alloc_space and inuse_objects), exact at GPROF_MEM_PROFILE_RATE=1; the byte
   figures come from the backing allocator. */
struct gprof_memstats {
    uint64_t alloc;         /* bytes of live heap objects, as the backing allocator counts them */
    uint64_t total_alloc;   /* cumulative bytes requested by allocations */
    uint64_t sys;           /* bytes of heap memory obtained from the OS and not unmapped */
    uint64_t mallocs;       /* cumulative count of allocations (a realloc counts as a free
                               plus an allocation) */
    uint64_t frees;         /* cumulative count of frees */
    uint64_t heap_objects;  /* mallocs - frees */
    uint64_t heap_inuse;    /* bytes in pages that hold at least one live object */
    uint64_t heap_idle;     /* bytes in heap pages that hold none */
    uint64_t heap_released; /* bytes of idle pages returned to the OS */
    uint64_t buck_hash_sys; /* bytes of gprof's own profiling tables (stacks, buckets, live
                               samples), like Go's BuckHashSys */
};

/* Fills *stats (size = sizeof *stats, so the struct may grow). Returns 0, or -1 when size is too
   small. */
int gprof_read_memstats(struct gprof_memstats* stats, size_t size) __attribute__((weak));

#ifdef __cplusplus
}
#endif

#endif
