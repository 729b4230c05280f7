#include "record/stack_table.h"

#include <new>

#include "base/os_memory.h"

namespace gprof::record {

StackTable::StackTable(size_t max_bytes) : max_bytes_(max_bytes) {
    nodes_ = static_cast<Node*>(base::os_reserve(sizeof(Node) * kMaxNodes));
    depths_ = static_cast<uint8_t*>(base::os_reserve(sizeof(uint8_t) * kMaxNodes));
}

StackTable::~StackTable() {
    // The indexes are not tracked one by one: tables live as long as the process, and the tests
    // that build small tables accept the leak.
    base::os_release(nodes_, sizeof(Node) * kMaxNodes);
    base::os_release(depths_, sizeof(uint8_t) * kMaxNodes);
}

uint32_t StackTable::child(uint32_t parent, uintptr_t pc) {
    if (nodes_ == nullptr || depths_ == nullptr) [[unlikely]]
        return 0;
    if (uint32_t found = find(parent, pc)) return found;  // the common case: no lock
    base::SpinGuard guard(lock_);
    if (uint32_t found = find(parent, pc)) return found;  // added meanwhile
    uint32_t id = count_.load(std::memory_order_relaxed) + 1;
    if (id >= kMaxNodes || bytes_used() + kNodeBytes > max_bytes_ ||
        (parent != 0 && depths_[parent] >= kMaxDepth)) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return 0;
    }
    auto next_of = [&](uint32_t n) -> uint32_t& { return nodes_[n].next; };
    // Where a bigger index would pass the cap, the chains grow longer instead.
    if (!index_.reserve_locked(
            id, max_bytes_ - bytes_used() - kNodeBytes,
            [&](uint32_t n) { return hash(nodes_[n].parent, nodes_[n].pc); }, next_of)) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return 0;
    }
    nodes_[id] = Node{pc, parent, 0};
    depths_[id] = static_cast<uint8_t>(parent == 0 ? 1 : depths_[parent] + 1);
    count_.store(id, std::memory_order_release);        // publishes the node to readers by id
    index_.link_locked(id, hash(parent, pc), next_of);  // and to readers by content
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
