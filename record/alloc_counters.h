// Exact process-wide allocation counts (Go's MemStats.Mallocs, Frees and TotalAlloc) at the cost
// of plain per-thread additions.
//
// Each thread owns a cache-line slot from a fixed pool and is its only writer, so an increment is
// a relaxed load and store, not a locked read-modify-write. A reader sums the slots under the pool
// lock. When a thread exits (a pthread key destructor), its counts move to the retired totals and
// its slot returns to the pool. Threads that find the pool empty, threads that allocate after
// their slot was returned (glibc frees TLS after the key destructors run), and re-entrant calls
// during attachment share one overflow slot with atomic additions instead.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gprof::record {

struct AllocCounts {
    uint64_t mallocs = 0;
    uint64_t frees = 0;
    uint64_t alloc_bytes = 0;  // requested bytes, cumulative
};

struct alignas(64) CounterSlot {
    std::atomic<uint64_t> mallocs{0};
    std::atomic<uint64_t> frees{0};
    std::atomic<uint64_t> alloc_bytes{0};
    bool shared = false;  // the overflow slot: several writers, atomic additions
    bool in_use = false;
    CounterSlot* next_free = nullptr;

    void add(std::atomic<uint64_t>& c, uint64_t n) {
        if (shared) [[unlikely]]
            c.fetch_add(n, std::memory_order_relaxed);
        else
            c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void count_malloc(size_t size) {
        add(mallocs, 1);
        add(alloc_bytes, size);
    }
    void count_free() { add(frees, 1); }
    void uncount_free() { add(frees, UINT64_MAX); }  // unsigned wrap-around: minus one
};

extern constinit thread_local CounterSlot* t_counter_slot [[gnu::tls_model("initial-exec")]];

CounterSlot* attach_counter_slot();  // slow path: the thread's first allocation event

inline CounterSlot& thread_counters() {
    CounterSlot* s = t_counter_slot;
    if (s == nullptr) [[unlikely]]
        s = attach_counter_slot();
    return *s;
}

// The exact totals over every thread that ever ran.
AllocCounts read_alloc_counts();

// fork(): the prepare handler holds the pool lock across fork; in the child only the forking
// thread survives, so every other slot is retired.
void counters_prepare_fork();
void counters_parent_after_fork();
void counters_child_after_fork();

}  // namespace gprof::record
