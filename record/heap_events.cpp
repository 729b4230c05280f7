#include "record/heap_events.h"

#include "record/reentry_guard.h"
#include "record/stack_table.h"
#include "unwind/stack.h"

namespace gprof::record {

constinit thread_local int t_reentry_depth [[gnu::tls_model("initial-exec")]] = 0;

namespace {

// The stack this thread's last sample was filed under, and which capture() found it: a sample
// whose walk says its frames are that capture's (a program allocating in a loop) takes the same
// stack without hashing and looking up its frames again.
struct LastStack {
    uint64_t capture = 0;
    uint32_t id = 0;
};
constinit thread_local LastStack t_last_stack [[gnu::tls_model("initial-exec")]] = {};

[[gnu::always_inline]] inline void record(void* p, size_t size, size_t sampled_size,
                                          bool allocator_sample, const unwind::Registers& start) {
    // A failed allocation has nothing to remember; gprof's own allocations are not the program's;
    // before start-up there is no unwinder yet.
    if (p == nullptr || inside_gprof() || !unwind::ready()) return;
    heap_profile().prefetch(p);  // its line loads while the stack is walked
    ReentryGuard guard;
    uintptr_t pcs[unwind::kCaptureRoom];
    bool unchanged = false;
    int depth = unwind::capture_from(start, pcs, unwind::kMaxFrames, &unchanged);
    uint64_t capture = unwind::captures();
    uint32_t stack_id = unchanged && t_last_stack.capture + 1 == capture && t_last_stack.id != 0
                            ? t_last_stack.id
                            : stack_table().intern(pcs, depth);
    t_last_stack = {capture, stack_id};
    if (allocator_sample)
        heap_profile().record_reported_alloc(p, size, sampled_size, stack_id);
    else
        heap_profile().record_alloc(p, size, stack_id);
}

}  // namespace

__attribute__((noinline)) void record_sampled_from(void* p, size_t size, size_t align,
                                                   const unwind::Registers& start) noexcept {
    (void)align;  // passed for recorders to come; the heap profile keys on size alone
    record(p, size, size, false, start);
}

// The walk starts at this frame, which is live until record() returns (record() is inlined here: a
// call in tail position could reuse the frame the walk starts from).
__attribute__((noinline)) void record_sampled(void* p, size_t size, size_t align) noexcept {
    (void)align;
    unwind::Registers start;
    unwind::gprof_caller_registers(&start);
    record(p, size, size, false, start);
}

__attribute__((noinline)) void record_allocator_sample(void* p, size_t size,
                                                       size_t sampled_size) noexcept {
    unwind::Registers start;
    unwind::gprof_caller_registers(&start);
    record(p, size, sampled_size, true, start);
}

void record_allocator_free(void* p, uint32_t births) noexcept {
    heap_profile().record_reported_free(p, births);
}

}  // namespace gprof::record
