/* Case 30: 8 detached threads allocate without pause while main returns; the at-exit dump runs
   while they still allocate. Usage: detached_exit */
#include <pthread.h>

#include "hostile.h"

static void* churn(void* arg) {
    unsigned seed = (unsigned)(size_t)arg;
    void* ring[32] = {0};
    for (;;) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % 32;
        free(ring[k]);
        ring[k] = malloc(16 + (seed >> 16) % 20000);
    }
    return NULL;
}

int main(void) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (size_t i = 0; i < 8; ++i) {
        pthread_t t;
        if (pthread_create(&t, &attr, churn, (void*)(i + 1)) != 0) hostile_fail("thread");
    }
    for (int i = 0; i < 100; ++i) free(malloc(100000));
    usleep(2000);
    puts("main returns");
    return 0;
}
