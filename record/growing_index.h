// An index of a table's entries by hash, for tables whose entries are numbered from 1, added under
// the table's lock and looked up without it (the stack table's nodes, the heap profile's buckets).
//
// Chain heads by hash, each entry linking to the next of its chain through a field of its own
// (`next_of(id)`). The heads grow with the entries: `1 << first_bits` at first, `1 << growth_bits`
// times as many once the entries pass `per_head` to a head, each bigger index made whole under the
// lock and published at once. The indexes it replaces are kept (their memory counted in bytes()),
// for look-ups still in them: a look-up that runs while the links are rewritten for a bigger index
// still ends, because every link goes to an entry added before (a smaller id) in every index; it
// may miss an entry, and then the table looks again under its lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/os_memory.h"

namespace gprof::record {

class GrowingIndex {
  public:
    constexpr GrowingIndex(uint32_t first_bits, uint32_t per_head, uint32_t growth_bits)
        : first_bits_(first_bits), per_head_(per_head), growth_bits_(growth_bits) {}

    // The id whose entry `matches(id)` in the chain of `hash`, or 0. Without the lock.
    template <typename Matches, typename NextOf>
    uint32_t find(uint64_t hash, Matches matches, NextOf next_of) const {
        const Heads* heads = current_.load(std::memory_order_acquire);
        if (heads == nullptr) return 0;
        for (uint32_t id = load(heads->head[hash >> (64 - heads->bits)], std::memory_order_acquire);
             id != 0; id = load(next_of(id), std::memory_order_relaxed))
            if (matches(id)) return id;
        return 0;
    }

    // Under the lock, before entry `count` is linked: makes the index big enough for `count`
    // entries, relinking entries 1 .. count - 1 (`hash_of(id)`), if that takes at most `budget`
    // more bytes; where it cannot (the budget, no memory), the index it has stays and its chains
    // grow longer. False where there is no index at all to link `count` into.
    template <typename HashOf, typename NextOf>
    bool reserve_locked(uint32_t count, size_t budget, HashOf hash_of, NextOf next_of) {
        const Heads* old = current_.load(std::memory_order_relaxed);
        if (old != nullptr && count <= (per_head_ << old->bits)) return true;
        uint32_t bits = old != nullptr ? old->bits + growth_bits_ : first_bits_;
        size_t bytes = sizeof(Heads) + (sizeof(uint32_t) << bits);
        if (bytes > budget) return old != nullptr;
        auto* heads = static_cast<Heads*>(base::os_reserve(bytes));
        if (heads == nullptr) return old != nullptr;
        base::os_prefault(heads, bytes);  // the relinking writes all over it
        heads->bits = bits;
        for (uint32_t id = 1; id < count; ++id) {
            uint32_t& head = heads->head[hash_of(id) >> (64 - bits)];
            std::atomic_ref<uint32_t>(next_of(id)).store(head, std::memory_order_relaxed);
            head = id;
        }
        bytes_.store(bytes_.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
        current_.store(heads, std::memory_order_release);
        return true;
    }

    // Under the lock, after reserve_locked(id, ...) said yes: puts `id`, its entry complete, at
    // the head of the chain of `hash`, where look-ups find it from now on.
    template <typename NextOf>
    void link_locked(uint32_t id, uint64_t hash, NextOf next_of) {
        Heads* heads = current_.load(std::memory_order_relaxed);
        std::atomic_ref<uint32_t> head(heads->head[hash >> (64 - heads->bits)]);
        std::atomic_ref<uint32_t>(next_of(id))
            .store(head.load(std::memory_order_relaxed), std::memory_order_relaxed);
        head.store(id, std::memory_order_release);
    }

    size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

  private:
    struct Heads {
        uint32_t bits;
        uint32_t head[];  // [1 << bits]
    };
    static uint32_t load(const uint32_t& v, std::memory_order order) {
        return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(v)).load(order);
    }

    uint32_t first_bits_, per_head_, growth_bits_;
    std::atomic<Heads*> current_{nullptr};
    std::atomic<size_t> bytes_{0};  // every index made (written under the lock)
};

}  // namespace gprof::record
