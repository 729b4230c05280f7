// Single-threaded mixed workload (test/bench/mixed_workload.h). Prints its result line.
// Usage: bench_mixed [scale=1.0]
#include <cstdio>

#include "scale_arg.h"
#include "mixed_workload.h"

int main(int argc, char** argv) {
  char line[256];
  mixed::run(scale_arg(argc, argv), line, sizeof line);
  std::printf("%s\n", line);
  return 0;
}
