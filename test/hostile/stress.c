/* Case 7 (after mimalloc's test-stress): 32 threads x ITER rounds; each round allocates blocks
   of random sizes filled with a cookie derived from the block's address and size, checks and
   frees half of them, and hands the rest to a shared slot array that any thread checks and frees.
   A block handed to the wrong allocator, or corrupted, fails a cookie. Usage: stress ITER */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hostile.h"

enum { kThreads = 32, kSlots = 4096 };
static _Atomic(uintptr_t) g_slots[kSlots];
static atomic_long g_bad;

static uintptr_t cookie(const void* p, size_t n) {
    return ((uintptr_t)p ^ n) * 0x9E3779B97F4A7C15u;
}

static void* make(size_t n) {
    uintptr_t* p = malloc(n * sizeof(uintptr_t) + 2 * sizeof(uintptr_t));
    if (p == NULL) return NULL;
    p[0] = n;
    for (size_t i = 0; i <= n; ++i) p[i + 1] = cookie(p, n) + i;
    return p;
}

static void check_free(uintptr_t* p) {
    if (p == NULL) return;
    size_t n = p[0];
    for (size_t i = 0; i <= n; ++i)
        if (p[i + 1] != cookie(p, n) + i) {
            atomic_fetch_add(&g_bad, 1);
            break;
        }
    free(p);
}

struct job { int rounds; unsigned seed; };

static void* worker(void* arg) {
    struct job* j = arg;
    unsigned seed = j->seed;
    void* own[64];
    for (int r = 0; r < j->rounds; ++r) {
        for (int i = 0; i < 64; ++i) {
            seed = seed * 1103515245u + 12345u;
            size_t n = (seed >> 16) % 8 == 0 ? (seed >> 8) % 20000 : (seed >> 8) % 64;
            own[i] = make(n);
        }
        for (int i = 0; i < 64; i += 2) check_free(own[i]);
        for (int i = 1; i < 64; i += 2) {
            seed = seed * 1103515245u + 12345u;
            uintptr_t old = atomic_exchange(&g_slots[(seed >> 8) % kSlots], (uintptr_t)own[i]);
            check_free((uintptr_t*)old);
        }
    }
    return NULL;
}

int main(int argc, char** argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 50;
    pthread_t threads[kThreads];
    struct job jobs[kThreads];
    for (int i = 0; i < kThreads; ++i) {
        jobs[i].rounds = rounds;
        jobs[i].seed = (unsigned)i + 1;
        if (pthread_create(&threads[i], NULL, worker, &jobs[i]) != 0) hostile_fail("thread");
    }
    for (int i = 0; i < kThreads; ++i) pthread_join(threads[i], NULL);
    for (int i = 0; i < kSlots; ++i) check_free((uintptr_t*)atomic_load(&g_slots[i]));
    printf("bad cookies: %ld\n", (long)atomic_load(&g_bad));
    return 0;
}
