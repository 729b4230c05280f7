#include "record/cpu_samples.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "base/os_memory.h"
#include "base/spin_lock.h"
#include "record/labels.h"
#include "record/stack_table.h"
#include "unwind/context_walk.h"
#include "unwind/frame_rules.h"
#include "unwind/stack.h"
#include "unwind/thread_bounds.h"

namespace gprof::record {

namespace cpu_slots {
std::atomic<CpuThreadSlot*> g_slots[kMaxSlots];
std::atomic<uint32_t> g_count{0};
}  // namespace cpu_slots

namespace {

using cpu_slots::g_count;
using cpu_slots::g_slots;
using cpu_slots::kMaxSlots;

// A record in a ring: this header, then `depth` return addresses, leaf first. Records are
// 8-byte aligned; one that would not fit before the ring's end is preceded by a padding record
// (kPad) that fills it.
struct RecordHeader {
    uint16_t bytes;  // the whole record, padded to 8
    uint8_t depth;
    uint8_t flags;
    uint32_t periods;
    uint32_t labels;
    uint8_t source;
    uint8_t unused[3];
    uint64_t extra_nanos;
    char name[16];
};
static_assert(sizeof(RecordHeader) == 40);
constexpr uint8_t kPad = 1, kShort = 2, kCut = 4;
constexpr uint32_t kRingMask = CpuThreadSlot::kRingBytes - 1;
static_assert((CpuThreadSlot::kRingBytes & kRingMask) == 0);
constexpr uint32_t kNameRefresh = 16;
// The drain is woken once a ring is this full: the rest is the room for the time it takes to be
// scheduled (on a loaded machine, a good part of a second at 1000 Hz).
constexpr uint32_t kWakeBytes = CpuThreadSlot::kRingBytes / 8;

constinit std::atomic<int64_t> g_period{0};
constinit std::atomic<int> g_signal{0};
constinit std::atomic<const char*> g_source{nullptr};
constinit std::atomic<bool> g_collecting{false};  // some session is active
constinit std::atomic<bool> g_modules_stale{false};
constinit std::atomic<int> g_drain_wanted{0};  // a futex word
constinit std::atomic<uint64_t> g_no_slot{0};  // samples of threads that found no slot

CpuThreadSlot* const kSlotGone = reinterpret_cast<CpuThreadSlot*>(uintptr_t{1});
constinit thread_local CpuThreadSlot* t_slot [[gnu::tls_model("initial-exec")]] = nullptr;

// Slots are mapped in chunks by the sampler (never by a handler), and never unmapped.
constexpr uint32_t kSlotsPerChunk = 16;
constinit base::SpinLock g_grow_lock;

// The drain's lock: sessions and rings' tails. Taken only by gprof's threads and by the C API's
// callers, never in a handler.
constinit base::SpinLock g_drain_lock;
struct Session {
    bool active = false;
    CpuProfileData data;
};
// Constructed in place (and again in a forked child, leaking the parent's).
alignas(Session) unsigned char g_session_memory[2][sizeof(Session)];
constinit bool g_sessions_made = false;

Session& session(CpuSession which) {
    if (!g_sessions_made) {
        new (g_session_memory[0]) Session;
        new (g_session_memory[1]) Session;
        g_sessions_made = true;
    }
    return *std::launder(reinterpret_cast<Session*>(g_session_memory[static_cast<int>(which)]));
}

int64_t wall_nanos() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

bool grow_slots() {
    base::SpinGuard guard(g_grow_lock);
    uint32_t n = g_count.load(std::memory_order_relaxed);
    if (n + kSlotsPerChunk > kMaxSlots) return false;
    void* memory = base::os_reserve(sizeof(CpuThreadSlot) * kSlotsPerChunk);
    if (memory == nullptr) return false;
    auto* slots = static_cast<CpuThreadSlot*>(memory);
    for (uint32_t i = 0; i < kSlotsPerChunk; ++i)
        g_slots[n + i].store(new (&slots[i]) CpuThreadSlot, std::memory_order_release);
    g_count.store(n + kSlotsPerChunk, std::memory_order_release);
    return true;
}

// Claims a free slot for `tid` without growing: async-signal-safe.
CpuThreadSlot* claim_existing(pid_t tid) {
    uint32_t n = g_count.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) {
        CpuThreadSlot* slot = g_slots[i].load(std::memory_order_acquire);
        int expected = CpuThreadSlot::kFree;
        if (slot != nullptr && slot->state.load(std::memory_order_relaxed) == expected &&
            slot->state.compare_exchange_strong(expected, CpuThreadSlot::kLive,
                                                std::memory_order_acq_rel)) {
            slot->tid.store(tid, std::memory_order_release);
            return slot;
        }
    }
    return nullptr;
}

CpuThreadSlot* find_live(pid_t tid) {
    uint32_t n = g_count.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) {
        CpuThreadSlot* slot = g_slots[i].load(std::memory_order_acquire);
        if (slot != nullptr && slot->tid.load(std::memory_order_acquire) == tid &&
            slot->state.load(std::memory_order_acquire) == CpuThreadSlot::kLive)
            return slot;
    }
    return nullptr;
}

