/* The malloc contract as glibc 2.36 defines it, as a self-checking program (after glibc's
   malloc/tst-malloc-too-large.c, tst-free-errno.c, tst-calloc.c, tst-realloc.c, tst-memalign.c,
   tst-posix_memalign.c and tst-aligned-alloc.c, and jemalloc's test/integration/{mallocx,rallocx,
   xallocx,sdallocx}.c).

   It must pass with no preload (the glibc baseline) and under gprof in both allocator modes.
   Prints one `FAIL: <what>` line per failed check and a final `N checks, M failed`; exits 1 if
   any check failed. The jemalloc API section runs only when mallocx and friends are present in
   the process (they are weak here), and says which on stdout. Built with -fno-builtin: the
   compiler must not fold malloc(0) == malloc(0), drop a free that "cannot" change errno, or
   assume that a malloc result cannot be NULL. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* jemalloc's non-standard API, present only when something (gprof) defines it. */
void* mallocx(size_t size, int flags) __attribute__((weak));
void* rallocx(void* ptr, size_t size, int flags) __attribute__((weak));
size_t xallocx(void* ptr, size_t size, size_t extra, int flags) __attribute__((weak));
size_t sallocx(const void* ptr, int flags) __attribute__((weak));
void dallocx(void* ptr, int flags) __attribute__((weak));
void sdallocx(void* ptr, size_t size, int flags) __attribute__((weak));
size_t nallocx(size_t size, int flags) __attribute__((weak));

#define MALLOCX_LG_ALIGN(la) ((int)(la))
#define MALLOCX_ALIGN(a) ((int)(ffsl((long)(a)) - 1))
#define MALLOCX_ZERO ((int)0x40)

static unsigned g_checks, g_failed;

