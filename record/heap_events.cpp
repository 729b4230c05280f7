#include "record/heap_events.h"

#include "record/reentry_guard.h"
#include "record/stack_table.h"
#include "unwind/stack.h"

namespace gprof::record {

constinit thread_local int t_reentry_depth [[gnu::tls_model("initial-exec")]] = 0;

__attribute__((noinline)) void record_sampled(void* p, size_t size, size_t align) noexcept {
    (void)align;  // passed for recorders to come; the heap profile keys on size alone
    // A failed allocation has nothing to remember; gprof's own allocations are not the program's;
    // before start-up there is no unwinder yet.
    if (p == nullptr || inside_gprof() || !unwind::ready()) return;
    ReentryGuard guard;
    uintptr_t pcs[unwind::kMaxFrames];
    int depth = unwind::capture(pcs, unwind::kMaxFrames);
    heap_profile().record_alloc(p, size, stack_table().intern(pcs, depth));
}

}  // namespace gprof::record
