/* Case 35 (RLIMIT_NPROC): sets RLIMIT_NPROC to 1, becomes nobody (root ignores the limit) and
   execs PROGRAM: that process may not start a thread, so gprof's dumper cannot start either.
   Usage: as_nobody PROGRAM ARGS... */
#include <grp.h>
#include <sys/resource.h>

#include "hostile.h"

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    struct rlimit limit = {1, 1};
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0) hostile_fail("setgid");
    if (setrlimit(RLIMIT_NPROC, &limit) != 0) hostile_fail("setrlimit");
    if (setuid(65534) != 0) hostile_fail("setuid");
    execv(argv[1], argv + 1);
    hostile_fail("exec");
}
