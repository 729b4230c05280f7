// The lock surface: mutexes, rwlocks, condition variables and semaphores, for the block and mutex
// profiles (record/contention.h has the rules and what gprof can see).
//
// The uncontended paths cost what glibc's own do, and a load and a branch:
//   * locking a plain mutex (PTHREAD_MUTEX_INITIALIZER, or default attributes: __kind 0) is glibc's
//     own fast path done here (plain_lock), which saves the call into glibc; any other mutex is
//     tried first (glibc's try-lock in place of the lock);
//   * an unlock reads the mutex's lock word, which in glibc's protocol is 1 while the mutex is
//     held and no thread sleeps on it (a waiter makes it 2 before it sleeps), and then calls
//     glibc's unlock; only another value looks for registered waiters.
// Only a failed try (a real wait) reads the clock, registers the waiter and, if sampled, unwinds
// (robust mutexes: see try_first). Every mutex kind's results are kept: a try that fails with
// anything but EBUSY (EOWNERDEAD, EAGAIN, EINVAL, ...) is what the lock would have returned at once,
// and EBUSY leads to glibc's own lock. errno is never touched. Waits inside gprof (its threads, its
// jemalloc's locks, libunwind's) are not recorded: they are not the program's, and could recurse
// into the lock.
#include <pthread.h>
#include <semaphore.h>
#include <sys/single_threaded.h>

#include <cerrno>

#include "base/reentry_guard.h"
#include "preload/originals.h"
#include "record/contention.h"
#include "record/stack_table.h"
#include "unwind/stack.h"

namespace o = gprof::originals;
namespace r = gprof::record;

namespace {

bool programs_wait(void* caller) {
    return !gprof::base::inside_gprof() &&
           !gprof::unwind::in_gprof(reinterpret_cast<uintptr_t>(caller));
}

uint32_t capture_stack() {
    uintptr_t pcs[gprof::unwind::kCaptureRoom];
    int depth = gprof::unwind::capture(pcs, gprof::unwind::kMaxFrames);
    return depth > 0 ? r::stack_table().intern(pcs, depth) : 0;
}

__attribute__((noinline)) void record_block(int64_t delay) {
    int64_t total = 0;
    int64_t count = r::block_sample(delay, r::block_profile_rate(), r::contention_random(), &total);
    if (count == 0) return;
    int saved = errno;
    {
        gprof::base::ReentryGuard guard;
        r::block_counters().add(capture_stack(), count, total);
    }
    errno = saved;
}

// A release that found sampled waiters (mutex_sampled): already 1 in `fraction`.
__attribute__((noinline)) void record_release(int64_t delay) {
    int64_t fraction = r::mutex_profile_fraction();
    if (fraction <= 0) return;
    int saved = errno;
    {
        gprof::base::ReentryGuard guard;
        r::mutex_counters().add(capture_stack(), fraction * r::StackCounters::kCountUnit,
                                fraction * delay);
    }
    errno = saved;
}

// A wait for `lock` that the try could not avoid: timed, registered for the releaser, and recorded
// when the thread really waited for the lock (not for an immediate error such as EDEADLK).
template <typename Wait>
__attribute__((noinline)) int contended(const void* lock, void* caller, Wait wait) {
    if (!programs_wait(caller)) return wait();
    int64_t start = r::now_ns();
    uint32_t ticket = r::mutex_sampled() ? r::wait_registry().arrive(lock, start) : 0;
    int result = wait();
    int64_t end = r::now_ns();
    r::wait_registry().leave(ticket, lock);
    if (result == 0 || result == EOWNERDEAD || result == ETIMEDOUT) record_block(end - start);
    return result;
}

// A wait that has no try (condition variables): timed and recorded only.
template <typename Wait>
__attribute__((noinline)) int timed(void* caller, Wait wait) {
    if (!programs_wait(caller)) return wait();
    int64_t start = r::now_ns();
    int result = wait();
    record_block(r::now_ns() - start);
    return result;
}

template <typename Unlock>
__attribute__((noinline)) int contended_unlock(const void* lock, void* caller, Unlock unlock) {
    int64_t delay = r::wait_registry().release(lock, r::now_ns());
    int result = unlock();
    if (delay > 0 && programs_wait(caller)) record_release(delay);
    return result;
}

inline bool profiling() { return r::g_lock_profiling.load(std::memory_order_relaxed); }

// glibc's pthread_mutex_trylock on a robust mutex made unrecoverable takes the lock and returns
// ENOTRECOVERABLE without releasing it (nptl/pthread_mutex_trylock.c tests the wrong variable), so
// a later lock would change result. Robust mutexes are never tried: gprof peeks at the lock word
// (glibc's public struct layout), and times the lock when it is held.
constexpr int kRobustKind = 16;  // PTHREAD_MUTEX_ROBUST_NORMAL_NP
inline bool robust(const pthread_mutex_t* m) { return (m->__data.__kind & kRobustKind) != 0; }

// The try that decides whether a lock call is a wait: EBUSY means held by another (or, for an
// error-checking mutex, by the caller: the real lock then returns EDEADLK at once); kFree means
// seen free without being taken.
constexpr int kFree = -1;
inline int try_first(pthread_mutex_t* m) {
    if (robust(m)) return __atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) == 0 ? kFree : EBUSY;
    return o::real_mutex_trylock(m);
}

