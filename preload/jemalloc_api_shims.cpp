// jemalloc's non-standard API, for programs built against jemalloc: served by whichever allocator
// backs gprof, so these pointers live in the same heap as malloc's.
#include <cerrno>

#include "preload/backing.h"
#include "record/heap_events.h"

namespace b = gprof::backing;
namespace r = gprof::record;

extern "C" {

void* mallocx(size_t size, int flags) noexcept {
    void* p = r::allocation(size, b::mallocx_align(flags), [=] { return b::mallocx(size, flags); });
    if (p == nullptr) errno = ENOMEM;  // jemalloc's mallocx leaves errno alone
    return p;
}

void* rallocx(void* p, size_t size, int flags) noexcept {
    return r::reallocation(p, size, [=] {
        void* q = b::rallocx(p, size, flags);
        if (q == nullptr) errno = ENOMEM;
        return q;
    });
}

size_t xallocx(void* p, size_t size, size_t extra, int flags) noexcept {
    size_t real = b::xallocx(p, size, extra, flags);
    if (real >= size) r::resized(p, size);
    return real;
}

size_t sallocx(const void* p, int flags) noexcept { return b::sallocx(p, flags); }

void dallocx(void* p, int flags) noexcept {
    r::release(p, [=] { b::dallocx(p, flags); });
}

// The size hint is not trusted (see new_shims.cpp): sdallocx frees like dallocx.
void sdallocx(void* p, size_t, int flags) noexcept { dallocx(p, flags); }

size_t nallocx(size_t size, int flags) noexcept { return b::nallocx(size, flags); }

}  // extern "C"
