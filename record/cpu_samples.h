// The CPU profile's records: each thread's samples, written by its own signal handler into a ring
// of its own, and drained by a gprof thread into the profiles being collected (sessions).
//
// A sample is taken in a signal handler that may have interrupted anything (the allocator, the
// loader, gprof itself), so the handler's path (record_cpu_sample) takes no lock and allocates
// nothing: it walks the interrupted stack (unwind/context_walk.h) and appends one record to the
// thread's ring, which has one writer (the thread; the signal is blocked while its handler runs)
// and one reader (whoever drains, under the drain lock). A ring that is full drops the sample,
// counted. Rings live in memory gprof maps itself, in slots claimed per thread: by the sampler
// when it gives a thread its source, or by the handler itself (a compare-and-swap) for a thread
// it meets first.
//
// Two sessions read the same samples: the dump's (GPROF_CPU_HZ: from start, or from the previous
// dump, to this one) and one on demand (the C API's start/stop, the HTTP server's
// profile?seconds=N), each with its own counts, so neither disturbs the other.
#pragma once

#include <sys/types.h>
#include <ucontext.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <unordered_map>

#include "unwind/fast_walk.h"

namespace gprof::record {

// What delivered a sample, for the profile's comments.
enum class CpuSource : uint8_t {
    PerfEvent,     // the thread's perf_event_open task-clock event
    ThreadTimer,   // the thread's own CLOCK_THREAD_CPUTIME_ID timer
    ProcessTimer,  // the process-wide timer, for a thread that has neither
};
constexpr int kCpuSources = 3;

// One thread's ring and sampling source. The source fields belong to the sampler
// (preload/cpu_sampler.cpp), which sets them with the slot claimed and clears them before
// releasing it.
struct CpuThreadSlot {
    static constexpr uint32_t kRingBytes = 64 << 10;
    enum State : int { kFree, kLive, kEnded };

    std::atomic<int> state{kFree};
    std::atomic<pid_t> tid{0};
    int timer = -1;                           // kernel timer id, or -1
    std::atomic<void*> perf_map{nullptr};     // the perf event's mapping, which keeps it alive
    bool perf_first = false;                  // the event runs its random first period
    uint64_t perf_first_period = 0;           // its length
    uint64_t cpu_seen = 0;  // the thread's CPU time at its last perf sample (or the event's start)
    std::atomic<uint64_t> head{0};  // bytes written, by the thread's handler
    std::atomic<uint64_t> tail{0};  // bytes read, by the drain
    std::atomic<uint64_t> dropped{0};  // periods of samples the full ring could not take
    std::atomic<uint64_t> dropped_extra_nanos{0};  // and their time beyond those periods
    uint32_t samples_named = 0;  // the handler's: samples since `name` was read
    char name[16] = {};          // the thread's name as last read
    alignas(64) unsigned char ring[kRingBytes];

