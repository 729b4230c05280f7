// Process start and exit, over and over: runs a program (/bin/true unless one is given) N times,
// one after the other (N = 100 at scale 1). Under LD_PRELOAD every child is preloaded too, so this
// measures what a preload library adds to each process it is loaded into (start-up, and for gprof
// the at-exit dump), the cost a build or a shell script pays once per command.
// Usage: bench_spawn [scale=1.0] [PROGRAM [ARGS...]]
#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>

#include "scale_arg.h"

extern char** environ;

int main(int argc, char** argv) {
  const double scale = scale_arg(argc, argv);
  int n = static_cast<int>(100 * scale);
  if (n < 1) n = 1;
  char default_path[] = "/bin/true";
  char* default_argv[] = {default_path, nullptr};
  char** child_argv = argc > 2 ? argv + 2 : default_argv;
  const char* path = child_argv[0];
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    pid_t pid;
    if (posix_spawn(&pid, path, nullptr, nullptr, child_argv, environ) != 0) continue;
    int status;
    if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) ++ok;
  }
  std::printf("spawn processes=%d ok=%d\n", n, ok);
  return ok == n ? 0 : 1;
}
