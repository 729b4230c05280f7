#include "record/stack_table.h"

#include <new>

#include "record/os_memory.h"

namespace gprof::record {

StackTable::StackTable(size_t max_bytes) {
    size_t per_node = sizeof(Node) + sizeof(uint8_t);
    size_t room = max_bytes > kIndexBytes ? (max_bytes - kIndexBytes) / per_node : 0;
    max_nodes_ = static_cast<uint32_t>(room < kMaxNodes ? room : kMaxNodes - 1);
    nodes_ = static_cast<Node*>(os_reserve(sizeof(Node) * kMaxNodes));
    depths_ = static_cast<uint8_t*>(os_reserve(sizeof(uint8_t) * kMaxNodes));
    index_ = static_cast<uint32_t*>(os_reserve(kIndexBytes));
    if (nodes_ == nullptr || depths_ == nullptr) {  // no table: every stack is dropped
        os_release(index_, kIndexBytes);
        index_ = nullptr;
    }
}

StackTable::~StackTable() {
    os_release(nodes_, sizeof(Node) * kMaxNodes);
    os_release(depths_, sizeof(uint8_t) * kMaxNodes);
    os_release(index_, kIndexBytes);
}

size_t StackTable::bytes_used() const {
    return kIndexBytes + (sizeof(Node) + sizeof(uint8_t)) * count();
}

uint32_t StackTable::child(uint32_t parent, uintptr_t pc) {
    if (index_ == nullptr) [[unlikely]]
        return 0;
    uint32_t* head = head_of(parent, pc);
    if (uint32_t found = find(head, parent, pc)) return found;  // the common case: no lock
    SpinGuard guard(lock_);
    if (uint32_t found = find(head, parent, pc)) return found;  // added meanwhile
    uint32_t id = count_.load(std::memory_order_relaxed) + 1;
    if (id > max_nodes_ || (parent != 0 && depths_[parent] >= kMaxDepth)) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return 0;
    }
    if (id == 1) os_prefault(index_, kIndexBytes);
    std::atomic_ref<uint32_t> head_ref(*head);
    nodes_[id] = Node{pc, parent, head_ref.load(std::memory_order_relaxed)};
    depths_[id] = static_cast<uint8_t>(parent == 0 ? 1 : depths_[parent] + 1);
    count_.store(id, std::memory_order_release);    // publishes the node to readers by id
    head_ref.store(id, std::memory_order_release);  // and to readers by content
    return id;
}

uint32_t StackTable::intern(const uintptr_t* pcs, int depth) {
    if (depth > kMaxDepth) depth = kMaxDepth;
    uint32_t id = 0;
    for (int i = depth - 1; i >= 0; --i)
        if ((id = child(id, pcs[i])) == 0) return 0;
    return id;
}

int StackTable::depth(uint32_t id) const {
    return id == 0 || id > count() ? 0 : depths_[id];
}

int StackTable::frames(uint32_t id, uintptr_t* pcs, int max) const {
    int n = 0;
    for (int d = depth(id); n < d && n < max; ++n) {
        pcs[n] = nodes_[id].pc;
        id = nodes_[id].parent;
    }
    return n;
}

namespace {
// Stacks may take this much memory (nodes and index); past it, new stacks are dropped and counted.
constexpr size_t kStackTableBytes = size_t{128} << 20;
alignas(StackTable) unsigned char g_table_storage[sizeof(StackTable)];
StackTable* g_table = nullptr;
}  // namespace

void start_stack_table() {
    if (g_table == nullptr) g_table = new (g_table_storage) StackTable(kStackTableBytes);
}

StackTable& stack_table() {
    if (g_table == nullptr) [[unlikely]]
        start_stack_table();  // a caller before gprof's constructor (another library's)
    return *g_table;
}

}  // namespace gprof::record
