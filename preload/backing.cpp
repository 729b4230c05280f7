#include "preload/backing.h"

#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "base/reentry_guard.h"
#include "record/heap_sampler.h"
#include "unwind/stack.h"

namespace gprof::backing {

Kind g_kind = Kind::Unset;

Kind choose() {
    // config() allocates nothing, so this is safe from the process's very first malloc. Two
    // threads racing here compute the same answer.
    const Config& c = config();
    Kind k = c.allocator == Allocator::Libc ? Kind::LibcStarting : Kind::Jemalloc;
    // The sampler's rate is handed down here, before any allocation can be sampled.
    record::set_mem_profile_rate(c.mem_profile_rate);
    // Before jemalloc starts: whether its profiler runs is one of its options (jemalloc_conf.cpp).
    if (k == Kind::Jemalloc && record::mem_profile_rate() >= kJemallocSamplingMinRate)
        record::hand_sampling_to_allocator();
    // A second caller (a thread racing the first allocation) must not undo end_start_up().
    Kind unset = Kind::Unset;
    __atomic_compare_exchange_n(&g_kind, &unset, k, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return __atomic_load_n(&g_kind, __ATOMIC_RELAXED);
}

void* malloc_other(size_t size) noexcept {
    return jemalloc() ? gprof_je_malloc(size) : libc_malloc(size);
}

void free_other(void* p) noexcept {
    if (jemalloc())
        gprof_je_free(p);
    else if (foreign())
        foreign_free(p);
    else
        libc_free(p);
}

// ---------------------------------------------------------------------------------------------
// Another allocator first (adopt_foreign).
namespace {

struct ForeignFunctions {
    void* (*malloc)(size_t) = nullptr;
    void (*free)(void*) = nullptr;
    void* (*calloc)(size_t, size_t) = nullptr;
    void* (*realloc)(void*, size_t) = nullptr;
    void* (*memalign)(size_t, size_t) = nullptr;
    int (*posix_memalign)(void**, size_t, size_t) = nullptr;
    void* (*aligned_alloc)(size_t, size_t) = nullptr;
    size_t (*usable_size)(void*) = nullptr;
};
constinit ForeignFunctions g_foreign;

// The program's definition of `name`, unless it is gprof's own.
template <typename F>
void find(F* out, const char* name) {
    void* f = dlsym(RTLD_DEFAULT, name);
    if (f != nullptr && !unwind::in_gprof(reinterpret_cast<uintptr_t>(f)))
        *out = reinterpret_cast<F>(f);
}

void* foreign_memalign(size_t align, size_t size) {
    if (g_foreign.memalign != nullptr) return g_foreign.memalign(align, size);
    void* p = nullptr;
    if (g_foreign.posix_memalign != nullptr) {
        int err = g_foreign.posix_memalign(&p, align < sizeof(void*) ? sizeof(void*) : align, size);
        if (err != 0) errno = err;
        return err == 0 ? p : nullptr;
    }
    if (g_foreign.aligned_alloc != nullptr)
        return g_foreign.aligned_alloc(align, (size + align - 1) & ~(align - 1));
    errno = ENOMEM;
    return nullptr;
}

}  // namespace

const char* adopt_foreign() {
    void* program_malloc = dlsym(RTLD_DEFAULT, "malloc");
    if (program_malloc == nullptr || unwind::in_gprof(reinterpret_cast<uintptr_t>(program_malloc)))
        return nullptr;
    ForeignFunctions f;
    find(&f.malloc, "malloc");
    find(&f.free, "free");
    find(&f.calloc, "calloc");
    find(&f.realloc, "realloc");
    if (f.malloc == nullptr || f.free == nullptr || f.calloc == nullptr || f.realloc == nullptr)
        return nullptr;  // a malloc alone is not an allocator: gprof's stays
    find(&f.memalign, "memalign");
    find(&f.posix_memalign, "posix_memalign");
    find(&f.aligned_alloc, "aligned_alloc");
    find(&f.usable_size, "malloc_usable_size");
    g_foreign = f;
    record::set_mem_profile_rate(0);
    __atomic_store_n(&g_kind, Kind::Foreign, __ATOMIC_RELEASE);
    Dl_info info;
    if (dladdr(program_malloc, &info) != 0 && info.dli_fname != nullptr) return info.dli_fname;
    return "the program";
}

void* foreign_malloc(size_t size) noexcept { return g_foreign.malloc(size); }
void foreign_free(void* p) noexcept { g_foreign.free(p); }
void* foreign_calloc(size_t n, size_t size) noexcept { return g_foreign.calloc(n, size); }
void* foreign_realloc(void* p, size_t size) noexcept { return g_foreign.realloc(p, size); }

// ---------------------------------------------------------------------------------------------
// The start-up reserve (backing.h): a bump allocator over zeroed .bss. Each block is 16-byte
// aligned (or more, as asked) with its size in the word before it.
alignas(4096) constinit char g_start_reserve[kStartReserve] = {};

namespace {

constinit std::atomic<size_t> g_start_used{0};
constexpr size_t kHeader = 16;

void* reserve_take(size_t size, size_t align) {
    if (align < kHeader) align = kHeader;
    size_t used = g_start_used.load(std::memory_order_relaxed);
    for (;;) {
        size_t start = (used + kHeader + align - 1) & ~(align - 1);
        if (size > kStartReserve || start > kStartReserve - size) return nullptr;
        size_t end = (start + size + kHeader - 1) & ~(kHeader - 1);
        if (g_start_used.compare_exchange_weak(used, end, std::memory_order_relaxed)) {
            char* p = g_start_reserve + start;
            reinterpret_cast<size_t*>(p)[-1] = size;
            return p;
        }
    }
}

size_t reserve_size(const void* p) { return static_cast<const size_t*>(p)[-1]; }

// gprof's own work during its start-up, in glibc mode: the reserve's, while it lasts.
bool from_reserve() { return starting() && base::inside_gprof(); }

}  // namespace

void start_allocator() {
    if (jemalloc()) gprof_je_free(gprof_je_malloc(1));
}

void make_arenas(bool limit_set) {
    // jemalloc 5.3 makes a thread's arena at the thread's first allocation, and faults when it
    // cannot (arena_choose gives tcache_arena_associate a null arena): with the address space
    // used up (RLIMIT_AS), a new thread's first malloc would crash where glibc's returns NULL.
    // So the arenas threads are given first are made while memory is there, by pointing this
    // thread at each in turn (jemalloc still hands them out least-used first): at start where
    // RLIMIT_AS is finite, or when the program sets it (setrlimit's shim). Each costs about
    // 150 KiB: at most kMadeArenas, all of them on a machine of 2 CPUs.
    constexpr unsigned kMadeArenas = 8;
    static bool made = false;
    if (!jemalloc() || made) return;
    if (!limit_set) {
        struct rlimit limit;
        if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return;
    }
    made = true;
    unsigned count = 0, mine = 0;
    size_t size = sizeof count;
    if (gprof_je_mallctl("opt.narenas", &count, &size, nullptr, 0) != 0) return;
    size = sizeof mine;
    if (gprof_je_mallctl("thread.arena", &mine, &size, nullptr, 0) != 0) return;
    for (unsigned i = 0; i < count && i < kMadeArenas; ++i)
        gprof_je_mallctl("thread.arena", nullptr, nullptr, &i, sizeof i);
    gprof_je_mallctl("thread.arena", nullptr, nullptr, &mine, sizeof mine);
}

bool starting() { return __atomic_load_n(&g_kind, __ATOMIC_RELAXED) == Kind::LibcStarting; }

void end_start_up() {
    Kind from = Kind::LibcStarting;
    __atomic_compare_exchange_n(&g_kind, &from, Kind::Libc, false, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
}

void* libc_malloc(size_t size) noexcept {
    if (foreign()) [[unlikely]]
        return foreign_malloc(size);
    if (from_reserve())
        if (void* p = reserve_take(size, 0)) return p;
    return __libc_malloc(size);
}

void* libc_calloc(size_t n, size_t size) noexcept {
    if (foreign()) [[unlikely]]
        return foreign_calloc(n, size);
    size_t total;
    if (!__builtin_mul_overflow(n, size, &total) && from_reserve())
        if (void* p = reserve_take(total, 0)) return p;  // never used before: zero
    return __libc_calloc(n, size);
}

void* libc_memalign(size_t align, size_t size) noexcept {
    if (foreign()) [[unlikely]]
        return foreign_memalign(align, size);
    if (from_reserve())
        if (void* p = reserve_take(size, align)) return p;
    return __libc_memalign(align, size);
}

void* libc_realloc(void* p, size_t size) noexcept {
    if (foreign()) [[unlikely]]
        return foreign_realloc(p, size);
    if (!in_start_reserve(p)) [[likely]] {
        if (p == nullptr) return libc_malloc(size);
        return __libc_realloc(p, size);
    }
    if (size == 0) return nullptr;  // glibc's realloc(p, 0): p is freed
    void* q = libc_malloc(size);
    if (q != nullptr) memcpy(q, p, std::min(size, reserve_size(p)));
    return q;
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

size_t libc_usable_size(const void* p) noexcept {
    if (foreign()) [[unlikely]]
        return g_foreign.usable_size != nullptr ? g_foreign.usable_size(const_cast<void*>(p)) : 0;
    return in_start_reserve(p) ? reserve_size(p) : glibc_usable_size(p);
}

// jemalloc 5.3 zeroes a reused block of 16 KiB or more for calloc by madvise(MADV_DONTNEED) rather
// than memset (unless opt.thp is "always"): every page of it then faults on first touch, and the
// fault repeats each time the block is reused. Up to kCallocMemsetMax, malloc + memset costs a
// memset of resident memory instead; above it, a huge calloc keeps jemalloc's way (untouched pages
// stay unbacked).
constexpr size_t kCallocMemsetMax = size_t{4} << 20;

void* calloc(size_t n, size_t size) {
    if (!jemalloc()) return libc_calloc(n, size);
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
    if (!jemalloc()) return libc_realloc(p, size);
    void* q = gprof_je_realloc(p, size);
    if (q == nullptr) errno = ENOMEM;  // jemalloc leaves errno alone for sizes it cannot serve
    return q;
}

size_t usable_size(void* p) {
    if (p == nullptr) return 0;
    return jemalloc() ? gprof_je_malloc_usable_size(p) : libc_usable_size(p);
}

void* memalign(size_t align, size_t size) {
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return nullptr;
    }
    if (!power_of_two(align)) align = size_t{1} << (64 - __builtin_clzl(align));
    void* p;
    if (!jemalloc()) {
        p = align <= kMallocAlign && !foreign() ? libc_malloc(size) : libc_memalign(align, size);
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
    void* p = align <= kMallocAlign && !foreign() ? libc_malloc(size) : libc_memalign(align, size);
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
    // (Another allocator's malloc may align less than glibc's: tcmalloc's 1-byte blocks.)
    void* p = align > kMallocAlign || (align != 0 && foreign()) ? libc_memalign(align, size)
                                                                : libc_malloc(size);
    if (p && (flags & kMallocxZero)) memset(p, 0, size);
    return p;
}

void* rallocx(void* p, size_t size, int flags) {
    if (size == 0) size = 1;
    if (jemalloc()) return gprof_je_rallocx(p, size, flags);
    size_t align = mallocx_align(flags);
    size_t old = libc_usable_size(p);
    void* q;
    if (align <= kMallocAlign && !(align != 0 && foreign())) {
        q = libc_realloc(p, size);
        if (q == nullptr) return nullptr;
    } else {
        q = libc_memalign(align, size);
        if (q == nullptr) return nullptr;
        memcpy(q, p, old < size ? old : size);
        libc_free(p);
    }
    if ((flags & kMallocxZero) && size > old) memset(static_cast<char*>(q) + old, 0, size - old);
    return q;
}

size_t xallocx(void* p, size_t size, size_t extra, int flags) {
    if (jemalloc()) return gprof_je_xallocx(p, size, extra, flags);
    return libc_usable_size(p);  // glibc cannot resize in place on request
}

size_t sallocx(const void* p, int flags) {
    if (jemalloc()) return gprof_je_sallocx(p, flags);
    return libc_usable_size(p);
}

void dallocx(void* p, int flags) {
    if (jemalloc())
        gprof_je_dallocx(p, flags);
    else
        libc_free(p);
}

size_t nallocx(size_t size, int flags) {
    if (size == 0) size = 1;
    if (jemalloc()) return gprof_je_nallocx(size, flags);
    return glibc_request_usable(size);
}

}  // namespace gprof::backing
