#include "preload/dumper.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <semaphore.h>
#include <time.h>

#include <atomic>
#include <cerrno>

#include "preload/config.h"
#include "preload/log.h"
#include "record/reentry_guard.h"
#include "writer/dump.h"

namespace gprof::dumper {
namespace {

// The signal handler wakes the dumper with sem_post (async-signal-safe). A semaphore rather than a
// pipe or eventfd: no descriptor that a program's closefrom(3) could close and hand to one of its
// own files, and nothing to inherit across exec.
sem_t g_wake;
std::atomic<bool> g_running{false};
std::atomic<bool> g_dumping{false};
std::atomic<unsigned> g_seq{0};

void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

// Is this thread writing a dump? (A fork from a signal handler that interrupted it must not wait
// for itself.)
constinit thread_local bool t_dumping [[gnu::tls_model("initial-exec")]] = false;
// Did this thread's prepare_fork claim g_dumping?
constinit thread_local bool t_fork_claimed [[gnu::tls_model("initial-exec")]] = false;

// A fork waits this long for a dump in progress (the first dump of 131072 stacks takes about
// 0.1 s here); past it, the fork goes ahead as it would without gprof.
constexpr int kForkWaitMs = 30 * 1000;

// Takes g_dumping, waiting at most wait_ms for whoever holds it (a dump, a fork).
bool claim(int wait_ms) {
    for (int waited = 0;; ++waited) {
        bool expected = false;
        if (g_dumping.compare_exchange_strong(expected, true, std::memory_order_acquire))
            return true;
        if (waited >= wait_ms) return false;
        sleep_ms(1);
    }
}

// One dump at a time, from any thread. Returns false when another did not finish within wait_ms.
bool dump_exclusive(int wait_ms) {
    if (t_dumping || !claim(wait_ms)) return false;
    record::ReentryGuard guard;
    t_dumping = true;
    writer::write_dump(g_seq.fetch_add(1, std::memory_order_relaxed) + 1);
    t_dumping = false;
    g_dumping.store(false, std::memory_order_release);
    return true;
}

void* dumper_main(void*) {
    record::ReentryGuard guard;  // everything this thread does is gprof's own work
    for (;;) {
        if (sem_wait(&g_wake) != 0) continue;  // EINTR
        while (sem_trywait(&g_wake) == 0) {
            // Signals that arrived during the wait ask for the same dump.
        }
        dump_exclusive(60 * 1000);
    }
}

bool start_thread() {
    sem_init(&g_wake, 0, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    // The thread blocks every signal, so the program's signals (SIGTERM to a sigwait()ing thread,
    // its own SIGUSR1) are never delivered to it.
    sigset_t all;
    sigfillset(&all);
    pthread_attr_setsigmask_np(&attr, &all);
    pthread_t thread;
    int err = pthread_create(&thread, &attr, dumper_main, nullptr);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        log::problem("cannot start the dumper thread: error %d; signal dumps are off", err);
        return false;
    }
    g_running.store(true, std::memory_order_release);
    pthread_setname_np(thread, "gprof-dumper");
    return true;
}

void on_dump_signal(int) {
    request();
}

// A handler the program installed before gprof's constructor stays: dumps by signal are then off,
// and no dumper thread is started for them.
bool signal_is_free(int sig) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler != SIG_DFL &&
        old.sa_handler != SIG_IGN) {
        log::problem("signal %d already has a handler; GPROF_SIGNAL dumps are off", sig);
        return false;
    }
    return true;
}

void install_signal_handler(int sig) {
    struct sigaction sa = {};
    sa.sa_handler = on_dump_signal;
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, nullptr) != 0)
        log::problem("cannot install the handler for signal %d; GPROF_SIGNAL dumps are off", sig);
}

void at_exit() {
    // Other threads may still allocate while this runs; they are not waited for. A dump already
    // in progress gets a few seconds to finish.
    dump_now(5000);
}

}  // namespace

void request() {
    int saved = errno;
    if (g_running.load(std::memory_order_acquire)) sem_post(&g_wake);
    errno = saved;
}

bool dump_now(int wait_ms) { return dump_exclusive(wait_ms); }

void start() {
    const Config& c = config();
    if (c.dump_signal != 0 && signal_is_free(c.dump_signal) && start_thread())
        install_signal_handler(c.dump_signal);
    if (c.at_exit) atexit(at_exit);
}

void prepare_fork() {
    if (!t_dumping) t_fork_claimed = claim(kForkWaitMs);
}

void parent_after_fork() {
    if (t_fork_claimed) g_dumping.store(false, std::memory_order_release);
    t_fork_claimed = false;
}

void child_after_fork() {
    // Only the forking thread exists in the child: the parent's dumper is gone (its semaphore
    // may be in any state), and the child numbers its own files from 0001.
    t_fork_claimed = false;
    g_dumping.store(false, std::memory_order_relaxed);
    g_seq.store(0, std::memory_order_relaxed);
    if (g_running.exchange(false, std::memory_order_acq_rel)) start_thread();
}

}  // namespace gprof::dumper
