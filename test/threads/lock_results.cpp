// The results of every lock kind, on the paths where the lock is free and where it is held by
// another thread (gprof's slow path), printed one per line as "<case> <result>". Run with and
// without gprof: the output must be identical, and the expected values are checked by the test.
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {

const char* name(int err) {
    switch (err) {
        case 0: return "0";
        case EBUSY: return "EBUSY";
        case EDEADLK: return "EDEADLK";
        case EPERM: return "EPERM";
        case EOWNERDEAD: return "EOWNERDEAD";
        case ENOTRECOVERABLE: return "ENOTRECOVERABLE";
        case ETIMEDOUT: return "ETIMEDOUT";
        case EAGAIN: return "EAGAIN";
        case EINVAL: return "EINVAL";
        default: return strerror(err);
    }
}

void show(const char* what, int err) { printf("%s %s\n", what, name(err)); }

pthread_mutex_t make(int type, bool robust = false, int protocol = PTHREAD_PRIO_NONE,
                     bool shared = false) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setprotocol(&a, protocol);
    if (shared) pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_t m;
    pthread_mutex_init(&m, &a);
    pthread_mutexattr_destroy(&a);
    return m;
}

struct timespec in_ms(int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    return ts;
}

// A thread that takes a mutex, holds it for `hold_ms` (0: forever, until it exits with it held:
// a robust mutex's owner dying), and then releases it or not.
struct Holder {
    pthread_mutex_t* m;
    int hold_ms;
    bool unlock;
    volatile bool locked;
};

void* hold(void* arg) {
    auto* h = static_cast<Holder*>(arg);
    pthread_mutex_lock(h->m);
    h->locked = true;
    usleep(static_cast<useconds_t>(h->hold_ms) * 1000);
    if (h->unlock) pthread_mutex_unlock(h->m);
    return nullptr;
}

pthread_t start_holder(Holder* h) {
    pthread_t t;
    pthread_create(&t, nullptr, hold, h);
    while (!h->locked) usleep(1000);
    return t;
}

}  // namespace

