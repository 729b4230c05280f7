// The allocation facade: every allocation and every free of the process passes here, from the
// shims in preload/, with its pointer, requested size and (where the caller asked for one)
// alignment. Recorders (the heap profile now) hook in here and nowhere else, so the shims never
// change when a recorder is added.
//
// This is the hot path of every allocation: one thread-local subtraction and compare for an
// allocation, one bit of a cache-resident bitmap for a free. Counting every allocation as well
// (three thread-local additions) cost 8% more on a small-object churn benchmark, so exact counts
// come from the backing allocator's own statistics instead (api/memstats.cpp).
//
// Ordering rule: an allocation is reported after the backing allocator made it, a free before the
// backing allocator takes the memory back. So between the two, no other thread can be handed the
// same address, and per-address records never see a new life before the old one ended.
#pragma once

#include <cstddef>

#include "record/heap_profile.h"
#include "record/heap_sampler.h"

namespace gprof::record {

// Out of line: capture the stack and remember the sampled object (about once per 512 KiB).
void sample_allocation(void* p, size_t size);

inline void allocated(void* p, size_t size, size_t align) {
    if (p == nullptr) return;
    (void)align;
    if (should_sample(size)) [[unlikely]]
        sample_allocation(p, size);
}

// Returns a token for restoring the sample (realloc); 0 when `p` was not sampled. free(NULL) needs
// no test: no sampled pointer is null, so it is at worst a false positive of the bitmap.
inline uint32_t freed(void* p) {
    if (heap_profile().maybe_sampled(p)) [[unlikely]]
        return heap_profile().record_free(p);
    return 0;
}

// realloc, rallocx: the old life of `p` ends before the backing call (the address may be handed to
// another thread the moment it returns) and is restored if the call fails.
struct ReallocTicket {
    void* old;
    uint32_t sample;
};
inline ReallocTicket realloc_begin(void* p) { return ReallocTicket{p, freed(p)}; }
inline void realloc_end(ReallocTicket t, void* q, size_t size) {
    if (q == nullptr) {
        // Failed: the old block lives on unchanged, and so does its sample.
        if (t.old != nullptr) heap_profile().restore(t.old, t.sample);
        return;
    }
    allocated(q, size, 0);
}

// xallocx resized `p` in place to `size` bytes; no other thread can hold the address meanwhile.
inline void resized(void* p, size_t size) {
    freed(p);
    allocated(p, size, 0);
}

}  // namespace gprof::record