// Every lock call: glibc's own lock when lock profiling is off; otherwise the try first, its result
// when it is final, glibc's lock at once when the lock was seen free, and a timed, registered wait
// only when the try found it held.
template <typename Try, typename Wait>
inline int lock_call(const void* lock, void* caller, Try try_lock, Wait wait) {
    if (!profiling()) return wait();
    int result = try_lock();
    if (result == kFree) return wait();
    if (result != EBUSY) [[likely]]
        return result;
    return contended(lock, caller, wait);
}

template <typename Unlock>
inline int unlock_call(const void* lock, void* caller, Unlock unlock) {
    if (!r::wait_registry().maybe_waiting(lock)) [[likely]]
        return unlock();
    return contended_unlock(lock, caller, unlock);
}

// glibc's fast path for a plain mutex (nptl/pthread_mutex_lock.c, PTHREAD_MUTEX_TIMED_NP): the
// lock word from 0 to 1 (a plain store while the process has one thread, as glibc does), then the
// owner's thread id and the user count, which glibc's unlock and condition variables undo.
// False: the mutex is held (or not plain), and the caller waits the slow way.
constexpr int kPlainKind = 0;  // PTHREAD_MUTEX_TIMED_NP, process-private, no elision
inline bool plain_lock(pthread_mutex_t* m) {
    if (__atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED) != kPlainKind) return false;
    if (__libc_single_threaded && m->__data.__lock == 0) {
        m->__data.__lock = 1;
    } else {
        int free_word = 0;
        if (!__atomic_compare_exchange_n(&m->__data.__lock, &free_word, 1, false,
                                         __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return false;
    }
    m->__data.__owner = r::thread_id();
    ++m->__data.__nusers;
    return true;
}

// A mutex whose lock word is 1 is held with no thread asleep on it: glibc's lock-word protocol
// for every kind but robust and priority-inheriting ones, whose word holds the owner's thread id.
// A waiter of gprof's registers before glibc makes the word 2, so a release that reads 1 in
// between is not charged with that waiter's few nanoseconds of waiting.
inline bool nobody_sleeps(const pthread_mutex_t* m) {
    return __atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) == 1;
}

__attribute__((noinline)) int mutex_lock_slow(pthread_mutex_t* m, void* caller) {
    auto wait = [=] { return o::real_mutex_lock(m); };
    // A plain mutex whose fast path failed is held: no need to try again.
    if (__atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED) == kPlainKind)
        return profiling() ? contended(m, caller, wait) : wait();
    return lock_call(m, caller, [=] { return try_first(m); }, wait);
}

// A condition-variable wait: always a wait, timed when lock profiling is on.
template <typename Wait>
inline int wait_call(void* caller, Wait wait) {
    if (!profiling()) return wait();
    return timed(caller, wait);
}

