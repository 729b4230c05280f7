/* Case 19: N dump signals 100 us apart (10 kHz, or slower on a loaded machine) while 8 threads
   allocate and free. The handler may only wake gprof's dumper; every dump written must be
   complete. Usage: dump_storm N */
#include <pthread.h>
#include <stdatomic.h>

#include "hostile.h"

static atomic_int g_stop;

static void* churn(void* arg) {
    unsigned seed = (unsigned)(size_t)arg;
    void* ring[256] = {0};
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % 256;
        free(ring[k]);
        ring[k] = malloc(16 + (seed >> 16) % 8000);
    }
    for (int i = 0; i < 256; ++i) free(ring[i]);
    return NULL;
}

int main(int argc, char** argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    if (!hostile_gprof_loaded()) signal(SIGUSR2, SIG_IGN);  /* the bare run: nobody dumps */
    pthread_t threads[8];
    for (size_t i = 0; i < 8; ++i)
        if (pthread_create(&threads[i], NULL, churn, (void*)(i + 1)) != 0) hostile_fail("thread");
    long sent = 0;
    struct timespec pause = {0, 100000};
    for (; sent < n; ++sent) {
        if (kill(getpid(), SIGUSR2) != 0) break;
        nanosleep(&pause, NULL);
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 8; ++i) pthread_join(threads[i], NULL);
    printf("signals sent: %ld\n", sent);
    return 0;
}
