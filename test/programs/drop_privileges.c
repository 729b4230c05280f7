/* A process started as root that drops to nobody (uid and gid 65534) and writes profiles, as an
   nginx or PostgreSQL worker does. Dumps through the weak C API (nothing without gprof).

   drop_privileges shared: the root process dumps (gprof creates the output directory), then
     forks a child that drops privileges and dumps, and exits.
   drop_privileges denied: drops privileges at once, forks; parent and child each dump three
     times and exit (a fourth dump, at exit).

   Prints the same line with and without gprof; exit status 0, 1 when a step fails. */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/gprof.h"

static long allocate(int n) {
    long sum = 0;
    for (int i = 0; i < n; ++i) {
        char* p = malloc(1000 + (size_t)i);
        if (p == NULL) return -1;
        p[0] = 1;
        sum += p[0];
        if (i % 2) free(p);  /* half stay live */
    }
    return sum;
}

static int drop(void) {
    return setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0;
}

static void dump(int times) {
    for (int i = 0; i < times; ++i)
        if (gprof_dump) gprof_dump();
}

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    int shared = strcmp(argv[1], "shared") == 0;
    if (!shared && strcmp(argv[1], "denied") != 0) return 2;
    if (!shared && !drop()) {
        perror("drop privileges");
        return 1;
    }
    long sum = allocate(500);
    if (shared) dump(1);
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        if (shared && !drop()) _exit(3);
        if (allocate(700) != 700) _exit(4);
        dump(shared ? 1 : 3);
        exit(0);
    }
    if (!shared) dump(3);
    int status = 0;
    if (waitpid(child, &status, 0) != child) {
        perror("waitpid");
        return 1;
    }
    printf("%s: %ld blocks, child exit %d\n", argv[1], sum,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
