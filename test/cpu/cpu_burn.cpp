// Programs whose CPU time is known, for the cpu profile's end-to-end tests (test/e2e/cpu_test.cpp).
// Each burns CPU in named functions and prints what CLOCK_THREAD_CPUTIME_ID says it used, the
// truth the profile is checked against.
//
//   cpu_burn ratio SECONDS        burn_three and burn_one burn 3:1 of one thread's CPU time
//   cpu_burn threads SCALE        four threads (burn-0 .. burn-3) burn 0.4, 0.6, 0.8, 1.0 s x SCALE
//   cpu_burn short N MS           N threads, at most 4 at a time, each burns MS milliseconds
//   cpu_burn blocking SECONDS     threads wait in poll, epoll_wait, nanosleep, read, select,
//                                 sem_timedwait and futex while main burns; prints EINTRs seen
//   cpu_burn fork SECONDS         burns, forks a child that burns in child_burn, waits for it
//   cpu_burn sigprof SECONDS      the program's own SIGPROF profiler (setitimer) while it burns
//   cpu_burn takeover SECONDS     installs handlers on SIGSTKFLT and every real-time signal
//   cpu_burn fds SECONDS          burns in main and in a second thread, then lists its descriptors
//   cpu_burn dumps PREFIX         burns 0.8 s, dumps (SIGUSR2), 0.8 s, dumps, 0.4 s, exits
//   cpu_burn labels SECONDS       two threads burn under gprof_label_push request=a / request=b
//                                 (SECONDS and half of it)
//   cpu_burn api FILE SECONDS     gprof_start_cpu_profile(FILE) around a burn, and a second
//                                 start while one runs (EBUSY)
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "api/gprof.h"

