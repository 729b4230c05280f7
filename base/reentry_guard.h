// One per-thread guard shared by every hook. While it is held, the thread is doing gprof's own
// work (unwinding, table upkeep, writing a profile, serving HTTP): its allocations and locks still
// work, through the same interposed functions, but are neither sampled nor recorded, so libunwind,
// libc or the allocator calling back into malloc or pthread_mutex_lock can never recurse into a
// recorder or deadlock on one of gprof's own locks.
#pragma once

namespace gprof::base {

extern constinit thread_local int t_reentry_depth [[gnu::tls_model("initial-exec")]];

inline bool inside_gprof() { return t_reentry_depth != 0; }

class ReentryGuard {
public:
    ReentryGuard() { ++t_reentry_depth; }
    ~ReentryGuard() { --t_reentry_depth; }
    ReentryGuard(const ReentryGuard&) = delete;
    ReentryGuard& operator=(const ReentryGuard&) = delete;
};

}  // namespace gprof::base
