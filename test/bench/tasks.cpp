// A thread per task: starts N threads (N = 320 at scale 1), 8 at a time, each allocating 2 MB
// in 1 KB blocks, so each takes a few heap samples at the default rate, and then ends. (Eight at
// a time, so that waiting for each thread to start and be joined does not dominate.) What a
// profiler pays once per thread (its per-thread state, the first walks of a new thread's stack)
// shows here as it would in a server that starts a thread per request.
// Usage: bench_tasks [scale=1.0]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "scale_arg.h"

namespace {

// 2 MB in all, through a few blocks: the task's own memory stays small and warm, so what the
// benchmark measures is the cost of the threads, not of fresh pages.
__attribute__((noinline)) std::uint64_t task() {
  constexpr int kBlocks = 8;
  unsigned char* blocks[kBlocks] = {};
  std::uint64_t sum = 0;
  for (int i = 0; i < 2000; ++i) {
    unsigned char*& slot = blocks[i % kBlocks];
    if (slot != nullptr) {
      sum += slot[0];
      std::free(slot);
    }
    slot = static_cast<unsigned char*>(std::malloc(1000));
    if (slot == nullptr) {
      std::fprintf(stderr, "bench_tasks: malloc failed\n");
      std::exit(1);
    }
    slot[0] = static_cast<unsigned char>(i);
  }
  for (unsigned char* p : blocks) {
    sum += p[0];
    std::free(p);
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const double scale = scale_arg(argc, argv);
  constexpr int kAtOnce = 8;
  int rounds = static_cast<int>(40 * scale);
  if (rounds < 1) rounds = 1;
  int n = rounds * kAtOnce;
  std::uint64_t total = 0;
  for (int r = 0; r < rounds; ++r) {
    std::uint64_t sums[kAtOnce] = {};
    std::vector<std::thread> threads;
    for (int i = 0; i < kAtOnce; ++i) threads.emplace_back([&sums, i] { sums[i] = task(); });
    for (std::thread& t : threads) t.join();
    for (std::uint64_t sum : sums) total += sum;
  }
  std::printf("tasks threads=%d check=%llu\n", n, static_cast<unsigned long long>(total));
  return 0;
}
