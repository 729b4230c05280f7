// The allocator under the interposed surface: gprof's private jemalloc (the default) or glibc's
// own allocator (GPROF_ALLOCATOR=libc), chosen once, at the process's first allocation, and never
// changed, so no pointer can be freed by an allocator that did not make it.
//
// Every function here has the contract of the glibc function of the same name (sizes, errno,
// alignment rules); the shims in preload/*_shims.cpp add only the recording.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/config.h"

extern "C" {
// The embedded jemalloc (preload/embed_jemalloc.sh gives its names the gprof_je_ prefix).
void* gprof_je_malloc(size_t size) noexcept;
void* gprof_je_calloc(size_t n, size_t size) noexcept;
void* gprof_je_realloc(void* p, size_t size) noexcept;
void gprof_je_free(void* p) noexcept;
int gprof_je_posix_memalign(void** out, size_t align, size_t size) noexcept;
void* gprof_je_memalign(size_t align, size_t size) noexcept;
size_t gprof_je_malloc_usable_size(void* p) noexcept;
void* gprof_je_mallocx(size_t size, int flags) noexcept;
void* gprof_je_rallocx(void* p, size_t size, int flags) noexcept;
size_t gprof_je_xallocx(void* p, size_t size, size_t extra, int flags) noexcept;
size_t gprof_je_sallocx(const void* p, int flags) noexcept;
void gprof_je_dallocx(void* p, int flags) noexcept;
void gprof_je_sdallocx(void* p, size_t size, int flags) noexcept;
size_t gprof_je_nallocx(size_t size, int flags) noexcept;
int gprof_je_mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp,
                     size_t newlen) noexcept;

// glibc's own allocator, exported by libc.so.6 for exactly this use.
void* __libc_malloc(size_t size) noexcept;
void* __libc_calloc(size_t n, size_t size) noexcept;
void* __libc_realloc(void* p, size_t size) noexcept;
void __libc_free(void* p) noexcept;
void* __libc_memalign(size_t align, size_t size) noexcept;
}

