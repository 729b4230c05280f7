// The heap profile's state: what was sampled, by (stack, size), and which sampled objects are
// still live, so in-use figures are exact at the moment of a dump. A bucket's frees are its
// allocations no longer in the live table, counted at a snapshot: a free touches no counter.
//
// A free() of the shims reads one bit of a 64 KiB bitmap (a bit per 16-byte granule of an 8 MiB
// window); only a set bit looks into the live table (64 shards, each under its own lock). A per-bit
// count, changed under the bit's shard's lock, keeps the bitmap free of false negatives (a count
// that reaches 255 stays: a false positive at worst). The flag (a sample of the shims may live) and
// the bit are set (release) before malloc returns, and a freeing thread got the pointer through the
// program's own synchronisation, so it sees them. jemalloc's samples are never in the bitmap: it
// reports their ends. Layout and reasons: docs/design.md, "Notes moved from the code".
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/spin_lock.h"
#include "record/growing_index.h"

namespace gprof::record {

// One (stack, size) bucket as a snapshot reports it.
struct HeapBucket {
    uint32_t stack_id;
    uint64_t size;          // requested size of each object in this bucket
    uint64_t sampled_size;  // the size its sampler counted (jemalloc's size class, or size)
    uint64_t allocs, alloc_bytes, frees, free_bytes;
    uint32_t labels;  // the allocating thread's label set (record/labels.h); 0: none
};

class HeapProfile {
  public:
    // Reserves the tables. Called once from gprof's constructor, before any sample.
    void start();

    // A sample the shims took: an object of `size` bytes at p. From now on frees look it up
    // (maybe_sampled). A live sample still at p (freed where gprof did not see it) ends here.
    // `labels`: the allocating thread's label set (record/labels.h), part of the bucket's key.
    void record_alloc(void* p, size_t size, uint32_t stack_id, uint32_t labels = 0);
    // A sample the backing allocator took and whose end it reports (record_reported_free): an
    // object of `size` bytes at p that its sampler counted as `sampled_size` bytes (jemalloc counts
    // size classes); the writer un-samples with that size.
    void record_reported_alloc(void* p, size_t size, size_t sampled_size, uint32_t stack_id,
                               uint32_t labels = 0);

    // False when p was surely not sampled by the shims: the check of their every free.
    bool maybe_sampled(const void* p) const {
        if (!frees_watched_.load(std::memory_order_relaxed)) [[likely]]
            return false;
        uint32_t bit = filter_bit(p);
        return (filter_[bit >> 6].load(std::memory_order_acquire) >> (bit & 63)) & 1;
    }

    // Starts loading the live-table line where a sample at p will be filed, so that the stack walk
    // and the rest of the sample overlap the cache miss (at high rates the table is megabytes,
    // mostly out of cache). Reads the shard's table without its lock: a table replaced meanwhile
    // makes it a useless prefetch, never a fault.
    void prefetch(const void* p) const {
        const Shard& s = shards_[shard_of(filter_bit(p))];
        uintptr_t slots = s.slots_hint.load(std::memory_order_relaxed);
        size_t mask = s.mask_hint.load(std::memory_order_relaxed);
        uint64_t h = hash(p);
        __builtin_prefetch(
            reinterpret_cast<const char*>(slots + ((h ^ (h >> 32)) & mask) * sizeof(LiveEntry)), 1);
    }

    // Ends the life of a sampled pointer. Returns its bucket + 1, or 0 when `p` was not sampled.
    uint32_t record_free(void* p);
    // The end of an allocator's sample, which may be reported late (jemalloc reports the end of a
    // moved realloc's old block after the move, when another thread may have been handed the
    // address): ends the life at p only if it began by `births`, a births(p) read while the block
    // was still held. Lives are numbered per shard, under its lock: no line shared by all threads.
    uint32_t record_reported_free(void* p, uint32_t births);
    uint32_t births(const void* p) const {
        return shards_[shard_of(filter_bit(p))].births.load(std::memory_order_relaxed);
    }
    // Undoes record_free (a realloc that failed): `p` lives on in bucket `token - 1`.
    void restore(void* p, uint32_t token);

