// Every distinct stack that a sample has seen, named by a small id.
//
// A tree of call paths (a trie): a node is a frame and its parent, the id of a stack is the node
// of its leaf, and stacks that share outer frames share nodes, so a walk that knows what it shares
// with the thread's previous sample (unwind/stack.h) names the stack with a look-up per new frame
// (child()). Why a tree: docs/design.md, "The heap profile's tables".
//
// Nodes live in one reservation under a memory cap; a stack that would pass it is dropped and
// counted, and its sample goes to id 0, the empty stack. Finding a known node takes no lock;
// adding one takes the table's lock. A node never changes once published, but for its link in
// the index's chains, rewritten when the index grows.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/spin_lock.h"
#include "record/growing_index.h"

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
    size_t bytes_used() const { return kNodeBytes * count() + index_.bytes(); }

    // fork(): held across fork so the child never inherits it locked.
    base::SpinLock& lock() { return lock_; }

  private:
    struct Node {
        uintptr_t pc;
        uint32_t parent;
        uint32_t next;  // next id in the same index chain, 0 at the end (record/growing_index.h)
    };
    static uint64_t hash(uint32_t parent, uintptr_t pc) {
        return (pc ^ (uint64_t{parent} << 40 | parent)) * 0x9E3779B97F4A7C15ULL;
    }
    uint32_t find(uint32_t parent, uintptr_t pc) const {
        return index_.find(
            hash(parent, pc),
            [&](uint32_t id) { return nodes_[id].pc == pc && nodes_[id].parent == parent; },
            [&](uint32_t id) -> const uint32_t& { return nodes_[id].next; });
    }

    static constexpr uint32_t kMaxNodes = 1u << 22;
    static constexpr size_t kNodeBytes = sizeof(Node) + sizeof(uint8_t);

    size_t max_bytes_;
    base::SpinLock lock_;
    Node* nodes_ = nullptr;      // [kMaxNodes], by id; 0 unused
    uint8_t* depths_ = nullptr;  // [kMaxNodes], by id
    // Chain heads: 4 096 at first, twice as many when the nodes pass two to a head, so a small
    // program's index stays small and a large one's chains stay short.
    GrowingIndex index_{12, 2, 1};
    std::atomic<uint32_t> count_{0};
    std::atomic<uint64_t> dropped_{0};
};

// The process's table, shared by every profile kind. start_stack_table() creates it in gprof's
// constructor, before the first sample can be taken.
void start_stack_table();
StackTable& stack_table();

}  // namespace gprof::record
