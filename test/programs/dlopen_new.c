/* A plain C program (linked by gcc, no libstdc++) dlopens a C++ module and has it do `n` pairs of
   `new int` / `delete`. Under gprof with GPROF_MEM_PROFILE_RATE=1, gprof_read_memstats counts
   every allocation and free that passed through gprof, so the deltas around churn() show where the
   module's operator new and delete went: both must be n (plus a little slack), in both modes.

   Usage: dlopen_new [module-path [n]]; the module defaults to libnewdelete.so next to this
   program. Prints `mallocs_delta=<n> frees_delta=<n>`, or `gprof: absent` without gprof.
   `dlopen_new --new-handler` instead prints `new_handler_calls=<n>`: how often a failing
   operator new called the module's new-handler (2 is right; see libnewdelete.cpp). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/gprof.h"

int main(int argc, char** argv) {
    char path[PATH_MAX];
    int handler_test = argc > 1 && strcmp(argv[1], "--new-handler") == 0;
    if (argc > 1 && !handler_test) {
        snprintf(path, sizeof path, "%s", argv[1]);
    } else {
        char self[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len < 0) {
            perror("readlink /proc/self/exe");
            return 2;
        }
        self[len] = '\0';
        snprintf(path, sizeof path, "%s/libnewdelete.so", dirname(self));
    }
    int n = argc > 2 ? atoi(argv[2]) : 100000;

    void* module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return 2;
    }
    if (handler_test) {
        int (*calls)(void) = (int (*)(void))dlsym(module, "new_handler_calls");
        if (calls == NULL) {
            fprintf(stderr, "dlsym new_handler_calls: %s\n", dlerror());
            return 2;
        }
        printf("new_handler_calls=%d\n", calls());
        return 0;
    }
    void (*churn)(int) = (void (*)(int))dlsym(module, "churn");
    if (churn == NULL) {
        fprintf(stderr, "dlsym churn: %s\n", dlerror());
        return 2;
    }
    churn(10); /* warm up: lazy binding, first-use allocations */

    if (!gprof_read_memstats) {
        churn(n);
        printf("gprof: absent\n");
        return 0;
    }
    struct gprof_memstats before, after;
    if (gprof_read_memstats(&before, sizeof before) != 0) {
        printf("gprof_read_memstats failed\n");
        return 1;
    }
    churn(n);
    if (gprof_read_memstats(&after, sizeof after) != 0) {
        printf("gprof_read_memstats failed\n");
        return 1;
    }
    printf("mallocs_delta=%llu frees_delta=%llu\n",
           (unsigned long long)(after.mallocs - before.mallocs),
           (unsigned long long)(after.frees - before.frees));
    dlclose(module);
    return 0;
}
