// Many threads at once, and threads that do not pass pthread_create: 300 threads parked in
// sleep_here(), one made by C11 thrd_create (glibc's internal __pthread_create) that allocates and
// then sleeps in c11_sleeper(), one made by a raw clone(CLONE_VM | CLONE_THREAD ...) that spins in
// clone_spinner() on its own stack. The program raises the dump signal while all of them exist.
// Usage: many_threads <GPROF_OUTPUT prefix>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <threads.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "test/threads/await_dump.h"

namespace {

constexpr int kThreads = 300;
pthread_barrier_t g_barrier;
std::atomic<bool> g_stop{false};
std::atomic<bool> g_clone_done{false};

__attribute__((noinline)) void sleep_here() {
    while (!g_stop.load()) usleep(20 * 1000);
    __asm__ volatile("" ::: "memory");
}

void* parked(void*) {
    pthread_barrier_wait(&g_barrier);
    sleep_here();
    return nullptr;
}

__attribute__((noinline)) int c11_sleeper(void*) {
    void* p = malloc(1000);  // allocations from threads gprof did not see created
    memset(p, 1, 1000);
    free(p);
    while (!g_stop.load()) usleep(20 * 1000);
    return 0;
}

__attribute__((noinline)) int clone_spinner(void*) {
    volatile unsigned long x = 0;
    while (!g_stop.load(std::memory_order_relaxed)) x = x + 1;
    g_clone_done.store(true);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    pthread_barrier_init(&g_barrier, nullptr, kThreads + 1);
    static pthread_t threads[kThreads];
    for (pthread_t& t : threads)
        if (pthread_create(&t, nullptr, parked, nullptr) != 0) return 3;
    thrd_t c11;
    if (thrd_create(&c11, c11_sleeper, nullptr) != thrd_success) return 3;
    constexpr size_t kStack = 256 * 1024;
    char* stack = static_cast<char*>(malloc(kStack));
    if (clone(clone_spinner, stack + kStack,
              CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM,
              nullptr) < 0)
        return 3;
    pthread_barrier_wait(&g_barrier);
    usleep(100 * 1000);
    raise(SIGUSR2);
    printf("dump %s\n", await_dump(argv[1]) ? "seen" : "missing");
    g_stop = true;
    for (pthread_t t : threads) pthread_join(t, nullptr);
    thrd_join(c11, nullptr);
    while (!g_clone_done.load()) usleep(1000);
    usleep(10 * 1000);  // the clone thread leaves clone_spinner and exits
    printf("done\n");
    return 0;
}
