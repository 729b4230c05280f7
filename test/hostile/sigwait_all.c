/* Case 24: the program blocks every signal before its first thread and takes SIGTERM with
   sigwait in one thread, as daemons do; a dump signal sent meanwhile stays pending. gprof's own
   threads must not take the process-directed SIGTERM (it would kill the program).
   Usage: sigwait_all */
#include <pthread.h>

#include "hostile.h"

static void* waiter(void* arg) {
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    if (sigwait(&set, &sig) != 0) hostile_fail("sigwait");
    printf("sigwait got %s\n", sig == SIGTERM ? "SIGTERM" : "another signal");
    return NULL;
}

static void* worker(void* arg) {
    (void)arg;
    volatile unsigned long x = 0;
    for (int i = 0; i < 200000; ++i) {
        free(malloc(64 + (size_t)i % 512));
        x += (unsigned long)i;
    }
    return NULL;
}

int main(void) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_t w, busy;
    if (pthread_create(&w, NULL, waiter, NULL) != 0) hostile_fail("thread");
    if (pthread_create(&busy, NULL, worker, NULL) != 0) hostile_fail("thread");
    pthread_join(busy, NULL);
    kill(getpid(), SIGUSR2);
    for (int i = 0; i < 20; ++i) {  /* SIGTERM many times: any thread not blocking it dies of it */
        kill(getpid(), SIGTERM);
        usleep(1000);
    }
    pthread_join(w, NULL);
    sigset_t pending;
    sigpending(&pending);
    printf("SIGUSR2 pending: %s\n", sigismember(&pending, SIGUSR2) ? "yes" : "no");
    return 0;
}
