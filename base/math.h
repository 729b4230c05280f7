#pragma once

// log, exp and round without libm: loading libm.so.6 (its mappings, relocations and ifunc
// resolvers) costs every short process more than gprof's few uses of them are worth. Accurate to
// a few units in the last place over the whole double range, which is what the sampler (a draw's
// interval, the unbiasing factor of a sample) and jemalloc's profiler (redirected here by
// preload/embed_jemalloc.sh) need.

extern "C" {
double gprof_log(double x) noexcept;
double gprof_exp(double x) noexcept;
double gprof_round(double x) noexcept;
}
