// glibc's own versions of the thread, lock and signal functions that gprof interposes.
//
// The hot ones (mutex and rwlock lock, try-lock and unlock) are bound at load time to glibc's
// exported aliases (__pthread_mutex_lock@GLIBC_2.2.5 and friends), so they work from the very
// first call, even from inside the allocator before any constructor has run, without dlsym (which
// can allocate). The others are looked up with dlvsym at the version a program built on Debian 12
// binds to (pthread_cond_wait@GLIBC_2.3.2, not the 2.2.5 compatibility condvar;
// pthread_create@GLIBC_2.34), once from gprof's constructor, before the program can have made a
// thread, and lazily if something calls them earlier.
#pragma once

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <time.h>

namespace gprof::originals {

extern "C" {
int real_mutex_lock(pthread_mutex_t* m);
int real_mutex_trylock(pthread_mutex_t* m);
int real_mutex_unlock(pthread_mutex_t* m);
int real_rwlock_rdlock(pthread_rwlock_t* l);
int real_rwlock_wrlock(pthread_rwlock_t* l);
int real_rwlock_tryrdlock(pthread_rwlock_t* l);
int real_rwlock_trywrlock(pthread_rwlock_t* l);
int real_rwlock_unlock(pthread_rwlock_t* l);
int real_sigaction(int sig, const struct sigaction* act, struct sigaction* old);
}

// Each object that calls them binds these names to glibc's aliases.
__asm__(".symver real_mutex_lock, __pthread_mutex_lock@GLIBC_2.2.5");
__asm__(".symver real_mutex_trylock, __pthread_mutex_trylock@GLIBC_2.2.5");
__asm__(".symver real_mutex_unlock, __pthread_mutex_unlock@GLIBC_2.2.5");
__asm__(".symver real_rwlock_rdlock, __pthread_rwlock_rdlock@GLIBC_2.2.5");
__asm__(".symver real_rwlock_wrlock, __pthread_rwlock_wrlock@GLIBC_2.2.5");
__asm__(".symver real_rwlock_tryrdlock, __pthread_rwlock_tryrdlock@GLIBC_2.2.5");
__asm__(".symver real_rwlock_trywrlock, __pthread_rwlock_trywrlock@GLIBC_2.2.5");
__asm__(".symver real_rwlock_unlock, __pthread_rwlock_unlock@GLIBC_2.2.5");
__asm__(".symver real_sigaction, __sigaction@GLIBC_2.2.5");

struct Functions {
    int (*pthread_create)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
    int (*mutex_timedlock)(pthread_mutex_t*, const struct timespec*);
    int (*mutex_clocklock)(pthread_mutex_t*, clockid_t, const struct timespec*);
    int (*rwlock_timedrdlock)(pthread_rwlock_t*, const struct timespec*);
    int (*rwlock_timedwrlock)(pthread_rwlock_t*, const struct timespec*);
    int (*rwlock_clockrdlock)(pthread_rwlock_t*, clockid_t, const struct timespec*);
    int (*rwlock_clockwrlock)(pthread_rwlock_t*, clockid_t, const struct timespec*);
    int (*cond_wait)(pthread_cond_t*, pthread_mutex_t*);
    int (*cond_timedwait)(pthread_cond_t*, pthread_mutex_t*, const struct timespec*);
    int (*cond_clockwait)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const struct timespec*);
    int (*sem_wait)(sem_t*);
    int (*sem_timedwait)(sem_t*, const struct timespec*);
    int (*sem_clockwait)(sem_t*, clockid_t, const struct timespec*);
};

// Resolved on first use; every pointer is non-null afterwards (a missing symbol aborts with a
// gprof: line, since the program's own call could not be honoured otherwise).
const Functions& functions();

}  // namespace gprof::originals
