// gprof_read_memstats: exact counts from the recorder, byte totals from the backing allocator.
#include <malloc.h>

#include <cstdint>
#include <cstring>

#include "api/gprof.h"
#include "preload/backing.h"
#include "record/alloc_counters.h"
#include "record/heap_profile.h"
#include "record/stack_table.h"

namespace {

uint64_t je_stat(const char* name) {
    size_t value = 0, len = sizeof value;
    if (gprof_je_mallctl(name, &value, &len, nullptr, 0) != 0) return 0;
    return value;
}

void fill_from_jemalloc(gprof_memstats& m) {
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    gprof_je_mallctl("epoch", &epoch, &len, &epoch, len);  // refresh the cached statistics
    m.alloc = je_stat("stats.allocated");
    m.heap_inuse = je_stat("stats.active");
    uint64_t mapped = je_stat("stats.mapped");
    uint64_t resident = je_stat("stats.resident");
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

}  // namespace

extern "C" int gprof_read_memstats(gprof_memstats* stats, size_t size) {
    if (stats == nullptr || size < sizeof(gprof_memstats)) return -1;
    gprof_memstats m;
    memset(&m, 0, sizeof m);
    gprof::record::AllocCounts c = gprof::record::read_alloc_counts();
    m.mallocs = c.mallocs;
    m.frees = c.frees;
    m.total_alloc = c.alloc_bytes;
    m.heap_objects = c.mallocs >= c.frees ? c.mallocs - c.frees : 0;
    m.buck_hash_sys = gprof::record::heap_profile().bytes_used() + gprof::record::stack_table().bytes_used();
    if (gprof::backing::jemalloc())
        fill_from_jemalloc(m);
    else
        fill_from_glibc(m);
    memcpy(stats, &m, sizeof m);
    return 0;
}
