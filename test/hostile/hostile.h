/* Shared by the hostile-case programs: failing loudly, and waiting for a dump that was asked for
   with the dump signal (SIGUSR2, gprof's default). A program behaves the same with and without
   gprof; it only signals itself and waits for a dump's files when gprof is loaded (its weak API
   symbol is then present). */
#pragma once
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline void hostile_fail(const char* what) {
    fprintf(stderr, "FAIL: %s: %s\n", what, strerror(errno));
    exit(2);
}

static inline int hostile_gprof_loaded(void) {
    return dlsym(RTLD_DEFAULT, "gprof_read_memstats") != NULL;
}

static inline double hostile_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Files in dir whose name contains `part` and does not end in ".tmp". */
static inline int hostile_count_files(const char* dir, const char* part) {
    int n = 0;
    DIR* d = opendir(dir);
    if (d == NULL) return 0;
    for (struct dirent* e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        int temporary = len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0;
        if (strstr(e->d_name, part) != NULL && !temporary) ++n;
    }
    closedir(d);
    return n;
}

/* Under gprof, sends the dump signal (SIGUSR2) to this process and returns 1; without gprof
   (where SIGUSR2 would kill it) does nothing and returns 0. */
static inline int hostile_dump(void) {
    if (!hostile_gprof_loaded()) return 0;
    kill(getpid(), SIGUSR2);
    return 1;
}

/* The finished threads profiles of this pid in dir. */
static inline int hostile_count_own_threads(const char* dir) {
    char part[32];
    snprintf(part, sizeof part, ".%d.", (int)getpid());
    const char* tail = ".threads.pb.gz";
    int n = 0;
    DIR* d = opendir(dir);
    if (d == NULL) return 0;
    for (struct dirent* e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        n += strstr(e->d_name, part) != NULL && len > strlen(tail) &&
             strcmp(e->d_name + len - strlen(tail), tail) == 0;
    }
    closedir(d);
    return n;
}

/* Under gprof, sends the dump signal to this process and waits up to 20 s for the dump's threads
   profile (written after the heap profile) to appear in dir: one more of this pid's than before
   (an exec'ed image keeps the pid, and the earlier images' files are there), then a little longer
   for the profiles written after it. Returns 0 when it appeared, or without gprof. */
static inline int hostile_dump_and_wait(const char* dir) {
    if (!hostile_gprof_loaded()) return 0;
    int before = hostile_count_own_threads(dir);
    kill(getpid(), SIGUSR2);
    for (double end = hostile_now() + 20; hostile_now() < end;) {
        if (hostile_count_own_threads(dir) > before) {
            usleep(200 * 1000);
            return 0;
        }
        usleep(5000);
    }
    return -1;
}