namespace {

int64_t thread_cpu_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// noipa: no clone, no tail call, no dropped result: each burner stays a frame of its own.
// Spins until this thread has used `ns` more CPU time, reading the clock every few microseconds
// of work (each read is a system call: time in the kernel, kept small).
__attribute__((noipa)) double spin(int64_t ns) {
    const int64_t end = thread_cpu_ns() + ns;
    volatile double x = 1.0;
    do {
        for (int i = 0; i < 20000; ++i) x = x * 1.0000001 + 0.5;  // the line the profile shows
    } while (thread_cpu_ns() < end);
    return x;
}

__attribute__((noipa)) double burn_three(int64_t ns) { return spin(ns) + 3; }
__attribute__((noipa)) double burn_one(int64_t ns) { return spin(ns) + 1; }
__attribute__((noipa)) double thread_burn(int64_t ns) { return spin(ns) + 2; }
__attribute__((noipa)) double child_burn(int64_t ns) { return spin(ns) + 4; }
__attribute__((noipa)) double main_burn(int64_t ns) { return spin(ns) + 5; }

int64_t seconds_ns(const char* text) { return static_cast<int64_t>(atof(text) * 1e9); }

int ratio(int64_t total) {
    // Blocks of 21 ms and 7 ms: not a multiple of any sampling period tested.
    const int64_t unit = 7000000;
    int64_t three = 0, one = 0;
    while (three + one < total) {
        int64_t t0 = thread_cpu_ns();
        burn_three(3 * unit);
        int64_t t1 = thread_cpu_ns();
        burn_one(unit);
        int64_t t2 = thread_cpu_ns();
        three += t1 - t0;
        one += t2 - t1;
    }
    printf("three %lld one %lld\n", static_cast<long long>(three), static_cast<long long>(one));
    return 0;
}

struct Burner {
    int64_t ns;
    int64_t used = 0;
    char name[16];
};

void* burner_main(void* raw) {
    auto* b = static_cast<Burner*>(raw);
    pthread_setname_np(pthread_self(), b->name);
    thread_burn(b->ns);
    b->used = thread_cpu_ns();
    return nullptr;
}

int threads(double scale) {
    Burner burners[4];
    pthread_t ids[4];
    for (int i = 0; i < 4; ++i) {
        burners[i].ns = static_cast<int64_t>((0.4 + 0.2 * i) * scale * 1e9);
        snprintf(burners[i].name, sizeof burners[i].name, "burn-%d", i);
        pthread_create(&ids[i], nullptr, burner_main, &burners[i]);
    }
    for (pthread_t id : ids) pthread_join(id, nullptr);
    for (const Burner& b : burners)
        printf("thread %s %lld\n", b.name, static_cast<long long>(b.used));
    return 0;
}

std::atomic<int64_t> g_short_total{0};

void* short_main(void* raw) {
    thread_burn(*static_cast<int64_t*>(raw));
    g_short_total.fetch_add(thread_cpu_ns());
    return nullptr;
}

int short_threads(int n, int64_t ns) {
    for (int done = 0; done < n;) {
        pthread_t ids[4];
        int batch = n - done < 4 ? n - done : 4;
        for (int i = 0; i < batch; ++i) pthread_create(&ids[i], nullptr, short_main, &ns);
        for (int i = 0; i < batch; ++i) pthread_join(ids[i], nullptr);
        done += batch;
    }
    printf("short total %lld\n", static_cast<long long>(g_short_total.load()));
    return 0;
}

// ---- Threads that wait in blocking calls, counting EINTR. ----

std::atomic<bool> g_stop{false};
int g_wake_pipe[2];
struct Waiter {
    const char* call;
    std::atomic<long> eintr{0};
    std::atomic<long> calls{0};
};
Waiter g_waiters[] = {{"poll"},   {"epoll_wait"},    {"nanosleep"}, {"read"},
                      {"select"}, {"sem_timedwait"}, {"futex"}};
sem_t g_sem;
int g_futex_word = 0;

void note(Waiter& w, int result) {
    ++w.calls;
    if (result == -1 && errno == EINTR) ++w.eintr;
}

void* waiter_main(void* raw) {
    auto& w = *static_cast<Waiter*>(raw);
    const std::string call = w.call;
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {};
    event.events = EPOLLIN;
    epoll_ctl(epoll, EPOLL_CTL_ADD, g_wake_pipe[0], &event);
    while (!g_stop.load()) {
        if (call == "poll") {
            struct pollfd p = {g_wake_pipe[0], POLLIN, 0};
            note(w, poll(&p, 1, 500));
        } else if (call == "epoll_wait") {
            struct epoll_event got;
            note(w, epoll_wait(epoll, &got, 1, 500));
        } else if (call == "nanosleep") {
            struct timespec ts = {0, 200000000};
            note(w, nanosleep(&ts, nullptr));
        } else if (call == "read") {
            char c;
            note(w, static_cast<int>(read(g_wake_pipe[0], &c, 1)));  // until the end's byte
        } else if (call == "select") {
            fd_set set;
            FD_ZERO(&set);
            FD_SET(g_wake_pipe[0], &set);
            struct timeval tv = {0, 500000};
            note(w, select(g_wake_pipe[0] + 1, &set, nullptr, nullptr, &tv));
        } else if (call == "sem_timedwait") {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 300000000;
            if (until.tv_nsec >= 1000000000) until.tv_sec += 1, until.tv_nsec -= 1000000000;
            int r = sem_timedwait(&g_sem, &until);
            if (!(r == -1 && errno == ETIMEDOUT)) note(w, r);
            else ++w.calls;
        } else {
            struct timespec ts = {0, 300000000};
            note(w, static_cast<int>(syscall(SYS_futex, &g_futex_word, FUTEX_WAIT_PRIVATE, 0, &ts,
                                             nullptr, 0)));
        }
    }
    close(epoll);
    return nullptr;
}

int blocking(int64_t ns) {
    if (pipe2(g_wake_pipe, O_CLOEXEC) != 0) return 1;
    sem_init(&g_sem, 0, 0);
    std::vector<pthread_t> ids;
    for (Waiter& w : g_waiters) {
        pthread_t id;
        pthread_create(&id, nullptr, waiter_main, &w);
        ids.push_back(id);
    }
    main_burn(ns);
    g_stop.store(true);
    for (size_t i = 0; i < ids.size(); ++i) {
        if (write(g_wake_pipe[1], "x", 1) != 1) return 1;
    }
    sem_post(&g_sem);
    for (pthread_t id : ids) pthread_join(id, nullptr);
    for (Waiter& w : g_waiters)
        printf("%s calls>0 %d eintr %ld\n", w.call, w.calls.load() > 0 ? 1 : 0, w.eintr.load());
    return 0;
}

int fork_child(int64_t ns) {
    main_burn(ns);
    pid_t child = fork();
    if (child == 0) {
        child_burn(ns);
        exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    printf("child %d status %d\n", static_cast<int>(child), status);
    return 0;
}

std::atomic<long> g_sigprofs{0};

int own_sigprof(int64_t ns) {
    struct sigaction sa = {};
    sa.sa_handler = [](int) { ++g_sigprofs; };
    sa.sa_flags = SA_RESTART;
    sigaction(SIGPROF, &sa, nullptr);
    struct itimerval every = {{0, 10000}, {0, 10000}};  // 100 Hz of the process's CPU time
    setitimer(ITIMER_PROF, &every, nullptr);
    main_burn(ns);
    struct itimerval off = {};
    setitimer(ITIMER_PROF, &off, nullptr);
    long expected = static_cast<long>(ns / 10000000);
    printf("sigprof %ld of %ld\n", g_sigprofs.load(), expected);
    return 0;
}

std::atomic<long> g_rt_signals{0};

int takeover(int64_t ns) {
    main_burn(ns / 2);
    struct sigaction sa = {};
    sa.sa_handler = [](int) { ++g_rt_signals; };
    sa.sa_flags = SA_RESTART;
    sigaction(SIGSTKFLT, &sa, nullptr);
    for (int sig = SIGRTMIN + 5; sig < SIGRTMAX; ++sig) sigaction(sig, &sa, nullptr);
    main_burn(ns / 2);
    printf("takeover signals %ld\n", g_rt_signals.load());
    return 0;
}

// The open descriptors, as a program that checks for leaks lists them.
std::string open_descriptors() {
    std::string list;
    for (int fd = 0; fd < 65536; ++fd)
        if (fcntl(fd, F_GETFD) != -1) list += std::to_string(fd) + " ";
    return list;
}

int fds(int64_t ns) {
    pthread_t second;
    pthread_create(&second, nullptr, [](void* raw) -> void* {
        thread_burn(*static_cast<int64_t*>(raw));
        return nullptr;
    }, &ns);
    main_burn(ns);
    printf("while a thread runs: %s\n", open_descriptors().c_str());
    pthread_join(second, nullptr);
    printf("after: %s\n", open_descriptors().c_str());
    return 0;
}

__attribute__((noipa)) double label_burn(int64_t ns) { return spin(ns) + 6; }

struct Labelled {
    const char* value;
    int64_t ns;
    int64_t used = 0;
};

void* labelled_main(void* raw) {
    auto* job = static_cast<Labelled*>(raw);
    bool api = gprof_label_push != nullptr;
    if (api) gprof_label_push("request", job->value);
    int64_t start = thread_cpu_ns();
    label_burn(job->ns);
    job->used = thread_cpu_ns() - start;
    if (api) gprof_label_pop();
    return nullptr;
}

int labels(int64_t ns) {
    Labelled jobs[] = {{"a", ns}, {"b", ns / 2}};
    pthread_t ids[2];
    for (int i = 0; i < 2; ++i) pthread_create(&ids[i], nullptr, labelled_main, &jobs[i]);
    for (pthread_t id : ids) pthread_join(id, nullptr);
    printf("request a %lld\nrequest b %lld\n", static_cast<long long>(jobs[0].used),
           static_cast<long long>(jobs[1].used));
    return 0;
}

int api(const char* path, int64_t ns) {
    if (gprof_start_cpu_profile == nullptr) {
        printf("no gprof\n");
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int started = gprof_start_cpu_profile(fd);
    int again = gprof_start_cpu_profile(fd);
    int again_errno = errno;
    int64_t before = thread_cpu_ns();
    main_burn(ns);
    int64_t used = thread_cpu_ns() - before;
    int stopped = gprof_stop_cpu_profile();
    int stopped_again = gprof_stop_cpu_profile();
    int stopped_again_errno = errno;
    close(fd);
    printf("start %d again %d %s stop %d again %d %s burned %lld\n", started, again,
           again_errno == EBUSY ? "EBUSY" : "?", stopped, stopped_again,
           stopped_again_errno == EINVAL ? "EINVAL" : "?", static_cast<long long>(used));
    return 0;
}

// Waits for dump `seq` to be complete: its threads profile, written last.
bool await_dump(const char* prefix, int seq) {
    char path[4096];
    snprintf(path, sizeof path, "%s.%d.%04d.threads.pb.gz", prefix, getpid(), seq);
    for (int i = 0; i < 3000 && access(path, F_OK) != 0; ++i) usleep(10 * 1000);
    return access(path, F_OK) == 0;
}

int dumps(const char* prefix) {
    const int64_t segments[] = {800000000, 800000000, 400000000};
    for (int i = 0; i < 3; ++i) {
        int64_t before = thread_cpu_ns();
        main_burn(segments[i]);
        printf("segment %d %lld\n", i + 1, static_cast<long long>(thread_cpu_ns() - before));
        if (i < 2) {
            kill(getpid(), SIGUSR2);
            if (!await_dump(prefix, i + 1)) printf("dump %d missing\n", i + 1);
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: cpu_burn MODE ARGS\n");
        return 2;
    }
    const std::string mode = argv[1];
    if (mode == "ratio") return ratio(seconds_ns(argv[2]));
    if (mode == "threads") return threads(atof(argv[2]));
    if (mode == "short" && argc == 4) return short_threads(atoi(argv[2]), atoi(argv[3]) * 1000000LL);
    if (mode == "blocking") return blocking(seconds_ns(argv[2]));
    if (mode == "fork") return fork_child(seconds_ns(argv[2]));
    if (mode == "sigprof") return own_sigprof(seconds_ns(argv[2]));
    if (mode == "takeover") return takeover(seconds_ns(argv[2]));
    if (mode == "dumps") return dumps(argv[2]);
    if (mode == "fds") return fds(seconds_ns(argv[2]));
    if (mode == "labels") return labels(seconds_ns(argv[2]));
    if (mode == "api" && argc == 4) return api(argv[2], seconds_ns(argv[3]));
    fprintf(stderr, "cpu_burn: unknown mode %s\n", mode.c_str());
    return 2;
}
