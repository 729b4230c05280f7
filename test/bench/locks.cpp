// Lock workloads for the lock profiler's overhead, driven by scripts/bench.
// Usage: bench_locks contended THREADS [scale=1.0] [LOCKS=1]
//                                                    short critical sections on LOCKS mutexes,
//                                                    each thread taking them in turn
//        bench_locks uncontended [scale=1.0]         lock+unlock of a mutex no one else takes,
//                                                    in a process with a second (idle) thread
//        bench_locks uncontended-single [scale=1.0]  the same in a single-threaded process
// glibc takes a cheaper, non-atomic path for mutexes while a process has one thread; any process
// with a reason to profile its locks has more, and gprof's dumper thread makes one of them.
// Plain C++ over pthreads, no dependency on gprof. Prints one deterministic result line.
#include <pthread.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr int kMaxLocks = 16;
// Each lock and the state it guards on a cache line of their own.
struct alignas(64) Guarded {
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    uint64_t shared = 0;
};
Guarded g_locks[kMaxLocks];

// A short critical section (a few dozen nanoseconds of work on shared state) and some work
// outside it, as in a queue or a cache with one lock.
void contend(uint64_t iterations, uint64_t seed, int locks) {
    uint64_t x = seed;
    for (uint64_t i = 0; i < iterations; ++i) {
        Guarded& g = g_locks[i % static_cast<uint64_t>(locks)];
        pthread_mutex_lock(&g.mutex);
        g.shared = g.shared * 6364136223846793005ull + 1442695040888963407ull + (x & 0xff);
        pthread_mutex_unlock(&g.mutex);
        for (int k = 0; k < 40; ++k) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    if (strcmp(argv[1], "uncontended") == 0 || strcmp(argv[1], "uncontended-single") == 0) {
        double scale = argc > 2 ? atof(argv[2]) : 1.0;
        int idle_pipe[2];
        std::thread idle;
        if (strcmp(argv[1], "uncontended") == 0) {
            if (pipe(idle_pipe) != 0) return 2;
            idle = std::thread([&] {
                char c;
                if (read(idle_pipe[0], &c, 1) < 0) perror("read");
            });
        }
        auto pairs = static_cast<uint64_t>(100'000'000 * scale);
        pthread_mutex_t own = PTHREAD_MUTEX_INITIALIZER;
        volatile uint64_t count = 0;
        for (uint64_t i = 0; i < pairs; ++i) {
            pthread_mutex_lock(&own);
            count = count + 1;
            pthread_mutex_unlock(&own);
        }
        if (idle.joinable()) {
            if (write(idle_pipe[1], "x", 1) != 1) return 2;
            idle.join();
        }
        printf("locks uncontended %llu\n", static_cast<unsigned long long>(count));
        return 0;
    }
    if (strcmp(argv[1], "contended") == 0 && argc > 2) {
        int threads = atoi(argv[2]);
        double scale = argc > 3 ? atof(argv[3]) : 1.0;
        int locks = argc > 4 ? atoi(argv[4]) : 1;
        if (threads < 1 || locks < 1 || locks > kMaxLocks) return 2;
        auto per_thread = static_cast<uint64_t>(8'000'000 * scale / threads);
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
            pool.emplace_back(contend, per_thread, 88172645463325252ull + t, locks);
        for (auto& t : pool) t.join();
        // The final value depends on the interleaving; the number of sections does not.
        printf("locks contended %llu sections\n",
               static_cast<unsigned long long>(per_thread * static_cast<uint64_t>(threads)));
        return 0;
    }
    return 2;
}
