/* Case 34 (after glibc's tst-malloc-thread-fail): address space limited to what the process
   uses plus 200 MiB; 8 threads allocate 1 MiB blocks until malloc returns NULL, then free them.
   malloc must return NULL (no abort, no crash) under gprof too. Usage: rlimit_as */
#include <pthread.h>
#include <sys/resource.h>

#include "hostile.h"

static long vm_size_bytes(void) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1) break;
    if (f != NULL) fclose(f);
    return kib * 1024;
}

static pthread_barrier_t g_barrier;

static void* fill(void* arg) {
    (void)arg;
    enum { kMax = 1024 };
    static __thread void* blocks[kMax];
    int n = 0, failed = 0;
    pthread_barrier_wait(&g_barrier);
    while (n < kMax) {
        void* p = malloc(1 << 20);
        if (p == NULL) {
            failed = 1;
            break;
        }
        memset(p, 1, 4096);
        blocks[n++] = p;
    }
    pthread_barrier_wait(&g_barrier);  /* every thread holds its share: the limit is reached */
    for (int i = 0; i < n; ++i) free(blocks[i]);
    return (void*)(long)failed;
}

int main(void) {
    pthread_barrier_init(&g_barrier, NULL, 8);
    pthread_t threads[8];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    long headroom = 200L << 20;
    struct rlimit limit;
    limit.rlim_cur = limit.rlim_max = (rlim_t)(vm_size_bytes() + headroom + 8 * (128 << 10));
    if (setrlimit(RLIMIT_AS, &limit) != 0) hostile_fail("setrlimit");
    for (int i = 0; i < 8; ++i)
        if (pthread_create(&threads[i], &attr, fill, NULL) != 0) hostile_fail("thread");
    int failed = 0;
    for (int i = 0; i < 8; ++i) {
        void* r;
        pthread_join(threads[i], &r);
        failed += (int)(long)r;
    }
    void* after = malloc(1 << 20);
    printf("threads that saw NULL: %s; malloc after freeing: %s\n", failed > 0 ? "some" : "none",
           after != NULL ? "works" : "fails");
    free(after);
    return 0;
}
