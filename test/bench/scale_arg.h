// The one argument the single-command workloads share: the workload's size, a positive factor
// (1.0 when absent). Anything else prints the usage line and exits with status 2.
#pragma once

#include <cstdio>
#include <cstdlib>

inline double scale_arg(int argc, char** argv) {
  double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
  if (!(scale > 0)) {
    std::fprintf(stderr, "usage: %s [scale=1.0]\n", argv[0]);
    std::exit(2);
  }
  return scale;
}
