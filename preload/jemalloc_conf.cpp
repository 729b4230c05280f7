// Where the embedded jemalloc gets its options. embed_jemalloc.sh routes its two configuration
// look-ups here: secure_getenv("MALLOC_CONF") and readlink("/etc/malloc.conf"). The program's
// MALLOC_CONF belongs to the program (and to any jemalloc it loads itself); gprof's copy must
// not abort on `abort_conf:true`, print `<jemalloc>:` lines, or change its behaviour because of it.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "preload/backing.h"
#include "record/heap_sampler.h"

namespace {

// gprof's jemalloc runs with jemalloc's defaults. The one tuning the benchmarks called for (calloc
// zeroing; docs/design.md, "The allocator underneath") lives in backing.cpp: thp:always would also
// fix it, at 12-20 MiB more resident memory in small multithreaded programs.
constexpr const char kJemallocOptions[] = "";

// Where jemalloc samples for gprof (preload/jemalloc_sampling.cpp): its profiler on, writing
// nothing (these are its defaults, spelt out), and its own record of each thread's samples kept
// to the minimum (no cumulative counts, no record of recent allocations).
constexpr const char kJemallocSamplingOptions[] =
    "prof:true,prof_active:true,prof_accum:false,prof_final:false,prof_gdump:false,"
    "prof_leak:false,lg_prof_interval:-1,prof_recent_alloc_max:0";

}  // namespace

// jemalloc 5.3 reads this before it sizes anything, right after its options (no option sets it).
extern "C" bool gprof_je_je_opt_cache_oblivious;

extern "C" char* gprof_je_secure_getenv(const char* name) {
    if (strcmp(name, "MALLOC_CONF") == 0) {
        gprof::backing::jemalloc();  // the choice of sampler is made before jemalloc starts
        if (!gprof::record::allocator_samples()) return const_cast<char*>(kJemallocOptions);
        // A sampled object is made a 16 KiB large object. jemalloc's "cache-oblivious" layout
        // starts each large object at a random cache line of an extent a page larger, and then
        // places a sampled object at the start (page-aligned) by carving a new extent each time.
        // Without that layout every large object starts at its extent's first page, so sampled
        // objects come from and go back to the thread's cache like any 16 KiB block. Large blocks
        // are then page-aligned, as glibc's mmapped ones are, and a page smaller.
        gprof_je_je_opt_cache_oblivious = false;
        return const_cast<char*>(kJemallocSamplingOptions);
    }
    return secure_getenv(name);
}

extern "C" ssize_t gprof_je_readlink(const char* path, char* buf, size_t size) {
    if (strcmp(path, "/etc/malloc.conf") == 0) {
        errno = ENOENT;
        return -1;
    }
    return readlink(path, buf, size);
}
