/* Used by case 35 (RLIMIT_NPROC): allocates, tries to start a thread (which fails under the
   limit, with or without gprof), and exits. Usage: one_thread */
#include <pthread.h>

#include "hostile.h"

static void* nothing(void* arg) { return arg; }

int main(void) {
    for (int i = 0; i < 1000; ++i) free(malloc(10000));
    pthread_t t;
    int r = pthread_create(&t, NULL, nothing, NULL);
    if (r == 0) pthread_join(t, NULL);
    printf("pthread_create: %s\n", r == 0 ? "ok" : r == EAGAIN ? "EAGAIN" : "other error");
    return 0;
}
