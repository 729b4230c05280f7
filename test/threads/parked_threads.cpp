// Threads in the places a stack capture must not disturb, during a dump: read() on a pipe, a
// write() of 1 MiB into a full pipe (a handler would end it short), poll(), nanosleep(), sigwait()
// with every signal blocked, a busy loop with every signal blocked, and a program that uses
// SIGUSR1 itself (a handler that counts) while the dump runs.
//
// Usage: parked_threads <GPROF_OUTPUT prefix> <dump-signal-number> [exit-now]
// Each waiter checks its call's result and prints it; any EINTR or short result is a failure.
// When the dump signal is not SIGUSR2, the program handles SIGUSR2 itself too. With exit-now, it
// returns from main right after asking for the dump, with every thread still parked.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "test/threads/await_dump.h"

namespace {

int g_read_pipe[2], g_poll_pipe[2], g_write_pipe[2];
constexpr size_t kWriteBytes = size_t{1} << 20;
std::atomic<bool> g_stop_spinning{false};
std::atomic<int> g_usr1{0};
std::atomic<int> g_ready{0};

__attribute__((noinline)) void* reader_wait(void*) {
    pthread_setname_np(pthread_self(), "reader");
    g_ready++;
    char byte = 0;
    ssize_t n = read(g_read_pipe[0], &byte, 1);
    printf("read %zd %c %s\n", n, byte, n < 0 ? strerror(errno) : "");
    return nullptr;
}

__attribute__((noinline)) void* writer_wait(void*) {
    pthread_setname_np(pthread_self(), "writer");
    static char data[kWriteBytes];
    g_ready++;
    ssize_t n = write(g_write_pipe[1], data, sizeof data);
    printf("write %zd %s\n", n, n < 0 ? strerror(errno) : "");
    return nullptr;
}

__attribute__((noinline)) void* poller_wait(void*) {
    pthread_setname_np(pthread_self(), "poller");
    g_ready++;
    struct pollfd p = {g_poll_pipe[0], POLLIN, 0};
    int n = poll(&p, 1, 20000);
    printf("poll %d %s\n", n, n < 0 ? strerror(errno) : "");
    return nullptr;
}

__attribute__((noinline)) void* sleeper_wait(void*) {
    pthread_setname_np(pthread_self(), "sleeper");
    g_ready++;
    struct timespec ts = {2, 0};
    int n = nanosleep(&ts, nullptr);
    printf("nanosleep %d %s\n", n, n < 0 ? strerror(errno) : "");
    return nullptr;
}

__attribute__((noinline)) void* sigwaiter_wait(void*) {
    pthread_setname_np(pthread_self(), "sigwaiter");
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    g_ready++;
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    int sig = 0;
    int err = sigwait(&term, &sig);
    printf("sigwait %d %s\n", err, sig == SIGTERM ? "SIGTERM" : "other");
    return nullptr;
}

__attribute__((noinline)) void* blocked_spinner(void*) {
    pthread_setname_np(pthread_self(), "spinner");
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    g_ready++;
    volatile unsigned long x = 0;
    while (!g_stop_spinning.load(std::memory_order_relaxed)) x = x + 1;
    return nullptr;
}

std::atomic<int> g_usr2{0};
void on_usr1(int) { g_usr1++; }
void on_usr2(int) { g_usr2++; }

int g_dump_signal = 0;

// While the dump runs, the program's own signals keep arriving.
void signal_self() {
    pthread_kill(pthread_self(), SIGUSR1);
    if (g_dump_signal != SIGUSR2) pthread_kill(pthread_self(), SIGUSR2);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    const int dump_signal = g_dump_signal = atoi(argv[2]);
    const bool exit_now = argc > 3 && strcmp(argv[3], "exit-now") == 0;
    if (pipe(g_read_pipe) != 0 || pipe(g_poll_pipe) != 0 || pipe(g_write_pipe) != 0) return 2;
    struct sigaction sa = {};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, nullptr);  // the program's own signal (no SA_RESTART)
    if (dump_signal != SIGUSR2) {
        sa.sa_handler = on_usr2;
        sigaction(SIGUSR2, &sa, nullptr);
    }

    pthread_t threads[6];
    void* (*bodies[6])(void*) = {reader_wait, poller_wait, sleeper_wait, sigwaiter_wait,
                                 blocked_spinner, writer_wait};
    for (int i = 0; i < 6; ++i) pthread_create(&threads[i], nullptr, bodies[i], nullptr);
    while (g_ready.load() < 6) usleep(1000);
    usleep(200 * 1000);  // all of them are in their calls

    kill(getpid(), dump_signal);
    if (exit_now) {
        printf("exiting during the dump\n");
        fflush(stdout);
        g_stop_spinning = true;
        return 0;
    }
    printf("dump %s\n", await_dump(argv[1], signal_self) ? "seen" : "missing");
    printf("usr1 handled %s\n", g_usr1.load() > 0 ? "yes" : "no");
    if (dump_signal != SIGUSR2) printf("usr2 handled %s\n", g_usr2.load() > 0 ? "yes" : "no");

    if (write(g_read_pipe[1], "x", 1) != 1 || write(g_poll_pipe[1], "y", 1) != 1) return 3;
    pthread_kill(threads[3], SIGTERM);
    g_stop_spinning = true;
    static char sink[65536];
    for (size_t got = 0; got < kWriteBytes;) {
        ssize_t n = read(g_write_pipe[0], sink, sizeof sink);
        if (n <= 0) return 4;
        got += static_cast<size_t>(n);
    }
    for (pthread_t t : threads) pthread_join(t, nullptr);
    return 0;
}