// Semaphores report through errno: sem_trywait as the try, its EAGAIN undone before the real
// wait; any other failure is the wait's own (sem_wait would fail the same way at once).
template <typename Wait>
inline int sem_call(sem_t* s, void* caller, Wait wait) {
    if (!profiling()) return wait();
    int saved = errno;
    if (sem_trywait(s) == 0) return 0;
    if (errno != EAGAIN) return -1;
    errno = saved;
    return timed(caller, wait);
}

}  // namespace

extern "C" {

int pthread_mutex_lock(pthread_mutex_t* m) {
    if (plain_lock(m)) [[likely]]
        return 0;
    return mutex_lock_slow(m, __builtin_return_address(0));
}

int pthread_mutex_timedlock(pthread_mutex_t* m, const struct timespec* abstime) {
    return lock_call(m, __builtin_return_address(0), [=] { return try_first(m); },
                     [=] { return o::functions().mutex_timedlock(m, abstime); });
}

int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const struct timespec* abstime) {
    return lock_call(m, __builtin_return_address(0), [=] { return try_first(m); },
                     [=] { return o::functions().mutex_clocklock(m, clock, abstime); });
}

int pthread_mutex_unlock(pthread_mutex_t* m) {
    if (nobody_sleeps(m)) [[likely]]
        return o::real_mutex_unlock(m);
    return unlock_call(m, __builtin_return_address(0), [=] { return o::real_mutex_unlock(m); });
}

int pthread_rwlock_rdlock(pthread_rwlock_t* l) {
    return lock_call(l, __builtin_return_address(0), [=] { return o::real_rwlock_tryrdlock(l); },
                     [=] { return o::real_rwlock_rdlock(l); });
}

int pthread_rwlock_wrlock(pthread_rwlock_t* l) {
    return lock_call(l, __builtin_return_address(0), [=] { return o::real_rwlock_trywrlock(l); },
                     [=] { return o::real_rwlock_wrlock(l); });
}

int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const struct timespec* abstime) {
    return lock_call(l, __builtin_return_address(0), [=] { return o::real_rwlock_tryrdlock(l); },
                     [=] { return o::functions().rwlock_timedrdlock(l, abstime); });
}

int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const struct timespec* abstime) {
    return lock_call(l, __builtin_return_address(0), [=] { return o::real_rwlock_trywrlock(l); },
                     [=] { return o::functions().rwlock_timedwrlock(l, abstime); });
}

int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t clock, const struct timespec* abstime) {
    return lock_call(l, __builtin_return_address(0), [=] { return o::real_rwlock_tryrdlock(l); },
                     [=] { return o::functions().rwlock_clockrdlock(l, clock, abstime); });
}

int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t clock, const struct timespec* abstime) {
    return lock_call(l, __builtin_return_address(0), [=] { return o::real_rwlock_trywrlock(l); },
                     [=] { return o::functions().rwlock_clockwrlock(l, clock, abstime); });
}

int pthread_rwlock_unlock(pthread_rwlock_t* l) {
    return unlock_call(l, __builtin_return_address(0), [=] { return o::real_rwlock_unlock(l); });
}

int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
    return wait_call(__builtin_return_address(0), [=] { return o::functions().cond_wait(c, m); });
}

int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abstime) {
    return wait_call(__builtin_return_address(0),
                     [=] { return o::functions().cond_timedwait(c, m, abstime); });
}

int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                           const struct timespec* abstime) {
    return wait_call(__builtin_return_address(0),
                     [=] { return o::functions().cond_clockwait(c, m, clock, abstime); });
}

int sem_wait(sem_t* s) {
    return sem_call(s, __builtin_return_address(0), [=] { return o::functions().sem_wait(s); });
}

int sem_timedwait(sem_t* s, const struct timespec* abstime) {
    return sem_call(s, __builtin_return_address(0),
                    [=] { return o::functions().sem_timedwait(s, abstime); });
}

int sem_clockwait(sem_t* s, clockid_t clock, const struct timespec* abstime) {
    return sem_call(s, __builtin_return_address(0),
                    [=] { return o::functions().sem_clockwait(s, clock, abstime); });
}

}  // extern "C"
