// Heap sampling inside gprof's jemalloc: jemalloc decides which allocations are sampled, with its
// own profiler's machinery, and gprof records them, so that an unsampled call costs nothing more
// than jemalloc alone (why: docs/design.md, "Who decides which allocation is sampled").
//
// embed_jemalloc.sh points internal calls of the embedded jemalloc's profiler at the wrappers
// below, in the objects that make them (the originals keep running; these wrap them). jemalloc's
// own profiler data stays minimal: its backtrace hook returns no frames, so each thread has one
// record (tctx) for all its samples, kept as long as the thread (gprof_jemalloc_tctx_try_destroy),
// and it writes no files (prof_final, prof_gdump, the interval dumps are off).
#include <cstddef>
#include <cstdint>

#include "base/reentry_guard.h"
#include "record/heap_events.h"
#include "record/heap_profile.h"
#include "record/heap_sampler.h"
#include "unwind/stack.h"
#include "unwind/thread_bounds.h"

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

constexpr size_t kEdataAddrOffset = sizeof(uint64_t);  // e_addr follows e_bits in 5.3's edata_t

// jemalloc 5.3's prof_tctx_t: `tdata` is its first field, `prepared` follows the counters, the
// gctx, the uid and the tree link (0x80 in the x86-64 build).
constexpr size_t kTctxPreparedOffset = 0x80;

void* tdata_of(const void* tctx) {
    return *static_cast<void* const*>(tctx);
}

bool& prepared_of(void* tctx) {
    return *reinterpret_cast<bool*>(static_cast<char*>(tctx) + kTctxPreparedOffset);
}

// The calling thread's prof_tdata_t while its tctx is kept (gprof_jemalloc_tctx_try_destroy).
constinit thread_local void* t_kept_tdata [[gnu::tls_model("initial-exec")]] = nullptr;

}  // namespace

extern "C" {

// prof_sample_new_event_wait, prof_sample_postponed_event_wait (thread_event.o): the bytes until
// the thread's next sample, drawn by Go's rule from GPROF_MEM_PROFILE_RATE (jemalloc's own draws
// only powers of two). jemalloc counts size classes, so a sample's probability is its size
// class's: the heap profile keeps it (sampled_size) and the writer un-samples by it.
uint64_t gprof_jemalloc_sample_wait(void*) noexcept {
    return static_cast<uint64_t>(r::allocator_sample_interval());
}

// prof_tdata_init (jemalloc.o): a thread's first sample makes its sampling record, several KiB
// deep in jemalloc. Declined (no record, as when jemalloc is out of memory: the allocation is not
// sampled) while the stack has less than unwind::kSampleStackRoom left.
void* gprof_jemalloc_tdata_init(void* tsd) noexcept {
    if (gprof::unwind::stack_room() < gprof::unwind::kSampleStackRoom) return nullptr;
    return gprof_je_je_prof_tdata_init(tsd);
}

// prof_tctx_create (jemalloc.o): a sample is about to be taken. gprof's own allocations and those
// before start-up are declined here, so jemalloc never makes them sampled objects.
void* gprof_jemalloc_tctx_create(void* tsd) noexcept {
    // Declined too when the stack is nearly used up (see unwind::kSampleStackRoom).
    // And when the C API handed sampling to the shims or set the rate to 0 since this thread's
    // interval was drawn.
    if (gprof::base::inside_gprof() || !gprof::unwind::ready() ||
        gprof::unwind::stack_room() < gprof::unwind::kSampleStackRoom || !r::allocator_samples() ||
        r::mem_profile_rate() == 0)
        return reinterpret_cast<void*>(uintptr_t{1});  // jemalloc's "not sampled"
    static bool hooked = false;                        // racing first samples set the same hook
    if (!__atomic_load_n(&hooked, __ATOMIC_RELAXED)) {
        gprof_je_je_prof_backtrace_hook_set(no_frames);
        __atomic_store_n(&hooked, true, __ATOMIC_RELAXED);
    }
    return gprof_je_je_prof_tctx_create(tsd);
}

// prof_malloc_sample_object (jemalloc.o): the sample was made; gprof records the pointer, the
// requested size, the size class and the stack.
void gprof_jemalloc_sampled(void* tsd, const void* ptr, size_t size, size_t usize,
                            void* tctx) noexcept {
    gprof_je_je_prof_malloc_sample_object(tsd, ptr, size, usize, tctx);
    // tctx is this thread's, and holds a live sample now: no other thread can destroy it.
    t_kept_tdata = tdata_of(tctx);
    r::record_allocator_sample(const_cast<void*>(ptr), size, usize);
}

// large_prof_info_get (jemalloc.o, arena.o), then prof_free_sampled_object: jemalloc read a
// sampled object's record and ends its life. The second call does not name the pointer; the first
// names the extent, whose address is the pointer of every sampled object (one large extent each).
// The pair is matched by the prof_info_t they share.
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

// prof_tctx_try_destroy (prof.o), called with tctx's tdata locked; the original unlocks it.
// jemalloc destroys a tctx when its last sampled object is freed and makes a new one at the next
// sample (two global hash-table updates under global locks): with one tctx per thread, at nearly
// every sample of a program whose objects die young. So the owner thread's frees keep its tctx,
// marked `prepared` (jemalloc's mark for "a sample is being taken with it", which only the owner
// sets and clears). Other threads' frees leave jemalloc's rule alone: the owner may be exiting.
// (jemalloc's prof_accum option would keep them too, but every exited thread's as well.)
void gprof_jemalloc_tctx_try_destroy(void* tsd, void* tctx) noexcept {
    if (t_kept_tdata != nullptr && tdata_of(tctx) == t_kept_tdata) prepared_of(tctx) = true;
    gprof_je_je_prof_tctx_try_destroy(tsd, tctx);
}

// prof_tdata_detach (prof.o): the thread is leaving jemalloc's profiler (its exit, from jemalloc's
// thread-specific data cleanup). Its kept tctx is released first, the way jemalloc releases a
// prepared tctx that was not used (prof_lookup, then prof_alloc_rollback), while the tdata is
// still attached, so the detach can free the tdata too when no sample of the thread is live.
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

// malloc_mutex_init, as prof_boot2 (prof.o's only caller) calls it: for the profiler's 1 289
// mutexes, 1 280 of them in two arrays (one lock per hash shard) of which gprof's single record per
// thread uses a few. All are in memory that is zero at that point (static storage, and base_alloc,
// whose memory jemalloc guarantees demand-zeroed), and a zeroed malloc_mutex_t is a valid unlocked
// mutex (glibc's PTHREAD_MUTEX_INITIALIZER, no statistics, no witness in a release build), so they
// are left untouched: initialising them wrote 160 KiB, about 40 page faults in every process.
bool gprof_jemalloc_prof_mutex_init(void*, const char*, int, int) noexcept {
    return false;  // jemalloc's "no error"
}

// prof_unwind_init (prof.o, from prof_boot2): walks once with libgcc's _Unwind_Backtrace so that
// its first real walk allocates nothing. jemalloc never walks for gprof (the backtrace hook is set
// before its first sample: gprof_jemalloc_tctx_create), so the warm-up is skipped: about 38 000
// instructions and the page faults of reading two libraries' unwind tables, in every process.
void gprof_jemalloc_unwind_init() noexcept {}

}  // extern "C"
