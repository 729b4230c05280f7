// gprof_read_memstats: Go's MemStats without counting anything on the allocation fast path.
//
// Counts (mallocs, frees, total_alloc, heap_objects, by_size) are the heap profile's un-sampled
// estimates, the same numbers `go tool pprof` shows as alloc_objects, alloc_space and
// inuse_objects; they are exact at GPROF_MEM_PROFILE_RATE=1. (Exact counting would slow every
// allocation; jemalloc's own request counters lag behind its thread caches, and glibc keeps none.)
// Byte figures come from the backing allocator: jemalloc's statistics, or glibc's mallinfo2.
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "api/gprof.h"
#include "api/misuse.h"
#include "base/reentry_guard.h"
#include "preload/backing.h"
#include "record/custom_profiles.h"
#include "record/heap_profile.h"
#include "record/heap_sampler.h"
#include "record/labels.h"
#include "record/stack_table.h"
#include "writer/named_profile.h"

namespace {

// The leading fields of gprof 0.1's struct: the least a caller may pass.
constexpr size_t kMinSize = offsetof(gprof_memstats, lookups);

template <typename T>
T je_read(const char* name) {
    T value{};
    size_t len = sizeof value;
    if (gprof_je_mallctl(name, &value, &len, nullptr, 0) != 0) return T{};
    return value;
}

void fill_from_jemalloc(gprof_memstats& m) {
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    gprof_je_mallctl("epoch", &epoch, &len, &epoch, len);  // refresh the cached statistics
    m.alloc = je_read<size_t>("stats.allocated");
    m.heap_inuse = je_read<size_t>("stats.active");
    const uint64_t mapped = je_read<size_t>("stats.mapped");
    m.heap_resident = je_read<size_t>("stats.resident");
    m.heap_retained = je_read<size_t>("stats.retained");
    m.mspan_inuse = m.mspan_sys = je_read<size_t>("stats.metadata");
    m.mcache_inuse = m.mcache_sys = je_read<size_t>("stats.arenas.4096.tcache_bytes");
    // mapped counts the metadata's pages too; Go's HeapSys does not hold its MSpanSys.
    m.heap_sys = mapped > m.mspan_sys ? mapped - m.mspan_sys : mapped;
    if (m.heap_sys < m.heap_inuse) m.heap_sys = m.heap_inuse;
    m.heap_idle = m.heap_sys - m.heap_inuse;
    m.heap_released = mapped > m.heap_resident ? mapped - m.heap_resident : 0;
    if (m.heap_released > m.heap_idle) m.heap_released = m.heap_idle;
}

void fill_from_glibc(gprof_memstats& m) {
    struct mallinfo2 mi = mallinfo2();  // glibc's own heap is the backing one in libc mode
    m.alloc = mi.uordblks + mi.hblkhd;
    m.heap_sys = mi.arena + mi.hblkhd;
    m.heap_inuse = m.alloc;
    m.heap_idle = mi.fordblks;
    m.heap_resident = m.heap_sys;
    m.heap_released = 0;  // glibc does not say how much of its free memory it gave back
}

// jemalloc's size classes (4 KiB pages, 16-byte quantum) up to Go's BySize limit of 32 KiB:
// 8, then multiples of 16 up to 128, then four classes per doubling. Used in both modes, so the
// table has one shape.
uint32_t size_class(uint64_t size) {
    if (size <= 8) return 8;
    if (size <= 128) return static_cast<uint32_t>((size + 15) & ~uint64_t{15});
    int lg = 63 - __builtin_clzll(size - 1);
    uint64_t step = (uint64_t{1} << lg) / 4;
    return static_cast<uint32_t>((size + step - 1) / step * step);
}

int by_size_index(uint32_t cls) {
    if (cls == 8) return 0;
    if (cls <= 128) return static_cast<int>(cls / 16);  // 16 -> 1 ... 128 -> 8
    int lg = 63 - __builtin_clzll(cls - 1);             // cls in (2^lg, 2^(lg+1)]
    uint64_t step = (uint64_t{1} << lg) / 4;
    return 8 + (lg - 7) * 4 + static_cast<int>((cls - (uint64_t{1} << lg)) / step);
}

constexpr uint64_t kBySizeLimit = 32768;

void start_by_size(gprof_memstats& m) {
    uint32_t n = 0;
    for (uint64_t size = 1; size <= kBySizeLimit && n < GPROF_MEMSTATS_BY_SIZE;) {
        uint32_t cls = size_class(size);
        m.by_size[n++].size = cls;
        size = cls + 1;
    }
    m.by_size_count = n;
}

void fill_counts_from_heap_profile(gprof_memstats& m) {
    gprof::record::HeapProfile& heap = gprof::record::heap_profile();
    std::vector<gprof::record::HeapBucket> buckets(heap.bucket_count() + 1024);
    buckets.resize(std::min(heap.snapshot(buckets.data(), buckets.size()), buckets.size()));
    int64_t rate = gprof::record::mem_profile_rate();
    for (const gprof::record::HeapBucket& b : buckets) {
        const double sampled = static_cast<double>(b.sampled_size);
        auto alloc = gprof::record::scale_heap_sample(
            static_cast<int64_t>(b.allocs), static_cast<int64_t>(b.alloc_bytes), rate, sampled);
        auto freed = gprof::record::scale_heap_sample(
            static_cast<int64_t>(b.frees), static_cast<int64_t>(b.free_bytes), rate, sampled);
        m.mallocs += static_cast<uint64_t>(alloc.count);
        m.total_alloc += static_cast<uint64_t>(alloc.bytes);
        m.frees += static_cast<uint64_t>(freed.count);
        if (b.size <= kBySizeLimit) {
            int i = by_size_index(size_class(b.size));
            if (i >= 0 && static_cast<uint32_t>(i) < m.by_size_count) {
                m.by_size[i].mallocs += static_cast<uint64_t>(alloc.count);
                m.by_size[i].frees += static_cast<uint64_t>(freed.count);
            }
        }
    }
    m.heap_objects = m.mallocs >= m.frees ? m.mallocs - m.frees : 0;
}

bool is_guard(const char* perms, const char* path) {
    return strncmp(perms, "---p", 4) == 0 && path[0] == '\0';
}

// The threads' stacks: the main thread's [stack], and each anonymous read-write mapping that lies
// on an inaccessible guard of at most 64 KiB, as glibc maps a thread's stack (a malloc arena's
// reserve lies above its heap, not below). Resident bytes by mincore.
void fill_stacks(gprof_memstats& m) {
    FILE* maps = fopen("/proc/self/maps", "re");
    if (maps == nullptr) return;
    const long page = sysconf(_SC_PAGESIZE);
    char line[512];
    uintptr_t previous_end = 0;
    bool previous_guard = false;
    uint64_t previous_guard_size = 0;
    std::vector<unsigned char> residency;
    while (fgets(line, sizeof line, maps) != nullptr) {
        uintptr_t start = 0, end = 0;
        char perms[5] = {};
        int path_at = 0;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s %*s %*s %*s%n", &start, &end, perms,
                   &path_at) != 3)
            continue;
        const char* path = line + path_at;
        while (*path == ' ') ++path;
        char* newline = strchr(const_cast<char*>(path), '\n');
        if (newline != nullptr) *newline = '\0';
        const bool stack = strcmp(path, "[stack]") == 0 ||
                           (strncmp(perms, "rw-p", 4) == 0 && path[0] == '\0' && previous_guard &&
                            previous_end == start && previous_guard_size <= 64 * 1024);
        if (stack) {
            m.stack_sys += end - start;
            size_t pages = (end - start) / static_cast<size_t>(page);
            residency.assign(pages, 0);
            if (mincore(reinterpret_cast<void*>(start), end - start, residency.data()) == 0)
                for (unsigned char r : residency) m.stack_inuse += (r & 1) ? page : 0;
        }
        previous_guard = is_guard(perms, path);
        previous_guard_size = end - start;
        previous_end = end;
    }
    fclose(maps);
}

