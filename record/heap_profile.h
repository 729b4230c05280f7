// The heap profile's state: what was sampled, by (stack, size), and which sampled objects are
// still live, so in-use figures are exact at the moment of a dump (free() is synchronous; there
// is no GC delay to imitate).
//
// The check every free() makes ("was this pointer sampled?") must cost next to nothing, because
// almost no pointer is: at the default rate one allocation in many thousands is. The design:
//
//   * A bitmap of 2^19 bits (64 KiB, so it stays cache-resident), one bit per 16-byte granule of
//     an 8 MiB window of the address space: bit = (p >> 4) ^ (p >> 23), low 19 bits. A bit is set
//     while at least one live sampled pointer maps to it. free() reads one bit; a clear bit (the
//     common case: with N live samples, a false positive has probability about N / 2^19) ends the
//     check with no lock and no write. The index keeps neighbours together rather than hashing
//     them apart: the frees of one thread, whose allocator hands it blocks from its own slabs,
//     touch few bitmap lines, and two threads sampling at a high rate set and clear bits in lines
//     of their own instead of passing every line back and forth (with a hashed index, two threads
//     at GPROF_MEM_PROFILE_RATE=1 spent a third of their time on that exchange). The (p >> 23)
//     term gives each 8 MiB window its own arrangement, so page-aligned blocks of different
//     windows do not all meet on the same 2048 bits.
//   * Behind it, the live table: 64 shards, each an open-addressing hash table under its own lock,
//     mapping pointer -> bucket. The shard is chosen by the bit's top 6 bits (its 128 KiB stretch
//     of the window), so all bits of one 64-bit word belong to one shard, and a per-bit count of
//     live pointers (changed only under that shard's lock) decides when a bit is set or cleared.
//     That makes the bitmap exact about "no live sampled pointer here": no false negatives. The
//     counts are bytes (512 KiB, so they mostly stay in cache at high sampling rates); one that
//     reaches 255 stays there and keeps its bit set: a false positive at worst, never a false
//     negative. Threads whose blocks come from different slabs mostly use different shards, so
//     at a high rate they neither wait for each other's locks nor trade the locks' cache lines
//     (two threads at rate 1 ran twice as fast as with shards picked by a hash).
//   * In front of the bitmap, page alignment. With gprof's jemalloc at rates of
//     kAlignedSamplesMinRate and above, the shims allocate sampled objects page-aligned (a small
//     one then takes a 4 KiB slot: at most 4 KiB per 256 KiB sampled, under 1.6% of the heap),
//     and the rare sampled object that is not page-aligned (one jemalloc could not place so, a
//     jemalloc API call) is counted in unaligned_live_ while it lives. A free then reads the
//     bitmap only for a page-aligned pointer or while that count is not zero; every other pointer
//     costs a test of its low 12 bits and a load of a counter that hardly ever changes. On a
//     small-object churn benchmark the bitmap read was most of the check's cost (1.12x jemalloc
//     alone with it, 1.06x with the alignment test instead). Where samples are not placed
//     (GPROF_ALLOCATOR=libc, lower rates) the count stays at 1 for good and every free reads the
//     bitmap; with sampling off (rate 0) it stays at 0 and none does.
//   * Visibility: the allocating thread sets the bit (release) and counts an unaligned sample
//     before malloc returns; any thread that later frees the pointer received it through the
//     program's own synchronisation, so it sees both.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "record/spin_lock.h"

namespace gprof::record {

// One (stack, size) bucket as a snapshot reports it.
struct HeapBucket {
    uint32_t stack_id;
    uint64_t size;  // requested size of each object in this bucket
    uint64_t allocs, alloc_bytes, frees, free_bytes;
};

class HeapProfile {
  public:
    // The alignment of placed samples, and the lowest rate at which they are placed.
    static constexpr size_t kSampleAlignment = 4096;
    static constexpr int64_t kAlignedSamplesMinRate = 256 * 1024;

    // Reserves the tables. Called once from gprof's constructor, before any sample.
    // aligned_samples: the allocation shims place sampled objects page-aligned (see above).
    void start(bool aligned_samples);
    bool aligned_samples() const { return aligned_samples_; }

    void record_alloc(void* p, size_t size, uint32_t stack_id);

    // False when p was surely not sampled: the check of every free.
    bool maybe_sampled(const void* p) const {
        if (!page_aligned(reinterpret_cast<uintptr_t>(p)) &&
            unaligned_live_.load(std::memory_order_relaxed) == 0) [[likely]]
            return false;
        uint32_t bit = filter_bit(p);
        return (filter_[bit >> 6].load(std::memory_order_acquire) >> (bit & 63)) & 1;
    }

