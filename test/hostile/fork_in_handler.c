/* Case 15 (after glibc's tst-mallocfork2): a signal handler forks while the main thread is in the
   middle of malloc and free; the child _exits at once. An atfork handler that takes a lock the
   interrupted code holds deadlocks here. A separate process sends the signals. Usage:
   fork_in_handler N (forks wanted) */
#include <sys/wait.h>

#include "hostile.h"

static volatile sig_atomic_t g_forks;
static volatile sig_atomic_t g_bad;

static void on_usr1(int sig) {
    (void)sig;
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) {
        g_bad = 1;
    } else {
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) g_bad = 1;
        ++g_forks;
    }
    errno = saved;
}

int main(int argc, char** argv) {
    int wanted = argc > 1 ? atoi(argv[1]) : 1000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    pid_t parent = getpid();
    pid_t sender = fork();
    if (sender < 0) hostile_fail("fork");
    if (sender == 0) {
        for (;;) {
            if (kill(parent, SIGUSR1) != 0) _exit(0);
            usleep(100);
        }
    }
    void* ring[32] = {0};
    unsigned seed = 1;
    while (g_forks < wanted && !g_bad) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % 32;
        free(ring[k]);
        ring[k] = malloc(16 + (seed >> 16) % 5000);
    }
    kill(sender, SIGKILL);
    waitpid(sender, NULL, 0);
    for (int i = 0; i < 32; ++i) free(ring[i]);
    printf("forks from the handler: %s, failures: %d\n", g_forks >= wanted ? "all" : "fewer",
           (int)g_bad);
    return 0;
}
