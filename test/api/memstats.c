/* gprof_read_memstats against known allocations (run at GPROF_MEM_PROFILE_RATE=1): prints
   "<field> <delta>" lines for the differences between two readings around known work, and the
   values the test compares them with ("expect <name> <value>"). */
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gprof.h"

static sem_t g_started, g_finish;

static void* parked(void* arg) {
    (void)arg;
    sem_post(&g_started);
    sem_wait(&g_finish);
    return NULL;
}

static void* volatile g_small[3][1000];
static void* volatile g_large[20];

int main(void) {
    if (gprof_read_memstats == NULL) {
        printf("absent\n");
        return 0;
    }
    struct gprof_memstats before, after;
    /* Known allocations by size class: 24 -> 32, 1000 -> 1024, 5000 -> 5120. */
    static const size_t sizes[3] = {24, 1000, 5000};
    static const int counts[3] = {1000, 600, 300};
    static const int freed[3] = {400, 100, 300};
    /* Large objects (above jemalloc's thread cache, 32 KiB), counted by jemalloc as they are
       made. */
    const size_t large = 100000;
    sem_init(&g_started, 0, 0);
    sem_init(&g_finish, 0, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    pthread_t threads[4];

    gprof_read_memstats(&before, sizeof before);
    for (int c = 0; c < 3; ++c)
        for (int i = 0; i < counts[c]; ++i) g_small[c][i] = malloc(sizes[c]);
    for (int c = 0; c < 3; ++c)
        for (int i = 0; i < freed[c]; ++i) free(g_small[c][i]);
    size_t usable = 0;
    for (int i = 0; i < 20; ++i) {
        g_large[i] = malloc(large);
        usable += malloc_usable_size(g_large[i]);
    }
    for (int i = 0; i < 4; ++i) {
        pthread_create(&threads[i], &attr, parked, NULL);
        sem_wait(&g_started);
    }
    gprof_read_memstats(&after, sizeof after);
    for (int i = 0; i < 4; ++i) sem_post(&g_finish);
    for (int i = 0; i < 4; ++i) pthread_join(threads[i], NULL);

    /* pthread_create allocates a thread's TLS (dtv) block: 4 allocations, counted apart. */
    printf("mallocs %lld\n", (long long)(after.mallocs - before.mallocs));
    printf("frees %lld\n", (long long)(after.frees - before.frees));
    printf("total_alloc %lld\n", (long long)(after.total_alloc - before.total_alloc));
    printf("heap_objects %lld\n", (long long)(after.heap_objects - before.heap_objects));
    printf("alloc %lld\n", (long long)(after.alloc - before.alloc));
    printf("stack_sys %lld\n", (long long)(after.stack_sys - before.stack_sys));
    printf("expect large_usable %zu\n", usable);
    printf("expect large_requested %zu\n", 20 * large);
    for (int c = 0; c < 3; ++c) {
        for (unsigned i = 0; i < after.by_size_count; ++i) {
            if (after.by_size[i].size < sizes[c] ||
                (i > 0 && after.by_size[i - 1].size >= sizes[c]))
                continue;
            printf("by_size %u %lld %lld\n", after.by_size[i].size,
                   (long long)(after.by_size[i].mallocs - before.by_size[i].mallocs),
                   (long long)(after.by_size[i].frees - before.by_size[i].frees));
        }
    }
    printf("invariants %d %d %d %d\n", after.heap_inuse >= after.alloc,
           after.heap_sys == after.heap_inuse + after.heap_idle,
           after.sys >= after.heap_sys + after.stack_sys, after.heap_alloc == after.alloc);
    printf("gc %llu %llu %u\n", (unsigned long long)after.next_gc,
           (unsigned long long)after.pause_total_ns, after.num_gc);
    return 0;
}
