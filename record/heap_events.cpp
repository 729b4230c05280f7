#include "record/heap_events.h"

#include "base/reentry_guard.h"
#include "record/heap_profile.h"
#include "record/labels.h"
#include "record/stack_table.h"
#include "unwind/stack.h"

namespace gprof::record {

namespace {

// The stack-table id of a sample's stack. The table is a tree of call paths (record/stack_table.h)
// and the thread's walk keeps, for each frame it kept from the last walk, the node it had then: the
// stack is named from the deepest frame it still shares with the thread's previous sample, with a
// look-up per frame below it.
uint32_t stack_id_of(const unwind::Registers& start) {
    uintptr_t scratch[unwind::kCaptureRoom];
    unwind::RootFirstStack stack = unwind::capture_root_first(start, scratch);
    if (stack.truncated) heap_profile().count_truncated();
    StackTable& table = stack_table();
    int i = stack.tagged != nullptr ? *stack.tagged : 0;
    uint32_t id = i > 0 ? stack.tags[i - 1] : 0;
    for (; i < stack.depth; ++i) {
        if ((id = table.child(id, stack.pcs[i])) == 0) break;  // dropped (the table is full)
        if (stack.tags != nullptr) stack.tags[i] = id;
    }
    if (stack.tagged != nullptr) *stack.tagged = i;
    return id;
}

[[gnu::always_inline]] inline void record(void* p, size_t size, size_t sampled_size,
                                          bool allocator_sample, const unwind::Registers& start) {
    // A failed allocation has nothing to remember; gprof's own allocations are not the program's;
    // before start-up there is no unwinder yet.
    if (p == nullptr || base::inside_gprof() || !unwind::ready()) return;
    heap_profile().prefetch(p);  // its line loads while the stack is walked
    base::ReentryGuard guard;
    uint32_t stack_id = stack_id_of(start);
    const uint32_t labels = current_label_set();  // a sample's only cost of labels: a TLS load
    if (allocator_sample)
        heap_profile().record_reported_alloc(p, size, sampled_size, stack_id, labels);
    else
        heap_profile().record_alloc(p, size, stack_id, labels);
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