    bool has_source() const {
        return timer >= 0 || perf_map.load(std::memory_order_acquire) != nullptr;
    }
};

// A sample's key in a session: its stack (record/stack_table.h), the label set the thread had
// pushed, and the thread's name. Samples that were lost (a full ring, no slot free) keep their
// time under the stack kLostStack, so the profile's total stays the CPU time sampled.
constexpr uint32_t kLostStack = UINT32_MAX;
struct CpuSampleKey {
    uint32_t stack = 0;
    uint32_t labels = 0;
    std::array<char, 16> thread_name{};
    bool operator==(const CpuSampleKey&) const = default;
};
struct CpuSampleKeyHash {
    size_t operator()(const CpuSampleKey& k) const;
};
struct CpuCounts {
    int64_t samples = 0;
    int64_t nanos = 0;
};

// What a session collected: the CPU profile's content.
struct CpuProfileData {
    std::unordered_map<CpuSampleKey, CpuCounts, CpuSampleKeyHash> samples;
    int64_t start_nanos = 0;  // wall clock, when the session began or was last taken
    int64_t end_nanos = 0;    // when it was taken
    int64_t period_nanos = 0;
    const char* source = nullptr;  // what delivered the samples (set_cpu_source)
    uint64_t by_source[kCpuSources] = {};  // samples by what delivered them
    uint64_t dropped = 0;     // samples lost to full rings, no free slot or no stack room
                              // (kLostStack)
    uint64_t short_walks = 0;  // the walk stopped before the outermost frame
    uint64_t cut = 0;         // deeper than the frames kept
};

enum class CpuSession { Dump, OnDemand };

// The period every sample stands for (1e9 / Hz); set before any source runs.
void set_cpu_period(int64_t period_nanos);
int64_t cpu_period();
// What delivers the samples, in words, for the profile (a string with static storage).
void set_cpu_source(const char* description);
// The signal that delivers them (0: none chosen yet).
void set_cpu_signal(int sig);

// While alive, on a thread with less than kDeferRoom of stack left, the samples' signal waits
// (one sigprocmask each way, made only there): the kernel's signal frame (AT_MINSIGSTKSZ, about
// 3.4 KiB with AVX-512 state) must fit wherever the signal lands, and deep inside the allocator's
// slow path at the end of a program's stack it would not. It arrives when the guard ends, at
// the depth of the program's own call.
class CpuSignalDeferral {
public:
    static constexpr size_t kDeferRoom = size_t{16} << 10;
    CpuSignalDeferral() noexcept;
    ~CpuSignalDeferral();
    CpuSignalDeferral(const CpuSignalDeferral&) = delete;
    CpuSignalDeferral& operator=(const CpuSignalDeferral&) = delete;

private:
    int deferred_ = 0;
};

// ---- The handler's side: async-signal-safe. ----

// The calling thread's slot: found (by its thread id) or claimed at the thread's first sample.
// Null when no session is active or no slot is free (the sample is then counted as dropped).
CpuThreadSlot* cpu_slot_for_sample(uint32_t periods);
// Records one sample of the calling thread, interrupted at `context`, standing for `periods`
// periods (1 + the timer's overruns) and `extra_nanos` of CPU time the source did not sample
// (time in the kernel), into `slot` (cpu_slot_for_sample's). Frames in `skip` (gprof's own
// image) are left out of its stack. Counted as dropped where the ring is full, or where the
// stack has too little room left for the walk.
void record_cpu_sample(CpuThreadSlot* slot, const ucontext_t& context, uint32_t periods,
                       uint64_t extra_nanos, CpuSource source, unwind::PcRange skip);
// Bumped when the handler met code outside the published module list (a library loaded since):
// the drain publishes it again (unwind/frame_rules.h).
bool take_modules_stale();

// ---- The sampler's and the drain's side. ----

// A free slot claimed for `tid` (kLive), or null when none is left and no memory can be mapped.
CpuThreadSlot* claim_cpu_slot(pid_t tid);
// The slot claimed for `tid`, or null.
CpuThreadSlot* find_cpu_slot(pid_t tid);
// Makes `slot` the calling thread's (its handler then writes there).
void adopt_cpu_slot(CpuThreadSlot* slot);
// The calling thread is ending: its handler records nothing from now on, and the slot is handed
// to the drain, which releases it once empty. Returns the slot (its source still to be deleted
// by the caller), or null.
CpuThreadSlot* end_current_cpu_slot();
// Every slot claimed, for the sampler's sweeps; `visit` returns false to stop.
template <typename F>
void for_each_cpu_slot(F visit);
// Releases a slot whose thread is gone and whose source was deleted, after draining it.
void release_cpu_slot(CpuThreadSlot* slot);

// Sessions. begin: collection starts now. take: drains, then hands over what the session
// collected since it began or was last taken; a Dump session goes on, an OnDemand one ends.
void begin_cpu_session(CpuSession session);
// Ends a session, discarding what it collected.
void end_cpu_session(CpuSession session);
bool cpu_session_active(CpuSession session);
bool any_cpu_session_active();
void take_cpu_session(CpuSession session, CpuProfileData* out);
bool cpu_session_has_samples(CpuSession session);

// Moves every ring's samples into the active sessions. From the drain thread and from take.
void drain_cpu_samples();
// Blocks until a ring asks to be drained or `timeout_ms` passes.
void wait_for_cpu_samples(int timeout_ms);
// Wakes a waiter of wait_for_cpu_samples (async-signal-safe).
void wake_cpu_drain();

// In a child after fork: no slot, no session, no sample of the parent's (nothing is freed: the
// parent's threads may have been writing). The sampler begins the child's own sessions.
void reset_cpu_samples_after_fork();

// ---- Implementation of for_each_cpu_slot. ----
namespace cpu_slots {
constexpr uint32_t kMaxSlots = 8192;
extern std::atomic<CpuThreadSlot*> g_slots[kMaxSlots];
extern std::atomic<uint32_t> g_count;
}  // namespace cpu_slots

template <typename F>
void for_each_cpu_slot(F visit) {
    uint32_t n = cpu_slots::g_count.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) {
        CpuThreadSlot* slot = cpu_slots::g_slots[i].load(std::memory_order_acquire);
        if (slot != nullptr && slot->state.load(std::memory_order_acquire) != CpuThreadSlot::kFree)
            if (!visit(slot)) return;
    }
}

}  // namespace gprof::record
