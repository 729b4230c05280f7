/* Case 47. `fds list`: prints every open descriptor (so an exec'ed child shows what it inherited).
   `fds exec DIR`: allocates, has a dump written, then execs `fds list`: gprof's descriptors must
   not be inherited. `fds closed DIR`: started with 0, 1 and 2 closed, opens DIR/fd0..fd2 (which
   get those numbers), writes one line in each, asks for a dump that gprof cannot write (the e2e
   side gives an unwritable GPROF_OUTPUT) and exits: gprof's problem line must not land in them. */
#include <fcntl.h>

#include "hostile.h"

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    if (strcmp(argv[1], "list") == 0) {
        for (int fd = 0; fd < 4096; ++fd)
            if (fcntl(fd, F_GETFD) != -1) printf("fd %d\n", fd);
        return 0;
    }
    if (argc != 3) return 2;
    for (int i = 0; i < 2000; ++i)
        if (malloc(1000 + (size_t)i % 500) == NULL) hostile_fail("malloc");
    if (strcmp(argv[1], "exec") == 0) {
        if (hostile_dump_and_wait(argv[2]) != 0) hostile_fail("dump did not appear");
        fflush(stdout);
        execl("/proc/self/exe", argv[0], "list", (char*)NULL);
        hostile_fail("exec");
    }
    if (strcmp(argv[1], "closed") == 0) {
        for (int i = 0; i < 3; ++i) {
            char path[4096];
            snprintf(path, sizeof path, "%s/fd%d", argv[2], i);
            int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
            char line[32];
            int n = snprintf(line, sizeof line, "opened as fd %d\n", fd);
            if (fd < 0 || write(fd, line, (size_t)n) != n) return 3;
        }
        if (hostile_dump()) usleep(500 * 1000);
        return 0;
    }
    return 2;
}
