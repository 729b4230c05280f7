/* Case 33: RLIMIT_NOFILE lowered to 64, then every descriptor taken; a dump is asked for while
   none is left (gprof cannot open its file), then the descriptors are given back and the program
   exits (the at-exit dump can write). The number of descriptors the program could open must not
   change under gprof. Usage: rlimit_nofile */
#include <fcntl.h>
#include <sys/resource.h>

#include "hostile.h"

int main(void) {
    struct rlimit limit = {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) hostile_fail("setrlimit");
    int fds[64], n = 0;
    while (n < 64 && (fds[n] = open("/dev/null", O_RDONLY)) >= 0) ++n;
    int open_errno = errno;
    for (int i = 0; i < 2000; ++i) free(malloc(1000 + (size_t)i));
    if (hostile_dump()) usleep(500 * 1000);
    int again = open("/dev/null", O_RDONLY);
    printf("opened %d until %s; afterwards %s\n", n, open_errno == EMFILE ? "EMFILE" : "?",
           again < 0 ? "still none" : "one more");
    for (int i = 0; i < n; ++i) close(fds[i]);
    if (again >= 0) close(again);
    return 0;
}
