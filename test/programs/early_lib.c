/* A library whose constructor allocates before main, and possibly before gprof's own
   constructor has run: 1 MiB allocated and freed, a realloc chain, a calloc, and one block kept
   for main to check. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

static unsigned char* g_kept;
static const char* g_problem = "constructor did not run";

__attribute__((constructor(101))) static void early_lib_init(void) {
    enum { kBig = 1 << 20, kKept = 4096 };
    unsigned char* big = malloc(kBig);
    if (big == NULL) {
        g_problem = "malloc(1 MiB) failed in the constructor";
        return;
    }
    memset(big, 0x11, kBig);
    free(big);

    char* r = realloc(NULL, 100);
    for (size_t n = 200; r != NULL && n <= 300000; n *= 3) r = realloc(r, n);
    if (r == NULL) {
        g_problem = "realloc chain failed in the constructor";
        return;
    }
    free(r);

    unsigned char* c = calloc(1000, 10);
    if (c == NULL) {
        g_problem = "calloc failed in the constructor";
        return;
    }
    for (int i = 0; i < 10000; ++i)
        if (c[i] != 0) {
            g_problem = "calloc memory not zeroed in the constructor";
            free(c);
            return;
        }
    free(c);

    g_kept = malloc(kKept);
    if (g_kept == NULL) {
        g_problem = "malloc(4096) failed in the constructor";
        return;
    }
    memset(g_kept, 0x22, kKept);
    g_problem = NULL;
}

/* "early_lib: ok" when the constructor ran and its kept block is intact (and is then freed). */
const char* early_lib_status(void) {
    if (g_problem != NULL) return g_problem;
    for (int i = 0; i < 4096; ++i)
        if (g_kept[i] != 0x22) return "the block kept by the constructor was overwritten";
    free(g_kept);
    g_kept = NULL;
    g_problem = "early_lib_status called twice";
    return "early_lib: ok";
}
