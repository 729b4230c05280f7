/* A program that knows nothing of gprof, for the checks that gprof leaves no trace in a process.
 * Each mode prints what a test compares with and without gprof:
 *   no_trace nothing            returns at once: allocates nothing, takes no lock
 *   no_trace fds DIR            lowest free descriptor at start, and after a dump under DIR/p
 *   no_trace main-exits         main() ends with pthread_exit while a worker finishes
 *   no_trace fork-in-thread     a child forked from a second thread, whose thread then returns
 *   no_trace sigterm            a child whose main() called pthread_exit, ended by SIGTERM
 *   no_trace deep N             allocates at every level of an N-deep recursion
 *   no_trace closed-stderr      stderr is a pipe whose reader has gone; then exits 0
 *   no_trace disposition        the dump signal's disposition as the program sees it; SIG_IGN
 *   no_trace own-handler        the program takes SIGUSR2 for itself and raises it */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int lowest_free_fd(void) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) close(fd);
    return fd;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to 30 s for a file whose name contains `part` in dir. */
static int await_file(const char* dir, const char* part) {
    for (int i = 0; i < 3000; ++i) {
        DIR* d = opendir(dir);
        int found = 0;
        if (d != NULL) {
            struct dirent* e;
            while ((e = readdir(d)) != NULL)
                if (strstr(e->d_name, part) != NULL && strstr(e->d_name, ".tmp") == NULL) found = 1;
            closedir(d);
        }
        if (found) return 1;
        sleep_ms(10);
    }
    return 0;
}

static void* finish_later(void* arg) {
    (void)arg;
    sleep_ms(100);
    printf("worker done\n");
    fflush(stdout);
    return NULL;
}

static void* sleep_forever(void* arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static void* fork_here(void* arg) {
    (void)arg;
    pid_t child = fork();
    if (child == 0) return NULL; /* the child's only thread ends here: so does the child */
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFEXITED(status))
        printf("child exited %d\n", WEXITSTATUS(status));
    else
        printf("child ended by signal %d\n", WTERMSIG(status));
    return NULL;
}

static volatile long g_sink;

static long deep(int n) {
    char* p = malloc(16 + (size_t)(n % 7));
    if (p == NULL) return 0;
    p[0] = (char)n;
    long sum = n == 0 ? 0 : deep(n - 1);
    sum += p[0];
    free(p);
    g_sink = sum;
    return sum;
}

static const char* disposition(int sig) {
    struct sigaction old;
    if (sigaction(sig, NULL, &old) != 0) return "error";
    if (old.sa_handler == SIG_DFL) return "default";
    if (old.sa_handler == SIG_IGN) return "ignore";
    return "handler";
}

static volatile sig_atomic_t g_handled;
static void on_usr2(int sig) {
    (void)sig;
    g_handled = 1;
}

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "nothing") == 0) return 0;
    if (strcmp(mode, "fds") == 0 && argc > 2) {
        printf("at start %d\n", lowest_free_fd());
        char** blocks = malloc(64 * sizeof *blocks);
        for (int i = 0; i < 64; ++i) blocks[i] = malloc(64 << 10); /* samples at any rate */
        raise(SIGUSR2);
        /* The threads profile is a dump's last file; the dump may hold descriptors a moment
         * longer (libdw's, until it ends), not longer than a few seconds. */
        int dumped = await_file(argv[2], ".threads.pb.gz");
        int fd = lowest_free_fd();
        for (int i = 0; i < 500 && fd != 3; ++i) {
            sleep_ms(10);
            fd = lowest_free_fd();
        }
        printf("after a dump %d (%s)\n", fd, dumped ? "dumped" : "no dump");
        for (int i = 0; i < 64; ++i) free(blocks[i]);
        free(blocks);
        return 0;
    }
    if (strcmp(mode, "main-exits") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, finish_later, NULL);
        pthread_exit(NULL);
    }
    if (strcmp(mode, "fork-in-thread") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, fork_here, NULL);
        pthread_join(t, NULL);
        return 0;
    }
    if (strcmp(mode, "sigterm") == 0) {
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            pthread_t t;
            pthread_create(&t, NULL, sleep_forever, NULL);
            pthread_exit(NULL);
        }
        sleep_ms(300);
        kill(child, SIGTERM);
        int status = 0;
        waitpid(child, &status, 0);
        if (WIFSIGNALED(status))
            printf("child ended by signal %d\n", WTERMSIG(status));
        else
            printf("child exited %d\n", WEXITSTATUS(status));
        return 0;
    }
    if (strcmp(mode, "deep") == 0 && argc > 2) {
        printf("sum %ld\n", deep(atoi(argv[2])));
        return 0;
    }
    if (strcmp(mode, "closed-stderr") == 0) {
        int fds[2];
        if (pipe(fds) != 0) return 2;
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        char* p = malloc(1 << 20);
        p[0] = 1;
        free(p);
        printf("exiting\n");
        return 0; /* the at-exit dump's lines (GPROF_LOG=1) meet the closed pipe */
    }
    if (strcmp(mode, "disposition") == 0) {
        printf("at start: %s\n", disposition(SIGUSR2));
        struct sigaction ign = {0};
        ign.sa_handler = SIG_IGN;
        struct sigaction old;
        sigaction(SIGUSR2, &ign, &old);
        printf("replaced: %s\n", old.sa_handler == SIG_DFL ? "default" : "other");
        printf("after SIG_IGN: %s\n", disposition(SIGUSR2));
        raise(SIGUSR2); /* ignored, as the program asked (or a dump under gprof) */
        signal(SIGUSR2, SIG_DFL);
        printf("after signal(SIG_DFL): %s\n", disposition(SIGUSR2));
        return 0;
    }
    if (strcmp(mode, "own-handler") == 0) {
        signal(SIGUSR2, on_usr2);
        printf("installed: %s\n", disposition(SIGUSR2));
        raise(SIGUSR2);
        printf("own handler ran: %s\n", g_handled ? "yes" : "no");
        return 0;
    }
    fprintf(stderr, "usage: no_trace MODE ...\n");
    return 2;
}
