/* Case 6: run with another allocator earlier in LD_PRELOAD (tcmalloc, Debian's jemalloc): every
   function the other allocator lacks and gprof exports (reallocarray, pvalloc, memalign,
   malloc_usable_size...) is handed the other allocator's pointers. Each line must read as it does
   with the other allocator alone. Usage: mixed_heaps */
#include <malloc.h>
#include <stdint.h>

#include "hostile.h"

int main(void) {
    int bad = 0;
    for (int i = 0; i < 2000; ++i) {
        size_t n = 1 + (size_t)i * 37 % 70000;
        char* p = malloc(n);
        if (p == NULL || malloc_usable_size(p) < n) ++bad;
        memset(p, 7, n);
        char* q = reallocarray(p, 2, n);
        if (q == NULL || q[n - 1] != 7 || malloc_usable_size(q) < 2 * n) ++bad;
        free(q);
        void* v = pvalloc(n);
        if (v == NULL || (uintptr_t)v % 4096 != 0) ++bad;
        free(v);
        void* m = memalign(256, n);
        if (m == NULL || (uintptr_t)m % 256 != 0) ++bad;
        free(m);
        void* a = aligned_alloc(64, 64 * (1 + n / 64));
        if (a == NULL || (uintptr_t)a % 64 != 0) ++bad;
        free(a);
        void* pm = NULL;
        if (posix_memalign(&pm, 128, n) != 0 || (uintptr_t)pm % 128 != 0) ++bad;
        free(pm);
        void* va = valloc(n);
        if (va == NULL || (uintptr_t)va % 4096 != 0) ++bad;
        free(va);
        int* c = calloc(n, sizeof(int));
        if (c == NULL || c[n - 1] != 0) ++bad;
        c = realloc(c, 10);
        free(c);
    }
    errno = 0;
    volatile size_t half = SIZE_MAX / 2;  /* (not folded into a compile-time overflow) */
    void* big = reallocarray(NULL, half, 3);
    printf("failures %d; overflowing reallocarray: %s\n", bad,
           big == NULL && errno == ENOMEM ? "NULL, ENOMEM" : "other");
    return 0;
}
