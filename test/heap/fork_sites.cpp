// Forks after allocating; the child allocates at its own site and exits normally. Both write an
// at-exit heap profile under their own pid. Prints "PARENT <pid>" and "CHILD <pid>".
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
    printf("PARENT %d\n", getpid());
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
