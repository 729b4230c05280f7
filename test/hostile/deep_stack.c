/* Case 27: a thread with a 256 KiB stack recurses until less than 4 KiB of it is left, then
   allocates 1 MiB (sampled at any rate) and frees it, `times` times over (1 by default). gprof's
   hook must fit in what is left (or decline to sample), and so must its signals' frames: the CPU
   profile's signal arrives wherever the thread is. Usage: deep_stack [times] */
#include <pthread.h>

#include "hostile.h"

static char* g_low;  /* lowest usable stack address of the thread */
static long g_depth;

__attribute__((noinline)) static long descend(long depth) {
    volatile char frame[256];
    frame[0] = (char)depth;
    if ((char*)frame - g_low < 4096) {
        g_depth = depth;
        char* p = malloc(1 << 20);
        if (p == NULL) return -1;
        p[0] = frame[0];
        long r = p[0] != 0;
        free(p);
        return r;
    }
    return descend(depth + 1) + frame[0] * 0;
}

static void* run(void* arg) {
    long times = *(long*)arg;
    pthread_attr_t attr;
    void* addr;
    size_t size;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    g_low = (char*)addr;
    long result = 0;
    for (long i = 0; i < times && result >= 0; ++i) result = descend(0);
    return (void*)result;
}

int main(int argc, char** argv) {
    long times = argc > 1 ? atol(argv[1]) : 1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_attr_setguardsize(&attr, 4096);
    pthread_t t;
    if (pthread_create(&t, &attr, run, &times) != 0) hostile_fail("thread");
    void* result;
    pthread_join(t, &result);
    printf("recursed %s, allocated at the bottom: %s\n", g_depth > 100 ? "deep" : "shallow",
           (long)result >= 0 ? "yes" : "no");
    return 0;
}
