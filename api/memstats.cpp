// gprof_read_memstats: Go's MemStats without counting anything on the allocation fast path.
//
// Counts (mallocs, frees, total_alloc, heap_objects) are the heap profile's un-sampled estimates,
// the same numbers `go tool pprof` shows as alloc_objects, alloc_space and inuse_objects; they are
// exact at GPROF_MEM_PROFILE_RATE=1. (Exact counting would slow every allocation: docs/design.md,
// "The C API"; jemalloc's own request counters lag behind its thread caches, and glibc keeps none.)
// Byte figures come from the backing allocator: jemalloc's statistics, or glibc's mallinfo2.
#include <malloc.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "api/gprof.h"
#include "base/reentry_guard.h"
#include "preload/backing.h"
#include "record/heap_profile.h"
#include "record/heap_sampler.h"
#include "record/stack_table.h"

namespace {

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
    uint64_t mapped = je_read<size_t>("stats.mapped");
    uint64_t resident = je_read<size_t>("stats.resident");
    m.sys = mapped;
    m.heap_idle = mapped > m.heap_inuse ? mapped - m.heap_inuse : 0;
    m.heap_released = mapped > resident ? mapped - resident : 0;

}

void fill_from_glibc(gprof_memstats& m) {
    struct mallinfo2 mi = mallinfo2();  // glibc's own heap is the backing one in libc mode
    m.alloc = mi.uordblks + mi.hblkhd;
    m.sys = mi.arena + mi.hblkhd;
    m.heap_inuse = m.alloc;
    m.heap_idle = mi.fordblks;
    m.heap_released = 0;  // glibc does not say how much of its free memory it gave back
}

void fill_counts_from_heap_profile(gprof_memstats& m) {
    gprof::record::HeapProfile& heap = gprof::record::heap_profile();
    std::vector<gprof::record::HeapBucket> buckets(heap.bucket_count() + 1024);
    buckets.resize(std::min(heap.snapshot(buckets.data(), buckets.size()), buckets.size()));
    int64_t rate = gprof::record::mem_profile_rate();
    for (const gprof::record::HeapBucket& b : buckets) {
        auto alloc = gprof::record::scale_heap_sample(static_cast<int64_t>(b.allocs),
                                                      static_cast<int64_t>(b.alloc_bytes), rate);
        auto freed = gprof::record::scale_heap_sample(static_cast<int64_t>(b.frees),
                                                      static_cast<int64_t>(b.free_bytes), rate);
        m.mallocs += static_cast<uint64_t>(alloc.count);
        m.total_alloc += static_cast<uint64_t>(alloc.bytes);
        m.frees += static_cast<uint64_t>(freed.count);
    }
    m.heap_objects = m.mallocs >= m.frees ? m.mallocs - m.frees : 0;
}

}  // namespace

extern "C" int gprof_read_memstats(gprof_memstats* stats, size_t size) {
    if (stats == nullptr || size < sizeof(gprof_memstats)) return -1;
    gprof::base::ReentryGuard guard;  // gprof's own look-ups are not the program's allocations
    gprof_memstats m;
    memset(&m, 0, sizeof m);
    m.buck_hash_sys =
        gprof::record::heap_profile().bytes_used() + gprof::record::stack_table().bytes_used();
    try {
        if (gprof::backing::jemalloc())
            fill_from_jemalloc(m);
        else
            fill_from_glibc(m);
        fill_counts_from_heap_profile(m);
    } catch (...) {
        return -1;  // out of memory for the snapshot
    }
    memcpy(stats, &m, sizeof m);
    return 0;
}
