/* Case 31: N children each allocate in a tight loop with a SIGTERM handler that calls exit();
   the parent sends SIGTERM after a short while. exit() runs the at-exit dump from the handler,
   on a thread interrupted in malloc. A child not gone within 5 s counts as hung.
   Usage: sigterm_exit N */
#include <sys/wait.h>

#include "hostile.h"

static void on_term(int sig) {
    (void)sig;
    exit(0);
}

int main(int argc, char** argv) {
    int n = argc > 1 ? atoi(argv[1]) : 500;
    int exited = 0, hung = 0;
    for (int i = 0; i < n; ++i) {
        /* The child says when its handler is in place (fork has returned in it): a SIGTERM any
           earlier would find it without one, or still inside fork. */
        int ready[2];
        if (pipe(ready) != 0) hostile_fail("pipe");
        pid_t pid = fork();
        if (pid < 0) hostile_fail("fork");
        if (pid == 0) {
            signal(SIGTERM, on_term);
            if (write(ready[1], "r", 1) != 1) _exit(3);
            void* ring[16] = {0};
            for (unsigned k = 0;; ++k) {
                free(ring[k % 16]);
                ring[k % 16] = malloc(32 + (k * 7919) % 70000);
            }
        }
        char byte;
        if (read(ready[0], &byte, 1) != 1) hostile_fail("read");
        close(ready[0]);
        close(ready[1]);
        usleep(1000 + (useconds_t)(i % 7) * 300);
        kill(pid, SIGTERM);
        int status = 0;
        double end = hostile_now() + 5;
        pid_t r;
        while ((r = waitpid(pid, &status, WNOHANG)) == 0 && hostile_now() < end) usleep(1000);
        if (r == 0) {
            ++hung;
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ++exited;
        } else {
            fprintf(stderr, "child %d: %s %d\n", i, WIFEXITED(status) ? "exit status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        }
    }
    printf("children %d, exited 0: %d, hung: %d\n", n, exited, hung);
    return 0;
}
