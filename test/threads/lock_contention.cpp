// Waits whose truth the program measures itself, for the block and mutex profiles.
//
// 4 threads take one mutex 40 times each and hold it for 2 ms (sleeping) per iteration, in
// wait_for_lock() / release_lock(). Each thread measures how long its lock calls took; the sum is
// printed as "TRUTH mutex_wait_ns N", with the number of calls that waited over 100 us. Then the
// other primitives, each with a known wait: a reader blocked in wait_rdlock() while a writer holds
// an rwlock for 50 ms, a waiter in wait_cond() signalled after 50 ms, a waiter in wait_sem() posted
// after 50 ms.
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>

namespace {

pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
std::atomic<int64_t> g_wait_ns{0};
std::atomic<int> g_long_waits{0};
constexpr int kThreads = 4;
constexpr int kIterations = 40;

int64_t now_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void sleep_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, nullptr);
}

__attribute__((noinline)) void wait_for_lock() {
    pthread_mutex_lock(&g_mutex);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void release_lock() {
    pthread_mutex_unlock(&g_mutex);
    __asm__ volatile("" ::: "memory");
}

void* contender(void*) {
    for (int i = 0; i < kIterations; ++i) {
        int64_t start = now_ns();
        wait_for_lock();
        int64_t waited = now_ns() - start;
        g_wait_ns += waited;
        if (waited > 100000) g_long_waits++;
        sleep_ms(2);
        release_lock();
        sleep_ms(1);  // let the others in
    }
    return nullptr;
}

pthread_rwlock_t g_rwlock = PTHREAD_RWLOCK_INITIALIZER;
pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
pthread_mutex_t g_cond_mutex = PTHREAD_MUTEX_INITIALIZER;
bool g_signalled = false;
sem_t g_sem;

__attribute__((noinline)) void wait_rdlock() {
    pthread_rwlock_rdlock(&g_rwlock);
    pthread_rwlock_unlock(&g_rwlock);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void wait_cond() {
    pthread_mutex_lock(&g_cond_mutex);
    while (!g_signalled) pthread_cond_wait(&g_cond, &g_cond_mutex);
    pthread_mutex_unlock(&g_cond_mutex);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void wait_sem() {
    sem_wait(&g_sem);
    __asm__ volatile("" ::: "memory");
}

void* run_rdlock(void*) { wait_rdlock(); return nullptr; }
void* run_cond(void*) { wait_cond(); return nullptr; }
void* run_sem(void*) { wait_sem(); return nullptr; }

}  // namespace

int main() {
    pthread_t threads[kThreads];
    for (pthread_t& t : threads) pthread_create(&t, nullptr, contender, nullptr);
    for (pthread_t t : threads) pthread_join(t, nullptr);
    printf("TRUTH mutex_wait_ns %lld long_waits %d calls %d\n",
           static_cast<long long>(g_wait_ns.load()), g_long_waits.load(), kThreads * kIterations);

    pthread_t t;
    pthread_rwlock_wrlock(&g_rwlock);
    pthread_create(&t, nullptr, run_rdlock, nullptr);
    sleep_ms(50);
    pthread_rwlock_unlock(&g_rwlock);
    pthread_join(t, nullptr);

    pthread_create(&t, nullptr, run_cond, nullptr);
    sleep_ms(50);
    pthread_mutex_lock(&g_cond_mutex);
    g_signalled = true;
    pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_cond_mutex);
    pthread_join(t, nullptr);

    sem_init(&g_sem, 0, 0);
    pthread_create(&t, nullptr, run_sem, nullptr);
    sleep_ms(50);
    sem_post(&g_sem);
    pthread_join(t, nullptr);
    printf("done\n");
    return 0;
}
