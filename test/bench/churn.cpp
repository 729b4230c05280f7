// Multithreaded small-object churn: each thread keeps a ring of live objects
// of 8..512 bytes and repeatedly frees a random one and allocates a new one.
// Usage: bench_churn [threads=2] [scale=1.0]
// Plain C++, no dependency on gprof. Deterministic per-thread PRNG.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kLive = 4096;            // live objects per thread
constexpr std::uint64_t kOpsPerUnit = 100'000'000;  // total ops at scale 1.0

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

std::size_t pick_size(Rng& r) {
  // Mostly small (like typical C++ objects), up to 512 B.
  std::uint64_t x = r.next();
  unsigned cls = static_cast<unsigned>(x & 7);  // 0..7
  std::size_t max = std::size_t{8} << (cls < 6 ? cls : 6);  // 8..512
  return 8 + static_cast<std::size_t>((x >> 8) % (max - 7));  // 8..max
}

std::uint64_t worker(unsigned id, std::uint64_t ops) {
  Rng r{0x9E3779B97F4A7C15ull * (id + 1)};
  std::vector<unsigned char*> ring(kLive);
  for (auto& p : ring) {
    std::size_t n = pick_size(r);
    p = static_cast<unsigned char*>(std::malloc(n));
    p[0] = static_cast<unsigned char>(n);
  }
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < ops; ++i) {
    std::uint64_t x = r.next();
    std::size_t k = static_cast<std::size_t>(x % kLive);
    sum += ring[k][0];
    std::free(ring[k]);
    std::size_t n = pick_size(r);
    auto* p = static_cast<unsigned char*>(std::malloc(n));
    if (!p) {
      std::fprintf(stderr, "bench_churn: malloc(%zu) failed\n", n);
      std::exit(1);
    }
    p[0] = static_cast<unsigned char>(n);
    p[n - 1] = 1;
    ring[k] = p;
  }
  for (auto* p : ring) std::free(p);
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned threads = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 2;
  double scale = argc > 2 ? std::atof(argv[2]) : 1.0;
  if (threads == 0 || threads > 256 || !(scale > 0)) {
    std::fprintf(stderr, "usage: %s [threads=2] [scale=1.0]\n", argv[0]);
    return 2;
  }
  const std::uint64_t total = static_cast<std::uint64_t>(kOpsPerUnit * scale);
  const std::uint64_t per = total / threads;
  std::vector<std::thread> ts;
  std::vector<std::uint64_t> sums(threads);
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&, t] { sums[t] = worker(t, per); });
  for (auto& t : ts) t.join();
  std::uint64_t s = 0;
  for (auto v : sums) s += v;
  std::printf("churn threads=%u ops=%llu checksum=%llu\n", threads,
              static_cast<unsigned long long>(per * threads),
              static_cast<unsigned long long>(s));
  return 0;
}
