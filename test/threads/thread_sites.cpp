// Threads created at known sites, named threads waiting in a known function, and the thread
// lifecycle cases that must work as without gprof (detached, cancelled, pthread_exit).
//
// Usage: thread_sites <GPROF_OUTPUT prefix>
// Creates 7 workers at spawn_workers (they finish and are joined), 3 at spawn_more, then 5 named
// threads "waiter-0".."waiter-4" that block in wait_here() on a condition variable, raises
// SIGUSR2 and waits (up to 30 s) for the dump's last file, then releases them.
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "test/threads/await_dump.h"

namespace {

pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
bool g_release = false;

void* work(void* arg) { return arg; }
void* other_work(void* arg) { return static_cast<char*>(arg) + 1; }

__attribute__((noinline)) void spawn_workers(pthread_t* threads, int n) {
    for (int i = 0; i < n; ++i) pthread_create(&threads[i], nullptr, work, nullptr);
    __asm__ volatile("" ::: "memory");
}

// Not the same code as spawn_workers, which identical-code folding would merge with it.
__attribute__((noinline)) void spawn_more(pthread_t* threads, int n) {
    for (int i = 0; i < n; ++i) pthread_create(&threads[i], nullptr, other_work, nullptr);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void wait_here() {
    pthread_mutex_lock(&g_mutex);
    while (!g_release) pthread_cond_wait(&g_cond, &g_mutex);
    pthread_mutex_unlock(&g_mutex);
    __asm__ volatile("" ::: "memory");
}

void* waiter(void* arg) {
    char name[16];
    int n = static_cast<int>(reinterpret_cast<long>(arg));
    snprintf(name, sizeof name, "waiter-%d", n);
    if (n % 2 == 0)
        pthread_setname_np(pthread_self(), name);
    else
        prctl(PR_SET_NAME, name);  // the other way programs name threads
    wait_here();
    return nullptr;
}

void* sleeps_until_cancelled(void*) {
    for (;;) pause();
}

void* exits_early(void*) {
    pthread_exit(reinterpret_cast<void*>(42));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    pthread_t workers[7], more[3], waiters[5];
    spawn_workers(workers, 7);
    for (pthread_t t : workers) pthread_join(t, nullptr);
    spawn_more(more, 3);
    for (pthread_t t : more) pthread_join(t, nullptr);

    // Lifecycle: a cancelled thread, one that calls pthread_exit, a detached one.
    pthread_t cancelled, exited, detached;
    pthread_create(&cancelled, nullptr, sleeps_until_cancelled, nullptr);
    pthread_cancel(cancelled);
    void* result = nullptr;
    pthread_join(cancelled, &result);
    printf("cancelled %s\n", result == PTHREAD_CANCELED ? "yes" : "no");
    pthread_create(&exited, nullptr, exits_early, nullptr);
    pthread_join(exited, &result);
    printf("pthread_exit value %ld\n", reinterpret_cast<long>(result));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    printf("detached create %d\n", pthread_create(&detached, &attr, work, nullptr));
    pthread_attr_destroy(&attr);

    for (long i = 0; i < 5; ++i) pthread_create(&waiters[i], nullptr, waiter, reinterpret_cast<void*>(i));
    usleep(200 * 1000);  // the waiters reach their condition variable
    raise(SIGUSR2);
    printf("dump %s\n", await_dump(argv[1]) ? "seen" : "missing");
    pthread_mutex_lock(&g_mutex);
    g_release = true;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_mutex);
    for (pthread_t t : waiters) pthread_join(t, nullptr);
    printf("done\n");
    return 0;
}
