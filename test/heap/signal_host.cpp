// The program's own signals and system calls beside gprof's dump signal.
//   signal_host read      blocks in read(2) on a pipe while SIGUSR2 (gprof's dump) arrives; the
//                          read must be restarted (SA_RESTART), not fail with EINTR
//   signal_host own       installs its own SIGUSR2 handler, as nginx or a JVM does: the
//                          program's handler wins and runs
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {
int pipe_fds[2];
volatile sig_atomic_t own_handler_ran = 0;

void* writer(void*) {
    // Dump signals while the main thread waits, then the data it waits for.
    for (int i = 0; i < 5; ++i) {
        usleep(20000);
        kill(getpid(), SIGUSR2);
    }
    usleep(50000);
    if (write(pipe_fds[1], "hello", 5) != 5) _exit(5);
    return nullptr;
}

void own_handler(int) { own_handler_ran = 1; }
}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && strcmp(argv[1], "read") == 0) {
        if (pipe(pipe_fds) != 0) return 2;
        // Only the main thread may take the signal, as in a program that waits in read().
        sigset_t usr2;
        sigemptyset(&usr2);
        sigaddset(&usr2, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &usr2, nullptr);
        pthread_t t;
        pthread_create(&t, nullptr, writer, nullptr);
        pthread_sigmask(SIG_UNBLOCK, &usr2, nullptr);
        char buf[8] = {};
        ssize_t n = read(pipe_fds[0], buf, sizeof buf - 1);
        int err = errno;
        pthread_join(t, nullptr);
        printf("read %zd bytes: %s%s\n", n, n > 0 ? buf : "", n < 0 ? strerror(err) : "");
        return n == 5 ? 0 : 1;
    }
    if (argc == 2 && strcmp(argv[1], "own") == 0) {
        struct sigaction sa = {};
        sa.sa_handler = own_handler;
        sigaction(SIGUSR2, &sa, nullptr);
        raise(SIGUSR2);
        printf("own handler ran: %s\n", own_handler_ran ? "yes" : "no");
        return own_handler_ran ? 0 : 1;
    }
    return 2;
}
