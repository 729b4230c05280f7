// The cost of symbolizing a dump: N distinct code addresses spread evenly over libc's text (whose
// DWARF comes from Debian's libc6-dbg, the separate-debug-file path), each the leaf of one sample,
// built into a profile by gprof's ProfileBuilder with a SymbolCache, as a dump does. Prints, for a
// first dump (libdw opened, nothing cached), a repeated one (same addresses, from the cache), and
// the first dump of a later process (a fresh cache: the addresses come from libc's stored table,
// symbolize/resolved_store.h, which the first dump wrote; at most 8192 of them are kept): wall
// time, and the heap and RSS gprof's symbolization adds (glibc malloc counts; RSS includes libdw's
// mapped debug files while a dump runs, released by end_dump). libc's stored table in
// GPROF_DEBUG_CACHE is deleted first, so the first dump is one, and again at the end.
//
//   bench_symbolize N...
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/config.h"
#include "symbolize/debug_cache.h"
#include "symbolize/debug_info.h"
#include "symbolize/modules.h"
#include "pprof/profile_builder.h"
#include "symbolize/symbols.h"

using namespace gprof::symbolize;
using namespace gprof::pprof;

namespace {

double now() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

double heap_mib() {
    struct mallinfo2 m = mallinfo2();
    return static_cast<double>(m.uordblks + m.hblkhd) / 1048576.0;
}

double rss_mib() {
    long pages = 0, resident = 0;
    FILE* f = fopen("/proc/self/statm", "r");
    if (f == nullptr) return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

struct Result {
    double seconds, heap, rss;
    size_t bytes, locations, with_lines;
};

Result dump(const ModuleSnapshot& modules, SymbolCache& cache, const std::vector<uintptr_t>& pcs,
            double heap0, double rss0) {
    static constexpr ValueType kTypes[] = {{"samples", "count"}};
    double start = now();
    std::string out;
    Result r{};
    {
        ProfileBuilder builder(kTypes, {"samples", "count"}, 1, &modules, &cache);
        const int64_t one[] = {1};
        for (uintptr_t pc : pcs) builder.add_sample(&pc, 1, one, 1);
        if (!builder.build(&out)) {
            fprintf(stderr, "build failed: %s\n", builder.error().c_str());
            exit(1);
        }
        r.rss = rss_mib() - rss0;  // while libdw's state is still held
    }
    cache.end_dump();
    r.seconds = now() - start;
    r.heap = heap_mib() - heap0;  // what stays: the cache
    r.bytes = out.size();
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    configure_debug_cache(gprof::config().debug_cache, gprof::config().debug_cache_explicit);
    printf("libdw.so.1: %s\n",
           debug_info_library_available() ? "loaded" : "MISSING (symbol tables only)");
    ModuleSnapshot modules;
    std::string error;
    if (!modules.capture(&error)) {
        fprintf(stderr, "%s\n", error.c_str());
        return 1;
    }
    const Module* libc = nullptr;
    for (const Module& m : modules.modules())
        if (m.path.find("/libc.so.6") != std::string::npos) libc = &m;
    if (libc == nullptr) return 1;
    printf("%-9s %-8s %9s %12s %14s %14s %10s\n", "addresses", "dump", "seconds", "us/address",
           "cache heap MiB", "dump RSS MiB", "cache MiB");
    for (int a = 1; a < argc; ++a) {
        size_t n = strtoul(argv[a], nullptr, 10);
        std::vector<uintptr_t> pcs(n);
        uintptr_t span = libc->limit - libc->start - 2;
        for (size_t i = 0; i < n; ++i) pcs[i] = libc->start + 1 + span * i / n + 1;
        std::string stored = debug_cache().path_of(libc->build_id + ".sym");
        if (!stored.empty()) unlink(stored.c_str());
        SymbolCache cache;
        double heap0 = heap_mib(), rss0 = rss_mib();
        for (const char* which : {"first", "repeated"}) {
            Result r = dump(modules, cache, pcs, heap0, rss0);
            printf("%-9zu %-8s %9.3f %12.2f %14.1f %14.1f %10.1f\n", n, which, r.seconds,
                   r.seconds * 1e6 / static_cast<double>(n), r.heap, r.rss,
                   static_cast<double>(cache.resolved_bytes()) / 1048576.0);
        }
        SymbolCache later;
        double heap1 = heap_mib(), rss1 = rss_mib();
        Result r = dump(modules, later, pcs, heap1, rss1);
        printf("%-9zu %-8s %9.3f %12.2f %14.1f %14.1f %10.1f\n", n, "stored", r.seconds,
               r.seconds * 1e6 / static_cast<double>(n), r.heap, r.rss,
               static_cast<double>(later.resolved_bytes()) / 1048576.0);
        // Real programs' libc addresses should not have to compete with these for the table's
        // 8192 places: the next process that needs libc's table writes it afresh.
        if (!stored.empty()) unlink(stored.c_str());
    }
    return 0;
}
