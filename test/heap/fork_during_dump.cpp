// Forks while dumps are being written. A child must never inherit a dump half done (its locks held
// by a thread that does not exist in the child): every child's own at-exit dump must finish.
// Usage: fork_during_dump [forks=150]. A thread asks for a dump (SIGUSR2) every 2 ms while the
// main thread forks; a child that has not exited after 10 s is killed and counted. Prints
// "children N hung H" and exits 1 if any hung.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#define NOINLINE __attribute__((noinline))

namespace {

void* volatile sink;

NOINLINE void allocate_some() {
    for (int i = 0; i < 100; ++i) {
        sink = malloc(1 << 16);
        free(sink);
    }
}

}  // namespace

int main(int argc, char** argv) {
    int forks = argc > 1 ? atoi(argv[1]) : 150;
    std::atomic<bool> stop{false};
    std::thread requester([&] {
        while (!stop.load()) {
            kill(getpid(), SIGUSR2);
            usleep(2000);
        }
    });
    int hung = 0;
    for (int i = 0; i < forks; ++i) {
        allocate_some();
        pid_t child = fork();
        if (child < 0) {
            perror("fork");
            break;
        }
        if (child == 0) {
            allocate_some();
            exit(0);  // runs gprof's at-exit dump
        }
        int status = 0;
        for (int waited_ms = 0; waitpid(child, &status, WNOHANG) == 0; ++waited_ms) {
            if (waited_ms >= 10000) {
                ++hung;
                kill(child, SIGKILL);
                waitpid(child, &status, 0);
                break;
            }
            usleep(1000);
        }
    }
    stop.store(true);
    requester.join();
    printf("children %d hung %d\n", forks, hung);
    return hung == 0 ? 0 : 1;
}
