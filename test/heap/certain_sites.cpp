// Every allocating entry point at sizes the default rate samples with certainty (16 MiB: an
// object escapes sampling with probability exp(-32)), so the heap profile is exact at the default
// rate too, where gprof's jemalloc samples itself (preload/jemalloc_sampling.cpp) and glibc's
// mode samples in the shims. For each site one object is kept and one freed (after a realloc,
// rallocx or xallocx where the site resizes), and the program checks what each call promises:
// zeroed memory, kept contents, the alignment asked for. It prints
//   TRUTH <site> <alloc_objects> <alloc_space> <inuse_objects> <inuse_space>
//   PAGE <site> <0|1>     whether the kept object is page-aligned (jemalloc's sampled objects are;
//                         jemalloc alone offsets objects this large by a random multiple of 64)
#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>

#include "test/heap/site.h"

#define NOINLINE __attribute__((noinline))

namespace {

constexpr size_t kBig = size_t{16} << 20;

struct CertainSite : Site {
    void* kept = nullptr;
    // Of a site's two objects of n bytes (i = 0, 1), the first is freed by `release`, the second
    // kept live for the dump.
    template <typename Release>
    void first_freed(int i, void* p, size_t n, Release release) {
        if (i == 0) {
            release();
            free(n);
        } else {
            kept = p;
        }
    }
};

CertainSite s_malloc{{"site_malloc"}}, s_calloc{{"site_calloc"}}, s_realloc{{"site_realloc"}},
    s_memalign{{"site_posix_memalign"}}, s_aligned_alloc{{"site_aligned_alloc"}},
    s_valloc{{"site_valloc"}}, s_new{{"site_new"}}, s_new_aligned{{"site_new_aligned"}},
    s_mallocx{{"site_mallocx"}};

int failures = 0;
void expect(bool ok, const char* what) {
    if (!ok) {
        fprintf(stderr, "certain_sites: %s\n", what);
        ++failures;
    }
}

bool aligned(const void* p, size_t a) {
    return reinterpret_cast<uintptr_t>(p) % a == 0;
}

NOINLINE void site_malloc_fn() {
    for (int i = 0; i < 2; ++i) {
        auto* p = static_cast<char*>(malloc(kBig));
        expect(p != nullptr, "malloc");
        p[0] = 1, p[kBig - 1] = 2;
        s_malloc.alloc(kBig);
        s_malloc.first_freed(i, p, kBig, [&] { free(p); });
    }
}

NOINLINE void site_calloc_fn() {
    for (int i = 0; i < 2; ++i) {
        auto* p = static_cast<unsigned char*>(calloc(kBig / 16, 16));
        expect(p != nullptr && p[0] == 0 && p[kBig / 2] == 0 && p[kBig - 1] == 0, "calloc zeroes");
        s_calloc.alloc(kBig);
        s_calloc.first_freed(i, p, kBig, [&] {
            memset(p, 0xab, 4096);  // dirty, so a later reuse must zero again
            free(p);
        });
    }
}

NOINLINE void site_realloc_fn() {
    // Grow a block and shrink it: contents survive every move.
    auto* p = static_cast<char*>(malloc(kBig));
    expect(p != nullptr, "malloc before realloc");
    memcpy(p, "kept", 7);
    p[kBig - 1] = 7;
    s_realloc.alloc(kBig);
    p = static_cast<char*>(realloc(p, 2 * kBig));  // a free of kBig and an allocation of 2 kBig
    s_realloc.free(kBig);
    s_realloc.alloc(2 * kBig);
    expect(p != nullptr && strcmp(p, "kept") == 0 && p[kBig - 1] == 7,
           "realloc keeps contents (grow)");
    p[2 * kBig - 1] = 8;
    p = static_cast<char*>(realloc(p, 3 * kBig));
    s_realloc.free(2 * kBig);
    s_realloc.alloc(3 * kBig);
    expect(p != nullptr && strcmp(p, "kept") == 0 && p[2 * kBig - 1] == 8,
           "realloc keeps contents (grow again)");
    p = static_cast<char*>(realloc(p, kBig + 1));
    s_realloc.free(3 * kBig);
    s_realloc.alloc(kBig + 1);
    expect(p != nullptr && strcmp(p, "kept") == 0 && p[kBig - 1] == 7,
           "realloc keeps contents (shrink)");
    s_realloc.kept = p;
}

NOINLINE void site_posix_memalign_fn() {
    for (int i = 0; i < 2; ++i) {
        void* p = nullptr;
        expect(posix_memalign(&p, 64, kBig) == 0 && aligned(p, 64), "posix_memalign");
        s_memalign.alloc(kBig);
        s_memalign.first_freed(i, p, kBig, [&] { free(p); });
    }
    void* untouched = &failures;
    expect(posix_memalign(&untouched, 24, kBig) == EINVAL && untouched == &failures,
           "posix_memalign EINVAL, *memptr untouched");
}

NOINLINE void site_aligned_alloc_fn() {
    for (int i = 0; i < 2; ++i) {
        void* p = aligned_alloc(size_t{2} << 20, kBig);
        expect(p != nullptr && aligned(p, size_t{2} << 20), "aligned_alloc 2 MiB");
        s_aligned_alloc.alloc(kBig);
        s_aligned_alloc.first_freed(i, p, kBig, [&] { free(p); });
    }
}

NOINLINE void site_valloc_fn() {
    void* p = valloc(kBig);
    expect(p != nullptr && aligned(p, 4096), "valloc");
    s_valloc.alloc(kBig);
    s_valloc.kept = p;
}

NOINLINE void site_new_fn() {
    for (int i = 0; i < 2; ++i) {
        auto* p = new char[kBig];
        s_new.alloc(kBig);
        s_new.first_freed(i, p, kBig, [&] { delete[] p; });
    }
}

struct alignas(256) Block {
    char bytes[kBig];
};

NOINLINE void site_new_aligned_fn() {
    for (int i = 0; i < 2; ++i) {
        auto* p = new Block;
        expect(aligned(p, 256), "aligned new");
        s_new_aligned.alloc(sizeof(Block));
        s_new_aligned.first_freed(i, p, sizeof(Block), [&] { delete p; });  // sized, aligned delete
    }
}

using MallocxFn = void* (*)(size_t, int);
using RallocxFn = void* (*)(void*, size_t, int);
using XallocxFn = size_t (*)(void*, size_t, size_t, int);
using DallocxFn = void (*)(void*, int);

NOINLINE void site_mallocx_fn() {
    auto mallocx = reinterpret_cast<MallocxFn>(dlsym(RTLD_DEFAULT, "mallocx"));
    auto rallocx = reinterpret_cast<RallocxFn>(dlsym(RTLD_DEFAULT, "rallocx"));
    auto xallocx = reinterpret_cast<XallocxFn>(dlsym(RTLD_DEFAULT, "xallocx"));
    auto dallocx = reinterpret_cast<DallocxFn>(dlsym(RTLD_DEFAULT, "dallocx"));
    if (mallocx == nullptr || rallocx == nullptr || xallocx == nullptr || dallocx == nullptr)
        return;  // not under gprof
    auto* a = static_cast<char*>(mallocx(kBig, 0));
    s_mallocx.alloc(kBig);
    auto* b = static_cast<char*>(mallocx(kBig, 0));
    s_mallocx.alloc(kBig);
    expect(a != nullptr && b != nullptr, "mallocx");
    b[0] = 9;
    b = static_cast<char*>(rallocx(b, 2 * kBig, 0));
    s_mallocx.free(kBig);
    s_mallocx.alloc(2 * kBig);
    expect(b != nullptr && b[0] == 9, "rallocx keeps contents");
    // Resized in place, where it can be: a free of the old size and an allocation of the new one
    // at the same address (glibc cannot resize on request: nothing changes there).
    if (xallocx(b, kBig + 4096, 0, 0) >= kBig + 4096) {
        s_mallocx.free(2 * kBig);
        s_mallocx.alloc(kBig + 4096);
        expect(b[0] == 9, "xallocx keeps contents");
    }
    dallocx(a, 0);
    s_mallocx.free(kBig);
    s_mallocx.kept = b;
}

// Small objects freed while the big samples live (in glibc's mode every free then reads the
// bitmap). None of these is sampled with certainty, so only their frees' correctness is checked
// (no crash, no other site's numbers change), not their counts.
NOINLINE void site_small_fn() {
    void* ptrs[1000];
    for (void*& p : ptrs) p = malloc(48);
    for (void* p : ptrs) free(p);
}

void print(const CertainSite& s) {
    s.print("TRUTH");
    if (s.kept != nullptr) printf("PAGE %s %d\n", s.name, aligned(s.kept, 4096) ? 1 : 0);
}

}  // namespace

int main() {
    site_malloc_fn();
    site_calloc_fn();
    site_realloc_fn();
    site_posix_memalign_fn();
    site_aligned_alloc_fn();
    site_valloc_fn();
    site_new_fn();
    site_new_aligned_fn();
    site_mallocx_fn();
    site_small_fn();
    for (const CertainSite* s : {&s_malloc, &s_calloc, &s_realloc, &s_memalign, &s_aligned_alloc,
                          &s_valloc, &s_new, &s_new_aligned, &s_mallocx})
        print(*s);
    fflush(stdout);
    return failures == 0 ? 0 : 1;
}