// The calling thread's slot, found or claimed at its first sample. Async-signal-safe.
CpuThreadSlot* slot_for_handler() {
    CpuThreadSlot* slot = t_slot;
    if (slot != nullptr) [[likely]]
        return slot == kSlotGone ? nullptr : slot;
    pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
    slot = find_live(tid);
    if (slot == nullptr) slot = claim_existing(tid);
    if (slot == nullptr) {
        wake_cpu_drain();  // the sampler maps more slots
        return nullptr;
    }
    t_slot = slot;
    return slot;
}

// Appends a record of `bytes` (header first) to the slot's ring; false when it is full.
bool append(CpuThreadSlot* slot, const RecordHeader& header, const uintptr_t* pcs) {
    const uint32_t bytes = header.bytes;
    uint64_t head = slot->head.load(std::memory_order_relaxed);
    const uint64_t tail = slot->tail.load(std::memory_order_acquire);
    uint32_t offset = static_cast<uint32_t>(head) & kRingMask;
    uint32_t to_end = CpuThreadSlot::kRingBytes - offset;
    uint32_t pad = to_end < bytes ? to_end : 0;
    if (head + pad + bytes - tail > CpuThreadSlot::kRingBytes) return false;
    if (pad != 0) {
        RecordHeader filler{};
        filler.bytes = static_cast<uint16_t>(pad);
        filler.flags = kPad;
        memcpy(slot->ring + offset, &filler, 8);  // a padding record may be only 8 bytes
        head += pad;
        offset = 0;
    }
    memcpy(slot->ring + offset, &header, sizeof header);
    memcpy(slot->ring + offset + sizeof header, pcs, sizeof(uintptr_t) * header.depth);
    head += bytes;
    slot->head.store(head, std::memory_order_release);
    if (head - tail >= kWakeBytes) wake_cpu_drain();
    return true;
}

void add_to_sessions(const CpuSampleKey& key, const RecordHeader& header, int64_t period) {
    for (CpuSession which : {CpuSession::Dump, CpuSession::OnDemand}) {
        Session& s = session(which);
        if (!s.active) continue;
        CpuCounts& counts = s.data.samples[key];
        counts.samples += header.periods;
        counts.nanos += int64_t{header.periods} * period + static_cast<int64_t>(header.extra_nanos);
        s.data.by_source[header.source < kCpuSources ? header.source : 0] += header.periods;
        if (header.flags & kShort) s.data.short_walks += 1;
        if (header.flags & kCut) s.data.cut += 1;
    }
}

// Lost samples of a thread named `name`: their time under kLostStack.
void count_lost(const char* name, uint64_t periods, uint64_t extra_nanos, int64_t period) {
    CpuSampleKey key;
    key.stack = kLostStack;
    strncpy(key.thread_name.data(), name, key.thread_name.size() - 1);
    for (CpuSession which : {CpuSession::Dump, CpuSession::OnDemand}) {
        Session& s = session(which);
        if (!s.active) continue;
        s.data.dropped += periods;
        CpuCounts& counts = s.data.samples[key];
        counts.samples += static_cast<int64_t>(periods);
        counts.nanos += static_cast<int64_t>(periods) * period + static_cast<int64_t>(extra_nanos);
    }
}