void read_memstats(gprof_memstats& m) {
    memset(&m, 0, sizeof m);
    m.buck_hash_sys = gprof::record::heap_profile().bytes_used() +
                      gprof::record::stack_table().bytes_used() + gprof::record::label_bytes_used();
    for (const gprof::record::CustomProfile* p : gprof::record::custom_profiles())
        m.buck_hash_sys += p->bytes_used();
    if (gprof::backing::jemalloc())
        fill_from_jemalloc(m);
    else
        fill_from_glibc(m);
    m.heap_alloc = m.alloc;
    start_by_size(m);
    fill_counts_from_heap_profile(m);
    fill_stacks(m);
    m.sys = m.heap_sys + m.stack_sys + m.mspan_sys + m.buck_hash_sys + m.other_sys;
}

// Go's `# runtime.MemStats` block at the end of the heap profile's text form.
void append_memstats(std::string* out) {
    gprof_memstats m;
    read_memstats(m);
    char text[1024];
    snprintf(
        text, sizeof text,
        "\n# runtime.MemStats\n# Alloc = %" PRIu64 "\n# TotalAlloc = %" PRIu64 "\n# Sys = %" PRIu64
        "\n# Lookups = %" PRIu64 "\n# Mallocs = %" PRIu64 "\n# Frees = %" PRIu64
        "\n# HeapAlloc = %" PRIu64 "\n# HeapSys = %" PRIu64 "\n# HeapIdle = %" PRIu64
        "\n# HeapInuse = %" PRIu64 "\n# HeapReleased = %" PRIu64 "\n# HeapObjects = %" PRIu64
        "\n# Stack = %" PRIu64 " / %" PRIu64 "\n# MSpan = %" PRIu64 " / %" PRIu64
        "\n# MCache = %" PRIu64 " / %" PRIu64 "\n# BuckHashSys = %" PRIu64
        "\n# GCSys = 0\n# OtherSys = %" PRIu64 "\n# NextGC = 0\n# LastGC = 0\n",
        m.alloc, m.total_alloc, m.sys, m.lookups, m.mallocs, m.frees, m.heap_alloc, m.heap_sys,
        m.heap_idle, m.heap_inuse, m.heap_released, m.heap_objects, m.stack_inuse, m.stack_sys,
        m.mspan_inuse, m.mspan_sys, m.mcache_inuse, m.mcache_sys, m.buck_hash_sys, m.other_sys);
    out->append(text);
    // Go prints its 256-entry pause rings; a native heap has no pauses.
    std::string zeros = "[";
    for (int i = 0; i < 256; ++i) zeros.append(i ? " 0" : "0");
    zeros.append("]");
    out->append("# PauseNs = " + zeros + "\n# PauseEnd = " + zeros + "\n");
    out->append("# NumGC = 0\n# NumForcedGC = 0\n# GCCPUFraction = 0\n# DebugGC = false\n");
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) == 0) {
        snprintf(text, sizeof text, "# MaxRSS = %lld\n",
                 static_cast<long long>(usage.ru_maxrss) * 1024);
        out->append(text);
    }
}

__attribute__((constructor)) void register_memstats_text() {
    gprof::writer::set_memstats_text(append_memstats);
}

}  // namespace

extern "C" int gprof_read_memstats(gprof_memstats* stats, size_t size) {
    if (stats == nullptr || size < kMinSize)
        return gprof::api::misuse(gprof::api::Misuse::MemstatsArgument, EINVAL,
                                  "gprof_read_memstats: a NULL struct, or a size below gprof "
                                  "0.1's struct");
    int saved = errno;
    gprof::base::ReentryGuard guard;  // gprof's own look-ups are not the program's allocations
    gprof_memstats m;
    try {
        read_memstats(m);
    } catch (...) {
        errno = ENOMEM;  // out of memory for the snapshot
        return -1;
    }
    memcpy(stats, &m, size < sizeof m ? size : sizeof m);
    errno = saved;
    return 0;
}