    // Calls visit(const HeapBucket&) for each bucket as it is now; returns how many there are.
    // (A dump reads them in place rather than copying them to fresh pages.) Counts the live
    // objects of every bucket first, one shard of the live table at a time under its lock.
    template <typename Visit>
    size_t for_each_bucket(Visit&& visit);
    // Calls visit(i, stack_id, size, sampled_size, labels) for the first `n` buckets (i from 0):
    // their keys, which never change, without summing their counts (a pass after one that took them).
    template <typename Visit>
    void for_each_bucket_key(size_t n, Visit&& visit);
    // Copies the buckets into `out` (capacity `max`); returns how many there are in all.
    size_t snapshot(HeapBucket* out, size_t max);
    size_t bucket_count();
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
    // Samples whose stack was deeper than unwind::kMaxFrames, kept as its innermost frames.
    void count_truncated() { truncated_.fetch_add(1, std::memory_order_relaxed); }
    uint64_t truncated() const { return truncated_.load(std::memory_order_relaxed); }
    size_t bytes_used() const;

    // fork(): every lock of the profile, taken before fork and released after it in both; but a
    // shard lock that this thread holds already (a fork from a signal handler that interrupted
    // it there), which its interrupted frame releases.
    void lock_all();
    void unlock_all();

  private:
    static constexpr int kFilterBits = 19;
    static constexpr int kShardBits = 6;
    static constexpr int kShards = 1 << kShardBits;
    static constexpr uint32_t kMaxBuckets = 1u << 22;
    static constexpr int kCountStripes = 4;

    // A bucket as the profile keeps it: the key never changes once published. Its allocation
    // counter lives apart, updated atomically without the buckets' lock (which only adding a bucket
    // takes), so threads counting into buckets do not evict the keys that every look-up reads; and
    // it is striped: a thread counts into one of kCountStripes copies, which snapshot() adds up, so
    // threads sampling the same code at a high rate do not pass the counters' lines back and
    // forth. Every object of a bucket has its size: byte counts are objects * size.
    struct Bucket {
        uint32_t stack_id;
        uint32_t next;  // index chain
        uint64_t size;
        uint64_t sampled_size;
        uint32_t labels;
    };
    struct LiveEntry {
        uintptr_t ptr;  // 0: empty slot
        uint32_t bucket;
        uint32_t born;  // for record_reported_free: the sample's number, counted from 1; 0: the
                        // shims' sample
    };
    // Only the shims' samples are in the bitmap: the allocator's are never looked up by a free.
    static bool in_filter(const LiveEntry& e) { return e.born == 0; }
    struct alignas(64) Shard {  // a cache line each: two shards' locks never share one
        base::SpinLock lock;
        LiveEntry* slots = nullptr;
        size_t capacity = 0;  // power of two
        size_t used = 0;
        std::atomic<uint32_t> births{0};       // lives numbered so far (written under the lock)
        std::atomic<uintptr_t> slots_hint{0};  // slots and capacity - 1, for prefetch() (written
        std::atomic<size_t> mask_hint{0};      // under the lock)
    };

    // A live-table slot's home: the 16-byte granules of one 64-byte stretch of the heap have four
    // neighbouring homes, one cache line of the table, and stretches are spread by a hash. Objects
    // that lie together mostly die together (a container and what it holds), so their frees share
    // lines. (Returned in the low 32 bits: h ^ (h >> 32) == h.)
    static uint64_t hash(const void* p) {
        auto a = reinterpret_cast<uintptr_t>(p);
        uint64_t m = (a >> 6) * 0x9E3779B97F4A7C15ULL;
        return (((m >> 32) << 2) | ((a >> 4) & 3)) & 0xFFFFFFFFu;
    }
    static uint32_t filter_bit(const void* p) {
        auto a = reinterpret_cast<uintptr_t>(p);
        auto window = static_cast<uint32_t>(((a >> 23) * 0x9E3779B97F4A7C15ULL) >> 40);
        return (static_cast<uint32_t>(a >> 4) ^ window) & ((1u << kFilterBits) - 1);
    }
    // The shard of a bitmap bit: its 128 KiB stretch of the 8 MiB window.
    static uint32_t shard_of(uint32_t bit) {
        return (bit >> (kFilterBits - kShardBits)) & (kShards - 1);
    }