#define CHECK(cond, ...)                                 \
    do {                                                 \
        ++g_checks;                                      \
        if (!(cond)) {                                   \
            ++g_failed;                                  \
            printf("FAIL: ");                            \
            printf(__VA_ARGS__);                         \
            printf(" [%s, line %d]\n", #cond, __LINE__); \
            fflush(stdout);                              \
        }                                                \
    } while (0)

/* Hides a constant from the optimiser (and from -Walloc-size-larger-than). */
static size_t hide(size_t x) {
    __asm__ volatile("" : "+r"(x));
    return x;
}

static void* hide_ptr(void* p) {
    __asm__ volatile("" : "+r"(p)::"memory");
    return p;
}

static int aligned_to(const void* p, size_t align) {
    return ((uintptr_t)p & (align - 1)) == 0;
}

static unsigned char pattern(size_t i, size_t seed) {
    return (unsigned char)((i * 131u + seed * 7u + 1u) ^ (i >> 8));
}

static void fill(void* p, size_t n, size_t seed) {
    unsigned char* c = p;
    for (size_t i = 0; i < n; ++i) c[i] = pattern(i, seed);
}

/* Index of the first byte that differs from the pattern, or n. */
static size_t first_bad(const void* p, size_t n, size_t seed) {
    const unsigned char* c = p;
    for (size_t i = 0; i < n; ++i)
        if (c[i] != pattern(i, seed)) return i;
    return n;
}

static size_t first_nonzero(const void* p, size_t n) {
    const unsigned char* c = p;
    /* fast path for big blocks: all zero iff c[0] == 0 and every byte equals the one before it */
    if (n == 0 || (c[0] == 0 && memcmp(c, c + 1, n - 1) == 0)) return n;
    for (size_t i = 0; i < n; ++i)
        if (c[i] != 0) return i;
    return n;
}

static size_t page_size(void) {
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* Sizes above PTRDIFF_MAX: glibc refuses them all with ENOMEM (tst-malloc-too-large). */
static const size_t k_too_large[] = {
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX - 4095,
    SIZE_MAX - 65536,
    (size_t)PTRDIFF_MAX + 1,
    (size_t)PTRDIFF_MAX + 4096,
    (size_t)PTRDIFF_MAX + ((size_t)1 << 40),
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_malloc_zero_and_free(void) {
    void* a = malloc(hide(0));
    void* b = malloc(hide(0));
    CHECK(a != NULL && b != NULL, "malloc(0) returned NULL (%p, %p)", a, b);
    CHECK(a != b, "malloc(0) twice returned the same pointer %p", a);
    free(a);
    free(b);

    errno = 77;
    free(hide_ptr(NULL));
    CHECK(errno == 77, "free(NULL) changed errno to %d", errno);

    /* free preserves errno, for heap and mmapped blocks (tst-free-errno). */
    static const size_t sizes[] = {1, 100, 4096, 200000, 8u << 20};
    for (size_t i = 0; i < COUNT(sizes); ++i) {
        void* p = malloc(hide(sizes[i]));
        CHECK(p != NULL, "malloc(%zu) failed", sizes[i]);
        if (!p) continue;
        memset(p, 1, sizes[i]);
        errno = 1234;
        free(hide_ptr(p));
        CHECK(errno == 1234, "free of a %zu-byte block changed errno to %d", sizes[i], errno);
    }
    /* cfree is an old alias of free; glibc 2.26+ no longer declares it, so it is not called. */
}

static void test_too_large(void) {
    for (size_t i = 0; i < COUNT(k_too_large); ++i) {
        size_t n = hide(k_too_large[i]);
        errno = 0;
        void* p = malloc(n);
        CHECK(p == NULL && errno == ENOMEM, "malloc(%#zx) = %p, errno %d (want NULL, ENOMEM)", n, p,
              errno);
        free(p);

        errno = 0;
        p = realloc(NULL, n);
        CHECK(p == NULL && errno == ENOMEM, "realloc(NULL, %#zx) = %p, errno %d", n, p, errno);
        free(p);

        void* old = malloc(64);
        fill(old, 64, 3);
        errno = 0;
        p = realloc(old, n);
        CHECK(p == NULL && errno == ENOMEM, "realloc(p, %#zx) = %p, errno %d", n, p, errno);
        if (p == NULL) {
            CHECK(first_bad(old, 64, 3) == 64, "failed realloc(p, %#zx) changed the old block", n);
            free(old);
        } else {
            free(p);
        }

        errno = 0;
        p = calloc(1, n);
        CHECK(p == NULL && errno == ENOMEM, "calloc(1, %#zx) = %p, errno %d", n, p, errno);
        free(p);

        errno = 0;
        p = memalign(64, n);
        CHECK(p == NULL && errno == ENOMEM, "memalign(64, %#zx) = %p, errno %d", n, p, errno);
        free(p);

        errno = 0;
        p = aligned_alloc(4096, n);
        CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(4096, %#zx) = %p, errno %d", n, p,
              errno);
        free(p);

        errno = 0;
        p = valloc(n);
        CHECK(p == NULL && errno == ENOMEM, "valloc(%#zx) = %p, errno %d", n, p, errno);
        free(p);

        errno = 0;
        p = pvalloc(n);
        CHECK(p == NULL && errno == ENOMEM, "pvalloc(%#zx) = %p, errno %d", n, p, errno);
        free(p);

        static const size_t aligns[] = {8, 16, 64, 4096};
        for (size_t j = 0; j < COUNT(aligns); ++j) {
            void* sentinel = &g_checks;
            void* out = sentinel;
            int rc = posix_memalign(&out, aligns[j], n);
            CHECK(rc == ENOMEM, "posix_memalign(align %zu, %#zx) returned %d, want ENOMEM",
                  aligns[j], n, rc);
            CHECK(out == sentinel, "failed posix_memalign(align %zu, %#zx) wrote *memptr = %p",
                  aligns[j], n, out);
            if (rc == 0) free(out);
        }
    }
}

static void test_calloc(void) {
    static const size_t bad[][2] = {
        {SIZE_MAX / 2, 3},    {3, SIZE_MAX / 2},
        {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX, 2},        {((size_t)1 << 63) + 1, 2},
    };
    for (size_t i = 0; i < COUNT(bad); ++i) {
        errno = 0;
        void* p = calloc(hide(bad[i][0]), hide(bad[i][1]));
        CHECK(p == NULL && errno == ENOMEM, "calloc(%#zx, %#zx) = %p, errno %d (want ENOMEM)",
              bad[i][0], bad[i][1], p, errno);
        free(p);
    }

    /* glibc: a zero-byte calloc is a malloc(0): a unique, freeable pointer (tst-calloc null_test
       only asks for no crash; glibc and jemalloc both return a pointer). */
    static const size_t zero[][2] = {{0, 0}, {0, SIZE_MAX}, {SIZE_MAX, 0}, {0, 1}, {1, 0}};
    for (size_t i = 0; i < COUNT(zero); ++i) {
        void* p = calloc(hide(zero[i][0]), hide(zero[i][1]));
        CHECK(p != NULL, "calloc(%#zx, %#zx) returned NULL", zero[i][0], zero[i][1]);
        free(p);
    }

    /* calloc zeroes memory that malloc handed out and the program dirtied before. */
    enum { kBlocks = 8 };
    for (size_t size = 16; size <= ((size_t)4 << 20); size *= 2) {
        for (size_t variant = 0; variant < 2; ++variant) {
            size_t n = size + variant * (size / 2 + 8); /* also sizes between the powers of two */
            void* blocks[kBlocks];
            int count = size <= 256 * 1024 ? kBlocks : 3; /* big ones cost page faults */
            for (int i = 0; i < count; ++i) {
                blocks[i] = malloc(hide(n));
                if (blocks[i]) memset(blocks[i], 0xAA, n);
            }
            for (int i = 0; i < count; ++i) free(blocks[i]);
            for (int i = 0; i < count; ++i) {
                /* alternate the factor order: calloc(n, 1) and calloc(1, n), and n/8 x 8 */
                void* p = i % 3 == 0   ? calloc(hide(n), 1)
                          : i % 3 == 1 ? calloc(1, hide(n))
                                       : calloc(hide(n / 8), 8);
                size_t len = i % 3 == 2 ? n / 8 * 8 : n;
                CHECK(p != NULL, "calloc of %zu bytes failed", len);
                blocks[i] = p;
                if (!p) continue;
                size_t bad_at = first_nonzero(p, len);
                CHECK(bad_at == len, "calloc of %zu bytes (reused memory): byte %zu is %#x", len,
                      bad_at, bad_at < len ? ((unsigned char*)p)[bad_at] : 0);
                memset(p, 0x55, len);
            }
            for (int i = 0; i < count; ++i) free(blocks[i]);
        }
    }
}

static void test_reallocarray(void) {
    errno = 0;
    void* p = reallocarray(NULL, hide(SIZE_MAX / 2), 3);
    CHECK(p == NULL && errno == ENOMEM, "reallocarray(NULL, SIZE_MAX/2, 3) = %p, errno %d", p,
          errno);
    free(p);

    void* old = malloc(100);
    fill(old, 100, 9);
    static const size_t bad[][2] = {
        {SIZE_MAX / 2, 3}, {(size_t)1 << 33, (size_t)1 << 33}, {SIZE_MAX, SIZE_MAX}};
    for (size_t i = 0; i < COUNT(bad); ++i) {
        errno = 0;
        p = reallocarray(old, hide(bad[i][0]), hide(bad[i][1]));
        CHECK(p == NULL && errno == ENOMEM, "reallocarray(p, %#zx, %#zx) = %p, errno %d", bad[i][0],
              bad[i][1], p, errno);
        if (p) {
            old = p; /* keep going with whatever came back */
        }
        CHECK(first_bad(old, 100, 9) == 100, "failed reallocarray changed the original block");
    }
    p = reallocarray(old, hide(250), 8);
    CHECK(p != NULL, "reallocarray(p, 250, 8) failed");
    if (p) {
        CHECK(first_bad(p, 100, 9) == 100, "reallocarray(p, 250, 8) lost the contents");
        memset(p, 0, 2000);
        old = p;
    }
    free(old);

    p = reallocarray(NULL, 10, 10);
    CHECK(p != NULL, "reallocarray(NULL, 10, 10) failed");
    if (p) memset(p, 1, 100);
    free(p);
}

static const size_t k_bad_posix_align[] = {
    0, 1, 2, 3, 4, 12, 24, 0x300, SIZE_MAX, SIZE_MAX - 7, ((size_t)1 << 63) + 8};

static void test_posix_memalign_errors(void) {
    for (size_t i = 0; i < COUNT(k_bad_posix_align); ++i) {
        void* sentinel = &g_failed;
        void* out = sentinel;
        int rc = posix_memalign(&out, hide(k_bad_posix_align[i]), 16);
        CHECK(rc == EINVAL, "posix_memalign(align %#zx) returned %d, want EINVAL",
              k_bad_posix_align[i], rc);
        CHECK(out == sentinel, "posix_memalign(align %#zx) wrote *memptr = %p on error",
              k_bad_posix_align[i], out);
        if (rc == 0) free(out);
    }
}

static void check_block(void* p, size_t align, size_t size, const char* fn) {
    CHECK(p != NULL, "%s(align %zu, size %zu) returned NULL", fn, align, size);
    if (!p) return;
    CHECK(aligned_to(p, align), "%s(align %zu, size %zu) = %p is misaligned", fn, align, size, p);
    CHECK(malloc_usable_size(p) >= size, "%s(align %zu, size %zu): usable size %zu", fn, align,
          size, malloc_usable_size(p));
    fill(p, size, align + size);
    CHECK(first_bad(p, size, align + size) == size, "%s(align %zu, size %zu): block not writable",
          fn, align, size);
}

static void test_alignments(void) {
    for (size_t align = 1; align <= ((size_t)1 << 20); align *= 2) {
        const size_t sizes[] = {0, 1, 13, align, align + 1, 3 * align + 5, 65537};
        struct {
            void* p;
            size_t size;
        } blocks[3 * COUNT(sizes)];
        size_t nblocks = 0;
        for (size_t i = 0; i < COUNT(sizes); ++i) {
            size_t size = hide(sizes[i]);
            if (align >= sizeof(void*)) {
                void* p = NULL;
                int rc = posix_memalign(&p, align, size);
                CHECK(rc == 0, "posix_memalign(align %zu, size %zu) returned %d", align, size, rc);
                if (rc == 0) {
                    check_block(p, align, size, "posix_memalign");
                    blocks[nblocks].p = p;
                    blocks[nblocks++].size = size;
                }
            }
            void* m = memalign(align, size);
            check_block(m, align, size, "memalign");
            if (m) {
                blocks[nblocks].p = m;
                blocks[nblocks++].size = size;
            }
            void* a = aligned_alloc(align, size);
            check_block(a, align, size, "aligned_alloc");
            if (a) {
                blocks[nblocks].p = a;
                blocks[nblocks++].size = size;
            }
        }
        /* Every block still holds its own pattern: no two of them overlap. */
        for (size_t i = 0; i < nblocks; ++i) {
            size_t n = blocks[i].size;
            CHECK(first_bad(blocks[i].p, n, align + n) == n,
                  "aligned block (align %zu, size %zu) overwritten by another one", align, n);
            free(blocks[i].p);
        }
    }

    /* glibc 2.36: aligned_alloc has memalign's rules, so a size that is not a multiple of the
       alignment, or a zero alignment, is fine. */
    void* p = aligned_alloc(hide(64), hide(65));
    CHECK(p != NULL && aligned_to(p, 64), "aligned_alloc(64, 65) = %p", p);
    free(p);
    p = aligned_alloc(hide(0), hide(64));
    CHECK(p != NULL, "aligned_alloc(0, 64) = NULL");
    free(p);

    /* memalign rounds a non-power-of-two alignment up to the next power of two. */
    static const size_t odd[][2] = {
        {24, 32}, {0x300, 1024}, {100, 128}, {3000, 4096}, {5000, 8192}};
    for (size_t i = 0; i < COUNT(odd); ++i) {
        for (int k = 0; k < 4; ++k) { /* several, so a lucky alignment does not pass */
            p = memalign(hide(odd[i][0]), 40 + 1000 * (size_t)k);
            CHECK(p != NULL && aligned_to(p, odd[i][1]),
                  "memalign(%zu, ...) = %p, not aligned to %zu", odd[i][0], p, odd[i][1]);
            if (p) memset(p, 7, 40 + 1000 * (size_t)k);
            free(p);
        }
    }
    static const size_t too_big_align[] = {SIZE_MAX, SIZE_MAX / 2 + 2, SIZE_MAX - 4095};
    for (size_t i = 0; i < COUNT(too_big_align); ++i) {
        errno = 0;
        p = memalign(hide(too_big_align[i]), 1);
        CHECK(p == NULL && errno == EINVAL, "memalign(%#zx, 1) = %p, errno %d (want EINVAL)",
              too_big_align[i], p, errno);
        free(p);
    }

    size_t page = page_size();
    static const size_t vsizes[] = {0, 1, 100, 4095, 4096, 4097, 10000, 1u << 20};
    for (size_t i = 0; i < COUNT(vsizes); ++i) {
        size_t n = hide(vsizes[i]);
        p = valloc(n);
        CHECK(p != NULL && aligned_to(p, page), "valloc(%zu) = %p, not page aligned", n, p);
        if (p) {
            CHECK(malloc_usable_size(p) >= n, "valloc(%zu): usable size %zu", n,
                  malloc_usable_size(p));
            memset(p, 3, n);
        }
        free(p);

        p = pvalloc(n);
        size_t rounded = (n + page - 1) / page * page;
        CHECK(p != NULL && aligned_to(p, page), "pvalloc(%zu) = %p, not page aligned", n, p);
        if (p) {
            CHECK(malloc_usable_size(p) >= rounded, "pvalloc(%zu): usable size %zu < %zu", n,
                  malloc_usable_size(p), rounded);
            memset(p, 3, rounded);
        }
        free(p);
    }
    errno = 0;
    p = pvalloc(hide(SIZE_MAX));
    CHECK(p == NULL && errno == ENOMEM, "pvalloc(SIZE_MAX) = %p, errno %d", p, errno);
    free(p);
    errno = 0;
    p = pvalloc(hide(SIZE_MAX - page + 2));
    CHECK(p == NULL && errno == ENOMEM, "pvalloc(SIZE_MAX - page + 2) = %p, errno %d", p, errno);
    free(p);
}

static const size_t k_realloc_sizes[] = {1,     7,     16,     24,     100,      1000,    4096,
                                         10000, 65536, 100000, 300000, 1u << 20, 3u << 20};

static void test_realloc(void) {
    for (size_t i = 0; i < COUNT(k_realloc_sizes); ++i) {
        size_t n = k_realloc_sizes[i];
        static const size_t factors[] = {2, 10};
        for (size_t f = 0; f < COUNT(factors); ++f) {
            size_t big = n * factors[f];
            char* p = malloc(hide(n));
            CHECK(p != NULL, "malloc(%zu) failed", n);
            if (!p) continue;
            fill(p, n, n);
            char* q = realloc(p, hide(big));
            CHECK(q != NULL, "realloc(%zu -> %zu) failed", n, big);
            if (!q) {
                free(p);
                continue;
            }
            size_t bad = first_bad(q, n, n);
            CHECK(bad == n, "realloc(%zu -> %zu) lost the contents at byte %zu", n, big, bad);
            CHECK(malloc_usable_size(q) >= big, "realloc(%zu -> %zu): usable size %zu", n, big,
                  malloc_usable_size(q));
            memset(q + n, 0x5A, big - n);
            /* and back down: shrinking keeps the prefix */
            size_t small = n / 2 + 1;
            char* r = realloc(q, hide(small));
            CHECK(r != NULL, "realloc(%zu -> %zu) failed", big, small);
            if (!r) {
                free(q);
                continue;
            }
            bad = first_bad(r, small, n);
            CHECK(bad == small, "realloc(%zu -> %zu) lost the prefix at byte %zu", big, small, bad);
            free(r);
        }
    }

    /* A chain of growth steps through every size class boundary region. */
    char* p = NULL;
    size_t have = 0;
    for (size_t n = 1; n <= ((size_t)2 << 20); n = n * 5 / 4 + 1) {
        char* q = realloc(p, hide(n));
        CHECK(q != NULL, "realloc chain to %zu failed", n);
        if (!q) break;
        CHECK(first_bad(q, have, 42) == have, "realloc chain to %zu lost the contents", n);
        p = q;
        fill(p, n, 42);
        have = n;
    }
    free(p);

    /* realloc(NULL, n) is malloc(n) */
    p = realloc(NULL, hide(0));
    CHECK(p != NULL, "realloc(NULL, 0) returned NULL");
    free(p);
    p = realloc(NULL, hide(1000));
    CHECK(p != NULL && malloc_usable_size(p) >= 1000, "realloc(NULL, 1000) = %p", (void*)p);
    if (p) memset(p, 1, 1000);
    free(p);

    /* glibc: realloc(p, 0) frees p and returns NULL, errno untouched. */
    static const size_t before[] = {1, 100, 5000, 1u << 20};
    for (size_t i = 0; i < COUNT(before); ++i) {
        p = malloc(hide(before[i]));
        errno = 4321;
        void* r = realloc(p, hide(0));
        CHECK(r == NULL, "realloc(p[%zu], 0) = %p, want NULL (glibc frees p)", before[i], r);
        CHECK(errno == 4321, "realloc(p[%zu], 0) changed errno to %d", before[i], errno);
        free(r);
    }
}

static void test_usable_size(void) {
    CHECK(malloc_usable_size(hide_ptr(NULL)) == 0, "malloc_usable_size(NULL) = %zu",
          malloc_usable_size(hide_ptr(NULL)));
    for (size_t n = 0; n <= 5000; n = n < 64 ? n + 1 : n * 9 / 8) {
        void* p = malloc(hide(n));
        CHECK(p != NULL && malloc_usable_size(p) >= n, "malloc_usable_size(malloc(%zu)) = %zu", n,
              p ? malloc_usable_size(p) : 0);
        if (p) memset(p, 0xEE, malloc_usable_size(p)); /* the whole usable size is the caller's */
        free(p);
    }
    static const size_t big[] = {65536, 131072, 200000, 1u << 20, (3u << 20) + 17, 8u << 20};
    for (size_t i = 0; i < COUNT(big); ++i) {
        void* p = malloc(hide(big[i]));
        CHECK(p != NULL && malloc_usable_size(p) >= big[i], "malloc_usable_size(malloc(%zu))",
              big[i]);
        if (p) memset(p, 0xEE, malloc_usable_size(p));
        free(p);
        p = calloc(1, hide(big[i]));
        CHECK(p != NULL && malloc_usable_size(p) >= big[i], "malloc_usable_size(calloc(%zu))",
              big[i]);
        free(p);
    }
}

/* ---- jemalloc's API, only under gprof ---- */

static int have_jemalloc_api(void) {
    int n = !!mallocx + !!rallocx + !!xallocx + !!sallocx + !!dallocx + !!sdallocx + !!nallocx;
    if (n != 0 && n != 7) {
        CHECK(0, "only %d of the 7 *allocx functions are present", n);
        return 0;
    }
    return n == 7;
}

static void test_jemalloc_api(void) {
    static const size_t sizes[] = {1, 8, 100, 4096, 5000, 100000, (1u << 20) + 3};
    for (size_t align = 1; align <= ((size_t)1 << 20); align *= 2) {
        int flags = MALLOCX_ALIGN(align);
        for (size_t i = 0; i < COUNT(sizes); ++i) {
            size_t n = hide(sizes[i]);
            void* p = mallocx(n, flags);
            CHECK(p != NULL, "mallocx(%zu, ALIGN(%zu)) failed", n, align);
            if (!p) continue;
            CHECK(aligned_to(p, align), "mallocx(%zu, ALIGN(%zu)) = %p misaligned", n, align, p);
            size_t real = sallocx(p, 0);
            CHECK(real >= n, "sallocx(mallocx(%zu, ALIGN(%zu))) = %zu", n, align, real);
            CHECK(nallocx(n, flags) >= n, "nallocx(%zu, ALIGN(%zu)) = %zu", n, align,
                  nallocx(n, flags));
            CHECK(malloc_usable_size(p) >= n, "malloc_usable_size(mallocx(%zu)) = %zu", n,
                  malloc_usable_size(p));
            fill(p, n, align);
            void* q = rallocx(p, n * 3, flags);
            CHECK(q != NULL, "rallocx(%zu -> %zu, ALIGN(%zu)) failed", n, n * 3, align);
            if (!q) {
                dallocx(p, flags);
                continue;
            }
            CHECK(aligned_to(q, align), "rallocx(..., ALIGN(%zu)) = %p misaligned", align, q);
            CHECK(first_bad(q, n, align) == n, "rallocx(%zu -> %zu, ALIGN(%zu)) lost contents", n,
                  n * 3, align);
            CHECK(sallocx(q, 0) >= n * 3, "sallocx after rallocx to %zu = %zu", n * 3,
                  sallocx(q, 0));
            /* sdallocx with the size and flags of the allocation */
            if (i % 2)
                sdallocx(q, n * 3, flags);
            else
                dallocx(q, flags);
        }
    }

    /* MALLOCX_ZERO zeroes dirty, reused memory, alone and with an alignment. */
    for (size_t n = 16; n <= ((size_t)4 << 20); n *= 4) {
        void* dirty[4];
        for (int i = 0; i < 4; ++i) {
            dirty[i] = malloc(n);
            if (dirty[i]) memset(dirty[i], 0xAA, n);
        }
        for (int i = 0; i < 4; ++i) free(dirty[i]);
        for (int i = 0; i < 4; ++i) {
            int flags = MALLOCX_ZERO | (i % 2 ? MALLOCX_ALIGN(64) : 0);
            void* p = mallocx(hide(n), flags);
            CHECK(p != NULL, "mallocx(%zu, ZERO) failed", n);
            if (!p) continue;
            CHECK(first_nonzero(p, n) == n, "mallocx(%zu, ZERO%s) not zeroed", n,
                  i % 2 ? "|ALIGN(64)" : "");
            memset(p, 0xBB, n);
            dirty[i] = p;
        }
        for (int i = 0; i < 4; ++i)
            if (dirty[i]) dallocx(dirty[i], 0);
    }

    /* rallocx(ZERO) growth: bytes past the old real size are zero, the old ones are kept. */
    for (size_t n = 10; n <= 200000; n *= 7) {
        void* p = mallocx(n, 0);
        if (!p) continue;
        size_t old_real = sallocx(p, 0);
        fill(p, old_real, 5);
        void* q = rallocx(p, n * 5, MALLOCX_ZERO);
        CHECK(q != NULL, "rallocx(%zu -> %zu, ZERO) failed", n, n * 5);
        if (!q) {
            dallocx(p, 0);
            continue;
        }
        CHECK(first_bad(q, old_real, 5) == old_real, "rallocx(ZERO) lost contents (%zu)", n);
        CHECK(first_nonzero((char*)q + old_real, n * 5 - old_real) == n * 5 - old_real,
              "rallocx(%zu -> %zu, ZERO): new bytes not zero", n, n * 5);
        dallocx(q, 0);
    }

    /* xallocx: returns the real size, which sallocx then agrees with; the contents stay. */
    for (size_t n = 100; n <= 1000000; n *= 10) {
        char* p = mallocx(n, 0);
        if (!p) continue;
        fill(p, n, 11);
        size_t real = xallocx(p, n / 2, 0, 0);
        CHECK(real >= n / 2, "xallocx(p[%zu], %zu) = %zu", n, n / 2, real);
        CHECK(sallocx(p, 0) == real, "xallocx(p[%zu]) = %zu but sallocx = %zu", n, real,
              sallocx(p, 0));
        size_t keep = real < n ? real : n;
        CHECK(first_bad(p, keep, 11) == keep, "xallocx(p[%zu], %zu) lost contents", n, n / 2);
        real = xallocx(p, real, n, 0); /* try to grow in place; may or may not */
        CHECK(real == sallocx(p, 0), "xallocx grow: %zu but sallocx = %zu", real, sallocx(p, 0));
        CHECK(first_bad(p, keep, 11) == keep, "xallocx grow of p[%zu] lost contents", n);
        sdallocx(p, sallocx(p, 0), 0); /* any size between the request and the real size */
    }

    for (size_t n = 1; n <= ((size_t)8 << 20); n = n * 3 + 1) {
        size_t r = nallocx(n, 0);
        CHECK(r >= n, "nallocx(%zu, 0) = %zu", n, r);
        r = nallocx(n, MALLOCX_ALIGN(4096));
        CHECK(r >= n, "nallocx(%zu, ALIGN(4096)) = %zu", n, r);
    }

    /* One heap: malloc'd memory goes to dallocx, mallocx'd memory to free and realloc. */
    void* a = malloc(300);
    void* b = mallocx(300, MALLOCX_ALIGN(64));
    void* c = calloc(3, 100);
    CHECK(a && b && c, "mixed allocations failed");
    if (a) dallocx(a, 0);
    if (b) {
        fill(b, 300, 1);
        void* r = realloc(b, 5000);
        CHECK(r != NULL && first_bad(r, 300, 1) == 300, "realloc of a mallocx block");
        free(r ? r : b);
    }
    if (c) sdallocx(c, 300, 0);

    /* Too large: NULL, and gprof's shim sets ENOMEM (jemalloc itself does not promise it). */
    errno = 0;
    void* p = mallocx(hide(SIZE_MAX / 2 + 1), 0);
    CHECK(p == NULL && errno == ENOMEM, "mallocx(PTRDIFF_MAX + 1) = %p, errno %d", p, errno);
    if (p) dallocx(p, 0);
    void* keep = mallocx(64, 0);
    if (keep) {
        fill(keep, 64, 2);
        errno = 0;
        p = rallocx(keep, hide(SIZE_MAX / 2 + 1), 0);
        CHECK(p == NULL && errno == ENOMEM, "rallocx(p, PTRDIFF_MAX + 1) = %p, errno %d", p, errno);
        CHECK(first_bad(keep, 64, 2) == 64, "failed rallocx changed the old block");
        dallocx(p ? p : keep, 0);
    }
}

int main(void) {
    test_malloc_zero_and_free();
    test_too_large();
    test_calloc();
    test_reallocarray();
    test_posix_memalign_errors();
    test_alignments();
    test_realloc();
    test_usable_size();
    if (have_jemalloc_api()) {
        printf("jemalloc API: present\n");
        test_jemalloc_api();
    } else {
        printf("jemalloc API: absent, skipped\n");
    }
    printf("%u checks, %u failed\n", g_checks, g_failed);
    return g_failed ? 1 : 0;
}
