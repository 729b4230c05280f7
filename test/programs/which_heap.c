/* Which allocator serves this program's malloc? glibc's own heap shows the program's small
   blocks in mallinfo2(); gprof's embedded jemalloc leaves glibc's arenas empty. Prints
   `heap: glibc` or `heap: other`. The e2e suite uses it to check that GPROF_ALLOCATOR=libc really
   is glibc, that jemalloc (the default) really is not, and that a bad value falls back to the
   default. With `--footprint` it prints instead what glibc's heap holds when main starts and once
   the blocks are freed again (`start N` and `end N`, mallinfo2's bytes in use): with
   GPROF_ALLOCATOR=libc, what gprof leaves in the program's heap. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
    enum { kBlocks = 2000, kSize = 1000 };
    static void* blocks[kBlocks];
    int footprint = argc > 1 && strcmp(argv[1], "--footprint") == 0;
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < kBlocks; ++i) {
        blocks[i] = malloc(kSize);
        if (blocks[i] != NULL) memset(blocks[i], 1, kSize);
    }
    struct mallinfo2 after = mallinfo2();
    size_t grown = after.uordblks > before.uordblks ? after.uordblks - before.uordblks : 0;
    for (int i = 0; i < kBlocks; ++i) free(blocks[i]);
    if (footprint) {
        printf("start %zu\nend %zu\n", before.uordblks, mallinfo2().uordblks);
        return 0;
    }
    /* glibc: at least the 2 MB requested are in use in its arena */
    printf("heap: %s\n", grown >= (size_t)kBlocks * kSize ? "glibc" : "other");
    return 0;
}
