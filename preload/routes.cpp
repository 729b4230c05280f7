#include "preload/routes.h"

#include "preload/backing.h"
#include "record/heap_sampler.h"

namespace gprof::routes {
namespace {

namespace b = gprof::backing;

// Direct, gprof's jemalloc: glibc's contract for realloc's edge cases (backing.h), nothing else.
void* je_realloc(void* p, size_t size) noexcept {
    if (p == nullptr) return gprof_je_malloc(size);
    if (size == 0) {  // glibc: frees p, returns NULL, errno untouched
        gprof_je_free(p);
        return nullptr;
    }
    return b::realloc_nonnull(p, size);
}

void* je_calloc(size_t n, size_t size) noexcept {
    return b::calloc(n, size);
}

// operator new straight into either allocator: its failure path is new's own (new_failed).
template <void* (*Allocate)(size_t) noexcept>
void* direct_new(size_t size) {
    if (void* p = Allocate(size)) [[likely]]
        return p;
    return new_failed(size, Allocate);
}

// The table before the first allocation: choose, then go where the choice says.
void* first_malloc(size_t size) noexcept {
    choose_routes();
    return g_table.malloc(size);
}
void first_free(void* p) noexcept {
    choose_routes();
    g_table.free(p);
}
void* first_calloc(size_t n, size_t size) noexcept {
    choose_routes();
    return g_table.calloc(n, size);
}
void* first_realloc(void* p, size_t size) noexcept {
    choose_routes();
    return g_table.realloc(p, size);
}
void* first_new(size_t size) {
    choose_routes();
    return g_table.new_(size);
}

constexpr Table kRecorded = {recorded_malloc, recorded_free, recorded_calloc, recorded_realloc,
                             recorded_new};
constexpr Table kJemalloc = {gprof_je_malloc, gprof_je_free, je_calloc, je_realloc,
                             direct_new<gprof_je_malloc>};
// glibc's allocator: its own entry points are the whole contract, with the start-up reserve's
// range tested where a pointer comes in (backing.h), and, while gprof starts, where one goes out.
constexpr Table kLibc = {__libc_malloc, b::libc_free, __libc_calloc, b::libc_realloc,
                         direct_new<__libc_malloc>};
// Another allocator's malloc comes first (backing::adopt_foreign): gprof's functions are reached
// only for what the other lacks and for gprof's own needs, and serve them from the other's heap.
constexpr Table kForeign = {b::foreign_malloc, b::foreign_free, b::foreign_calloc,
                            b::foreign_realloc, direct_new<b::foreign_malloc>};
constexpr Table kLibcStarting = {b::libc_malloc, b::libc_free, b::libc_calloc, b::libc_realloc,
                                 direct_new<b::libc_malloc>};

}  // namespace

constinit Table g_table = {first_malloc, first_free, first_calloc, first_realloc, first_new};

void choose_routes() noexcept {
    // Both reads allocate nothing (config() parses into static storage), so this is safe from the
    // process's first malloc. Racing first callers compute and store the same table.
    static bool sampled_before = false;
    bool jemalloc = b::jemalloc();  // first: it decides whether jemalloc samples itself
    // Where gprof's jemalloc samples itself, the direct route is the sampling one.
    bool sampling = record::mem_profile_rate() != 0 && !record::allocator_samples();
    if (sampling) __atomic_store_n(&sampled_before, true, __ATOMIC_RELAXED);
    Table t = sampling ? kRecorded : jemalloc ? kJemalloc : b::starting() ? kLibcStarting : kLibc;
    if (b::foreign()) {
        t = kForeign;
    } else if (__atomic_load_n(&sampled_before, __ATOMIC_RELAXED)) {  // samples may live: routes.h
        t.free = recorded_free;
        t.realloc = recorded_realloc;
    }
    __atomic_store_n(&g_table.malloc, t.malloc, __ATOMIC_RELAXED);
    __atomic_store_n(&g_table.free, t.free, __ATOMIC_RELAXED);
    __atomic_store_n(&g_table.calloc, t.calloc, __ATOMIC_RELAXED);
    __atomic_store_n(&g_table.realloc, t.realloc, __ATOMIC_RELAXED);
    __atomic_store_n(&g_table.new_, t.new_, __ATOMIC_RELAXED);
}

void end_start_up() noexcept {
    b::end_start_up();
    choose_routes();
}

}  // namespace gprof::routes
