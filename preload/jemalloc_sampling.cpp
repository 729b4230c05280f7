// Heap sampling inside gprof's jemalloc: jemalloc decides which allocations are sampled, with its
// own profiler's machinery, and gprof records them.
//
// Why: a shim in front of jemalloc costs every call (record/heap_events.h: a countdown on each
// allocation, an address test on each free; 1.10x jemalloc alone on a small-object churn). jemalloc
// already counts each thread's allocated bytes on its fast path against the next "event" (its
// profiler's sampling among them), and already sends the free of a sampled object off its fast
// path (a sampled object is a page-aligned large extent, which jemalloc frees the slow way, where
// it looks at the extent's profiling record). So with jemalloc's profiler on (jemalloc_conf.cpp),
// the surface jumps straight into jemalloc (routes.h) and sampling costs the program nothing
// until a sample.
//
// embed_jemalloc.sh points eight of the embedded jemalloc's internal calls here, in the objects
// that make them (the original functions keep running; these wrap them):
//   * prof_sample_new_event_wait, prof_sample_postponed_event_wait (thread_event.o): the bytes
//     until a thread's next sample, drawn by Go's rule from GPROF_MEM_PROFILE_RATE (jemalloc's own
//     draws only powers of two). jemalloc counts size classes, so a sample's probability is that
//     of its size class: the heap profile keeps it (sampled_size) and the writer un-samples by it.
//   * prof_tdata_init (jemalloc.o): a thread's first sample makes its sampling record, several
//     KiB deep in jemalloc (Debian's jemalloc with prof:true crashes a thread that allocates within
//     4 KiB of its stack's end). Declined (no record yet, as when jemalloc is out of memory: the
//     allocation is not sampled) while the stack has less than unwind::kSampleStackRoom left.
//   * prof_tctx_create (jemalloc.o): a sample is about to be taken. gprof's own allocations and
//     those before start-up are declined here (returning jemalloc's "not sampled" value 1), so
//     jemalloc never makes them sampled objects.
//   * prof_malloc_sample_object (jemalloc.o): the sample was made: gprof records the pointer, the
//     requested size, the size class and the stack.
//   * large_prof_info_get (jemalloc.o, arena.o), then prof_free_sampled_object: jemalloc read a
//     sampled object's record and ends its life. The second call does not name the pointer; the
//     first names the extent, whose address (e_addr, the word after e_bits in jemalloc 5.3's
//     edata_t; embed_jemalloc.sh refuses any other version) is the pointer of every sampled object
//     (one large extent each). The pair is matched by the prof_info_t they share.
//   * prof_tctx_try_destroy, prof_tdata_detach (prof.o): the life of a thread's sampling record,
//     below.
//
// jemalloc's own profiler data stays minimal: its backtrace hook returns no frames, so each thread
// has one record (tctx) for all its samples, and it writes no files (prof_final, prof_gdump, the
// interval dumps are off).
//
// A thread's record lives as long as the thread. jemalloc destroys a tctx when its last sampled
// object is freed and makes a new one at the next sample: with one tctx per thread, that is at
// nearly every sample of a program whose objects die young (a churn benchmark: 1 700 of the 8 000
// instructions a sample cost, among them two global hash-table updates under global locks).
// jemalloc's prof_accum option keeps them, but also keeps every exited thread's record for good.
// So the owner thread's frees keep its tctx (marked `prepared`, jemalloc's own mark for "a sample
// is being taken with it", which only the owner sets and clears) and its exit releases it the way
// jemalloc releases a prepared tctx that was not used (prof_lookup, then prof_alloc_rollback).
// Other threads' frees leave jemalloc's rule alone: the owner may be exiting meanwhile.
#include <cstddef>
#include <cstdint>

#include "base/reentry_guard.h"
#include "record/heap_events.h"
#include "record/heap_profile.h"
#include "record/heap_sampler.h"
#include "unwind/stack.h"

extern "C" {
// The originals, under the names embed_jemalloc.sh gives them (tsd_t*, prof_tctx_t*, edata_t*
// and prof_info_t* are opaque here).
void* gprof_je_je_prof_tdata_init(void* tsd) noexcept;
void* gprof_je_je_prof_tctx_create(void* tsd) noexcept;
void gprof_je_je_prof_malloc_sample_object(void* tsd, const void* ptr, size_t size, size_t usize,
                                           void* tctx) noexcept;
void gprof_je_je_large_prof_info_get(void* tsd, void* edata, void* prof_info,
                                     bool reset_recent) noexcept;
void gprof_je_je_prof_free_sampled_object(void* tsd, size_t usize, void* prof_info) noexcept;
void gprof_je_je_prof_tctx_try_destroy(void* tsd, void* tctx) noexcept;
void gprof_je_je_prof_tdata_detach(void* tsd, void* tdata) noexcept;
struct gprof_je_prof_bt {  // prof_bt_t
    void** vec;
    unsigned len;
};
void* gprof_je_je_prof_lookup(void* tsd, gprof_je_prof_bt* bt) noexcept;
void gprof_je_je_prof_alloc_rollback(void* tsd, void* tctx) noexcept;
using BacktraceHook = void (*)(void** frames, unsigned* length, unsigned max_length);
void gprof_je_je_prof_backtrace_hook_set(BacktraceHook hook) noexcept;
}

