// Two counters per stack: the state of the threadcreate, block and mutex profiles (a count and,
// for the contention profiles, a delay in nanoseconds).
//
// An open-addressing table keyed by stack id, in reserved pages: adding to a stack's counters takes
// no lock (a compare-and-swap claims a free slot the first time a stack is seen, then two atomic
// additions), so it is safe from any thread, in any lock hook, and across fork. A stack that finds
// the table full is counted as dropped, like the stack table's own overflow.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gprof::record {

struct StackCounts {
    uint32_t stack_id;
    int64_t count;  // in thousandths: Go's un-biased block counts are fractions
    int64_t value;
};

class StackCounters {
public:
    static constexpr int64_t kCountUnit = 1000;

    // `slots` must be a power of two. Reserves the table (untouched pages cost nothing).
    explicit StackCounters(uint32_t slots);
    ~StackCounters();
    StackCounters(const StackCounters&) = delete;
    StackCounters& operator=(const StackCounters&) = delete;

    // Adds `count_thousandths` / 1000 events and `value` to the stack's counters.
    void add(uint32_t stack_id, int64_t count_thousandths, int64_t value);

    // Copies the stacks seen so far into `out` (capacity `max`); returns how many there are.
    size_t snapshot(StackCounts* out, size_t max) const;
    // The same into a vector (for the writer, which may allocate).
    std::vector<StackCounts> snapshot() const;
    size_t size() const { return used_.load(std::memory_order_relaxed); }
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

private:
    struct Slot {
        std::atomic<uint32_t> stack_id;  // 0: free
        std::atomic<int64_t> count;
        std::atomic<int64_t> value;
    };
    uint32_t mask_;
    Slot* slots_;
    // The slots claimed, in order (slot index + 1; 0 while a claim is being written down), so a
    // snapshot reads only those instead of the whole reserved table (whose untouched pages it
    // would otherwise fault in).
    std::atomic<uint32_t>* claimed_;
    std::atomic<size_t> used_{0};
    std::atomic<uint64_t> dropped_{0};
};

}  // namespace gprof::record
