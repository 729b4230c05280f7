// CPU-bound work for the cpu profile's cost and accuracy (scripts/bench, scripts/cpu_compare):
// four threads each run a fixed amount of arithmetic in a function of their own, work_1 .. work_4,
// in the proportions 1:2:3:4. stdout: "cpuwork <checksum>" (the same in every run); stderr: each
// function's CPU time as CLOCK_THREAD_CPUTIME_ID measured it, the truth a profile is held to.
#include <pthread.h>
#include <time.h>

#include <cstdint>
#include <cstdio>

#include "scale_arg.h"

namespace {

int64_t thread_cpu_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// xorshift rounds: no memory traffic, no system call, nothing a profiler's cost could hide in.
inline uint64_t mix(uint64_t x, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

__attribute__((noipa)) uint64_t work_1(uint64_t n) { return mix(1, n); }
__attribute__((noipa)) uint64_t work_2(uint64_t n) { return mix(2, 2 * n); }
__attribute__((noipa)) uint64_t work_3(uint64_t n) { return mix(3, 3 * n); }
__attribute__((noipa)) uint64_t work_4(uint64_t n) { return mix(4, 4 * n); }

struct Job {
    uint64_t (*work)(uint64_t);
    uint64_t n;
    uint64_t result = 0;
    int64_t cpu_ns = 0;
};

void* run(void* raw) {
    auto* job = static_cast<Job*>(raw);
    int64_t start = thread_cpu_ns();
    // In slices, so that every sample lands in the work function with a short stack.
    for (int i = 0; i < 100; ++i) job->result += job->work(job->n / 100 + static_cast<uint64_t>(i));
    job->cpu_ns = thread_cpu_ns() - start;
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    const double scale = scale_arg(argc, argv);
    const uint64_t n = static_cast<uint64_t>(100000000 * scale);
    Job jobs[4] = {{work_1, n}, {work_2, n}, {work_3, n}, {work_4, n}};
    pthread_t threads[4];
    for (int i = 0; i < 4; ++i) pthread_create(&threads[i], nullptr, run, &jobs[i]);
    uint64_t checksum = 0;
    for (int i = 0; i < 4; ++i) {
        pthread_join(threads[i], nullptr);
        checksum ^= jobs[i].result;
        fprintf(stderr, "work_%d %lld\n", i + 1, static_cast<long long>(jobs[i].cpu_ns));
    }
    printf("cpuwork %016llx\n", static_cast<unsigned long long>(checksum));
    return 0;
}
