#include "record/heap_profile.h"

#include <atomic>
#include <cstring>

#include "base/os_memory.h"
#include "record/own_records.h"

namespace gprof::record {

constinit HeapProfile g_heap_profile;

namespace {

// The counter stripe of this thread, handed out round-robin at its first sample.
constinit thread_local int t_count_stripe [[gnu::tls_model("initial-exec")]] = -1;

// The shard whose lock this thread is taking or holds in add, remove or restore, plus one (0:
// none). A signal handler that allocates or frees can interrupt its own thread there, and would
// spin forever on that same lock: its allocation is then dropped, and its free leaves the entry in
// the table (ended later when a new life takes the address, as for a free that bypasses gprof).
// A fork from such a handler leaves that lock to the interrupted frame (lock_all).
constinit thread_local int t_held_shard [[gnu::tls_model("initial-exec")]] = 0;

class HeldShard {
public:
    explicit HeldShard(int index) : previous_(t_held_shard) {
        t_held_shard = index + 1;
        std::atomic_signal_fence(std::memory_order_seq_cst);  // marked before the lock is taken
    }
    ~HeldShard() {
        std::atomic_signal_fence(std::memory_order_seq_cst);  // released before unmarked
        t_held_shard = previous_;
    }
    HeldShard(const HeldShard&) = delete;
    HeldShard& operator=(const HeldShard&) = delete;

private:
    int previous_;
};

bool held_by_this_thread(int index) { return t_held_shard == index + 1; }

}  // namespace

void HeapProfile::start() {
    base::SpinGuard guard(buckets_lock_);
    if (buckets_ != nullptr) return;
    buckets_ = static_cast<Bucket*>(base::os_reserve(sizeof(Bucket) * kMaxBuckets));
    allocs_ =
        static_cast<uint64_t*>(base::os_reserve(sizeof(uint64_t) * kMaxBuckets * kCountStripes));
    live_ = static_cast<uint32_t*>(base::os_reserve(sizeof(uint32_t) * kMaxBuckets));
}

uint32_t HeapProfile::find_bucket(uint64_t hash, uint32_t stack_id, uint64_t size,
                                  uint64_t sampled_size, uint32_t labels) const {
    return bucket_index_.find(
        hash,
        [&](uint32_t i) {
            const Bucket& b = buckets_[i];
            return b.stack_id == stack_id && b.size == size && b.sampled_size == sampled_size &&
                   b.labels == labels;
        },
        [&](uint32_t i) -> const uint32_t& { return buckets_[i].next; });
}

// Like the stack table: a lock-free look-up, and the lock only to add a bucket.
uint32_t HeapProfile::bucket_for(uint32_t stack_id, uint64_t size, uint64_t sampled_size,
                                 uint32_t labels) {
    if (buckets_ == nullptr || allocs_ == nullptr) return 0;
    const uint64_t hash = bucket_hash(stack_id, size, sampled_size, labels);
    if (uint32_t i = find_bucket(hash, stack_id, size, sampled_size, labels)) return i;
    base::SpinGuard guard(buckets_lock_);
    if (uint32_t i = find_bucket(hash, stack_id, size, sampled_size, labels)) return i;
    uint32_t i = bucket_count_.load(std::memory_order_relaxed) + 1;
    if (i >= kMaxBuckets) return 0;
    auto next_of = [&](uint32_t n) -> uint32_t& { return buckets_[n].next; };
    if (!bucket_index_.reserve_locked(
            i, SIZE_MAX,
            [&](uint32_t n) {
                const Bucket& b = buckets_[n];
                return bucket_hash(b.stack_id, b.size, b.sampled_size, b.labels);
            },
            next_of))
        return 0;
    Bucket& b = buckets_[i];
    b.stack_id = stack_id;
    b.size = size;
    b.sampled_size = sampled_size;
    b.labels = labels;
    bucket_count_.store(i, std::memory_order_release);
    bucket_index_.link_locked(i, hash, next_of);
    return i;
}

void HeapProfile::count_alloc(uint32_t bucket) {
    int stripe = t_count_stripe;
    if (stripe < 0) [[unlikely]]
        t_count_stripe = stripe =
            static_cast<int>(next_stripe_.fetch_add(1, std::memory_order_acq_rel) % kCountStripes);
    // Release: a snapshot that finds the object in the live table then sees it counted (see
    // for_each_bucket()).
    std::atomic_ref<uint64_t>(allocs_[size_t{kMaxBuckets} * stripe + bucket])
        .fetch_add(1, std::memory_order_release);
}

void HeapProfile::count_live(size_t n) {
    if (live_ == nullptr) return;
    memset(live_ + 1, 0, sizeof(uint32_t) * n);
    for (Shard& s : shards_) {
        base::SpinGuard guard(s.lock);
        for (size_t i = 0; i < s.capacity; ++i) {
            uint32_t bucket = s.slots[i].bucket;
            if (s.slots[i].ptr != 0 && bucket <= n) ++live_[bucket];
        }
    }
}

// A bitmap word is written only under the lock of the shard that owns all its bits, so a load and
// a store update it: no locked read-modify-write (two fewer per sampled allocation and free).
void HeapProfile::filter_add_locked(uint32_t bit) {
    if (filter_counts_[bit] == UINT8_MAX) return;  // saturated: the bit stays set
    if (filter_counts_[bit]++ == 0) {
        std::atomic<uint64_t>& word = filter_[bit >> 6];
        word.store(word.load(std::memory_order_relaxed) | (uint64_t{1} << (bit & 63)),
                   std::memory_order_release);
    }
}

void HeapProfile::filter_remove_locked(uint32_t bit) {
    if (filter_counts_[bit] == UINT8_MAX) return;  // saturated: no longer counted
    if (--filter_counts_[bit] == 0) {
        std::atomic<uint64_t>& word = filter_[bit >> 6];
        word.store(word.load(std::memory_order_relaxed) & ~(uint64_t{1} << (bit & 63)),
                   std::memory_order_release);
    }
}

bool HeapProfile::grow_locked(Shard& s) {
    size_t capacity = s.capacity ? s.capacity * 2 : 256;
    auto* slots = static_cast<LiveEntry*>(base::os_reserve(sizeof(LiveEntry) * capacity));
    if (slots == nullptr) return false;
    // The rehash below writes all over the new table.
    if (s.capacity > 0) base::os_prefault(slots, sizeof(LiveEntry) * capacity);
    for (size_t i = 0; i < s.capacity; ++i) {
        const LiveEntry& e = s.slots[i];
        if (e.ptr == 0) continue;
        uint64_t h = hash(reinterpret_cast<void*>(e.ptr));
        for (size_t j = (h ^ (h >> 32)) & (capacity - 1);; j = (j + 1) & (capacity - 1)) {
            if (slots[j].ptr == 0) {
                slots[j] = e;
                break;
            }
        }
    }
    base::os_release(s.slots, sizeof(LiveEntry) * s.capacity);
    live_bytes_.fetch_add(sizeof(LiveEntry) * (capacity - s.capacity), std::memory_order_relaxed);
    s.slots = slots;
    s.capacity = capacity;
    s.slots_hint.store(reinterpret_cast<uintptr_t>(slots), std::memory_order_relaxed);
    s.mask_hint.store(capacity - 1, std::memory_order_relaxed);
    return true;
}

bool HeapProfile::insert_locked(Shard& s, uintptr_t p, uint32_t bucket, uint32_t born) {
    if ((s.used + 1) * 2 > s.capacity && !grow_locked(s)) return false;
    uint64_t h = hash(reinterpret_cast<void*>(p));
    size_t mask = s.capacity - 1;
    for (size_t j = (h ^ (h >> 32)) & mask;; j = (j + 1) & mask) {
        if (s.slots[j].ptr == 0 || s.slots[j].ptr == p) {
            // An address still in the table was freed behind gprof's back (by a free that does
            // not pass through gprof, or one jemalloc reports after the new life: a realloc in
            // place that is sampled again); the new life replaces the old one, which ends.
            uint32_t bit = filter_bit(reinterpret_cast<void*>(p));
            if (s.slots[j].ptr == 0)
                ++s.used;
            else if (in_filter(s.slots[j]))
                filter_remove_locked(bit);
            s.slots[j] = LiveEntry{p, bucket, born};
            if (in_filter(s.slots[j])) filter_add_locked(bit);
            return true;
        }
    }
}

void HeapProfile::record_alloc(void* p, size_t size, uint32_t stack_id, uint32_t labels) {
    // Published by the bit's release. Read first: a store by every sample would pass the line,
    // which every free reads, back and forth between sampling threads.
    if (!frees_watched_.load(std::memory_order_relaxed))
        frees_watched_.store(true, std::memory_order_relaxed);
    add(p, size, size, stack_id, labels, false);
}

void HeapProfile::record_reported_alloc(void* p, size_t size, size_t sampled_size,
                                        uint32_t stack_id, uint32_t labels) {
    add(p, size, sampled_size, stack_id, labels, true);
}

void HeapProfile::add(void* p, size_t size, size_t sampled_size, uint32_t stack_id,
                      uint32_t labels, bool numbered) {
    note_own_record();
    uint32_t bucket = bucket_for(stack_id, size, sampled_size, labels);
    if (bucket == 0) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    count_alloc(bucket);
    const int index = static_cast<int>(shard_of(filter_bit(p)));
    if (held_by_this_thread(index)) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    Shard& s = shards_[index];
    HeldShard held(index);
    base::SpinGuard guard(s.lock);
    uint32_t born = 0;
    if (numbered) {
        born = s.births.load(std::memory_order_relaxed) + 1;
        if (born == 0) born = 1;  // 0 is the shims' samples' number (in_filter)
        s.births.store(born, std::memory_order_relaxed);
    }
    if (!insert_locked(s, reinterpret_cast<uintptr_t>(p), bucket, born)) {
        // No memory for the live table: the allocation stays in alloc_*, never in inuse_*.
        dropped_.fetch_add(1, std::memory_order_relaxed);
    }
}

uint32_t HeapProfile::record_free(void* p) {
    return remove(p, false, 0);
}

uint32_t HeapProfile::record_reported_free(void* p, uint32_t births) {
    return remove(p, true, births);
}

uint32_t HeapProfile::remove(void* p, bool check_birth, uint32_t births) {
    prefetch(p);  // while the lock is taken
    uint64_t h = hash(p);
    const int index = static_cast<int>(shard_of(filter_bit(p)));
    if (held_by_this_thread(index)) return 0;
    Shard& s = shards_[index];
    uint32_t bucket = 0;
    {
        HeldShard held(index);
        base::SpinGuard guard(s.lock);
        if (s.capacity == 0) return 0;
        size_t mask = s.capacity - 1;
        size_t j = (h ^ (h >> 32)) & mask;
        for (;; j = (j + 1) & mask) {
            if (s.slots[j].ptr == 0) return 0;  // a false positive of the bitmap
            if (s.slots[j].ptr == reinterpret_cast<uintptr_t>(p)) break;
        }
        // Begun after `births` (modulo 2^32): a later life at the same address, not the one ending.
        if (check_birth && static_cast<int32_t>(s.slots[j].born - births) > 0) return 0;
        bucket = s.slots[j].bucket;
        bool filtered = in_filter(s.slots[j]);
        // Backward-shift deletion keeps every probe chain unbroken without tombstones.
        for (size_t k = (j + 1) & mask; s.slots[k].ptr != 0; k = (k + 1) & mask) {
            uint64_t hk = hash(reinterpret_cast<void*>(s.slots[k].ptr));
            size_t home = (hk ^ (hk >> 32)) & mask;
            // Move slot k into the hole j unless its home lies cyclically in (j, k].
            bool home_in_range = j <= k ? (home > j && home <= k) : (home > j || home <= k);
            if (!home_in_range) {
                s.slots[j] = s.slots[k];
                j = k;
            }
        }
        s.slots[j] = LiveEntry{};
        --s.used;
        if (filtered) filter_remove_locked(filter_bit(p));
    }
    return bucket + 1;
}

void HeapProfile::restore(void* p, uint32_t token) {
    if (token == 0) return;
    uint32_t bucket = token - 1;
    const int index = static_cast<int>(shard_of(filter_bit(p)));
    if (held_by_this_thread(index)) return;
    Shard& s = shards_[index];
    HeldShard held(index);
    base::SpinGuard guard(s.lock);
    insert_locked(s, reinterpret_cast<uintptr_t>(p), bucket, 0);
}

size_t HeapProfile::bucket_count() {
    return bucket_count_.load(std::memory_order_acquire);
}

size_t HeapProfile::snapshot(HeapBucket* out, size_t max) {
    size_t i = 0;
    return for_each_bucket([&](const HeapBucket& b) {
        if (i < max) out[i++] = b;
    });
}

size_t HeapProfile::bytes_used() const {
    return live_bytes_.load(std::memory_order_relaxed) + sizeof filter_ + sizeof filter_counts_ +
           (sizeof(Bucket) + kCountStripes * sizeof(uint64_t) + sizeof(uint32_t)) *
               (bucket_count_.load(std::memory_order_relaxed) + 1) +
           bucket_index_.bytes();
}

void HeapProfile::lock_all() {
    snapshot_lock_.lock();
    for (int i = 0; i < kShards; ++i)
        if (!held_by_this_thread(i)) shards_[i].lock.lock();
    buckets_lock_.lock();
}

void HeapProfile::unlock_all() {
    buckets_lock_.unlock();
    for (int i = 0; i < kShards; ++i)
        if (!held_by_this_thread(i)) shards_[i].lock.unlock();
    snapshot_lock_.unlock();
}

}  // namespace gprof::record