    static uint64_t bucket_hash(uint32_t stack_id, uint64_t size, uint64_t sampled_size,
                                uint32_t labels) {
        return (stack_id * 0x9E3779B97F4A7C15ULL) ^ (size * 0xC2B2AE3D27D4EB4FULL) ^
               (sampled_size * 0x165667B19E3779F9ULL) ^ (labels * 0x27D4EB2F165667C5ULL);
    }
    uint32_t find_bucket(uint64_t hash, uint32_t stack_id, uint64_t size, uint64_t sampled_size,
                         uint32_t labels) const;
    uint32_t bucket_for(uint32_t stack_id, uint64_t size, uint64_t sampled_size, uint32_t labels);
    void count_alloc(uint32_t bucket);
    // live_[1, n]: how many objects of each of the first n buckets are in the live table.
    void count_live(size_t n);
    void add(void* p, size_t size, size_t sampled_size, uint32_t stack_id, uint32_t labels,
             bool numbered);
    bool insert_locked(Shard& s, uintptr_t p, uint32_t bucket, uint32_t born);
    uint32_t remove(void* p, bool check_birth, uint32_t births);
    bool grow_locked(Shard& s);
    void filter_add_locked(uint32_t bit);
    void filter_remove_locked(uint32_t bit);

    std::atomic<uint64_t> filter_[(1u << kFilterBits) / 64] = {};
    uint8_t filter_counts_[1u << kFilterBits] = {};  // guarded by the shard of each bit
    Shard shards_[kShards];

    base::SpinLock buckets_lock_;
    Bucket* buckets_ = nullptr;   // [kMaxBuckets]; index 0 unused
    uint64_t* allocs_ = nullptr;  // [kCountStripes][kMaxBuckets], by the same index
    base::SpinLock snapshot_lock_;      // one snapshot at a time: they share live_
    uint32_t* live_ = nullptr;    // [kMaxBuckets], by the same index, under snapshot_lock_
    // Chain heads: 4 096 at first, four times as many when the buckets pass one to a head: each
    // link is a cache miss, and where every allocation is sampled the buckets are many.
    GrowingIndex bucket_index_{12, 1, 2};
    std::atomic<uint32_t> bucket_count_{0};  // written under buckets_lock_
    // Stripes handed out so far (count_alloc(); a thread keeps its stripe in every profile, so this
    // is the process's, not the profile's): a single-threaded program counts into one, and a dump
    // reads only those (the others' pages were never written, and reading them would fault them
    // in).
    static constinit inline std::atomic<unsigned> next_stripe_{0};
    std::atomic<uint64_t> dropped_{0};
    std::atomic<uint64_t> truncated_{0};
    // Whether the shims ever took a sample (set for good at the first). On a line of its own:
    // every free reads it.
    alignas(64) std::atomic<bool> frees_watched_{false};
    std::atomic<size_t> live_bytes_{0};
};

template <typename Visit>
size_t HeapProfile::for_each_bucket(Visit&& visit) {
    base::SpinGuard guard(snapshot_lock_);
    size_t n = bucket_count_.load(std::memory_order_acquire);
    // Live objects first: each was counted as an allocation before it entered the table, so the
    // allocations read next include it, and in-use never comes out negative while other threads
    // allocate and free meanwhile.
    count_live(n);
    // A stripe handed out while this runs may be missed: its counts race with the dump anyway.
    const unsigned handed_out = next_stripe_.load(std::memory_order_acquire);
    const int stripes = handed_out < kCountStripes ? static_cast<int>(handed_out) : kCountStripes;
    for (size_t i = 1; i <= n; ++i) {
        const Bucket& b = buckets_[i];
        uint64_t allocs = 0;
        for (int s = 0; s < stripes; ++s)
            allocs += std::atomic_ref<uint64_t>(allocs_[size_t{kMaxBuckets} * s + i])
                          .load(std::memory_order_acquire);
        uint64_t live = live_ != nullptr ? live_[i] : 0;
        if (live > allocs) live = allocs;  // excluded by that order; a guard
        uint64_t frees = allocs - live;
        visit(HeapBucket{b.stack_id, b.size, b.sampled_size, allocs, allocs * b.size, frees,
                         frees * b.size, b.labels});
    }
    return n;
}

template <typename Visit>
void HeapProfile::for_each_bucket_key(size_t n, Visit&& visit) {
    size_t count = bucket_count_.load(std::memory_order_acquire);
    for (size_t i = 0; i < n && i < count; ++i) {
        const Bucket& b = buckets_[i + 1];
        visit(i, b.stack_id, b.size, b.sampled_size, b.labels);
    }
}

// The process's heap profile (constant-initialised: valid before any constructor).
extern HeapProfile g_heap_profile;
inline HeapProfile& heap_profile() {
    return g_heap_profile;
}

}  // namespace gprof::record
