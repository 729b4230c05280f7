/* Case 22: a SIGALRM handler allocates and frees at 2 kHz while the main thread allocates.
   (malloc is not async-signal-safe; programs do it anyway, and glibc's thread cache makes it work
   in practice: where the handler's size class is warm and the interrupted code never empties
   it. Without both, the program itself hangs or aborts now and then without gprof: a handler
   that interrupted the thread cache's set-up, or found its bin empty while main held the arena's
   lock.) Usage: alarm_malloc SECONDS */
#include <sys/time.h>

#include "hostile.h"

static volatile sig_atomic_t g_ticks;

static void on_alarm(int sig) {
    (void)sig;
    int saved = errno;
    char* p = malloc(48);
    if (p != NULL) p[0] = 1;
    free(p);
    ++g_ticks;
    errno = saved;
}

int main(int argc, char** argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    free(malloc(48));  /* the thread cache made, and the handler's bin warm */
    struct itimerval t = {{0, 500}, {0, 500}};
    setitimer(ITIMER_REAL, &t, NULL);
    void* ring[64] = {0};
    unsigned seed = 7;
    for (double end = hostile_now() + seconds; hostile_now() < end;) {
        for (int i = 0; i < 1000; ++i) {
            seed = seed * 1103515245u + 12345u;
            unsigned k = (seed >> 8) % 64;
            free(ring[k]);
            ring[k] = malloc(100 + (seed >> 16) % 3000);  /* never the handler's size class */
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < 64; ++i) free(ring[i]);
    printf("handler ran: %s\n", g_ticks > 100 ? "yes" : "no");
    return 0;
}
