/* ENOSPC (hostile output paths): a dump is written while there is room, then the program fills
   the file system (FILLER on it) and exits; the at-exit dump cannot be written. The first dump's
   files must stay complete, and no temporary file may be left. Usage: fill_disk DIR FILLER */
#include <fcntl.h>

#include "hostile.h"

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    for (int i = 0; i < 3000; ++i)
        if (malloc(1000 + (size_t)i % 300) == NULL) hostile_fail("malloc");
    if (hostile_dump_and_wait(argv[1]) != 0) hostile_fail("dump did not appear");
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) hostile_fail("open filler");
    static char block[4096];
    while (write(fd, block, sizeof block) > 0) {
    }
    while (write(fd, block, 1) > 0) {
    }
    int full = errno == ENOSPC;
    close(fd);
    for (int i = 0; i < 3000; ++i)
        if (malloc(2000 + (size_t)i % 300) == NULL) hostile_fail("malloc");
    printf("file system full: %s\n", full ? "yes" : "no");
    return 0;
}
