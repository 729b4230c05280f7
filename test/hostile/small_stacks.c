/* Case 9: threads on 16 KiB stacks (PTHREAD_STACK_MIN) and a handler on an 8 KiB sigaltstack
   each allocate 1 MiB (sampled at any rate) and free it. gprof's hook and its stack walk must fit
   in what is left, or decline. Usage: small_stacks ROUNDS */
#include <pthread.h>

#include "hostile.h"

static volatile sig_atomic_t g_handler_ok;

static void on_usr1(int sig) {
    (void)sig;
    char* p = malloc(1 << 20);
    if (p != NULL) p[0] = 1;
    free(p);
    stack_t now;
    sigaltstack(NULL, &now);
    g_handler_ok += p != NULL && (now.ss_flags & SS_ONSTACK) != 0;
}

static void* small(void* arg) {
    long ok = 0;
    for (int i = 0; i < 10; ++i) {
        char* p = malloc(1 << 20);
        ok += p != NULL;
        free(p);
    }
    return (void*)(ok + (long)arg * 0);
}

int main(int argc, char** argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 50;
    static char alt[8192];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) hostile_fail("sigaltstack");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 16384);
    long ok = 0;
    for (int r = 0; r < rounds; ++r) {
        pthread_t t[4];
        for (int i = 0; i < 4; ++i)
            if (pthread_create(&t[i], &attr, small, NULL) != 0) hostile_fail("thread");
        for (int i = 0; i < 4; ++i) {
            void* v;
            pthread_join(t[i], &v);
            ok += (long)v;
        }
        raise(SIGUSR1);
    }
    printf("thread allocations %ld of %d, handler allocations %d of %d\n", ok, rounds * 40,
           (int)g_handler_ok, rounds);
    return 0;
}
