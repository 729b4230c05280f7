/* A plain program for hostile GPROF_* values: allocates at a few sites, asks for one dump with the
   dump signal (unless GPROF_SIGNAL is set: it may name no signal), prints a fixed line and exits
   0. Usage: plain */
#include "hostile.h"

__attribute__((noinline, noclone)) static void* site_a(size_t n) { return malloc(n); }
__attribute__((noinline, noclone)) static void* site_b(size_t n) { return calloc(1, n); }

int main(void) {
    long sum = 0;
    for (int i = 0; i < 3000; ++i) {
        char* p = i % 2 ? site_a(2000 + (size_t)i) : site_b(700);
        if (p == NULL) hostile_fail("malloc");
        p[0] = 1;
        sum += p[0];
        if (i % 3 == 0) free(p);
    }
    if (getenv("GPROF_SIGNAL") == NULL && hostile_dump()) usleep(300 * 1000);
    printf("plain: %ld blocks\n", sum);
    return 0;
}
