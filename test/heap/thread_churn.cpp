// Threads started one after another, each sampled by the heap profile and then gone: the memory
// gprof's jemalloc keeps for a thread's samples must leave with the thread. Each thread allocates
// and frees 2 MB in 1 KB blocks (about four samples at the default rate); every fourth thread also
// hands one 4 MiB block (sampled with certainty at the default rate) to the main thread, which
// frees it after the thread ended. Prints "RSS_GROWTH_KIB n": the growth of the resident set from
// the first `kWarmUp` threads to the end.
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "test/heap/resident.h"

#define NOINLINE __attribute__((noinline))

namespace {

constexpr int kThreads = 3000, kWarmUp = 200, kBlocks = 2000;
constexpr size_t kBlock = 1000, kHanded = size_t{4} << 20;

void* volatile sink;

NOINLINE void* site_thread_churn_fn(size_t n) {
    void* p = malloc(n);
    sink = p;
    return p;
}

void* work(void* arg) {
    static void* blocks[kBlocks];  // one thread at a time
    for (int i = 0; i < kBlocks; ++i) blocks[i] = site_thread_churn_fn(kBlock);
    for (int i = 0; i < kBlocks; ++i) free(blocks[i]);
    return arg != nullptr ? site_thread_churn_fn(kHanded) : nullptr;
}

}  // namespace

int main() {
    long base = 0;
    for (int i = 0; i < kThreads; ++i) {
        pthread_t t;
        if (pthread_create(&t, nullptr, work, i % 4 == 0 ? &base : nullptr) != 0) return 1;
        void* handed = nullptr;
        pthread_join(t, &handed);
        free(handed);
        if (i + 1 == kWarmUp) base = resident_kib();
    }
    std::printf("RSS_GROWTH_KIB %ld\n", resident_kib() - base);
    return 0;
}
