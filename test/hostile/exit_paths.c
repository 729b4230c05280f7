/* Case 32: every way out but a normal exit, with allocations and a worker thread in flight:
   quick_exit, _exit, abort and exec. The status must be the one without gprof.
   Usage: exit_paths quick|_exit|abort|exec */
#include <pthread.h>
#include <sys/resource.h>

#include "hostile.h"

static void* churn(void* arg) {
    (void)arg;
    for (;;) free(malloc(5000));
    return NULL;
}

static void at_quick(void) {  /* (quick_exit flushes no stream) */
    static const char line[] = "at_quick_exit ran\n";
    if (write(1, line, sizeof line - 1) < 0) _exit(3);
}

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    pthread_t t;
    if (pthread_create(&t, NULL, churn, NULL) != 0) hostile_fail("thread");
    for (int i = 0; i < 1000; ++i) free(malloc(60000));
    at_quick_exit(at_quick);
    fflush(stdout);
    if (strcmp(argv[1], "quick") == 0) quick_exit(5);
    if (strcmp(argv[1], "_exit") == 0) _exit(6);
    if (strcmp(argv[1], "abort") == 0) {
        struct rlimit none = {0, 0};  /* no core file */
        setrlimit(RLIMIT_CORE, &none);
        abort();
    }
    if (strcmp(argv[1], "exec") == 0) {
        execl("/bin/sh", "sh", "-c", "echo exec ran; exit 9", (char*)NULL);
        hostile_fail("exec");
    }
    return 2;
}
