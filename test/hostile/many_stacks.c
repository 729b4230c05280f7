/* Case 36: 2^BITS distinct stacks, each 40 frames deeper than where they part, every one
   allocating once: far more stack nodes than gprof's table holds. The table must stop at its
   cap (and the profile say what it dropped); the program's RSS, written to RSS_FILE in KiB,
   shows what gprof kept. Usage: many_stacks BITS RSS_FILE */
#include "hostile.h"

static long g_calls;

__attribute__((noinline, noclone)) static long chain(int left) {
    if (left == 0) {
        char* p = malloc(24);
        if (p == NULL) return 0;
        p[0] = 1;
        long r = p[0];
        free(p);
        return r;
    }
    long r = chain(left - 1);
    __asm__ volatile("" ::: "memory");  /* no tail call: every level keeps its frame */
    return r + 0 * left;
}

static long walk(int depth, unsigned bits);

__attribute__((noinline)) static long zero(int depth, unsigned bits) {
    long r = walk(depth, bits);
    __asm__ volatile("" ::: "memory");
    return r;
}

__attribute__((noinline)) static long one(int depth, unsigned bits) {
    long r = walk(depth, bits);
    __asm__ volatile("" ::: "memory");
    return r + 0;
}

__attribute__((noinline)) static long walk(int depth, unsigned bits) {
    if (depth == 0) {
        ++g_calls;
        return chain(40);
    }
    long r = (bits & 1) ? one(depth - 1, bits >> 1) : zero(depth - 1, bits >> 1);
    __asm__ volatile("" ::: "memory");
    return r;
}

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    int bits = atoi(argv[1]);
    long total = 0;
    for (unsigned s = 0; s < (1u << bits); ++s) total += walk(bits, s);
    FILE* status = fopen("/proc/self/status", "r");
    FILE* out = fopen(argv[2], "w");
    char line[256];
    while (status != NULL && out != NULL && fgets(line, sizeof line, status) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) fprintf(out, "%ld\n", atol(line + 6));
    if (status != NULL) fclose(status);
    if (out != NULL) fclose(out);
    printf("stacks %ld, allocations %ld\n", g_calls, total);
    return 0;
}