// Under g_drain_lock.
void drain_slot(CpuThreadSlot* slot, int64_t period) {
    uint64_t tail = slot->tail.load(std::memory_order_relaxed);
    const uint64_t head = slot->head.load(std::memory_order_acquire);
    while (tail < head) {
        uint32_t offset = static_cast<uint32_t>(tail) & kRingMask;
        RecordHeader header;
        memcpy(&header, slot->ring + offset, 8);
        if (header.flags & kPad) {
            tail += header.bytes;
            continue;
        }
        memcpy(&header, slot->ring + offset, sizeof header);
        uintptr_t pcs[unwind::kCaptureRoom];
        int depth = header.depth;
        memcpy(pcs, slot->ring + offset + sizeof header, sizeof(uintptr_t) * depth);
        tail += header.bytes;
        // The handler could only use the rules learnt so far: learn this stack's for the next.
        for (int i = 0; i < depth; ++i) unwind::cached_frame_rule(pcs[i] - 1);
        CpuSampleKey key;
        key.stack = stack_table().intern(pcs, depth);
        key.labels = header.labels;
        memcpy(key.thread_name.data(), header.name, sizeof header.name);
        key.thread_name[15] = '\0';
        add_to_sessions(key, header, period);
    }
    slot->tail.store(tail, std::memory_order_release);
    uint64_t dropped = slot->dropped.exchange(0, std::memory_order_relaxed);
    uint64_t extra = slot->dropped_extra_nanos.exchange(0, std::memory_order_relaxed);
    if (dropped != 0) count_lost(slot->name, dropped, extra, period);
}

void drain_locked() {
    const int64_t period = g_period.load(std::memory_order_relaxed);
    uint32_t n = g_count.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) {
        CpuThreadSlot* slot = g_slots[i].load(std::memory_order_acquire);
        if (slot != nullptr && slot->state.load(std::memory_order_acquire) != CpuThreadSlot::kFree)
            drain_slot(slot, period);
    }
    uint64_t no_slot = g_no_slot.exchange(0, std::memory_order_relaxed);
    if (no_slot != 0) count_lost("", no_slot, 0, period);
}

void update_collecting() {
    g_collecting.store(session(CpuSession::Dump).active || session(CpuSession::OnDemand).active,
                       std::memory_order_release);
}

}  // namespace

size_t CpuSampleKeyHash::operator()(const CpuSampleKey& k) const {
    uint64_t h = (uint64_t{k.stack} << 32 | k.labels) * 0x9E3779B97F4A7C15ULL;
    for (char c : k.thread_name) {
        if (c == '\0') break;
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ULL;
    }
    return static_cast<size_t>(h);
}

void set_cpu_period(int64_t period_nanos) {
    g_period.store(period_nanos, std::memory_order_relaxed);
}
int64_t cpu_period() { return g_period.load(std::memory_order_relaxed); }

void set_cpu_source(const char* description) {
    g_source.store(description, std::memory_order_relaxed);
}

void set_cpu_signal(int sig) { g_signal.store(sig, std::memory_order_relaxed); }

CpuThreadSlot* cpu_slot_for_sample(uint32_t periods) {
    if (!g_collecting.load(std::memory_order_acquire)) return nullptr;
    CpuThreadSlot* slot = slot_for_handler();
    if (slot == nullptr) g_no_slot.fetch_add(periods, std::memory_order_relaxed);
    return slot;
}

