// Every distinct stack that a sample has seen, stored once and named by a small id.
//
// Stacks live in an append-only arena (memory from os_memory.h) under a memory cap; a stack that
// would pass the cap is dropped, counted, and its sample goes to id 0, the empty stack that the
// writer notes in a comment. Finding a known stack takes no lock (the common case: stacks repeat);
// adding one takes the table's lock. An entry never changes after it is published.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "record/spin_lock.h"

namespace gprof::record {

class StackTable {
public:
    // `max_bytes` bounds the arena and the index together.
    explicit StackTable(size_t max_bytes);
    ~StackTable();
    StackTable(const StackTable&) = delete;
    StackTable& operator=(const StackTable&) = delete;

    // The id of this stack (leaf first), adding it if new. 0 when it had to be dropped.
    uint32_t intern(const uintptr_t* pcs, int depth);

    // The frames of an id returned by intern(); id 0 has none.
    int frames(uint32_t id, const uintptr_t** pcs) const;

    uint32_t count() const { return count_.load(std::memory_order_acquire); }  // ids 1..count
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
    size_t bytes_used() const { return bytes_used_.load(std::memory_order_relaxed); }

    // fork(): held across fork so the child never inherits it locked.
    SpinLock& lock() { return lock_; }

private:
    struct Entry;
    uint32_t find(uint64_t hash, const uintptr_t* pcs, int depth) const;
    Entry* allocate_entry_locked(int depth);

    static constexpr uint32_t kMaxStacks = 1u << 22;
    // 256 KiB of chain heads, made resident at the first stack (os_prefault): stacks hash all over
    // it, and page by page that took a fault (~18 us here) for nearly every new stack at first.
    static constexpr uint32_t kIndexBuckets = 1u << 16;

    size_t max_bytes_;
    SpinLock lock_;
    Entry** by_id_ = nullptr;    // [kMaxStacks], id -> entry
    uint32_t* index_ = nullptr;  // [kIndexBuckets], hash -> first id of its chain
    char* chunk_ = nullptr;      // current arena chunk
    size_t chunk_left_ = 0;
    std::atomic<uint32_t> count_{0};
    std::atomic<uint64_t> dropped_{0};
    std::atomic<size_t> bytes_used_{0};
};

// The process's table, shared by every profile kind. start_stack_table() creates it in gprof's
// constructor, before the first sample can be taken.
void start_stack_table();
StackTable& stack_table();

}  // namespace gprof::record
