// A busy multi-threaded program for the HTTP server's tests: `serve_target SECONDS [THREADS]
// [CPU_FILE] [fork]` runs THREADS workers (default 4) for SECONDS: each allocates and frees
// (heap, allocs), takes a shared mutex that others hold (block, mutex), and burns CPU in
// burn_cpu. With `fork`, the main thread forks a child every 100 ms that allocates, exits 7, and
// is reaped. At the end it prints what it did that does not depend on timing, and writes the
// process's CPU seconds to CPU_FILE (if given, not "-"), for the tests' sums.
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

std::atomic<bool> g_stop{false};
pthread_mutex_t g_shared = PTHREAD_MUTEX_INITIALIZER;
volatile uint64_t g_sink;

__attribute__((noinline)) uint64_t burn_cpu(uint64_t n) {
    uint64_t x = n;
    for (uint64_t i = 0; i < 200000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x;
}

__attribute__((noinline)) void* churn_memory(size_t size) {
    void* p = malloc(size);
    memset(p, 1, size);
    return p;
}

void* worker(void*) {
    std::vector<void*> kept;
    uint64_t n = 0;
    while (!g_stop.load(std::memory_order_relaxed)) {
        g_sink = burn_cpu(++n);
        kept.push_back(churn_memory(1000 + (n % 64) * 512));
        if (kept.size() > 200) {
            for (void* p : kept) free(p);
            kept.clear();
        }
        pthread_mutex_lock(&g_shared);
        g_sink = burn_cpu(n ^ 0x5555) & 0xff;  // another argument: computed under the lock
        pthread_mutex_unlock(&g_shared);
    }
    for (void* p : kept) free(p);
    return nullptr;
}

double now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    const char* cpu_file = argc > 3 && strcmp(argv[3], "-") != 0 ? argv[3] : nullptr;
    bool forking = argc > 4 && strcmp(argv[4], "fork") == 0;
    std::vector<pthread_t> ids(static_cast<size_t>(threads));
    for (auto& id : ids) pthread_create(&id, nullptr, worker, nullptr);
    int forks = 0, good_children = 0;
    for (double end = now() + seconds; now() < end;) {
        if (!forking) {
            usleep(20000);
            continue;
        }
        pid_t child = fork();
        if (child == 0) {
            void* p = churn_memory(4096);
            free(p);
            exit(7);
        }
        int status = 0;
        if (child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) &&
            WEXITSTATUS(status) == 7)
            ++good_children;
        ++forks;
        usleep(100000);
    }
    g_stop = true;
    for (auto& id : ids) pthread_join(id, nullptr);
    printf("workers %d done\n", threads);
    if (forking) printf("children all good: %s\n", good_children == forks ? "yes" : "no");
    if (cpu_file != nullptr) {
        rusage usage;
        getrusage(RUSAGE_SELF, &usage);
        double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                     static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
        if (FILE* f = fopen(cpu_file, "w")) {
            fprintf(f, "%.6f\n", cpu);
            fclose(f);
        }
    }
    return 0;
}
