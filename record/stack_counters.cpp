#include "record/stack_counters.h"

#include "base/os_memory.h"
#include "record/own_records.h"

namespace gprof::record {

StackCounters::StackCounters(uint32_t slots)
    : mask_(slots - 1),
      slots_(static_cast<Slot*>(base::os_reserve(sizeof(Slot) * slots))),
      claimed_(static_cast<std::atomic<uint32_t>*>(base::os_reserve(sizeof(uint32_t) * slots))) {
    if (claimed_ == nullptr) {
        base::os_release(slots_, sizeof(Slot) * slots);
        slots_ = nullptr;
    }
}

StackCounters::~StackCounters() {
    base::os_release(slots_, sizeof(Slot) * (mask_ + 1));
    base::os_release(claimed_, sizeof(uint32_t) * (mask_ + 1));
}

void StackCounters::add(uint32_t stack_id, int64_t count_thousandths, int64_t value) {
    note_own_record();
    if (slots_ == nullptr || stack_id == 0) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    uint32_t i = (stack_id * 0x9E3779B1u) & mask_;
    // At most 3/4 full: probes stay short, and a full table drops instead of looping.
    for (uint32_t probes = 0; probes <= mask_; ++probes, i = (i + 1) & mask_) {
        Slot& s = slots_[i];
        uint32_t id = s.stack_id.load(std::memory_order_acquire);
        if (id == 0) {
            if (used_.load(std::memory_order_relaxed) >= (mask_ + 1) / 4 * 3) break;
            uint32_t expected = 0;
            if (s.stack_id.compare_exchange_strong(expected, stack_id, std::memory_order_acq_rel)) {
                size_t position = used_.fetch_add(1, std::memory_order_relaxed);
                claimed_[position].store(i + 1, std::memory_order_release);
                id = stack_id;
            } else {
                id = expected;
            }
        }
        if (id == stack_id) {
            s.count.fetch_add(count_thousandths, std::memory_order_relaxed);
            s.value.fetch_add(value, std::memory_order_relaxed);
            return;
        }
    }
    dropped_.fetch_add(1, std::memory_order_relaxed);
}

size_t StackCounters::snapshot(StackCounts* out, size_t max) const {
    size_t n = 0;
    if (slots_ == nullptr) return 0;
    size_t used = used_.load(std::memory_order_acquire);
    for (size_t position = 0; position < used; ++position) {
        uint32_t slot = claimed_[position].load(std::memory_order_acquire);
        if (slot == 0) continue;  // being claimed right now: in the next snapshot
        const Slot& s = slots_[slot - 1];
        uint32_t id = s.stack_id.load(std::memory_order_acquire);
        if (n < max)
            out[n] = {id, s.count.load(std::memory_order_relaxed),
                      s.value.load(std::memory_order_relaxed)};
        ++n;
    }
    return n;
}

std::vector<StackCounts> StackCounters::snapshot() const {
    std::vector<StackCounts> counts(size() + 256);  // room for stacks added meanwhile
    size_t n = snapshot(counts.data(), counts.size());
    if (n < counts.size()) counts.resize(n);
    return counts;
}

}  // namespace gprof::record
