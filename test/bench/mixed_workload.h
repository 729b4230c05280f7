// The mixed workload of bench_mixed (test/bench/mixed.cpp), shared with the test that checks
// gprof leaves glibc's heap layout alone (test/heap/heap_layout.cpp): single-threaded, sizes
// log-uniform in [16 B, 1 MiB], using malloc, calloc, realloc (grow and shrink) and
// posix_memalign, with a working set of a few hundred live blocks. Touches the memory it gets
// (one byte per 4 KiB page plus the first and last bytes). Deterministic PRNG, fixed seed.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mixed {

constexpr std::size_t kSlots = 400;                // working set
constexpr std::uint64_t kOpsPerUnit = 220'000;     // ops at scale 1.0
constexpr double kLogMin = 4.0;                    // 16 B
constexpr double kLogMax = 20.0;                   // 1 MiB

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

inline std::size_t log_uniform(Rng& r) {
  double e = kLogMin + (kLogMax - kLogMin) * r.unit();
  return static_cast<std::size_t>(std::exp2(e));
}

struct Slot {
  unsigned char* p = nullptr;
  std::size_t n = 0;
};

inline std::uint64_t touch(unsigned char* p, std::size_t from, std::size_t to, unsigned char v) {
  // Write one byte per page in [from, to) plus the last byte; read back.
  std::uint64_t s = 0;
  for (std::size_t i = from; i < to; i += 4096) { p[i] = v; s += p[i]; }
  if (to > from) { p[to - 1] = v; s += p[to - 1]; }
  return s;
}

[[noreturn]] inline void die(const char* what, std::size_t n) {
  std::fprintf(stderr, "bench_mixed: %s(%zu) failed\n", what, n);
  std::exit(1);
}

// Runs the workload (220 000 operations at scale 1) and writes its result line to `line`. Plain C
// library calls only: a program that links libstdc++ gets its start-up allocations in the heap,
// which moves glibc's layout and so the workload's page faults (72 800 become 93 800).
inline void run(double scale, char* line, std::size_t size) {
  const std::uint64_t ops = static_cast<std::uint64_t>(kOpsPerUnit * scale);
  Rng r{0x2545F4914F6CDD1Dull};
  Slot slots[kSlots];
  std::uint64_t sum = 0, n_malloc = 0, n_calloc = 0, n_memalign = 0, n_grow = 0,
                n_shrink = 0, n_free = 0;
  for (std::uint64_t i = 0; i < ops; ++i) {
    Slot& s = slots[r.next() % kSlots];
    unsigned v = static_cast<unsigned>(r.next() % 100);
    if (!s.p) {
      std::size_t n = log_uniform(r);
      if (v < 50) {
        s.p = static_cast<unsigned char*>(std::malloc(n));
        if (!s.p) die("malloc", n);
        ++n_malloc;
      } else if (v < 80) {
        s.p = static_cast<unsigned char*>(std::calloc(1, n));
        if (!s.p) die("calloc", n);
        sum += s.p[n / 2];  // must be zero
        ++n_calloc;
      } else {
        void* q = nullptr;
        std::size_t align = std::size_t{16} << (r.next() % 9);  // 16..4096
        if (posix_memalign(&q, align, n) != 0) die("posix_memalign", n);
        if (reinterpret_cast<std::uintptr_t>(q) % align) die("alignment", align);
        s.p = static_cast<unsigned char*>(q);
        ++n_memalign;
      }
      s.n = n;
      sum += touch(s.p, 0, n, static_cast<unsigned char>(i));
    } else if (v < 40) {
      // realloc: grow (x1.25..x4) or shrink (/1.25../4), clamped to range.
      double f = 1.25 + 2.75 * r.unit();
      bool grow = (r.next() & 1) != 0;
      std::size_t n = grow ? static_cast<std::size_t>(s.n * f)
                           : static_cast<std::size_t>(s.n / f);
      if (n < 16) n = 16;
      if (n > (std::size_t{1} << 20)) n = std::size_t{1} << 20;
      unsigned char first = s.p[0];
      auto* q = static_cast<unsigned char*>(std::realloc(s.p, n));
      if (!q) die("realloc", n);
      if (q[0] != first) die("realloc-content", n);
      if (n > s.n) { sum += touch(q, s.n, n, static_cast<unsigned char>(i)); ++n_grow; }
      else ++n_shrink;
      s.p = q;
      s.n = n;
    } else {
      sum += s.p[0];
      std::free(s.p);
      s.p = nullptr;
      s.n = 0;
      ++n_free;
    }
  }
  for (auto& s : slots) std::free(s.p);
  std::snprintf(line, size,
                "mixed ops=%llu malloc=%llu calloc=%llu memalign=%llu grow=%llu shrink=%llu "
                "free=%llu checksum=%llu",
                (unsigned long long)ops, (unsigned long long)n_malloc,
                (unsigned long long)n_calloc, (unsigned long long)n_memalign,
                (unsigned long long)n_grow, (unsigned long long)n_shrink,
                (unsigned long long)n_free, (unsigned long long)sum);
}


}  // namespace mixed
