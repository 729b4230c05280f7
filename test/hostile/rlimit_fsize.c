/* Case 35: RLIMIT_FSIZE of 1 KiB (ulimit -f 1) and a heap profile far larger, at exit. Writing
   past the limit raises SIGXFSZ, whose default action kills the process: gprof must check the
   limit (or survive the signal) and leave the status as it is. Usage: rlimit_fsize */
#include <sys/resource.h>

#include "hostile.h"

#define SITE(n) \
    __attribute__((noinline)) static void* site_##n(size_t s) { return malloc(s + n); }
#define SITES(n) SITE(n##0) SITE(n##1) SITE(n##2) SITE(n##3) SITE(n##4) \
    SITE(n##5) SITE(n##6) SITE(n##7) SITE(n##8) SITE(n##9)
SITES(1) SITES(2) SITES(3) SITES(4) SITES(5)
#define CALL(n) site_##n(1000),
#define CALLS(n) CALL(n##0) CALL(n##1) CALL(n##2) CALL(n##3) CALL(n##4) \
    CALL(n##5) CALL(n##6) CALL(n##7) CALL(n##8) CALL(n##9)

int main(void) {
    struct rlimit limit = {1024, 1024};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) hostile_fail("setrlimit");
    void* kept[] = {CALLS(1) CALLS(2) CALLS(3) CALLS(4) CALLS(5)};
    long live = 0;
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; ++i) live += kept[i] != NULL;
    printf("kept %ld blocks\n", live);
    return 0;
}
