/* Case 17: a chain of execs that keep the pid. Each image allocates `level+1` x 100 blocks of
   1000 + level bytes at site_level, asks for a dump and waits for it, then execs the next level;
   the last level also forks a child that allocates and exits normally, and exits normally itself.
   Every image's dump must land in a file of its own (the e2e side counts them and finds each
   level's allocations). Usage: exec_chain DIR LEVEL (counts down to 0) */
#include <sys/wait.h>

#include "hostile.h"

/* Not tail calls, and not folded into one (identical code): each site's own frame is the
   stack's first. */
__attribute__((noipa)) static void* site_level_fn(size_t n) {
    void* p = malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}
__attribute__((noipa)) static void* site_child_fn(size_t n) {
    void* p = malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    int level = atoi(argv[2]);
    for (int i = 0; i < (level + 1) * 100; ++i)
        if (site_level_fn(1000 + (size_t)level) == NULL) hostile_fail("malloc");
    if (hostile_dump_and_wait(argv[1]) != 0) hostile_fail("dump did not appear");
    if (level > 0) {
        char next[16];
        snprintf(next, sizeof next, "%d", level - 1);
        execl("/proc/self/exe", argv[0], argv[1], next, (char*)NULL);
        hostile_fail("exec");
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 50; ++i) site_child_fn(3000);
        exit(0);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) hostile_fail("child");
    printf("level 0 reached, child status %d\n", WEXITSTATUS(status));
    return 0;
}
