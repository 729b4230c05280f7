// Custom count profiles, Go's pprof.NewProfile: a named set of opaque keys (a pointer, a
// descriptor), each with the stack that added it; a profile counts the keys it holds now by stack.
//
// Adding and removing take the lock of one of kShards shards (chosen by the key), so threads
// working on different keys rarely meet, and allocate nothing: each shard's table is memory gprof
// maps itself (open addressing, deleted entries shifted back, no tombstones). Profiles live as
// long as the process (Go's profiles cannot be deleted either).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/spin_lock.h"
#include "record/stack_counters.h"

namespace gprof::record {

class CustomProfile {
  public:
    static constexpr size_t kMaxName = 64;
    static constexpr int kShards = 16;

    const char* name() const { return name_; }
    bool valid() const { return magic_ == kMagic; }

    enum class Result { Done, Duplicate, Absent, NoMemory };
    // Go's Add: `key` with the stack `stack_id`; Duplicate if the key is in the profile already.
    Result add(uintptr_t key, uint32_t stack_id);
    // Go's Remove, except that a key not in the profile is reported (Absent).
    Result remove(uintptr_t key);

    // The keys held now, counted by stack (count in StackCounters::kCountUnit units, value 0).
    std::vector<StackCounts> counts() const;
    size_t size() const;
    size_t bytes_used() const;

    void lock_all();
    void unlock_all();

  private:
    friend CustomProfile* new_custom_profile(std::string_view name, bool* exists);
    static constexpr uint64_t kMagic = 0x6770726F66637573ULL;

    struct Entry {
        uintptr_t key;
        uint32_t stack_id;
        uint32_t used;  // 1: holds a key
    };
    struct alignas(64) Shard {
        mutable base::SpinLock lock;
        Entry* slots = nullptr;
        size_t capacity = 0;  // a power of two
        size_t used = 0;
    };
    static size_t home(uintptr_t key);
    static bool grow_locked(Shard& s);

    uint64_t magic_ = 0;
    char name_[kMaxName + 1] = {};
    Shard shards_[kShards];
};

constexpr size_t kMaxCustomProfiles = 64;

// Go's NewProfile: a new profile named `name` (the caller checks the name's form and that it is
// no built-in profile's). Null when one of that name exists (*exists set) or no more can be made.
CustomProfile* new_custom_profile(std::string_view name, bool* exists);
// The profile of that name, or null.
CustomProfile* find_custom_profile(std::string_view name);
// The profiles made so far, in order.
std::vector<CustomProfile*> custom_profiles();

// fork(): every custom profile's locks.
void lock_custom_profiles();
void unlock_custom_profiles();

}  // namespace gprof::record
