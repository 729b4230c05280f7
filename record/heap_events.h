// The allocation facade: every allocation and every free of the process passes here, from the
// shims in preload/, with its pointer, requested size and (where the caller asked for one)
// alignment. Recorders (counters now, the heap profiler next) hook in here and nowhere else, so
// the shims never change when a recorder is added.
//
// Ordering rule: an allocation is reported after the backing allocator made it, a free before the
// backing allocator takes the memory back. So between the two, no other thread can be handed the
// same address, and per-address records never see a new life before the old one ended.
#pragma once

#include <cstddef>

#include "record/alloc_counters.h"

namespace gprof::record {

inline void allocated(void* p, size_t size, size_t align) {
    if (p == nullptr) return;
    (void)align;
    thread_counters().count_malloc(size);
}

inline void freed(void* p) {
    if (p == nullptr) return;
    thread_counters().count_free();
}

// realloc, rallocx: the old life of `p` ends before the backing call (the address may be handed to
// another thread the moment it returns) and is restored if the call fails.
struct ReallocTicket {
    void* old;
};
inline ReallocTicket realloc_begin(void* p) {
    freed(p);
    return ReallocTicket{p};
}
inline void realloc_end(ReallocTicket t, void* q, size_t size) {
    if (q == nullptr) {
        // Failed: the old block lives on unchanged; take back the free realloc_begin counted.
        if (t.old != nullptr) thread_counters().uncount_free();
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
