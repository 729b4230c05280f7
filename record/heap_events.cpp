#include "record/heap_events.h"

#include "record/reentry_guard.h"
#include "record/stack_table.h"
#include "unwind/stack.h"

namespace gprof::record {

constinit thread_local int t_reentry_depth [[gnu::tls_model("initial-exec")]] = 0;

namespace {

[[gnu::always_inline]] inline void record(void* p, size_t size, size_t sampled_size,
                                          bool allocator_sample) {
    // A failed allocation has nothing to remember; gprof's own allocations are not the program's;
    // before start-up there is no unwinder yet.
    if (p == nullptr || inside_gprof() || !unwind::ready()) return;
    ReentryGuard guard;
    uintptr_t pcs[unwind::kMaxFrames];
    int depth = unwind::capture(pcs, unwind::kMaxFrames);
    uint32_t stack_id = stack_table().intern(pcs, depth);
    if (allocator_sample)
        heap_profile().record_reported_alloc(p, size, sampled_size, stack_id);
    else
        heap_profile().record_alloc(p, size, stack_id);
}

}  // namespace

__attribute__((noinline)) void record_sampled(void* p, size_t size, size_t align) noexcept {
    (void)align;  // passed for recorders to come; the heap profile keys on size alone
    record(p, size, size, false);
}

__attribute__((noinline)) void record_allocator_sample(void* p, size_t size,
                                                       size_t sampled_size) noexcept {
    record(p, size, sampled_size, true);
}

void record_allocator_free(void* p, uint32_t births) noexcept {
    heap_profile().record_reported_free(p, births);
}

}  // namespace gprof::record
