/* Case 16: vfork children (half _exit at once, half exec /bin/true) and posix_spawn of /bin/true,
   N of each, while the parent keeps 1000 blocks of 1000 bytes live from one site. A vfork child
   shares the parent's memory and runs no atfork handler: nothing of gprof's may run there, and the
   parent's records must come out intact (the e2e side reads site_keep's in-use values).
   Usage: spawn_storm N */
#include <spawn.h>
#include <sys/wait.h>

#include "hostile.h"

extern char** environ;

/* Not a tail call: the site's own frame is the stack's first. */
__attribute__((noinline, noclone)) static void* site_keep_fn(size_t n) {
    void* p = malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

int main(int argc, char** argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    static void* kept[1000];
    for (int i = 0; i < 1000; ++i) kept[i] = site_keep_fn(1000);
    char* const true_argv[] = {"/bin/true", NULL};
    int ok = 0;
    for (int i = 0; i < n; ++i) {
        pid_t pid = vfork();
        if (pid == 0) {
            if (i % 2 == 0) _exit(7);
            execve("/bin/true", true_argv, environ);
            _exit(127);
        }
        if (pid < 0) hostile_fail("vfork");
        int status = 0;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == (i % 2 == 0 ? 7 : 0))
            ++ok;
        if (posix_spawn(&pid, "/bin/true", NULL, NULL, true_argv, environ) != 0)
            hostile_fail("posix_spawn");
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
            ++ok;
    }
    long live = 0;
    for (int i = 0; i < 1000; ++i) live += kept[i] != NULL;
    printf("children %d, as expected %d, kept blocks %ld\n", 2 * n, ok, live);
    return 0;
}
