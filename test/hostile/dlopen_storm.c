/* Case 25: N dlopen/dlclose cycles over 8 distinct libraries whose constructors and destructors
   allocate, while 4 threads allocate. The heap and CPU profiles walk stacks through libraries that
   are being unloaded. Usage: dlopen_storm LIBDIR N */
#include <pthread.h>
#include <stdatomic.h>

#include "hostile.h"

static atomic_int g_stop;

static void* churn(void* arg) {
    (void)arg;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) free(malloc(3000));
    return NULL;
}

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    int n = atoi(argv[2]);
    pthread_t threads[4];
    for (int i = 0; i < 4; ++i)
        if (pthread_create(&threads[i], NULL, churn, NULL) != 0) hostile_fail("thread");
    long sum = 0;
    for (int i = 0; i < n; ++i) {
        int id = i % 8 + 1;
        char path[4096], name[64];
        snprintf(path, sizeof path, "%s/libstorm%d.so", argv[1], id);
        snprintf(name, sizeof name, "storm_run_%d", id);
        void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            fprintf(stderr, "FAIL: %s\n", dlerror());
            return 2;
        }
        long (*run)(void) = (long (*)(void))dlsym(h, name);
        if (run == NULL) hostile_fail("dlsym");
        sum += run();
        if (dlclose(h) != 0) hostile_fail("dlclose");
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 4; ++i) pthread_join(threads[i], NULL);
    printf("cycles %d, sum %ld\n", n, sum);
    return 0;
}
