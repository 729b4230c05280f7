/* Case 46: after start the program changes directory, or drops its privileges to nobody, and
   then allocates; gprof writes at the absolute path it chose at start, or says once that it
   cannot. Usage: move_away chdir|setuid */
#include <grp.h>

#include "hostile.h"

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    if (strcmp(argv[1], "chdir") == 0 && chdir("/") != 0) hostile_fail("chdir");
    if (strcmp(argv[1], "setuid") == 0 &&
        (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
        hostile_fail("setuid");
    long sum = 0;
    for (int i = 0; i < 2000; ++i) {
        char* p = malloc(1000 + (size_t)i);
        if (p == NULL) hostile_fail("malloc");
        p[0] = 1;
        sum += p[0];
    }
    printf("%s done, %ld blocks\n", argv[1], sum);
    return 0;
}