namespace gprof::backing {

// LibcStarting: glibc's allocator while gprof's constructor runs (see "glibc mode" below).
// Foreign: another allocator's malloc comes first in the program's scope (see adopt_foreign).
enum class Kind : unsigned char { Unset, Jemalloc, Libc, LibcStarting, Foreign };
extern Kind g_kind;
inline bool foreign() { return __atomic_load_n(&g_kind, __ATOMIC_RELAXED) == Kind::Foreign; }

// From gprof's constructor, before it allocates: when the program's malloc is not gprof's (an
// allocator earlier in LD_PRELOAD, one linked into the executable), every allocation function of
// gprof's that is still reached (those the other lacks, gprof's own needs) is served by the
// other's, so no pointer crosses between two heaps; heap sampling is off. Returns the file that
// defines the program's malloc then, else null.
const char* adopt_foreign();
// The other allocator's functions (Foreign).
void* foreign_malloc(size_t size) noexcept;
void foreign_free(void* p) noexcept;
void* foreign_calloc(size_t n, size_t size) noexcept;
void* foreign_realloc(void* p, size_t size) noexcept;

Kind choose();  // slow path of the first allocation: reads GPROF_ALLOCATOR

// From this heap rate up, gprof's jemalloc samples with its own profiler's machinery
// (preload/jemalloc_sampling.cpp). jemalloc makes each sampled object a page-aligned extent of at
// least 16 KiB, so a program of tiny objects pays up to 16 KiB per `rate` bytes of heap (6% at
// this rate, 3% at the default); below it, the shims sample, at a cost on every call instead.
constexpr int64_t kJemallocSamplingMinRate = 256 * 1024;

inline bool jemalloc() {
    Kind k = g_kind;
    if (k == Kind::Jemalloc) [[likely]]
        return true;
    if (k == Kind::Unset) k = choose();
    return k == Kind::Jemalloc;
}

// The default alignment of malloc on x86-64 glibc (and of jemalloc's smallest size classes
// that matter here): aligned requests up to it are plain mallocs.
constexpr size_t kMallocAlign = 16;

// glibc mode: what gprof's own start-up allocates (the dynamic loader's records of libunwind,
// glibc's reading of the main thread's stack bounds, the dumper thread's TLS; about 30 blocks,
// 8 KiB) is served from a reserve in the library's .bss, never from the program's heap. glibc's
// heap layout decides how often the program faults: the mixed benchmark takes 44 000 to 94 000
// page faults, against 73 000, when a few KiB are placed in the heap before main. A reserve block
// is never reused: free ignores it, realloc copies it out. So free, realloc and usable_size in
// glibc mode test the reserve's range first (one subtraction and compare); malloc tests nothing
// once start-up is over (end_start_up()).
constexpr size_t kStartReserve = 64 * 1024;
extern char g_start_reserve[kStartReserve] [[gnu::visibility("hidden")]];
inline bool in_start_reserve(const void* p) {
    return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(g_start_reserve) <
           kStartReserve;
}
// The end of gprof's constructor: glibc mode stops serving anything from the reserve.
void end_start_up();
// Starts gprof's jemalloc if it is the backing allocator and has not started yet (an allocation
// and its free): jemalloc registers its fork handlers then.
void start_allocator();
// jemalloc mode: the first arenas made now (see backing.cpp), once: from gprof's constructor
// where RLIMIT_AS is finite, or with `limit_set` when the program sets it.
void make_arenas(bool limit_set = false);
bool starting();  // glibc mode, and gprof's constructor has not ended

// glibc's functions with the reserve in front (the contracts are glibc's).
void* libc_malloc(size_t size) noexcept;
void* libc_calloc(size_t n, size_t size) noexcept;
void* libc_realloc(void* p, size_t size) noexcept;
void* libc_memalign(size_t align, size_t size) noexcept;
size_t libc_usable_size(const void* p) noexcept;
inline void libc_free(void* p) noexcept {
    if (in_start_reserve(p)) [[unlikely]]
        return;
    __libc_free(p);
}

// malloc and free are the hot pair: both modes are inline and end in a tail call; only the
// process's very first call (the mode not chosen yet) and gprof's start-up are out of line.
void* malloc_other(size_t size) noexcept;
void free_other(void* p) noexcept;
inline void* malloc(size_t size) {
    Kind k = g_kind;
    if (k == Kind::Jemalloc) [[likely]]
        return gprof_je_malloc(size);
    if (k == Kind::Libc) return __libc_malloc(size);
    return malloc_other(size);
}
inline void free(void* p) {
    Kind k = g_kind;
    if (k == Kind::Jemalloc) [[likely]]
        return gprof_je_free(p);
    if (k == Kind::Libc) return libc_free(p);
    free_other(p);
}
void* calloc(size_t n, size_t size);
void* realloc_nonnull(void* p, size_t size);  // p != nullptr, size != 0
size_t usable_size(void* p);

// glibc's memalign: a non-power-of-two alignment is rounded up, one above SIZE_MAX/2+1 is EINVAL.
void* memalign(size_t align, size_t size);
// glibc's posix_memalign: EINVAL unless a power of two multiple of sizeof(void*); *out untouched
// on any error.
int posix_memalign(void** out, size_t align, size_t size);
// The alignments posix_memalign accepts: a power of two multiple of sizeof(void*).
bool posix_alignment(size_t align);

// jemalloc's non-standard API (MALLOCX_* flags), served by glibc too in libc mode.
void* mallocx(size_t size, int flags);
void* rallocx(void* p, size_t size, int flags);
size_t xallocx(void* p, size_t size, size_t extra, int flags);
size_t sallocx(const void* p, int flags);
void dallocx(void* p, int flags);
size_t nallocx(size_t size, int flags);

// Alignment requested by MALLOCX_ALIGN/MALLOCX_LG_ALIGN flags, 0 when none.
inline size_t mallocx_align(int flags) {
    int lg = flags & 0x3f;
    return lg ? size_t{1} << lg : 0;
}
constexpr int kMallocxZero = 0x40;

}  // namespace gprof::backing
