// The mixed benchmark's workload (test/bench/mixed_workload.h), with the minor page faults it took
// (getrusage, from the start of main to the end of the workload). glibc's heap layout decides that
// count, and the smallest change to the layout moves it by tens of percent, so with
// GPROF_ALLOCATOR=libc it must match a run without gprof: gprof leaves the program's heap alone.
// Usage: heap_layout [scale=1.0]. Prints "faults N" and the workload's result line.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

#include "test/bench/mixed_workload.h"

namespace {

long minor_faults() {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

}  // namespace

int main(int argc, char** argv) {
    double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
    long before = minor_faults();
    char result[256];
    mixed::run(scale, result, sizeof result);
    long faults = minor_faults() - before;
    std::printf("faults %ld\n%s\n", faults, result);
    return 0;
}
