// fork() and exit, over and over, as a shell's subshells and a pre-forking server's workers do:
// the parent holds a small heap (a shell's), forks N children one after the other (N = 200 at
// scale 1), each of which exits at once through exit() (at-exit handlers and all), and waits for
// each. Measures what a preload library adds to a fork: its fork handlers, the pages they touch
// (copied on write in the parent, written in the child), what it starts in the child, its at-exit
// work there.
// Usage: bench_fork [scale=1.0]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "scale_arg.h"

int main(int argc, char** argv) {
  const double scale = scale_arg(argc, argv);
  int n = static_cast<int>(200 * scale);
  if (n < 1) n = 1;
  std::vector<char*> heap;
  for (int i = 0; i < 4000; ++i) {
    heap.push_back(static_cast<char*>(std::malloc(16 + (i * 37) % 500)));
    heap.back()[0] = static_cast<char>(i);
  }
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) std::exit(0);
    int status;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
        WEXITSTATUS(status) == 0)
      ++ok;
  }
  for (char* p : heap) std::free(p);
  std::printf("fork processes=%d ok=%d\n", n, ok);
  return ok == n ? 0 : 1;
}
