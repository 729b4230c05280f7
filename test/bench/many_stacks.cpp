// The cost of a dump with many distinct stacks: 2^17 = 131072 distinct call paths (17 levels of
// two functions each), each allocating once at its leaf, kept. Run it under gprof with
// GPROF_MEM_PROFILE_RATE=1; it asks for a dump with SIGUSR2, times the wait until the file is
// complete, and prints the dump time and gprof's own table memory (gprof_read_memstats'
// buck_hash_sys), for a first and a repeated dump.
#include <dirent.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "api/gprof.h"

namespace {

constexpr int kLevels = 17;
void* volatile kept[1 << kLevels];
int next_slot;

__attribute__((noinline)) void left(int level, unsigned path);
__attribute__((noinline)) void right(int level, unsigned path);

__attribute__((noinline)) void step(int level, unsigned path) {
    if (level == kLevels) {
        kept[next_slot++] = malloc(64);
        return;
    }
    if (path & (1u << level))
        right(level + 1, path);
    else
        left(level + 1, path);
}
// Different bodies (so identical-code folding cannot merge them), and work after the call (so it
// is not a tail call and each level keeps its frame).
volatile int lefts, rights;
__attribute__((noinline)) void left(int level, unsigned path) {
    step(level, path);
    lefts = lefts + 1;
}
__attribute__((noinline)) void right(int level, unsigned path) {
    step(level, path);
    rights = rights + 2;
}

double now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int count_heap_files(const char* dir) {
    int n = 0;
    if (DIR* d = opendir(dir)) {
        while (dirent* e = readdir(d)) n += strstr(e->d_name, ".heap.pb.gz") != nullptr;
        closedir(d);
    }
    return n;
}

void timed_dump(const char* dir, const char* what) {
    int before = count_heap_files(dir);
    double t0 = now();
    raise(SIGUSR2);
    while (count_heap_files(dir) == before) usleep(1000);
    double t1 = now();
    gprof_memstats m = {};
    if (gprof_read_memstats) gprof_read_memstats(&m, sizeof m);
    printf("%s dump: %.0f ms; gprof tables: %.1f MiB\n", what, (t1 - t0) * 1000,
           m.buck_hash_sys / 1048576.0);
}

}  // namespace

int main(int argc, char** argv) {
    const char* dir = argc > 1 ? argv[1] : ".";
    for (unsigned path = 0; path < (1u << kLevels); ++path) step(0, path);
    printf("%d distinct allocation stacks\n", next_slot);
    timed_dump(dir, "first");
    timed_dump(dir, "repeated");
    return 0;
}
