// The three rate setters: Go's runtime.MemProfileRate, SetBlockProfileRate and
// SetMutexProfileFraction. How soon each takes effect in every thread: README, "C API".
#include <cerrno>

#include "api/gprof.h"
#include "base/spin_lock.h"
#include "preload/backing.h"
#include "preload/routes.h"
#include "record/contention.h"
#include "record/heap_sampler.h"

namespace r = gprof::record;

namespace {

constinit gprof::base::SpinLock g_heap_rate_lock;  // one change of the sampling routes at a time

}  // namespace

// The heap rate: each thread draws its next sampling interval by it. Where gprof's jemalloc samples
// (rates of 256 KiB and up, when it did from the start), a rate below that hands sampling to the
// shims (jemalloc would make every sampled object a 16 KiB block), and a rate of 256 KiB or more
// hands it back; the routes follow (preload/routes.h).
extern "C" int64_t gprof_set_mem_profile_rate(int64_t rate) {
    int saved = errno;
    gprof::backing::jemalloc();  // the allocator and the start-up rate are chosen first
    gprof::base::SpinGuard guard(g_heap_rate_lock);
    int64_t previous = r::mem_profile_rate();
    if (rate >= 0) {
        r::set_mem_profile_rate(rate);
        r::set_allocator_samples(rate == 0 || rate >= gprof::backing::kJemallocSamplingMinRate);
        gprof::routes::choose_routes();
    }
    errno = saved;
    return previous;
}

extern "C" int64_t gprof_set_block_profile_rate(int64_t ns) {
    int64_t previous = r::block_profile_rate();
    if (ns >= 0) r::set_block_profile_rate(ns);
    return previous;
}

extern "C" int64_t gprof_set_mutex_profile_fraction(int64_t n) {
    int64_t previous = r::mutex_profile_fraction();
    if (n >= 0) r::set_mutex_profile_fraction(n);
    return previous;
}
