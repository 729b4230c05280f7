/* One of the distinct libraries of dlopen_storm (case 25), built once per ID: its constructor
   and destructor allocate, and storm_run_<ID> allocates in the library's own code. */
#include <stdlib.h>
#include <string.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

static char* g_block;

__attribute__((constructor)) static void CAT(storm_ctor_, ID)(void) {
    g_block = malloc(4096 + ID);
    if (g_block != NULL) memset(g_block, ID, 64);
    free(malloc(100000));
}

__attribute__((destructor)) static void CAT(storm_dtor_, ID)(void) {
    free(malloc(777));
    free(g_block);
}

__attribute__((noinline)) long CAT(storm_run_, ID)(void) {
    char* p = malloc(1000 + ID);
    if (p == NULL) return -1;
    p[0] = (char)ID;
    long r = p[0] + (g_block != NULL ? g_block[0] : 0);
    free(p);
    return r;
}
