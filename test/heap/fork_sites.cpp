// Forks after allocating; the child allocates at its own site and exits normally. Both write an
// at-exit heap profile under their own pid. Prints "PARENT <pid>" and "CHILD <pid>". Then three
// more children exit at once, as a shell's subshells do, without recording anything of their own:
// they write nothing.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#define NOINLINE __attribute__((noinline))

namespace {
void* volatile kept[2000];

NOINLINE void parent_site_fn() {
    for (int i = 0; i < 1000; ++i) kept[i] = malloc(1000);
}
NOINLINE void child_site_fn() {
    for (int i = 1000; i < 2000; ++i) kept[i] = malloc(3000);
}
}  // namespace

int main() {
    parent_site_fn();
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) return 2;
    if (child == 0) {
        child_site_fn();
        printf("CHILD %d\n", getpid());
        exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    for (int i = 0; i < 3; ++i) {
        pid_t quiet = fork();
        if (quiet < 0) return 2;
        if (quiet == 0) exit(0);
        waitpid(quiet, &status, 0);
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    printf("PARENT %d\n", getpid());
    return ok ? 0 : 1;
}
