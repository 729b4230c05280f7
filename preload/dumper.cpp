#include "preload/dumper.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <semaphore.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "base/config.h"
#include "base/log.h"
#include "base/notes.h"
#include "base/own_thread.h"
#include "base/reentry_guard.h"
#include "base/spin_lock.h"
#include "preload/cpu_sampler.h"
#include "preload/heap_coverage.h"
#include "preload/http.h"
#include "preload/originals.h"
#include "unwind/libunwind.h"
#include "writer/dump.h"

namespace gprof::dumper {
namespace {

// The signal handler wakes the dumper with sem_post (async-signal-safe). A semaphore rather than a
// pipe or eventfd: no descriptor that a program's closefrom(3) could close and hand to one of its
// own files, and nothing to inherit across exec.
sem_t g_wake;
std::atomic<bool> g_running{false};  // the dumper thread serves requests
std::atomic<bool> g_quit{false};     // asks the dumper thread to end
std::atomic<bool> g_dumping{false};
std::atomic<unsigned> g_seq{0};
// Why the dumper was woken: a dump (the signal), libunwind wanted by a sample, or both.
std::atomic<bool> g_dump_wanted{false};
std::atomic<bool> g_libunwind_wanted{false};

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

// A fork waits this long for a dump in progress that cannot stop early (at exit, the C API's);
// past it, the fork goes ahead as it would without gprof. A dump by signal stops within one
// sample when a fork waits (g_forks_waiting), and is written again after the fork.
constexpr int kForkWaitMs = 30 * 1000;
std::atomic<int> g_forks_waiting{0};
// No dump is taken any more in this process (child_without_handlers).
std::atomic<bool> g_closed{false};

// Takes g_dumping, waiting at most wait_ms for whoever holds it (a dump, a fork).
bool claim(int wait_ms) {
    if (g_closed.load(std::memory_order_relaxed)) return false;
    for (int waited = 0;; ++waited) {
        bool expected = false;
        if (g_dumping.compare_exchange_strong(expected, true, std::memory_order_acquire))
            return true;
        if (waited >= wait_ms) return false;
        sleep_ms(1);
    }
}

// One dump at a time, from any thread. Returns its sequence number, or 0 when another did not
// finish within wait_ms. Given `stopped`, the dump stops early when a fork waits for it, and
// *stopped says whether it did.
unsigned dump_exclusive(int wait_ms, writer::DumpReason reason, bool* stopped = nullptr) {
    if (stopped != nullptr) *stopped = false;
    if (t_dumping || !claim(wait_ms)) return 0;
    base::ReentryGuard guard;
    t_dumping = true;
    unsigned seq = g_seq.fetch_add(1, std::memory_order_relaxed) + 1;
    heap_coverage::check();
    seq = writer::write_dump(seq, reason, stopped != nullptr ? &g_forks_waiting : nullptr,
                             stopped);
    t_dumping = false;
    g_dumping.store(false, std::memory_order_release);
    return seq;
}

std::atomic<int> g_dumper_tid{0};

void* dumper_main(void*) {
    base::ReentryGuard guard;  // everything this thread does is gprof's own work
    g_dumper_tid.store(static_cast<int>(gettid()), std::memory_order_release);
    for (;;) {
        if (sem_wait(&g_wake) != 0) continue;  // EINTR
        while (sem_trywait(&g_wake) == 0) {
            // Signals that arrived during the wait ask for the same dump.
        }
        if (g_quit.load(std::memory_order_acquire)) break;
        if (g_libunwind_wanted.exchange(false, std::memory_order_acq_rel))
            unwind::ensure_libunwind();
        if (g_dump_wanted.exchange(false, std::memory_order_acq_rel)) {
            // A dump that a fork stopped is written again once the fork is done (until then
            // the fork holds the claim).
            bool stopped = true;
            for (int tries = 0; stopped && tries < 16 && !g_quit.load(std::memory_order_acquire);
                 ++tries) {
                for (int waited = 0; waited < kForkWaitMs &&
                                     g_forks_waiting.load(std::memory_order_acquire) != 0;
                     ++waited)
                    sleep_ms(1);  // the fork that stopped it claims first
                dump_exclusive(60 * 1000, writer::DumpReason::Signal, &stopped);
            }
        }
    }
    g_running.store(false, std::memory_order_release);
    return nullptr;
}

bool start_thread() {
    sem_init(&g_wake, 0, 0);
    g_dump_wanted.store(false, std::memory_order_relaxed);
    g_libunwind_wanted.store(false, std::memory_order_relaxed);
    g_quit.store(false, std::memory_order_relaxed);
    g_running.store(true, std::memory_order_release);
    if (int err = base::start_own_thread(dumper_main, "gprof-dumper"); err != 0) {
        g_running.store(false, std::memory_order_release);
        log::problem("cannot start the dumper thread: error %d; signal dumps are off", err);
        return false;
    }
    return true;
}

// Ends the dumper thread (it finishes a dump in progress first). Async-signal-safe.
void stop_thread() {
    g_quit.store(true, std::memory_order_release);
    if (g_running.load(std::memory_order_acquire)) sem_post(&g_wake);
}

// ---- The program's threads: the dumper lives no longer than the last of them. ----

// glibc ends the process (exit(0)) when the thread count it keeps falls to zero; the dumper is
// in that count. So gprof counts the program's threads itself (the main thread, and every thread
// its pthread_create started), each with a thread-specific value whose destructor runs when the
// thread ends (return, pthread_exit, cancellation; not at exit()), and ends the dumper when the
// last one does: the count then falls to zero as it would without gprof. Threads that do not
// pass pthread_create (thrd_create, raw clone) are not counted; with only them left, dumps by
// signal stop.
std::atomic<int> g_program_threads{0};
pthread_key_t g_thread_end_key;
pthread_once_t g_thread_end_once = PTHREAD_ONCE_INIT;
bool g_thread_end_key_made = false;

void on_program_thread_end(void*) {
    if (g_program_threads.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        stop_thread();
        cpu_sampler::stop_thread();
        http::stop();
    }
}

void make_thread_end_key() {
    g_thread_end_key_made = pthread_key_create(&g_thread_end_key, on_program_thread_end) == 0;
}

}  // namespace

void program_thread_started() {
    pthread_once(&g_thread_end_once, make_thread_end_key);
    if (!g_thread_end_key_made || pthread_getspecific(g_thread_end_key) != nullptr) return;
    if (pthread_setspecific(g_thread_end_key, reinterpret_cast<void*>(1)) == 0)
        g_program_threads.fetch_add(1, std::memory_order_acq_rel);
}

namespace {

// ---- The dump signal, and the program's view of it. ----

constexpr const char kSignalNote[] =
    "gprof: the program handles the dump signal (GPROF_SIGNAL) itself: no dumps on it";

void on_dump_signal(int) { request(); }

// Whether gprof's handler is on the dump signal, and what the program would see there without
// gprof. Read and written under g_signal_lock with every signal blocked (sigaction may be called
// from a signal handler).
bool g_signal_held = false;
struct sigaction g_program_action;
constinit base::SpinLock g_signal_lock;

class SignalStateGuard {
public:
    SignalStateGuard() {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &previous_);
        g_signal_lock.lock();
    }
    ~SignalStateGuard() {
        g_signal_lock.unlock();
        pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    }
    SignalStateGuard(const SignalStateGuard&) = delete;
    SignalStateGuard& operator=(const SignalStateGuard&) = delete;

private:
    sigset_t previous_;
};

bool is_default_or_ignore(const struct sigaction& action) {
    return action.sa_handler == SIG_DFL || action.sa_handler == SIG_IGN;
}

// Takes the dump signal unless the program installed a handler of its own before gprof's
// constructor (then dumps by signal are off, and it is said once).
bool take_signal(int sig) {
    struct sigaction found, ours = {};
    if (originals::real_sigaction(sig, nullptr, &found) != 0) return false;
    if (!is_default_or_ignore(found)) {
        log::problem("signal %d already has a handler of the program's; dumps on it are off "
                     "(GPROF_SIGNAL chooses another signal)",
                     sig);
        base::note(kSignalNote);
        return false;
    }
    ours.sa_handler = on_dump_signal;
    ours.sa_flags = SA_RESTART | SA_ONSTACK;
    sigemptyset(&ours.sa_mask);
    SignalStateGuard guard;
    if (originals::real_sigaction(sig, &ours, nullptr) != 0) {
        log::problem("cannot install the handler for signal %d; GPROF_SIGNAL dumps are off", sig);
        return false;
    }
    g_program_action = found;
    g_signal_held = true;
    return true;
}

// No thread to serve the dump signal: the program's disposition comes back.
void give_signal_back() {
    SignalStateGuard guard;
    if (!g_signal_held) return;
    originals::real_sigaction(config().dump_signal, &g_program_action, nullptr);
    g_signal_held = false;
}

void at_exit() {
    // exit() from a signal handler that interrupted an allocation (gprof's jemalloc or recorder,
    // glibc's malloc through gprof's): the interrupted code may hold a lock that the dump's first
    // allocation would wait for, for ever. The look is gprof's own work: a wait for libunwind's
    // lock in it is not the program's (recording it would walk with libunwind, under that lock).
    bool interrupted;
    {
        base::ReentryGuard guard;
        interrupted = unwind::handler_interrupted_gprof();
    }
    if (interrupted) {
        log::problem("exit() was called by a signal handler that interrupted an allocation; no "
                     "profile is written at exit (it could wait for ever for the allocator's lock)");
        return;
    }
    // Other threads may still allocate while this runs; they are not waited for. A dump already
    // in progress gets a few seconds to finish.
    dump_exclusive(5000, writer::DumpReason::Exit);
}

}  // namespace