int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    errno = 1234;
    {  // normal
        pthread_mutex_t m = make(PTHREAD_MUTEX_NORMAL);
        show("normal.lock", pthread_mutex_lock(&m));
        show("normal.trylock_held", pthread_mutex_trylock(&m));
        show("normal.unlock", pthread_mutex_unlock(&m));
        Holder h{&m, 30, true, false};
        pthread_t t = start_holder(&h);
        show("normal.lock_contended", pthread_mutex_lock(&m));
        show("normal.unlock", pthread_mutex_unlock(&m));
        pthread_join(t, nullptr);
    }
    {  // a plain mutex's bookkeeping, which gprof's fast path keeps as glibc's lock does
        pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&m);
        printf("plain.owner_is_caller %d nusers %u\n", m.__data.__owner == gettid(),
               m.__data.__nusers);
        pthread_mutex_unlock(&m);
        printf("plain.unlocked owner %d nusers %u lock %d\n", m.__data.__owner, m.__data.__nusers,
               m.__data.__lock);
        pid_t child = fork();
        if (child == 0) {
            pthread_mutex_lock(&m);
            bool own = m.__data.__owner == gettid();
            pthread_mutex_unlock(&m);
            _exit(own ? 0 : 1);
        }
        int status = 0;
        waitpid(child, &status, 0);
        printf("plain.owner_is_forked_child %d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0);
        pthread_cond_t c = PTHREAD_COND_INITIALIZER;
        pthread_mutex_lock(&m);
        struct timespec ts = in_ms(5);
        show("plain.cond_timedwait", pthread_cond_timedwait(&c, &m, &ts));
        printf("plain.after_wait owner_is_caller %d nusers %u\n", m.__data.__owner == gettid(),
               m.__data.__nusers);
        pthread_mutex_unlock(&m);
    }
    {  // error-checking
        pthread_mutex_t m = make(PTHREAD_MUTEX_ERRORCHECK);
        show("errorcheck.lock", pthread_mutex_lock(&m));
        show("errorcheck.relock", pthread_mutex_lock(&m));
        struct timespec ts = in_ms(10);
        show("errorcheck.timedlock_own", pthread_mutex_timedlock(&m, &ts));
        show("errorcheck.unlock", pthread_mutex_unlock(&m));
        show("errorcheck.unlock_unowned", pthread_mutex_unlock(&m));
        Holder h{&m, 100, true, false};
        pthread_t t = start_holder(&h);
        show("errorcheck.unlock_other", pthread_mutex_unlock(&m));
        ts = in_ms(20);
        show("errorcheck.timedlock_contended", pthread_mutex_timedlock(&m, &ts));
        struct timespec mono;
        clock_gettime(CLOCK_MONOTONIC, &mono);
        mono.tv_nsec += 20000000;
        if (mono.tv_nsec >= 1000000000) { mono.tv_sec++; mono.tv_nsec -= 1000000000; }
        show("errorcheck.clocklock_contended", pthread_mutex_clocklock(&m, CLOCK_MONOTONIC, &mono));
        pthread_join(t, nullptr);
    }
    {  // recursive
        pthread_mutex_t m = make(PTHREAD_MUTEX_RECURSIVE);
        show("recursive.lock", pthread_mutex_lock(&m));
        show("recursive.lock_again", pthread_mutex_lock(&m));
        show("recursive.trylock_again", pthread_mutex_trylock(&m));
        show("recursive.unlock", pthread_mutex_unlock(&m));
        show("recursive.unlock", pthread_mutex_unlock(&m));
        show("recursive.unlock", pthread_mutex_unlock(&m));
        show("recursive.unlock_unowned", pthread_mutex_unlock(&m));
    }
    {  // robust: the owner dies while we wait (slow path), then while nobody waits (fast path)
        pthread_mutex_t m = make(PTHREAD_MUTEX_NORMAL, true);
        Holder h{&m, 30, false, false};
        pthread_t t = start_holder(&h);
        show("robust.lock_owner_dies", pthread_mutex_lock(&m));
        show("robust.consistent", pthread_mutex_consistent(&m));
        show("robust.unlock", pthread_mutex_unlock(&m));
        pthread_join(t, nullptr);
        Holder h2{&m, 0, false, false};
        t = start_holder(&h2);
        pthread_join(t, nullptr);
        show("robust.lock_owner_dead", pthread_mutex_lock(&m));
        show("robust.unlock_inconsistent", pthread_mutex_unlock(&m));
        show("robust.lock_unrecoverable", pthread_mutex_lock(&m));
        show("robust.trylock_unrecoverable", pthread_mutex_trylock(&m));
    }
    {  // priority inheritance
        pthread_mutex_t m = make(PTHREAD_MUTEX_ERRORCHECK, false, PTHREAD_PRIO_INHERIT);
        show("pi.lock", pthread_mutex_lock(&m));
        show("pi.relock", pthread_mutex_lock(&m));
        show("pi.unlock", pthread_mutex_unlock(&m));
        Holder h{&m, 30, true, false};
        pthread_t t = start_holder(&h);
        show("pi.trylock_held", pthread_mutex_trylock(&m));
        show("pi.lock_contended", pthread_mutex_lock(&m));
        show("pi.unlock", pthread_mutex_unlock(&m));
        pthread_join(t, nullptr);
    }
    {  // process-shared, held by a child process
        auto* m = static_cast<pthread_mutex_t*>(mmap(nullptr, sizeof(pthread_mutex_t),
                                                     PROT_READ | PROT_WRITE,
                                                     MAP_SHARED | MAP_ANONYMOUS, -1, 0));
        *m = make(PTHREAD_MUTEX_NORMAL, false, PTHREAD_PRIO_NONE, true);
        int ready[2];
        if (pipe(ready) != 0) return 2;
        pid_t child = fork();
        if (child == 0) {
            pthread_mutex_lock(m);
            char c = 1;
            if (write(ready[1], &c, 1) != 1) _exit(3);
            usleep(50 * 1000);
            pthread_mutex_unlock(m);
            _exit(0);
        }
        char c;
        if (read(ready[0], &c, 1) != 1) return 2;
        show("pshared.trylock_held", pthread_mutex_trylock(m));
        show("pshared.lock_contended", pthread_mutex_lock(m));
        show("pshared.unlock", pthread_mutex_unlock(m));
        int status;
        waitpid(child, &status, 0);
    }
    {  // rwlock
        pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
        show("rwlock.rdlock", pthread_rwlock_rdlock(&l));
        struct timespec ts = in_ms(20);
        show("rwlock.timedwrlock_read_held", pthread_rwlock_timedwrlock(&l, &ts));
        show("rwlock.unlock", pthread_rwlock_unlock(&l));
        show("rwlock.wrlock", pthread_rwlock_wrlock(&l));
        show("rwlock.rdlock_own_write", pthread_rwlock_rdlock(&l));
        show("rwlock.wrlock_own_write", pthread_rwlock_wrlock(&l));
        ts = in_ms(20);
        show("rwlock.timedrdlock_own_write", pthread_rwlock_timedrdlock(&l, &ts));
        show("rwlock.unlock", pthread_rwlock_unlock(&l));
    }
    {  // condition variable and semaphore timeouts
        pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
        pthread_cond_t c = PTHREAD_COND_INITIALIZER;
        pthread_mutex_lock(&m);
        struct timespec ts = in_ms(20);
        show("cond.timedwait", pthread_cond_timedwait(&c, &m, &ts));
        pthread_mutex_unlock(&m);
        sem_t s;
        sem_init(&s, 0, 0);
        errno = 0;
        int r = sem_trywait(&s);
        show("sem.trywait", r == 0 ? 0 : errno);
        ts = in_ms(20);
        errno = 0;
        r = sem_timedwait(&s, &ts);
        show("sem.timedwait", r == 0 ? 0 : errno);
        sem_post(&s);
        errno = 4321;
        r = sem_wait(&s);
        printf("sem.wait %d errno %d\n", r, errno);
    }
    {  // errno is untouched by lock calls that succeed
        pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
        errno = 777;
        pthread_mutex_lock(&m);
        pthread_mutex_unlock(&m);
        printf("errno after lock %d\n", errno);
    }
    return 0;
}