namespace {

// The room the walk below needs under the handler's frame: the walk's own frames (about 2 KiB,
// as for an allocation sample) and the captured addresses, with a margin.
constexpr size_t kCpuSampleRoom = size_t{4} << 10;

// The sample's work, in a frame of its own that is only made where there is room for it.
__attribute__((noinline)) void record_walked_sample(CpuThreadSlot* slot,
                                                    const ucontext_t& context, uint32_t periods,
                                                    uint64_t extra_nanos, CpuSource source,
                                                    unwind::PcRange skip) {
    uintptr_t pcs[unwind::kCaptureRoom];
    unwind::ContextWalk walk = unwind::walk_interrupted(context, skip, pcs, unwind::kMaxFrames);
    if (walk.unknown_module) g_modules_stale.store(true, std::memory_order_relaxed);
    RecordHeader header{};
    header.depth = static_cast<uint8_t>(walk.depth);
    header.flags = static_cast<uint8_t>((walk.complete ? 0 : kShort) | (walk.cut ? kCut : 0));
    header.periods = periods;
    header.extra_nanos = extra_nanos;
    header.labels = current_label_set();
    header.source = static_cast<uint8_t>(source);
    header.bytes = static_cast<uint16_t>(sizeof header + sizeof(uintptr_t) * walk.depth);
    // The thread's name, asked again every kNameRefresh samples (a system call each time).
    if (slot->samples_named++ % kNameRefresh == 0) prctl(PR_GET_NAME, slot->name, 0, 0, 0);
    memcpy(header.name, slot->name, sizeof header.name);
    if (!append(slot, header, pcs)) {
        slot->dropped.fetch_add(periods, std::memory_order_relaxed);
        slot->dropped_extra_nanos.fetch_add(extra_nanos, std::memory_order_relaxed);
    }
}

}  // namespace

void record_cpu_sample(CpuThreadSlot* slot, const ucontext_t& context, uint32_t periods,
                       uint64_t extra_nanos, CpuSource source, unwind::PcRange skip) {
    // A signal that found the thread at the end of its stack (deep recursion, a small stack)
    // must not overflow it: the sample is counted as lost instead.
    if (unwind::stack_room() < kCpuSampleRoom) {
        slot->dropped.fetch_add(periods, std::memory_order_relaxed);
        slot->dropped_extra_nanos.fetch_add(extra_nanos, std::memory_order_relaxed);
        return;
    }
    record_walked_sample(slot, context, periods, extra_nanos, source, skip);
}

CpuSignalDeferral::CpuSignalDeferral() noexcept {
    int sig = g_signal.load(std::memory_order_relaxed);
    if (sig == 0 || unwind::stack_room() >= kDeferRoom) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigset_t old;
    if (pthread_sigmask(SIG_BLOCK, &set, &old) == 0 && !sigismember(&old, sig)) deferred_ = sig;
}

CpuSignalDeferral::~CpuSignalDeferral() {
    if (deferred_ == 0) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, deferred_);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

bool take_modules_stale() { return g_modules_stale.exchange(false, std::memory_order_relaxed); }

CpuThreadSlot* claim_cpu_slot(pid_t tid) {
    for (;;) {
        if (CpuThreadSlot* slot = claim_existing(tid)) return slot;
        if (!grow_slots()) return nullptr;
    }
}

CpuThreadSlot* find_cpu_slot(pid_t tid) { return find_live(tid); }

