// Which code the hot entry points of the interposed surface run: malloc, free, calloc, realloc and
// the plain C++ new and delete jump through this table (one indirect jump; why: docs/design.md,
// "The allocator underneath"), chosen at the process's first allocation:
//   * recorded: the shims with the allocation facade (record/heap_events.h) around the backing
//     allocator, whenever the heap profile samples;
//   * direct: the backing allocator itself (gprof's jemalloc, or glibc's own functions), with only
//     what the glibc contract needs around it, when the shims need not sample
//     (GPROF_MEM_PROFILE_RATE=0, or gprof's jemalloc sampling itself).
// Invariant: once a sample can exist, free and realloc stay recorded for good, so no sampled
// object's end goes unseen. A later change of the heap rate (gprof_set_mem_profile_rate) calls
// choose_routes() again after setting it.
#pragma once

#include <cstddef>

namespace gprof::routes {

struct Table {
    void* (*malloc)(size_t) noexcept;
    void (*free)(void*) noexcept;
    void* (*calloc)(size_t, size_t) noexcept;
    void* (*realloc)(void*, size_t) noexcept;
    void* (*new_)(size_t);  // throwing operator new, new-handler loop included
};

extern Table g_table [[gnu::visibility("hidden")]];

inline const Table& table() {
    return g_table;
}

// Sets the table from the allocator (GPROF_ALLOCATOR) and the heap rate. Safe to call again.
void choose_routes() noexcept;
// The end of gprof's constructor: in glibc mode, its own allocations stop coming from the start-up
// reserve (backing.h).
void end_start_up() noexcept;

// The recorded implementations (malloc_shims.cpp, new_shims.cpp).
void* recorded_malloc(size_t size) noexcept;
void recorded_free(void* p) noexcept;
void* recorded_calloc(size_t n, size_t size) noexcept;
void* recorded_realloc(void* p, size_t size) noexcept;
void* recorded_new(size_t size);

// operator new's failure path ([new.delete.single]): call the program's new-handler until it makes
// memory available, else throw bad_alloc (new_shims.cpp). `retry` allocates again.
void* new_failed(size_t size, void* (*retry)(size_t) noexcept);

}  // namespace gprof::routes
