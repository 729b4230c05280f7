// The allocation facade: every allocation and free the recording shims see passes here, from
// preload/, with its pointer, requested size and (where asked for) alignment. Recorders hook in
// here and nowhere else. Which calls the recording shims see is preload/routes.h's choice (a
// recorder that needs every call makes it choose them all).
// The hot path: one thread-local subtraction and compare per allocation, a bitmap bit per free
// (record/heap_profile.h); exact counts come from the backing allocator (api/memstats.cpp).
//
// Ordering rule: an allocation is reported after the backing allocator made it, a free before the
// backing allocator takes the memory back, so per-address records never see a new life before the
// old one ended. (jemalloc reports a moved realloc's old block after the move:
// HeapProfile::record_reported_free tells the lives apart.)
#pragma once

#include <cstddef>

#include "record/cpu_samples.h"
#include "record/heap_profile.h"
#include "record/heap_sampler.h"
#include "unwind/fast_walk.h"

namespace gprof::record {

// An allocation passes in two steps, so the common, unsampled case costs the shim nothing after
// the backing call (which it can then make as a tail call):
//   1. sampling(size), before the backing allocator runs: counts the bytes against the thread's
//      sampling interval; true for the rare allocation that is to be sampled;
//   2. for those only, record_sampled(p, size, align) with the result (null when it failed).
inline bool sampling(size_t size) {
    return should_sample(size);
}

// Out of line: capture the stack and remember the sampled object (about once per 512 KiB).
void record_sampled(void* p, size_t size, size_t align) noexcept;
// The same, walking the stack from `start`, a frame of the caller's that is still live (the
// allocation's slow path records its own: the walk then starts there, not at record's frame).
void record_sampled_from(void* p, size_t size, size_t align,
                         const unwind::Registers& start) noexcept;

// Where the backing allocator samples itself (record/heap_sampler.h: allocator_samples()), it
// reports here instead: an object of `size` requested bytes at p that its sampler counted as
// sampled_size, and later that object's end (`births` as in HeapProfile::record_reported_free).
void record_allocator_sample(void* p, size_t size, size_t sampled_size) noexcept;
void record_allocator_free(void* p, uint32_t births) noexcept;

// The two steps around an allocating call, for the shims: `backing_call` makes the allocation as
// the program asked. Only the countdown is inline, so the unsampled case ends in a tail call of
// the backing allocator.
template <typename BackingCall>
[[gnu::noinline]] void* allocation_slow_path(size_t size, size_t align,
                                             BackingCall backing_call) noexcept {
    if (!sampler_slow_path(size)) return backing_call();
    unwind::Registers here;  // this frame, whose caller is the program's (the shims tail-call it)
    unwind::gprof_caller_registers(&here);
    CpuSignalDeferral deferral;
    void* p = backing_call();
    record_sampled_from(p, size, align, here);
    return p;
}

template <typename BackingCall>
inline void* allocation(size_t size, size_t align, BackingCall backing_call) noexcept {
    if (!interval_ended(size)) [[likely]]
        return backing_call();
    return allocation_slow_path(size, align, backing_call);
}

// Both steps after the fact, for a path that must call first (xallocx).
inline void allocated(void* p, size_t size) {
    if (sampling(size)) [[unlikely]]
        record_sampled(p, size, 0);
}

// Returns a token for restoring the sample (realloc); 0 when `p` was not sampled. free(NULL) needs
// no test: no sampled pointer is null, so it is at worst a false positive of the bitmap.
inline uint32_t freed(void* p) {
    if (heap_profile().maybe_sampled(p)) [[unlikely]]
        return heap_profile().record_free(p);
    return 0;
}

// A free for the shims: `backing_free` runs after the recorder; in the common case (the bitmap
// says "not sampled") it is a tail call.
template <typename BackingFree>
[[gnu::noinline]] void release_sampled(void* p, BackingFree backing_free) noexcept {
    heap_profile().record_free(p);
    backing_free();
}

template <typename BackingFree>
inline void release(void* p, BackingFree backing_free) noexcept {
    if (heap_profile().maybe_sampled(p)) [[unlikely]]
        return release_sampled(p, backing_free);
    backing_free();
}

// realloc and rallocx of a non-null `p`: the old life of `p` ends before the backing call (the
// address may be handed to another thread the moment it returns) and is restored if the call
// fails.
template <typename BackingCall>
inline void* reallocation(void* p, size_t size, BackingCall backing_call) noexcept {
    uint32_t old_sample = freed(p);
    bool sample = sampling(size);
    void* q = backing_call();
    if (q == nullptr) {
        // Failed: the old block lives on unchanged, and so does its sample.
        heap_profile().restore(p, old_sample);
        return nullptr;
    }
    if (sample) [[unlikely]]
        record_sampled(q, size, 0);
    return q;
}

// xallocx resized `p` in place to `size` bytes; no other thread can hold the address meanwhile.
inline void resized(void* p, size_t size) {
    freed(p);
    allocated(p, size);
}

}  // namespace gprof::record
