/* gprof's C API, like Go's runtime/pprof: optional, for programs that want to talk to the
   profiler they run under. Every function is a weak reference, so a program that includes this
   header links and runs without gprof: test a function's address before calling it.

     #include "gprof.h"
     struct gprof_memstats m;
     if (gprof_read_memstats && gprof_read_memstats(&m, sizeof m) == 0) ...

   Functions returning int return 0 (or a count, a sequence number) on success and -1 with errno
   on failure; bad input never harms the program and gives at most one `gprof:` line on stderr per
   kind of misuse. The README's "C API" section describes each function. */
#ifndef GPROF_H
#define GPROF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GPROF_WEAK __attribute__((weak))

/* pprof.Lookup(name).WriteTo(fd, debug). name: "heap", "allocs", "goroutine" or "threads",
   "threadcreate", "block", "mutex", or a custom profile's. debug 0: gzipped protobuf; 1: Go's
   legacy text form; 2: for goroutine/threads every thread's stack as text (else as 1).
   -1 with EINVAL for an unknown name or debug level, with the write's errno otherwise. */
int gprof_write_profile(const char* name, int fd, int debug) GPROF_WEAK;

/* What the dump signal does, in the calling thread: returns the dump's sequence number (the
   <seq> of its files), or -1. */
int gprof_dump(void) GPROF_WEAK;

/* Go's StartCPUProfile/StopCPUProfile: start returns -1 with EBUSY while one runs; stop writes
   the profile to the descriptor given at start and returns 0. */
int gprof_start_cpu_profile(int fd) GPROF_WEAK;
int gprof_stop_cpu_profile(void) GPROF_WEAK;

/* Go's runtime.MemProfileRate, SetBlockProfileRate, SetMutexProfileFraction: each sets the value
   and returns the previous one; a negative argument only reads it. */
int64_t gprof_set_mem_profile_rate(int64_t rate) GPROF_WEAK;
int64_t gprof_set_block_profile_rate(int64_t ns) GPROF_WEAK;
int64_t gprof_set_mutex_profile_fraction(int64_t n) GPROF_WEAK;

/* Go's pprof.Do for the calling thread: labels nest, the innermost value of a key wins, and key
   and value (1-1024 bytes each) are copied. Every call of gprof_label_push is matched by one
   gprof_label_pop, whatever it returned: a failed push (-1 with EINVAL for a NULL, empty or
   over-long text; E2BIG past 64 nested pushes; ENOMEM when gprof's table of label sets is full)
   leaves the labels as they were until its pop. The thread's labels go on its heap allocation
   samples, its threads-profile sample and its CPU samples. */
int gprof_label_push(const char* key, const char* value) GPROF_WEAK;
void gprof_label_pop(void) GPROF_WEAK;

/* Go's pprof.NewProfile: a count profile of opaque keys, each recorded with the stack of the
   call that added it; written with every dump (<prefix>.<pid>.<seq>.<name>.pb.gz) and by
   gprof_write_profile. name: 1-64 bytes of [A-Za-z0-9._-], not starting with '.', not a built-in
   profile's. new returns NULL with errno EEXIST (name in use) or EINVAL; add returns -1 with
   EEXIST when the key is in the profile already, remove -1 with ENOENT when it is not. */
struct gprof_profile;
struct gprof_profile* gprof_profile_new(const char* name) GPROF_WEAK;
int gprof_profile_add(struct gprof_profile* profile, uintptr_t key) GPROF_WEAK;
int gprof_profile_remove(struct gprof_profile* profile, uintptr_t key) GPROF_WEAK;
/* How many keys the profile holds now (Go's Profile.Count), or -1. */
int64_t gprof_profile_count(struct gprof_profile* profile) GPROF_WEAK;

/* Go's runtime.MemStats, for the fields that mean something outside Go. The first ten fields are
   those of gprof 0.1 (a program built against them keeps working); size = sizeof *stats tells
   gprof how much the caller's struct has, and fields past it are left alone.

   mallocs, frees, total_alloc, heap_objects and by_size come from gprof's heap records,
   un-sampled (what go tool pprof shows as alloc_objects, alloc_space, inuse_objects): exact at
   GPROF_MEM_PROFILE_RATE=1, estimates otherwise. Byte figures come from the backing allocator:
   jemalloc's stats.* (exact at any rate) or glibc's mallinfo2. Go's garbage collector fields
   (gc_sys, next_gc, last_gc, pause_total_ns, num_gc, num_forced_gc, gc_cpu_fraction) have no
   meaning for a native heap and are 0; lookups is 0 as in Go. */
#define GPROF_MEMSTATS_BY_SIZE 68
struct gprof_memstats {
    uint64_t alloc;         /* bytes of live heap objects, as the backing allocator counts them */
    uint64_t total_alloc;   /* cumulative bytes requested by allocations */
    uint64_t sys;           /* bytes obtained from the OS: heap_sys + stack_sys + mspan_sys +
                               buck_hash_sys + other_sys */
    uint64_t mallocs;       /* cumulative count of allocations (a realloc counts as a free
                               plus an allocation) */
    uint64_t frees;         /* cumulative count of frees */
    uint64_t heap_objects;  /* mallocs - frees */
    uint64_t heap_inuse;    /* bytes in pages that hold at least one live object */
    uint64_t heap_idle;     /* bytes in heap pages that hold none */
    uint64_t heap_released; /* bytes of idle pages returned to the OS */
    uint64_t buck_hash_sys; /* bytes of gprof's own profiling tables (stacks, buckets, live
                               samples, labels, custom profiles), like Go's BuckHashSys */
    /* Since gprof 0.2: */
    uint64_t lookups;       /* 0, as in Go */
    uint64_t heap_alloc;    /* = alloc */
    uint64_t heap_sys;      /* heap bytes mapped from the OS (heap_inuse + heap_idle) */
    uint64_t stack_inuse;   /* bytes of the threads' stacks that are resident */
    uint64_t stack_sys;     /* bytes mapped for the threads' stacks */
    uint64_t mspan_inuse;   /* the allocator's metadata (jemalloc: stats.metadata; glibc: 0) */
    uint64_t mspan_sys;
    uint64_t mcache_inuse;  /* bytes cached in threads' caches (jemalloc: tcache_bytes) */
    uint64_t mcache_sys;
    uint64_t gc_sys;        /* 0: no garbage collector */
    uint64_t other_sys;     /* 0 */
    uint64_t next_gc, last_gc, pause_total_ns;  /* 0 */
    uint32_t num_gc, num_forced_gc;             /* 0 */
    double gc_cpu_fraction;                     /* 0 */
    uint64_t heap_resident; /* resident heap bytes (jemalloc: stats.resident; glibc: heap_sys) */
    uint64_t heap_retained; /* unmapped but kept address space (jemalloc: stats.retained) */
    uint32_t by_size_count; /* entries of by_size in use */
    uint32_t reserved;
    struct {
        uint32_t size;      /* the largest object size of the class */
        uint64_t mallocs;   /* cumulative allocations of the class */
        uint64_t frees;
    } by_size[GPROF_MEMSTATS_BY_SIZE];
};

/* Go's runtime.ReadMemStats: fills the first `size` bytes of *stats (size >= the ten fields of
   gprof 0.1). Returns 0, or -1 with EINVAL when stats is NULL or size too small. */
int gprof_read_memstats(struct gprof_memstats* stats, size_t size) GPROF_WEAK;

#undef GPROF_WEAK

#ifdef __cplusplus
}
#endif

#endif