void adopt_cpu_slot(CpuThreadSlot* slot) {
    t_slot = slot;
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

CpuThreadSlot* end_current_cpu_slot() {
    CpuThreadSlot* slot = t_slot;
    t_slot = kSlotGone;  // before anything else: a late signal records nothing
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return slot == kSlotGone ? nullptr : slot;
}

void release_cpu_slot(CpuThreadSlot* slot) {
    base::SpinGuard guard(g_drain_lock);
    drain_slot(slot, g_period.load(std::memory_order_relaxed));
    slot->timer = -1;
    slot->perf_map.store(nullptr, std::memory_order_relaxed);
    slot->perf_first = false;
    slot->perf_first_period = slot->cpu_seen = 0;
    slot->samples_named = 0;
    slot->tid.store(0, std::memory_order_relaxed);
    slot->head.store(0, std::memory_order_relaxed);
    slot->tail.store(0, std::memory_order_relaxed);
    slot->dropped.store(0, std::memory_order_relaxed);
    slot->dropped_extra_nanos.store(0, std::memory_order_relaxed);
    slot->state.store(CpuThreadSlot::kFree, std::memory_order_release);
}

void begin_cpu_session(CpuSession which) {
    base::SpinGuard guard(g_drain_lock);
    drain_locked();  // what came before belongs to the other session only
    Session& s = session(which);
    s.data = CpuProfileData{};
    s.data.start_nanos = wall_nanos();
    s.data.period_nanos = g_period.load(std::memory_order_relaxed);
    s.active = true;
    update_collecting();
}

void end_cpu_session(CpuSession which) {
    base::SpinGuard guard(g_drain_lock);
    Session& s = session(which);
    s.active = false;
    s.data = CpuProfileData{};
    update_collecting();
}

bool cpu_session_active(CpuSession which) {
    base::SpinGuard guard(g_drain_lock);
    return session(which).active;
}

bool any_cpu_session_active() { return g_collecting.load(std::memory_order_acquire); }

void take_cpu_session(CpuSession which, CpuProfileData* out) {
    base::SpinGuard guard(g_drain_lock);
    drain_locked();
    Session& s = session(which);
    *out = std::move(s.data);
    out->end_nanos = wall_nanos();
    out->source = g_source.load(std::memory_order_relaxed);
    s.data = CpuProfileData{};
    s.data.start_nanos = out->end_nanos;
    s.data.period_nanos = out->period_nanos;
    if (which == CpuSession::OnDemand) s.active = false;
    update_collecting();
}

bool cpu_session_has_samples(CpuSession which) {
    base::SpinGuard guard(g_drain_lock);
    drain_locked();
    const Session& s = session(which);
    return s.active && (!s.data.samples.empty() || s.data.dropped != 0);
}

void drain_cpu_samples() {
    if (take_modules_stale()) unwind::publish_signal_modules();
    base::SpinGuard guard(g_drain_lock);
    drain_locked();
}

void wait_for_cpu_samples(int timeout_ms) {
    if (g_drain_wanted.exchange(0, std::memory_order_acq_rel) != 0) return;
    struct timespec timeout = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
    syscall(SYS_futex, reinterpret_cast<int*>(&g_drain_wanted), FUTEX_WAIT_PRIVATE, 0, &timeout,
            nullptr, 0);
    g_drain_wanted.store(0, std::memory_order_release);
}

void wake_cpu_drain() {
    int saved = errno;
    if (g_drain_wanted.exchange(1, std::memory_order_acq_rel) == 0)
        syscall(SYS_futex, reinterpret_cast<int*>(&g_drain_wanted), FUTEX_WAKE_PRIVATE, 1,
                nullptr, nullptr, 0);
    errno = saved;
}

void reset_cpu_samples_after_fork() {
    t_slot = nullptr;
    g_collecting.store(false, std::memory_order_relaxed);
    g_drain_lock.unlock();
    g_grow_lock.unlock();
    g_drain_wanted.store(0, std::memory_order_relaxed);
    g_no_slot.store(0, std::memory_order_relaxed);
    g_sessions_made = false;  // fresh sessions; the parent's maps are left as they are
    uint32_t n = g_count.load(std::memory_order_relaxed);
    for (uint32_t i = 0; i < n; ++i) {
        CpuThreadSlot* slot = g_slots[i].load(std::memory_order_relaxed);
        if (slot == nullptr) continue;
        // Neither timers nor the perf events' mappings are inherited.
        slot->timer = -1;
        slot->perf_map.store(nullptr, std::memory_order_relaxed);
        slot->perf_first = false;
        slot->tid.store(0, std::memory_order_relaxed);
        slot->state.store(CpuThreadSlot::kFree, std::memory_order_relaxed);
        slot->head.store(0, std::memory_order_relaxed);
        slot->tail.store(0, std::memory_order_relaxed);
        slot->dropped.store(0, std::memory_order_relaxed);
        slot->dropped_extra_nanos.store(0, std::memory_order_relaxed);
        slot->samples_named = 0;
    }
}

}  // namespace gprof::record
