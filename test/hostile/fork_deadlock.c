/* Case 13 (after glibc's tst-malloc-fork-deadlock): 4 threads fork, 8 threads read lines with
   getline (stdio locks and malloc), and every fork is preceded by fflush(NULL) (every stdio lock).
   Each child allocates, flushes and exits. Usage: fork_deadlock SECONDS */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "hostile.h"

static atomic_int g_stop;
static atomic_long g_lines, g_forks;

static void* reader(void* arg) {
    (void)arg;
    static const char text[] = "alpha\nbeta beta beta\ngamma gamma\n";
    while (!atomic_load(&g_stop)) {
        FILE* f = fmemopen((void*)text, sizeof text - 1, "r");
        if (f == NULL) hostile_fail("fmemopen");
        char* line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) atomic_fetch_add(&g_lines, 1);
        free(line);
        fclose(f);
    }
    return NULL;
}

static void* forker(void* arg) {
    (void)arg;
    while (!atomic_load(&g_stop)) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) hostile_fail("fork");
        if (pid == 0) {
            void* p = malloc(4096);
            free(p);
            fflush(NULL);
            _exit(p != NULL ? 0 : 1);
        }
        int status = 0;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            hostile_fail("child");
        atomic_fetch_add(&g_forks, 1);
    }
    return NULL;
}

int main(int argc, char** argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 10;
    pthread_t threads[12];
    for (int i = 0; i < 12; ++i)
        if (pthread_create(&threads[i], NULL, i < 4 ? forker : reader, NULL) != 0)
            hostile_fail("thread");
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 12; ++i) pthread_join(threads[i], NULL);
    printf("done: %s forks, %s lines\n", g_forks > 0 ? "some" : "no", g_lines > 0 ? "some" : "no");
    return 0;
}
