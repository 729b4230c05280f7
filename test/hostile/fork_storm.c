/* Case 14: 8 threads allocate without pause (sampled at every byte under GPROF_MEM_PROFILE_RATE=1)
   while the main thread forks N times; each child allocates and frees before _exit. A lock held
   across fork by gprof or its allocator would hang a child. Usage: fork_storm N */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "hostile.h"

static atomic_int g_stop;

static void* churn(void* arg) {
    unsigned seed = (unsigned)(size_t)arg;
    void* ring[64] = {0};
    struct timespec pause = {0, 20000};
    for (unsigned i = 1; !atomic_load_explicit(&g_stop, memory_order_relaxed); ++i) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % 64;
        free(ring[k]);
        ring[k] = malloc(16 + (seed >> 16) % 2000);
        if (ring[k] == NULL) hostile_fail("malloc");
        if (i % 64 == 0) nanosleep(&pause, NULL);  /* the forking thread gets its share */
    }
    for (int i = 0; i < 64; ++i) free(ring[i]);
    return NULL;
}

int main(int argc, char** argv) {
    int forks = argc > 1 ? atoi(argv[1]) : 1000;
    pthread_t threads[8];
    for (size_t i = 0; i < 8; ++i)
        if (pthread_create(&threads[i], NULL, churn, (void*)(i + 1)) != 0) hostile_fail("thread");
    int ok = 0;
    for (int i = 0; i < forks; ++i) {
        pid_t pid = fork();
        if (pid < 0) hostile_fail("fork");
        if (pid == 0) {
            char* p = malloc(100 + (size_t)i % 1000);
            if (p == NULL) _exit(3);
            p[0] = 1;
            free(p);
            _exit(0);
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid) hostile_fail("waitpid");
        ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 8; ++i) pthread_join(threads[i], NULL);
    printf("forks %d, children exited 0: %d\n", forks, ok);
    return 0;
}
