#include "record/stack_table.h"

#include <atomic>
#include <cstring>
#include <new>

#include "record/os_memory.h"

namespace gprof::record {

struct StackTable::Entry {
    uint64_t hash;
    uint32_t next;  // next id in the same index chain, 0 at the end
    uint32_t depth;
    uintptr_t pcs[];
};

namespace {

constexpr size_t kChunkBytes = size_t{1} << 20;

// Two independent chains over alternate frames, joined at the end: each frame's step is a multiply
// that waits for the one before, so one chain over a 16-frame stack was a 100-cycle dependency (at
// GPROF_MEM_PROFILE_RATE=1, 6% of python3's time under gprof); two halve it. (Four gained nothing
// more.) Collisions cost only a longer index chain: look-ups compare the frames.
uint64_t hash_stack(const uintptr_t* pcs, int depth) {
    uint64_t a = 0xcbf29ce484222325ULL ^ static_cast<uint64_t>(depth);
    uint64_t b = 0x9E3779B97F4A7C15ULL;
    int i = 0;
    for (; i + 1 < depth; i += 2) {
        a = (a ^ pcs[i]) * 0x100000001b3ULL;
        b = (b ^ pcs[i + 1]) * 0xC2B2AE3D27D4EB4FULL;
        a ^= a >> 29;
        b ^= b >> 31;
    }
    if (i < depth) {
        a = (a ^ pcs[i]) * 0x100000001b3ULL;
        a ^= a >> 29;
    }
    uint64_t h = (a ^ (b * 0x165667B19E3779F9ULL));
    return h ^ (h >> 32);
}

}  // namespace

StackTable::StackTable(size_t max_bytes) : max_bytes_(max_bytes) {
    by_id_ = static_cast<Entry**>(os_reserve(sizeof(Entry*) * kMaxStacks));
    index_ = static_cast<uint32_t*>(os_reserve(sizeof(uint32_t) * kIndexBuckets));
    bytes_used_.store(sizeof(uint32_t) * kIndexBuckets, std::memory_order_relaxed);
}

StackTable::~StackTable() {
    // The arena chunks are not tracked individually: tables live as long as the process, and the
    // tests that build small tables accept the leak.
    os_release(by_id_, sizeof(Entry*) * kMaxStacks);
    os_release(index_, sizeof(uint32_t) * kIndexBuckets);
}

// Lock-free: an index head is published (release) only after its entry and by_id_ slot are
// complete, and entries never change afterwards.
uint32_t StackTable::find(uint64_t hash, const uintptr_t* pcs, int depth) const {
    std::atomic_ref<uint32_t> head(index_[hash % kIndexBuckets]);
    for (uint32_t id = head.load(std::memory_order_acquire); id != 0;) {
        const Entry* e = by_id_[id];
        if (e->hash == hash && e->depth == static_cast<uint32_t>(depth) &&
            (depth == 0 || memcmp(e->pcs, pcs, sizeof(uintptr_t) * static_cast<size_t>(depth)) == 0))
            return id;
        id = e->next;
    }
    return 0;
}

StackTable::Entry* StackTable::allocate_entry_locked(int depth) {
    size_t need = (sizeof(Entry) + sizeof(uintptr_t) * static_cast<size_t>(depth) + 7) & ~size_t{7};
    if (need > chunk_left_) {
        size_t used = bytes_used_.load(std::memory_order_relaxed);
        if (used + kChunkBytes > max_bytes_) return nullptr;
        chunk_ = static_cast<char*>(os_reserve(kChunkBytes));
        if (chunk_ == nullptr) {
            chunk_left_ = 0;
            return nullptr;
        }
        chunk_left_ = kChunkBytes;
        bytes_used_.store(used + kChunkBytes, std::memory_order_relaxed);
    }
    Entry* e = reinterpret_cast<Entry*>(chunk_);
    chunk_ += need;
    chunk_left_ -= need;
    return e;
}

uint32_t StackTable::intern(const uintptr_t* pcs, int depth) {
    if (by_id_ == nullptr || index_ == nullptr) return 0;
    uint64_t hash = hash_stack(pcs, depth);
    if (uint32_t found = find(hash, pcs, depth)) return found;  // the common case: no lock
    SpinGuard guard(lock_);
    if (uint32_t found = find(hash, pcs, depth)) return found;  // added meanwhile
    uint32_t id = count_.load(std::memory_order_relaxed) + 1;
    if (id == 1) os_prefault(index_, sizeof(uint32_t) * kIndexBuckets);
    std::atomic_ref<uint32_t> head(index_[hash % kIndexBuckets]);
    Entry* e = id < kMaxStacks ? allocate_entry_locked(depth) : nullptr;
    if (e == nullptr) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return 0;
    }
    e->hash = hash;
    e->depth = static_cast<uint32_t>(depth);
    e->next = head.load(std::memory_order_relaxed);
    if (depth > 0) memcpy(e->pcs, pcs, sizeof(uintptr_t) * static_cast<size_t>(depth));
    by_id_[id] = e;
    count_.store(id, std::memory_order_release);  // publishes the entry to readers by id
    head.store(id, std::memory_order_release);    // and to readers by content
    return id;
}

int StackTable::frames(uint32_t id, const uintptr_t** pcs) const {
    if (id == 0 || id > count()) {
        *pcs = nullptr;
        return 0;
    }
    const Entry* e = by_id_[id];
    *pcs = e->pcs;
    return static_cast<int>(e->depth);
}

namespace {
// Stacks may take this much memory (arena and index); past it, new stacks are dropped and counted.
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