unsigned dump_now(int wait_ms) {
    return dump_exclusive(wait_ms, writer::DumpReason::Signal);
}

bool run_exclusive(int wait_ms, void (*fn)(void*), void* arg) {
    if (t_dumping || !claim(wait_ms)) return false;
    base::ReentryGuard guard;
    t_dumping = true;
    fn(arg);
    t_dumping = false;
    g_dumping.store(false, std::memory_order_release);
    return true;
}

void request() {
    int saved = errno;
    if (g_running.load(std::memory_order_acquire) && !g_quit.load(std::memory_order_acquire)) {
        g_dump_wanted.store(true, std::memory_order_release);
        sem_post(&g_wake);
    }
    errno = saved;
}

bool request_libunwind() {
    int saved = errno;
    bool asked = false;
    if (g_running.load(std::memory_order_acquire) && !g_quit.load(std::memory_order_acquire)) {
        g_libunwind_wanted.store(true, std::memory_order_release);
        asked = sem_post(&g_wake) == 0;
    }
    errno = saved;
    return asked;
}

bool program_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
    if (sig != config().dump_signal) return false;
    bool stepped_aside = false;
    {
        SignalStateGuard guard;
        if (!g_signal_held) return false;
        struct sigaction previous = g_program_action;
        if (act != nullptr && !is_default_or_ignore(*act)) {
            // The program's meaning of the signal wins.
            if (originals::real_sigaction(sig, act, nullptr) != 0) return false;  // errno set
            g_signal_held = false;
            stepped_aside = true;
        } else if (act != nullptr) {
            g_program_action = *act;
        }
        if (old != nullptr) *old = previous;
    }
    if (stepped_aside) {
        stop_thread();
        base::note(kSignalNote);
        log::problem("the program installed its own handler for signal %d (GPROF_SIGNAL); dumps "
                     "on it are off: set GPROF_SIGNAL to a signal the program leaves alone",
                     sig);
    }
    return true;
}