namespace {

namespace r = gprof::record;

void no_frames(void**, unsigned* length, unsigned) {
    *length = 0;
}

// The extent read last by large_prof_info_get in this thread, for the free that follows.
struct ReadRecord {
    const void* prof_info;  // jemalloc's prof_info_t the record was read into
    void* ptr;
    uint32_t births;  // HeapProfile::births(ptr) when it was read
};
constinit thread_local ReadRecord t_read [[gnu::tls_model("initial-exec")]] = {};

constexpr size_t kEdataAddrOffset = sizeof(uint64_t);  // e_addr follows e_bits

// jemalloc 5.3's prof_tctx_t: `tdata` is its first field, `prepared` follows the counters, the
// gctx, the uid and the tree link (0x80 in the x86-64 build).
constexpr size_t kTctxPreparedOffset = 0x80;

void* tdata_of(const void* tctx) {
    return *static_cast<void* const*>(tctx);
}

bool& prepared_of(void* tctx) {
    return *reinterpret_cast<bool*>(static_cast<char*>(tctx) + kTctxPreparedOffset);
}

// The calling thread's prof_tdata_t while its tctx is kept (see the top of the file).
constinit thread_local void* t_kept_tdata [[gnu::tls_model("initial-exec")]] = nullptr;

}  // namespace

extern "C" {

uint64_t gprof_jemalloc_sample_wait(void*) noexcept {
    return static_cast<uint64_t>(r::allocator_sample_interval());
}

void* gprof_jemalloc_tdata_init(void* tsd) noexcept {
    if (gprof::unwind::stack_room() < gprof::unwind::kSampleStackRoom) return nullptr;
    return gprof_je_je_prof_tdata_init(tsd);
}

void* gprof_jemalloc_tctx_create(void* tsd) noexcept {
    // Declined too when the stack is nearly used up (see unwind::kSampleStackRoom).
    if (gprof::base::inside_gprof() || !gprof::unwind::ready() ||
        gprof::unwind::stack_room() < gprof::unwind::kSampleStackRoom)
        return reinterpret_cast<void*>(uintptr_t{1});  // jemalloc's "not sampled"
    static bool hooked = false;                        // racing first samples set the same hook
    if (!__atomic_load_n(&hooked, __ATOMIC_RELAXED)) {
        gprof_je_je_prof_backtrace_hook_set(no_frames);
        __atomic_store_n(&hooked, true, __ATOMIC_RELAXED);
    }
    return gprof_je_je_prof_tctx_create(tsd);
}

void gprof_jemalloc_sampled(void* tsd, const void* ptr, size_t size, size_t usize,
                            void* tctx) noexcept {
    gprof_je_je_prof_malloc_sample_object(tsd, ptr, size, usize, tctx);
    // tctx is this thread's, and holds a live sample now: no other thread can destroy it.
    t_kept_tdata = tdata_of(tctx);
    r::record_allocator_sample(const_cast<void*>(ptr), size, usize);
}

void gprof_jemalloc_prof_info_get(void* tsd, void* edata, void* prof_info,
                                  bool reset_recent) noexcept {
    gprof_je_je_large_prof_info_get(tsd, edata, prof_info, reset_recent);
    void* ptr = *reinterpret_cast<void**>(static_cast<char*>(edata) + kEdataAddrOffset);
    t_read = ReadRecord{prof_info, ptr, r::heap_profile().births(ptr)};
}

void gprof_jemalloc_sample_freed(void* tsd, size_t usize, void* prof_info) noexcept {
    if (t_read.prof_info == prof_info) {
        t_read.prof_info = nullptr;
        r::record_allocator_free(t_read.ptr, t_read.births);
    }
    gprof_je_je_prof_free_sampled_object(tsd, usize, prof_info);
}

// Called with tctx's tdata locked; the original unlocks it.
void gprof_jemalloc_tctx_try_destroy(void* tsd, void* tctx) noexcept {
    if (t_kept_tdata != nullptr && tdata_of(tctx) == t_kept_tdata) prepared_of(tctx) = true;
    gprof_je_je_prof_tctx_try_destroy(tsd, tctx);
}

// The thread is leaving jemalloc's profiler (its exit, from jemalloc's thread-specific data
// cleanup): its tctx is released first, while the tdata is still attached, so the detach can
// free the tdata too when no sample of the thread is live.
void gprof_jemalloc_tdata_detach(void* tsd, void* tdata) noexcept {
    if (tdata == t_kept_tdata) {
        t_kept_tdata = nullptr;
        void* frames[1] = {};
        gprof_je_prof_bt empty{frames, 0};  // the backtrace hook's: no frames
        void* tctx = gprof_je_je_prof_lookup(tsd, &empty);
        if (tctx != nullptr) gprof_je_je_prof_alloc_rollback(tsd, tctx);
    }
    gprof_je_je_prof_tdata_detach(tsd, tdata);
}

}  // extern "C"
