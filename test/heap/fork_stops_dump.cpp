// A fork does not wait for a dump by signal: the dump stops, and is written again after the fork.
// Run at GPROF_MEM_PROFILE_RATE=1 with GPROF_AT_EXIT=0. Builds a heap whose dump takes a while
// (many distinct stacks), times one dump through the C API (seq 1), asks for one by signal
// (seq 2), waits until the dumper thread has spent CPU time on it, forks, and times the fork.
// Then asks the C API for a last dump, which waits for the one taken again (seqs 3 and 4).
// Prints "dump_ms D fork_ms F idle_fork_ms I objects N".
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" int gprof_dump(void) __attribute__((weak));

namespace {

using Clock = std::chrono::steady_clock;
std::vector<void*> kept;

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Each path of calls through via<0> and via<1> (two functions) is a distinct stack.
template <int Side>
__attribute__((noinline)) void via(int depth, unsigned path) {
    if (depth == 0) {
        for (int i = 0; i < 3; ++i) kept.push_back(malloc(16 + 8 * i));
    } else if (path & 1) {
        via<1>(depth - 1, path >> 1);
    } else {
        via<0>(depth - 1, path >> 1);
    }
    asm volatile("");  // no tail calls: every level stays on the stack
}

// CPU time (clock ticks) of the thread named gprof-dumper, or -1.
long dumper_ticks() {
    DIR* tasks = opendir("/proc/self/task");
    if (tasks == nullptr) return -1;
    long ticks = -1;
    while (dirent* entry = readdir(tasks)) {
        if (entry->d_name[0] == '.') continue;
        std::string base = std::string("/proc/self/task/") + entry->d_name;
        char name[64] = {};
        if (FILE* comm = fopen((base + "/comm").c_str(), "r")) {
            if (fgets(name, sizeof name, comm) == nullptr) name[0] = '\0';
            fclose(comm);
        }
        if (strncmp(name, "gprof-dumper", 12) != 0) continue;
        if (FILE* stat = fopen((base + "/stat").c_str(), "r")) {
            char line[1024] = {};
            if (fgets(line, sizeof line, stat) != nullptr) {
                const char* after = strrchr(line, ')');  // the name may hold spaces
                long utime = 0, stime = 0;
                if (after != nullptr &&
                    sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
                           &utime, &stime) == 2)
                    ticks = utime + stime;
            }
            fclose(stat);
        }
    }
    closedir(tasks);
    return ticks;
}

double timed_fork() {
    Clock::time_point start = Clock::now();
    pid_t child = fork();
    if (child == 0) _exit(0);
    double ms = ms_since(start);
    waitpid(child, nullptr, 0);
    return ms;
}

}  // namespace

int main() {
    if (gprof_dump == nullptr) {
        fprintf(stderr, "run under gprof\n");
        return 2;
    }
    constexpr unsigned kStacks = 25000;
    kept.reserve(kStacks * 3);
    for (unsigned path = 0; path < kStacks; ++path) via<0>(16, path);

    Clock::time_point start = Clock::now();
    gprof_dump();
    double dump_ms = ms_since(start);
    double idle_fork_ms = timed_fork();

    long before = dumper_ticks();
    raise(SIGUSR2);
    // The dump is under way once its thread has used two ticks; it takes far more.
    for (int waited = 0; waited < 10000 && dumper_ticks() < before + 2; ++waited) usleep(1000);
    double fork_ms = timed_fork();

    gprof_dump();
    printf("dump_ms %.1f fork_ms %.1f idle_fork_ms %.1f objects %zu\n", dump_ms, fork_ms,
           idle_fork_ms, kept.size());
    return 0;
}
