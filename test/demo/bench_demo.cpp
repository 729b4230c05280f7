// The `go test -bench -cpuprofile` workflow for native code: a Google Benchmark program run under
// gprof with a CPU profile on (README: "CPU profile of a benchmark"). Three benchmarks whose hot
// spots are easy to tell apart in `go tool pprof -top` and `-list`.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

// Builds a string by repeated concatenation: time in append and in the allocator.
void BM_Concat(benchmark::State& state) {
    for (auto _ : state) {
        std::string s;
        for (int i = 0; i < state.range(0); ++i) s += std::to_string(i);
        benchmark::DoNotOptimize(s.data());
    }
}
BENCHMARK(BM_Concat)->Arg(1000);

// Inserts random keys into a std::map: time in the tree's rebalancing and comparisons.
void BM_MapInsert(benchmark::State& state) {
    std::mt19937_64 random(42);
    for (auto _ : state) {
        std::map<uint64_t, int> m;
        for (int i = 0; i < state.range(0); ++i) m.emplace(random(), i);
        benchmark::DoNotOptimize(m.size());
    }
}
BENCHMARK(BM_MapInsert)->Arg(10000);

// Sorts a vector with a hand-written insertion sort: nearly all time on one line.
__attribute__((noinline)) void insertion_sort(std::vector<uint32_t>& v) {
    for (size_t i = 1; i < v.size(); ++i) {
        uint32_t key = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1] > key) {
            v[j] = v[j - 1];  // the hot line
            --j;
        }
        v[j] = key;
    }
}

void BM_InsertionSort(benchmark::State& state) {
    std::mt19937 random(7);
    std::vector<uint32_t> input(static_cast<size_t>(state.range(0)));
    for (uint32_t& x : input) x = random();
    for (auto _ : state) {
        std::vector<uint32_t> v = input;
        insertion_sort(v);
        benchmark::DoNotOptimize(v.data());
    }
}
BENCHMARK(BM_InsertionSort)->Arg(2000);

}  // namespace

BENCHMARK_MAIN();
