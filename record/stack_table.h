// Every distinct stack that a sample has seen, named by a small id.
//
// Stacks are kept as a tree of call paths (a trie, as heaptrack keeps them): a node is a frame
// and its parent, the stack of the frames that called it, so the id of a stack is the node of its
// leaf and stacks that share their outer frames share those nodes. Why a tree rather than one
// entry per stack: a sampled allocation's walk knows which outer frames its stack shares with the
// thread's previous sample (unwind/stack.h: capture_root_first), and a tree names the new stack
// from there with a look-up per new frame (child()), where a table of whole stacks hashes and
// compares every frame of every stack (at GPROF_MEM_PROFILE_RATE=1 on python3, 25 frames deep,
// that was a tenth of gprof's instructions). It also keeps each shared outer path once.
//
// Nodes live in one reservation (memory from os_memory.h) under a memory cap; a node that would
// pass the cap is not added, the stack that needed it is dropped and counted, and its sample goes
// to id 0, the empty stack that the writer notes in a comment. Finding a known node takes no lock
// (the common case: stacks repeat); adding one takes the table's lock. A node never changes after
// it is published.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "record/spin_lock.h"

namespace gprof::record {

class StackTable {
  public:
    // Stacks are at most this deep; intern() keeps the leaf-most frames of a deeper one.
    static constexpr int kMaxDepth = 255;

    // `max_bytes` bounds the nodes and the index together.
    explicit StackTable(size_t max_bytes);
    ~StackTable();
    StackTable(const StackTable&) = delete;
    StackTable& operator=(const StackTable&) = delete;

    // The id of this stack (leaf first), adding it if new. 0 for the empty stack, and when the
    // stack had to be dropped.
    uint32_t intern(const uintptr_t* pcs, int depth);
    // The id of the stack `parent` called from with `pc` as its new leaf (parent 0: the outermost
    // frame), adding it if new. 0 when it had to be dropped (counted in dropped()), or when parent
    // is kMaxDepth deep already.
    uint32_t child(uint32_t parent, uintptr_t pc);

    // The number of frames of an id returned by intern() or child(); id 0 has none.
    int depth(uint32_t id) const;
    // Writes the frames of `id`, leaf first, at most `max` of them (the leaf-most); returns how
    // many.
    int frames(uint32_t id, uintptr_t* pcs, int max) const;

    uint32_t count() const { return count_.load(std::memory_order_acquire); }  // nodes 1..count
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
    size_t bytes_used() const { return bytes_used_.load(std::memory_order_relaxed); }

    // fork(): held across fork so the child never inherits it locked.
    SpinLock& lock() { return lock_; }

  private:
    struct Node {
        uintptr_t pc;
        uint32_t parent;
        uint32_t next;  // next id in the same index chain, 0 at the end; always below this one's
    };
    // The index: chain heads by hash of (parent, pc), one for every two nodes at least, twice as
    // many as soon as the nodes pass that (made resident as it is made: nodes hash all over it;
    // 4 096 heads at first, where a fixed 65 536 took 256 KiB from the first sample on). Each
    // bigger one is published whole, under the lock, and the ones it replaces are kept for
    // look-ups still in them (as the heap profile's bucket index: record/heap_profile.h).
    struct Index {
        uint32_t bits;
        uint32_t heads[];  // [1 << bits]
    };
    static constexpr uint32_t kFirstIndexBits = 12;
    static uint64_t hash(uint32_t parent, uintptr_t pc) {
        return (pc ^ (uint64_t{parent} << 40 | parent)) * 0x9E3779B97F4A7C15ULL;
    }
    // Lock-free: a head is published (release) only after its node is complete; a node's only
    // change is its `next`, rewritten for a bigger index, always to a smaller id, so a look-up
    // running meanwhile still ends (it may miss, and then looks again under the lock).
    uint32_t find(const Index* index, uint32_t parent, uintptr_t pc) const {
        auto load = [](const uint32_t& v, std::memory_order order) {
            return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(v)).load(order);
        };
        for (uint32_t id = load(index->heads[hash(parent, pc) >> (64 - index->bits)],
                                std::memory_order_acquire);
             id != 0;) {
            const Node& n = nodes_[id];
            if (n.pc == pc && n.parent == parent) return id;
            id = load(n.next, std::memory_order_relaxed);
        }
        return 0;
    }
    // A bigger index with every node in it (null: over the cap, or no memory). Under the lock.
    Index* grow_index_locked(const Index* old);

    static constexpr uint32_t kMaxNodes = 1u << 22;
    static constexpr size_t kNodeBytes = sizeof(Node) + sizeof(uint8_t);

    size_t max_bytes_;
    SpinLock lock_;
    Node* nodes_ = nullptr;      // [kMaxNodes], by id; 0 unused
    uint8_t* depths_ = nullptr;  // [kMaxNodes], by id
    std::atomic<Index*> index_{nullptr};
    std::atomic<uint32_t> count_{0};
    std::atomic<uint64_t> dropped_{0};
    std::atomic<size_t> bytes_used_{0};  // nodes and every index made (written under the lock)
};

// The process's table, shared by every profile kind. start_stack_table() creates it in gprof's
// constructor, before the first sample can be taken.
void start_stack_table();
StackTable& stack_table();

}  // namespace gprof::record
