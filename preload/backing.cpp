#include "preload/backing.h"

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "record/heap_sampler.h"

namespace gprof::backing {

Kind g_kind = Kind::Unset;

Kind choose() {
    // config() allocates nothing, so this is safe from the process's very first malloc. Two
    // threads racing here compute the same answer.
    const Config& c = config();
    Kind k = c.allocator == Allocator::Libc ? Kind::Libc : Kind::Jemalloc;
    // The sampler's rate is handed down here, before any allocation can be sampled.
    record::set_mem_profile_rate(c.mem_profile_rate);
    // Before jemalloc starts: whether its profiler runs is one of its options (jemalloc_conf.cpp).
    if (k == Kind::Jemalloc && record::mem_profile_rate() >= kJemallocSamplingMinRate)
        record::hand_sampling_to_allocator();
    __atomic_store_n(&g_kind, k, __ATOMIC_RELAXED);
    return k;
}

void* malloc_other(size_t size) noexcept {
    return jemalloc() ? gprof_je_malloc(size) : __libc_malloc(size);
}

void free_other(void* p) noexcept {
    if (jemalloc())
        gprof_je_free(p);
    else
        __libc_free(p);
}

namespace {

bool power_of_two(size_t x) {
    return x != 0 && (x & (x - 1)) == 0;
}

// glibc 2.36's musable(): the size word before the user pointer holds the chunk size (low three
// bits are flags; bit 1 is IS_MMAPPED). An in-use heap chunk lends the next chunk's prev_size
// word to the user, an mmapped one does not.
size_t glibc_usable_size(const void* p) {
    size_t head = static_cast<const size_t*>(p)[-1];
    size_t chunk = head & ~size_t{7};
    return (head & 2) ? chunk - 2 * sizeof(size_t) : chunk - sizeof(size_t);
}

// glibc's request2size(): what a malloc(size) chunk lends the user, for nallocx in libc mode.
size_t glibc_request_usable(size_t size) {
    constexpr size_t kMinChunk = 32, kAlignMask = 15;
    if (size > SIZE_MAX - 64) return 0;
    size_t chunk = size + sizeof(size_t) + kAlignMask < kMinChunk
                       ? kMinChunk
                       : (size + sizeof(size_t) + kAlignMask) & ~kAlignMask;
    return chunk - sizeof(size_t);
}

}  // namespace

// jemalloc 5.3 zeroes a reused block of 16 KiB or more for calloc by madvise(MADV_DONTNEED) rather
// than memset (unless opt.thp is "always"): every page of it then faults on first touch, and the
// fault repeats each time the block is reused. Up to kCallocMemsetMax, malloc + memset costs a
// memset of resident memory instead; above it, a huge calloc keeps jemalloc's way (untouched pages
// stay unbacked).
constexpr size_t kCallocMemsetMax = size_t{4} << 20;

void* calloc(size_t n, size_t size) {
    if (!jemalloc()) return __libc_calloc(n, size);
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return nullptr;
    }
    if (total > kCallocMemsetMax) return gprof_je_calloc(n, size);
    void* p = gprof_je_malloc(total);
    if (p != nullptr) memset(p, 0, total);
    return p;
}

void* realloc_nonnull(void* p, size_t size) {
    if (!jemalloc()) return __libc_realloc(p, size);
    void* q = gprof_je_realloc(p, size);
    if (q == nullptr) errno = ENOMEM;  // jemalloc leaves errno alone for sizes it cannot serve
    return q;
}

size_t usable_size(void* p) {
    if (p == nullptr) return 0;
    return jemalloc() ? gprof_je_malloc_usable_size(p) : glibc_usable_size(p);
}

void* memalign(size_t align, size_t size) {
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return nullptr;
    }
    if (!power_of_two(align)) align = size_t{1} << (64 - __builtin_clzl(align));
    void* p;
    if (!jemalloc()) {
        p = align <= kMallocAlign ? __libc_malloc(size) : __libc_memalign(align, size);
    } else if (align <= kMallocAlign) {
        // jemalloc serves sizes up to 8 from an 8-byte class: only 8-byte aligned.
        p = gprof_je_malloc(size < align ? align : size);
    } else {
        // jemalloc 5.3 returns a misaligned block for size 0 with an alignment.
        p = gprof_je_memalign(align, size == 0 ? 1 : size);
    }
    if (p == nullptr) errno = ENOMEM;  // glibc's errno for a size it cannot serve
    return p;
}

bool posix_alignment(size_t align) {
    return power_of_two(align) && align % sizeof(void*) == 0;
}

int posix_memalign(void** out, size_t align, size_t size) {
    if (!posix_alignment(align)) return EINVAL;
    if (jemalloc()) return gprof_je_posix_memalign(out, align, size);
    int saved = errno;
    void* p = align <= kMallocAlign ? __libc_malloc(size) : __libc_memalign(align, size);
    if (p == nullptr) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

// jemalloc leaves size 0 undefined in its *allocx functions; glibc-style callers get a unique
// minimal object instead.
void* mallocx(size_t size, int flags) {
    if (size == 0) size = 1;
    if (jemalloc()) return gprof_je_mallocx(size, flags);
    size_t align = mallocx_align(flags);
    void* p = align > kMallocAlign ? __libc_memalign(align, size) : __libc_malloc(size);
    if (p && (flags & kMallocxZero)) memset(p, 0, size);
    return p;
}

void* rallocx(void* p, size_t size, int flags) {
    if (size == 0) size = 1;
    if (jemalloc()) return gprof_je_rallocx(p, size, flags);
    size_t align = mallocx_align(flags);
    size_t old = glibc_usable_size(p);
    void* q;
    if (align <= kMallocAlign) {
        q = __libc_realloc(p, size);
        if (q == nullptr) return nullptr;
    } else {
        q = __libc_memalign(align, size);
        if (q == nullptr) return nullptr;
        memcpy(q, p, old < size ? old : size);
        __libc_free(p);
    }
    if ((flags & kMallocxZero) && size > old) memset(static_cast<char*>(q) + old, 0, size - old);
    return q;
}

size_t xallocx(void* p, size_t size, size_t extra, int flags) {
    if (jemalloc()) return gprof_je_xallocx(p, size, extra, flags);
    return glibc_usable_size(p);  // glibc cannot resize in place on request
}

size_t sallocx(const void* p, int flags) {
    if (jemalloc()) return gprof_je_sallocx(p, flags);
    return glibc_usable_size(p);
}

void dallocx(void* p, int flags) {
    if (jemalloc())
        gprof_je_dallocx(p, flags);
    else
        __libc_free(p);
}

size_t nallocx(size_t size, int flags) {
    if (size == 0) size = 1;
    if (jemalloc()) return gprof_je_nallocx(size, flags);
    return glibc_request_usable(size);
}

}  // namespace gprof::backing