    // Ends the life of a sampled pointer. Returns its bucket + 1, or 0 when `p` was not sampled.
    uint32_t record_free(void* p);
    // Undoes record_free (a realloc that failed): `p` lives on in bucket `token - 1`.
    void restore(void* p, uint32_t token);

    // Copies the buckets into `out` (capacity `max`); returns how many there are in all.
    size_t snapshot(HeapBucket* out, size_t max);
    size_t bucket_count();
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
    size_t bytes_used() const;

    // fork(): every lock of the profile, taken before fork and released after it in both.
    void lock_all();
    void unlock_all();

  private:
    static constexpr int kFilterBits = 19;
    static constexpr int kShardBits = 6;
    static constexpr int kShards = 1 << kShardBits;
    static constexpr uint32_t kMaxBuckets = 1u << 22;
    static constexpr uint32_t kBucketIndex = 1u << 18;
    static constexpr int kCountStripes = 4;

    // A bucket as the profile keeps it: the key never changes once published. Its two counters
    // live apart, updated atomically without the buckets' lock (which only adding a bucket takes),
    // so threads counting into buckets do not evict the keys that every look-up reads; and they are
    // striped: a thread counts into one of kCountStripes copies, which snapshot() adds up, so
    // threads sampling the same code at a high rate do not pass the counters' lines back and forth
    // (at rate 1, two such threads spent a quarter of their time there). Every object of a bucket
    // has its size: byte counts are objects * size.
    struct Bucket {
        uint32_t stack_id;
        uint32_t next;  // index chain
        uint64_t size;
    };
    struct BucketCounts {
        uint64_t allocs, frees;
    };
    struct LiveEntry {
        uintptr_t ptr;  // 0: empty slot
        uint32_t bucket;
        uint32_t unused;
    };
    struct alignas(64) Shard {  // a cache line each: two shards' locks never share one
        SpinLock lock;
        LiveEntry* slots = nullptr;
        size_t capacity = 0;  // power of two
        size_t used = 0;
    };

    static bool page_aligned(uintptr_t p) { return (p & (kSampleAlignment - 1)) == 0; }
    // Whether a live sample at p counts in unaligned_live_: one insert and its removal must agree.
    bool counted_unaligned(uintptr_t p) const { return aligned_samples_ && !page_aligned(p); }

    static uint64_t hash(const void* p) {
        return (reinterpret_cast<uintptr_t>(p) >> 4) * 0x9E3779B97F4A7C15ULL;
    }
    static uint32_t filter_bit(const void* p) {
        auto a = reinterpret_cast<uintptr_t>(p);
        return static_cast<uint32_t>((a >> 4) ^ (a >> 23)) & ((1u << kFilterBits) - 1);
    }
    // The shard of a bitmap bit: its 128 KiB stretch of the 8 MiB window.
    static uint32_t shard_of(uint32_t bit) {
        return (bit >> (kFilterBits - kShardBits)) & (kShards - 1);
    }

    uint32_t find_bucket(uint32_t* head, uint32_t stack_id, uint64_t size) const;
    uint32_t bucket_for(uint32_t stack_id, uint64_t size);
    void count(uint32_t bucket, uint64_t BucketCounts::*objects, int64_t n);
    bool insert_locked(Shard& s, uintptr_t p, uint32_t bucket);
    bool grow_locked(Shard& s);
    void filter_add_locked(uint32_t bit);
    void filter_remove_locked(uint32_t bit);

    std::atomic<uint64_t> filter_[(1u << kFilterBits) / 64] = {};
    uint8_t filter_counts_[1u << kFilterBits] = {};  // guarded by the shard of each bit
    Shard shards_[kShards];

    SpinLock buckets_lock_;
    Bucket* buckets_ = nullptr;       // [kMaxBuckets]; index 0 unused
    BucketCounts* counts_ = nullptr;  // [kCountStripes][kMaxBuckets], by the same index
    uint32_t* bucket_index_ = nullptr;
    std::atomic<uint32_t> bucket_count_{0};  // written under buckets_lock_
    std::atomic<uint64_t> dropped_{0};
    // Live samples that are not page-aligned (1 for good when samples are not placed). On a line
    // of its own: every free reads it.
    alignas(64) std::atomic<uint64_t> unaligned_live_{0};
    bool aligned_samples_ = false;
    std::atomic<size_t> live_bytes_{0};
};

// The process's heap profile (constant-initialised: valid before any constructor).
extern HeapProfile g_heap_profile;
inline HeapProfile& heap_profile() {
    return g_heap_profile;
}

}  // namespace gprof::record
