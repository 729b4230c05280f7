// The C allocation surface (glibc's malloc family). Each shim asks the backing allocator, around
// the recorder's two steps (record/heap_events.h); the contract details (errno, zero sizes,
// alignment rules) live in backing. The hot four go through preload/routes.h, which skips the
// recorder when nothing is sampled.
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "base/reentry_guard.h"
#include "preload/backing.h"
#include "preload/routes.h"
#include "record/heap_events.h"

namespace b = gprof::backing;
namespace r = gprof::record;

namespace {

size_t page_size() {
    static size_t size = 0;  // racing first callers compute the same value
    if (size == 0) size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return size;
}

void release(void* p) {
    // free() must preserve errno (POSIX.1-2024; glibc's tst-free-errno). glibc's free does so
    // itself; gprof's jemalloc never unmaps (opt.retain) and makes no other failing system call
    // on this path, and the recorder makes none, so no save and restore is needed here.
    r::release(p, [=] { b::free(p); });
}

void* allocate(size_t size) {
    return r::allocation(size, 0, [=] { return b::malloc(size); });
}

void* reallocate(void* p, size_t size) {
    if (p == nullptr) return allocate(size);
    if (size == 0) {  // glibc: frees p, returns NULL, errno untouched
        release(p);
        return nullptr;
    }
    return r::reallocation(p, size, [=] { return b::realloc_nonnull(p, size); });
}

void* aligned(size_t align, size_t size) {
    return r::allocation(size, align, [=] { return b::memalign(align, size); });
}

void* zeroed(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) return b::calloc(n, size);  // NULL with ENOMEM
    return r::allocation(total, 0, [=] { return b::calloc(n, size); });
}

}  // namespace

// The recorded hot entry points (preload/routes.h).
namespace gprof::routes {
void* recorded_malloc(size_t size) noexcept {
    return allocate(size);
}
void recorded_free(void* p) noexcept {
    release(p);
}
void* recorded_calloc(size_t n, size_t size) noexcept {
    return zeroed(n, size);
}
void* recorded_realloc(void* p, size_t size) noexcept {
    return reallocate(p, size);
}
}  // namespace gprof::routes

namespace {

constexpr size_t kPoolReserve = 80 * 1024;
alignas(64) constinit char g_pool_reserve[kPoolReserve] = {};
constinit std::atomic<bool> g_pool_reserve_taken{false};

bool in_pool_reserve(const void* p) {
    auto a = reinterpret_cast<uintptr_t>(p);
    auto base = reinterpret_cast<uintptr_t>(g_pool_reserve);
    return a >= base && a < base + kPoolReserve;
}

}  // namespace

extern "C" {

void* malloc(size_t size) noexcept {
    return gprof::routes::table().malloc(size);
}

// Code linked into the library that calls malloc and free itself, not through gprof's own paths:
// the private libstdc++ (meson.build). -Wl,--wrap=malloc, free and realloc send those calls here,
// where they are gprof's, never sampled as the program's.
//
// Its start-up allocation, the exception pool (71 KiB, made by a static constructor, used only
// when malloc fails during a throw, freed only by __gnu_cxx::__freeres), is served from a reserve
// in the library's .bss, so gprof leaves nothing of its own in the program's heap before main,
// where it would move glibc's layout (docs/design.md, "gprof's own memory and runtime"). The
// reserve's pages cost nothing until touched.
void* __wrap_malloc(size_t size) noexcept {
    // The pool is the library's first request of 64 KiB or more (its static constructors run
    // before anything of gprof's asks for that much). Whatever takes the reserve, free and realloc
    // below know it.
    if (size >= 64 * 1024 && size <= kPoolReserve &&
        !g_pool_reserve_taken.load(std::memory_order_relaxed) &&
        !g_pool_reserve_taken.exchange(true, std::memory_order_relaxed))
        return g_pool_reserve;
    gprof::base::ReentryGuard guard;
    return allocate(size);
}

void __wrap_free(void* p) noexcept {
    if (in_pool_reserve(p)) return;  // never reused: the pool lives as long as the process
    gprof::routes::table().free(p);
}

void* __wrap_realloc(void* p, size_t size) noexcept {
    if (!in_pool_reserve(p)) return gprof::routes::table().realloc(p, size);
    if (size == 0) return nullptr;  // glibc's realloc(p, 0): frees p
    gprof::base::ReentryGuard guard;
    void* q = allocate(size);
    if (q != nullptr) memcpy(q, p, size < kPoolReserve ? size : kPoolReserve);
    return q;
}

void free(void* p) noexcept {
    gprof::routes::table().free(p);
}
void cfree(void* p) noexcept {
    gprof::routes::table().free(p);
}

void* calloc(size_t n, size_t size) noexcept {
    return gprof::routes::table().calloc(n, size);
}

void* realloc(void* p, size_t size) noexcept {
    return gprof::routes::table().realloc(p, size);
}

void* reallocarray(void* p, size_t n, size_t size) noexcept {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return nullptr;
    }
    return gprof::routes::table().realloc(p, total);
}

int posix_memalign(void** out, size_t align, size_t size) noexcept {
    // r::allocation's two steps by hand: its calls return a pointer, and carrying posix_memalign's
    // error code out through them would put the lambdas' setup (a dozen instructions, a larger
    // frame) on the unsampled path.
    if (!r::sampling(size)) [[likely]]
        return b::posix_memalign(out, align, size);
    int err = b::posix_memalign(out, align, size);
    if (err == 0) r::record_sampled(*out, size, align);
    return err;
}

// glibc 2.36 gives aligned_alloc memalign's rules (later versions reject sizes that are not a
// multiple of the alignment); gprof follows the glibc it runs on.
void* aligned_alloc(size_t align, size_t size) noexcept {
    return aligned(align, size);
}
void* memalign(size_t align, size_t size) noexcept {
    return aligned(align, size);
}
void* valloc(size_t size) noexcept {
    return aligned(page_size(), size);
}

void* pvalloc(size_t size) noexcept {
    size_t page = page_size();
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return nullptr;
    }
    size_t rounded = (size + page - 1) & ~(page - 1);
    return aligned(page, rounded == 0 ? page : rounded);
}

size_t malloc_usable_size(void* p) noexcept {
    return b::usable_size(p);
}

}  // extern "C"
