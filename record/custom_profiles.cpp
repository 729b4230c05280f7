#include "record/custom_profiles.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "base/os_memory.h"
#include "record/own_records.h"

namespace gprof::record {
namespace {

constinit CustomProfile g_profiles[kMaxCustomProfiles];
constinit std::atomic<size_t> g_count{0};
constinit base::SpinLock g_registry_lock;

}  // namespace

size_t CustomProfile::home(uintptr_t key) {
    return static_cast<size_t>((static_cast<uint64_t>(key) * 0x9E3779B97F4A7C15ULL) >> 20);
}

bool CustomProfile::grow_locked(Shard& s) {
    size_t capacity = s.capacity ? s.capacity * 2 : 64;
    auto* slots = static_cast<Entry*>(base::os_reserve(sizeof(Entry) * capacity));
    if (slots == nullptr) return false;
    for (size_t i = 0; i < s.capacity; ++i) {
        const Entry& e = s.slots[i];
        if (!e.used) continue;
        for (size_t j = (home(e.key) / kShards) & (capacity - 1);; j = (j + 1) & (capacity - 1)) {
            if (!slots[j].used) {
                slots[j] = e;
                break;
            }
        }
    }
    base::os_release(s.slots, sizeof(Entry) * s.capacity);
    s.slots = slots;
    s.capacity = capacity;
    return true;
}

CustomProfile::Result CustomProfile::add(uintptr_t key, uint32_t stack_id) {
    note_own_record();
    const size_t h = home(key);
    Shard& s = shards_[h % kShards];
    base::SpinGuard guard(s.lock);
    if ((s.used + 1) * 2 > s.capacity && !grow_locked(s)) return Result::NoMemory;
    const size_t mask = s.capacity - 1;
    for (size_t j = (h / kShards) & mask;; j = (j + 1) & mask) {
        Entry& e = s.slots[j];
        if (!e.used) {
            e = Entry{key, stack_id, 1};
            ++s.used;
            return Result::Done;
        }
        if (e.key == key) return Result::Duplicate;
    }
}

CustomProfile::Result CustomProfile::remove(uintptr_t key) {
    const size_t h = home(key);
    Shard& s = shards_[h % kShards];
    base::SpinGuard guard(s.lock);
    if (s.capacity == 0) return Result::Absent;
    const size_t mask = s.capacity - 1;
    size_t j = (h / kShards) & mask;
    for (;; j = (j + 1) & mask) {
        if (!s.slots[j].used) return Result::Absent;
        if (s.slots[j].key == key) break;
    }
    // Backward-shift deletion (linear probing): entries after the hole that may sit in it move up,
    // so look-ups never need tombstones.
    for (size_t hole = j, k = (j + 1) & mask;; k = (k + 1) & mask) {
        if (!s.slots[k].used) {
            s.slots[hole].used = 0;
            break;
        }
        size_t want = (home(s.slots[k].key) / kShards) & mask;
        // Does k's home lie cyclically in (hole, k]? Then it stays.
        bool stays = hole <= k ? (hole < want && want <= k) : (hole < want || want <= k);
        if (!stays) {
            s.slots[hole] = s.slots[k];
            hole = k;
        }
    }
    --s.used;
    return Result::Done;
}

std::vector<StackCounts> CustomProfile::counts() const {
    std::vector<uint32_t> stacks;
    stacks.reserve(size() + 1024);
    for (const Shard& s : shards_) {
        base::SpinGuard guard(s.lock);
        for (size_t i = 0; i < s.capacity && stacks.size() < stacks.capacity(); ++i)
            if (s.slots[i].used) stacks.push_back(s.slots[i].stack_id);
    }
    std::sort(stacks.begin(), stacks.end());
    std::vector<StackCounts> out;
    for (size_t i = 0; i < stacks.size();) {
        size_t j = i;
        while (j < stacks.size() && stacks[j] == stacks[i]) ++j;
        out.push_back(
            StackCounts{stacks[i], static_cast<int64_t>(j - i) * StackCounters::kCountUnit, 0});
        i = j;
    }
    return out;
}

size_t CustomProfile::size() const {
    size_t n = 0;
    for (const Shard& s : shards_) {
        base::SpinGuard guard(s.lock);
        n += s.used;
    }
    return n;
}

size_t CustomProfile::bytes_used() const {
    size_t n = 0;
    for (const Shard& s : shards_) {
        base::SpinGuard guard(s.lock);
        n += s.capacity * sizeof(Entry);
    }
    return n;
}

void CustomProfile::lock_all() {
    for (Shard& s : shards_) s.lock.lock();
}

void CustomProfile::unlock_all() {
    for (Shard& s : shards_) s.lock.unlock();
}

CustomProfile* new_custom_profile(std::string_view name, bool* exists) {
    *exists = false;
    if (name.size() > CustomProfile::kMaxName) return nullptr;
    base::SpinGuard guard(g_registry_lock);
    size_t n = g_count.load(std::memory_order_relaxed);
    for (size_t i = 0; i < n; ++i) {
        if (name == g_profiles[i].name_) {
            *exists = true;
            return nullptr;
        }
    }
    if (n == kMaxCustomProfiles) return nullptr;
    CustomProfile& p = g_profiles[n];
    memcpy(p.name_, name.data(), name.size());
    p.name_[name.size()] = '\0';
    p.magic_ = CustomProfile::kMagic;
    g_count.store(n + 1, std::memory_order_release);
    return &p;
}

CustomProfile* find_custom_profile(std::string_view name) {
    size_t n = g_count.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i)
        if (name == g_profiles[i].name()) return &g_profiles[i];
    return nullptr;
}

std::vector<CustomProfile*> custom_profiles() {
    size_t n = g_count.load(std::memory_order_acquire);
    std::vector<CustomProfile*> out;
    for (size_t i = 0; i < n; ++i) out.push_back(&g_profiles[i]);
    return out;
}

void lock_custom_profiles() {
    g_registry_lock.lock();
    size_t n = g_count.load(std::memory_order_acquire);
    for (size_t i = 0; i < n; ++i) g_profiles[i].lock_all();
}

void unlock_custom_profiles() {
    size_t n = g_count.load(std::memory_order_acquire);
    for (size_t i = n; i-- > 0;) g_profiles[i].unlock_all();
    g_registry_lock.unlock();
}

}  // namespace gprof::record