void start() {
    const Config& c = config();
    program_thread_started();  // the main thread
    if (c.dump_signal != 0 && take_signal(c.dump_signal) && !start_thread()) give_signal_back();
    // A sample that needs libunwind asks this thread to open it; with no thread, it is opened now.
    if (g_running.load(std::memory_order_acquire))
        unwind::set_libunwind_loader(request_libunwind);
    else
        unwind::ensure_libunwind();
    if (c.at_exit) atexit(at_exit);
}

OwnThreads pause_own_threads() {
    OwnThreads was;
    if (g_running.load(std::memory_order_acquire) && !g_quit.load(std::memory_order_acquire)) {
        // A dump in progress finishes first (the thread ends between dumps).
        stop_thread();
        base::wait_ended(g_running, g_dumper_tid, 60 * 1000);
        was.dumper = true;
    }
    was.cpu = cpu_sampler::pause_thread();
    was.http = http::pause();
    return was;
}

void resume_own_threads(OwnThreads was) {
    if (was.dumper) {
        base::ReentryGuard guard;  // the thread is gprof's own
        if (!start_thread()) give_signal_back();
    }
    if (was.cpu) cpu_sampler::resume_thread();
    if (was.http) http::resume();
}

void prepare_fork() {
    if (t_dumping) return;
    g_forks_waiting.fetch_add(1, std::memory_order_acq_rel);
    t_fork_claimed = claim(kForkWaitMs);
    g_forks_waiting.fetch_sub(1, std::memory_order_acq_rel);
}

void parent_after_fork() {
    if (t_fork_claimed) g_dumping.store(false, std::memory_order_release);
    t_fork_claimed = false;
}

void child_after_fork() {
    // Only the forking thread exists in the child: the parent's dumper is gone (its semaphore
    // may be in any state), the child numbers its own files from 0001, and the forking thread is
    // the program's only one (counted even if gprof did not see it start).
    t_fork_claimed = false;
    g_dumping.store(false, std::memory_order_relaxed);
    g_forks_waiting.store(0, std::memory_order_relaxed);  // other threads' forks are not here
    g_seq.store(0, std::memory_order_relaxed);
    g_program_threads.store(0, std::memory_order_relaxed);
    if (g_thread_end_key_made) pthread_setspecific(g_thread_end_key, nullptr);
    program_thread_started();
    bool was_running = g_running.exchange(false, std::memory_order_acq_rel);
    if (was_running && !g_quit.load(std::memory_order_relaxed)) start_thread();
}

void child_without_handlers() {
    g_closed.store(true, std::memory_order_relaxed);
    g_quit.store(true, std::memory_order_relaxed);  // the dump signal asks no one
    g_running.store(false, std::memory_order_relaxed);
}

}  // namespace gprof::dumper
