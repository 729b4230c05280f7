/* Case 18: a program that changes directory and execs another one: with LD_PRELOAD a relative
   path, the loader no longer finds gprof (and says so itself); a static child never loads it.
   Usage: chdir_exec DIR PROGRAM ARGS... */
#include "hostile.h"

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    void* p = malloc(1 << 20);
    free(p);
    if (chdir(argv[1]) != 0) hostile_fail("chdir");
    execv(argv[2], argv + 2);
    hostile_fail("exec");
}
