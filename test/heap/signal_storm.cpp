// Hazard: a storm of dump signals (about 10 kHz for a second) while 4 threads allocate and free.
// The handler only wakes the dumper, which coalesces the requests; nothing may deadlock, and the
// program's own work must be unaffected.
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {
std::atomic<bool> stop{false};

__attribute__((noinline)) unsigned long churn(unsigned seed) {
    unsigned long sum = 0;
    std::vector<void*> ring(512, nullptr);
    for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        seed = seed * 1103515245 + 12345;
        unsigned k = (seed >> 8) % ring.size();
        free(ring[k]);
        size_t size = 16 + (seed >> 16) % 4000;
        ring[k] = malloc(size);
        static_cast<char*>(ring[k])[0] = static_cast<char>(i);
        sum += size;
    }
    for (void* p : ring) free(p);
    return sum;
}
}  // namespace

int main() {
    std::vector<std::thread> threads;
    std::vector<unsigned long> sums(4);
    for (unsigned t = 0; t < 4; ++t) threads.emplace_back([t, &sums] { sums[t] = churn(t + 1); });
    int sent = 0;
    struct timespec start, now, pause = {0, 100000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        kill(getpid(), SIGUSR2);
        ++sent;
        nanosleep(&pause, nullptr);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 1000000000L);
    stop = true;
    for (auto& t : threads) t.join();
    printf("sent %s 1000 signals; threads done: %d\n", sent >= 1000 ? "at least" : "fewer than",
           static_cast<int>(threads.size()));
    return 0;
}
