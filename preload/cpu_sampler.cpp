#include "preload/cpu_sampler.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/free_signal.h"
#include "base/log.h"
#include "base/notes.h"
#include "base/own_thread.h"
#include "base/reentry_guard.h"
#include "base/spin_lock.h"
#include "record/cpu_samples.h"
#include "record/threads.h"
#include "unwind/frame_rules.h"
#include "unwind/stack.h"
#include "unwind/thread_bounds.h"

namespace gprof::cpu_sampler {
namespace {

using record::CpuThreadSlot;

// si_value of the timers' signals: which timer sent it.
constexpr int kThreadTimerTag = 0x67707431;   // "gpt1"
constexpr int kProcessTimerTag = 0x67707032;  // "gpp2"
// How often the drain thread sweeps for threads without a source and slots of ended threads.
constexpr int kSweepMs = 1000;
// The stack a handler needs to open a thread's next perf event.
constexpr size_t kHandoverRoom = size_t{2} << 10;
// A handler left a thread without its event: the drain thread sweeps at once.
std::atomic<bool> g_sweep_wanted{false};

std::atomic<int> g_signal{0};       // the CPU signal, once chosen
std::atomic<bool> g_running{false};  // sources are given to threads
std::atomic<bool> g_refused{false};  // the program took the signal: no sampling any more
constinit base::SpinLock g_lock;     // starting, stopping, giving sources

// The source chosen at the first start: perf events unless refused, unless the signal is not
// SIGSTKFLT, or with GPROF_CPU_TIMER.
enum class Kind { Unknown, Perf, Timer };
Kind g_kind = Kind::Unknown;
const char* g_timer_reason = "";
int g_process_timer = -1;
size_t g_page_size = 4096;
uint64_t g_phase = 0;

std::atomic<bool> g_thread_running{false};
std::atomic<bool> g_thread_quit{false};

int64_t period_nanos() { return record::cpu_period(); }

// The first expiry of a new source, in [1, period]: a thread shorter than a period is then
// sampled with the probability its CPU time bears to the period. Successive sources take the
// points of a golden-ratio sequence rather than independent draws: each is as uniform, and many
// short threads together are counted with far less spread. Under g_lock.
int64_t first_expiry() {
    g_phase += 0x9E3779B97F4A7C15ULL;
    const auto period = static_cast<unsigned __int128>(period_nanos());
    return 1 + static_cast<int64_t>((period * (g_phase >> 1)) >> 63) % period_nanos();
}

pid_t this_tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// The CPU-time clock of thread `tid` of this process (the kernel's encoding, as glibc's
// pthread_getcpuclockid makes it): a timer on it can be set up from any thread.
clockid_t thread_cpu_clock(pid_t tid) {
    return static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6);
}

// ---- The signal handler. ----

unwind::PcRange gprof_image() {
    return {reinterpret_cast<uintptr_t>(__ehdr_start), reinterpret_cast<uintptr_t>(_end)};
}

uint64_t thread_cpu_nanos(clockid_t clock) {
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) return 0;
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

// A task-clock event sampling thread `tid` every `period` ns of its CPU time, signalling that
// thread (`one_shot`: only once, then it stops itself), kept alive by a one-page mapping rather
// than a descriptor: the program never sees a descriptor of gprof's (its own may be listed,
// closed, counted), and munmap ends the event. Null where it cannot be made. Async-signal-safe
// (system calls only).
void* open_perf_event(pid_t tid, uint64_t period, int sig, bool one_shot) {
    struct perf_event_attr attr = {};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.sample_period = period;
    attr.disabled = 1;
    // Not sampled in the kernel: a signal raised inside execve would reach the new program,
    // which does not handle it. The time is charged to the next sample (the thread's CPU clock).
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    int fd = static_cast<int>(
        syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC));
    if (fd < 0) return nullptr;
    struct f_owner_ex owner = {F_OWNER_TID, tid};
    void* map = MAP_FAILED;
    if (fcntl(fd, F_SETFL, O_ASYNC) == 0 && fcntl(fd, F_SETSIG, sig) == 0 &&
        fcntl(fd, F_SETOWN_EX, &owner) == 0)
        map = mmap(nullptr, g_page_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED &&
        (one_shot ? ioctl(fd, PERF_EVENT_IOC_REFRESH, 1) : ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)) !=
            0) {
        munmap(map, g_page_size);
        map = MAP_FAILED;
    }
    close(fd);
    return map == MAP_FAILED ? nullptr : map;
}

void close_perf_event(void* map) {
    if (map != nullptr) munmap(map, g_page_size);
}

// The perf event's signal: the thread's CPU time since its last sample beyond one period (time
// in the kernel, which the event does not sample, and periods whose signal found the last one
// still pending) is charged to this sample, so the profile's total matches the thread's CPU
// time. The one-shot event of a thread's random first period hands over to one with the full
// period, starting now.
void on_perf_sample(CpuThreadSlot* slot, const ucontext_t& interrupted) {
    const uint64_t cpu = thread_cpu_nanos(CLOCK_THREAD_CPUTIME_ID);
    const bool first = slot->perf_first;
    const uint64_t period = first ? slot->perf_first_period : static_cast<uint64_t>(period_nanos());
    const uint64_t elapsed = cpu > slot->cpu_seen ? cpu - slot->cpu_seen : 0;
    slot->cpu_seen = cpu;
    record::record_cpu_sample(slot, interrupted, 1, elapsed > period ? elapsed - period : 0,
                              record::CpuSource::PerfEvent, gprof_image());
    if (!first) return;
    slot->perf_first = false;
    // Opening the next event takes more stack than a thread at the very end of its own may have
    // left: there the event is closed, and the drain thread's sweep gives the thread a new one.
    if (unwind::stack_room() < kHandoverRoom) {
        close_perf_event(slot->perf_map.exchange(nullptr, std::memory_order_acq_rel));
        g_sweep_wanted.store(true, std::memory_order_release);
        record::wake_cpu_drain();
        return;
    }
    void* next = open_perf_event(static_cast<pid_t>(syscall(SYS_gettid)),
                                 static_cast<uint64_t>(period_nanos()),
                                 g_signal.load(std::memory_order_relaxed), false);
    close_perf_event(slot->perf_map.exchange(next, std::memory_order_acq_rel));
    // Sampling stopped meanwhile: the stopper may have missed the new event.
    if (!g_running.load(std::memory_order_acquire))
        close_perf_event(slot->perf_map.exchange(nullptr, std::memory_order_acq_rel));
}

void on_cpu_signal(int, siginfo_t* info, void* context) {
    int saved = errno;
    const ucontext_t& interrupted = *static_cast<const ucontext_t*>(context);
    if (info->si_code == SI_TIMER) {
        uint32_t periods = 1 + static_cast<uint32_t>(info->si_overrun > 0 ? info->si_overrun : 0);
        int tag = info->si_value.sival_int;
        if (tag == kThreadTimerTag || tag == kProcessTimerTag) {
            CpuThreadSlot* slot = record::cpu_slot_for_sample(periods);
            // The process-wide timer speaks only for threads without a source of their own.
            if (slot != nullptr && (tag == kThreadTimerTag || !slot->has_source()))
                record::record_cpu_sample(slot, interrupted, periods, 0,
                                          tag == kThreadTimerTag
                                              ? record::CpuSource::ThreadTimer
                                              : record::CpuSource::ProcessTimer,
                                          gprof_image());
        }
    } else if (info->si_code == POLL_IN || info->si_code == POLL_HUP) {  // POLL_HUP: one-shot
        CpuThreadSlot* slot = record::cpu_slot_for_sample(1);
        if (slot != nullptr && slot->perf_map.load(std::memory_order_acquire) != nullptr)
            on_perf_sample(slot, interrupted);
    }
    errno = saved;
}

// ---- Sources. ----

// A thread starting through the trampoline (`own`: the call is the thread's own) gets a one-shot
// event for its random first period, which its first sample replaces with the full period's
// (on_perf_sample). Threads that were running already get the full period at once: they are not
// short, and no event of theirs may be made from their handler before their first sample.
bool start_perf(CpuThreadSlot* slot, pid_t tid, bool own) {
    const uint64_t period = static_cast<uint64_t>(own ? first_expiry() : period_nanos());
    slot->cpu_seen = thread_cpu_nanos(thread_cpu_clock(tid));
    slot->perf_first_period = period;
    slot->perf_first = own;
    void* map = open_perf_event(tid, period, g_signal.load(std::memory_order_relaxed), own);
    if (map == nullptr) return false;
    slot->perf_map.store(map, std::memory_order_release);
    return true;
}

int create_timer(clockid_t clock, int notify, pid_t tid, int tag, int64_t first) {
    struct sigevent event = {};
    event.sigev_notify = notify;
    event.sigev_signo = g_signal.load(std::memory_order_relaxed);
    event.sigev_value.sival_int = tag;
    if (notify == SIGEV_THREAD_ID) event._sigev_un._tid = tid;
    int timer = -1;
    if (syscall(SYS_timer_create, clock, &event, &timer) != 0) return -1;
    const int64_t period = period_nanos();
    struct itimerspec spec = {{period / 1000000000, period % 1000000000},
                              {first / 1000000000, first % 1000000000}};
    if (syscall(SYS_timer_settime, timer, 0, &spec, nullptr) != 0) {
        syscall(SYS_timer_delete, timer);
        return -1;
    }
    return timer;
}

bool start_timer(CpuThreadSlot* slot, pid_t tid) {
    slot->timer = create_timer(thread_cpu_clock(tid), SIGEV_THREAD_ID, tid, kThreadTimerTag,
                               first_expiry());
    return slot->timer >= 0;
}

// Under g_lock. `own`: the thread itself asks, at its start.
bool give_source(CpuThreadSlot* slot, pid_t tid, bool own) {
    if (slot->has_source()) return true;
    if (g_kind == Kind::Perf && start_perf(slot, tid, own)) return true;
    return start_timer(slot, tid);
}

// Under g_lock (or in the thread itself, at its end).
void stop_source(CpuThreadSlot* slot) {
    if (slot->timer >= 0) syscall(SYS_timer_delete, slot->timer);
    slot->timer = -1;
    close_perf_event(slot->perf_map.exchange(nullptr, std::memory_order_acq_rel));
}

// Perf events, unless refused; decided once, with the signal.
//
// The signal: for perf events SIGSTKFLT (the kernel never sends it on x86-64), a standard signal
// pending at most once, so a thread that runs with it blocked cannot fill the queue of real-time
// signals (whose overflow the kernel turns into a SIGIO); the time of the samples it coalesced is
// charged to the next. Timers queue one signal each at most and count the rest as overruns, so
// they take a real-time signal nobody handles, which keeps every overrun (a standard signal
// already pending would drop it). Under g_lock; false (said once) when no signal is free.
bool choose_kind_and_signal(const Config& c) {
    if (g_kind != Kind::Unknown) return true;
    g_page_size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    g_kind = Kind::Timer;
    if (c.cpu_timer_only) {
        g_timer_reason = " (GPROF_CPU_TIMER=1)";
    } else if (void* probe = open_perf_event(this_tid(), 1000000000, SIGSTKFLT, false)) {
        close_perf_event(probe);
        if (c.dump_signal != SIGSTKFLT && base::install_if_free(SIGSTKFLT, on_cpu_signal)) {
            g_kind = Kind::Perf;
            g_signal.store(SIGSTKFLT, std::memory_order_release);
            return true;
        }
        g_timer_reason = " (perf events need SIGSTKFLT, which the program handles)";
    } else {
        g_timer_reason = " (perf events refused)";
    }
    int sig = base::install_on_free_signal(on_cpu_signal, c.dump_signal);
    if (sig == 0) {
        log::problem("no free signal for the CPU profile; it is off");
        base::note("gprof: no free signal for the CPU profile's timers: no CPU profile");
        g_refused.store(true, std::memory_order_release);
        return false;
    }
    g_signal.store(sig, std::memory_order_release);
    return true;
}

// The program's threads now: every task but gprof's own. `visit` gets each tid.
template <typename F>
void for_each_program_thread(F visit) {
    DIR* dir = opendir("/proc/self/task");
    if (dir == nullptr) return;
    while (struct dirent* entry = readdir(dir)) {
        pid_t tid = static_cast<pid_t>(atoi(entry->d_name));
        if (tid > 0 && !record::thread_registry().is_own(tid)) visit(tid);
    }
    closedir(dir);
}

// Under g_lock: slots of threads that ended without passing thread_ending() are released, perf
// descriptors the program closed are replaced, threads without a source get one, and the
// process-wide timer runs only while some thread could get none.
void sweep_locked() {
    record::for_each_cpu_slot([](CpuThreadSlot* slot) {
        pid_t tid = slot->tid.load(std::memory_order_acquire);
        if (slot->state.load(std::memory_order_acquire) == CpuThreadSlot::kLive && tid != 0 &&
            syscall(SYS_tgkill, getpid(), tid, 0) != 0 && errno == ESRCH) {
            stop_source(slot);
            record::release_cpu_slot(slot);
            return true;
        }
        return true;
    });
    int without_source = 0;
    for_each_program_thread([&](pid_t tid) {
        CpuThreadSlot* slot = record::find_cpu_slot(tid);
        if (slot == nullptr) slot = record::claim_cpu_slot(tid);
        if (slot == nullptr || !give_source(slot, tid, false)) ++without_source;
    });
    if (without_source > 0 && g_process_timer < 0) {
        g_process_timer = create_timer(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, 0,
                                       kProcessTimerTag, first_expiry());
    } else if (without_source == 0 && g_process_timer >= 0) {
        syscall(SYS_timer_delete, g_process_timer);
        g_process_timer = -1;
    }
}

// Under g_lock.
void stop_all_locked() {
    g_running.store(false, std::memory_order_release);
    record::for_each_cpu_slot([](CpuThreadSlot* slot) {
        stop_source(slot);
        return true;
    });
    if (g_process_timer >= 0) syscall(SYS_timer_delete, g_process_timer);
    g_process_timer = -1;
}

// ---- The drain thread. ----

std::atomic<int> g_drain_tid{0};

void* drain_main(void*) {
    base::ReentryGuard guard;
    g_drain_tid.store(static_cast<int>(gettid()), std::memory_order_release);
    struct timespec last_sweep;
    clock_gettime(CLOCK_MONOTONIC, &last_sweep);
    while (!g_thread_quit.load(std::memory_order_acquire)) {
        record::wait_for_cpu_samples(kSweepMs);
        if (g_thread_quit.load(std::memory_order_acquire)) break;
        record::drain_cpu_samples();
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (g_sweep_wanted.exchange(false, std::memory_order_acq_rel) ||
            (now.tv_sec - last_sweep.tv_sec) * 1000 + (now.tv_nsec - last_sweep.tv_nsec) / 1000000 >=
                kSweepMs) {
            last_sweep = now;
            base::SpinGuard lock(g_lock);
            if (g_running.load(std::memory_order_acquire)) sweep_locked();
        }
    }
    g_thread_running.store(false, std::memory_order_release);
    return nullptr;
}

void start_thread() {
    if (g_thread_running.exchange(true, std::memory_order_acq_rel)) return;
    g_thread_quit.store(false, std::memory_order_release);
    if (int err = base::start_own_thread(drain_main, "gprof-cpu"); err != 0) {
        g_thread_running.store(false, std::memory_order_release);
        log::problem("cannot start the CPU profile's thread: error %d; samples are drained at "
                     "dumps only",
                     err);
    }
}

// Under g_lock: the signal, the sources of every thread alive, the drain thread.
bool start_sampling_locked() {
    if (g_refused.load(std::memory_order_acquire)) return false;
    if (!choose_kind_and_signal(config())) return false;
    unwind::publish_signal_modules();
    record::set_cpu_source(source_description());
    record::set_cpu_signal(g_signal.load(std::memory_order_relaxed));
    g_running.store(true, std::memory_order_release);
    sweep_locked();
    start_thread();
    log::info("CPU profile at %d Hz on signal %d (SIGPROF left to the program) by %s", hz(),
              g_signal.load(std::memory_order_relaxed), source_description());
    return true;
}

}  // namespace

int hz() {
    int64_t configured = config().cpu_hz;
    return static_cast<int>(configured > 0 ? configured : kDefaultCpuHz);
}

void start(const Config& c) {
    if (c.profiles & kProfileCpu) begin(record::CpuSession::Dump);
}

int begin(record::CpuSession session) {
    base::ReentryGuard guard;
    base::SpinGuard lock(g_lock);
    if (session == record::CpuSession::OnDemand &&
        record::cpu_session_active(record::CpuSession::OnDemand))
        return EBUSY;
    // The session first, so that the first samples of the sources find it.
    record::set_cpu_period(1000000000 / hz());
    record::begin_cpu_session(session);
    if (!g_running.load(std::memory_order_acquire) && !start_sampling_locked()) {
        record::end_cpu_session(session);
        return EAGAIN;
    }
    return 0;
}

void end_on_demand() {
    base::ReentryGuard guard;
    base::SpinGuard lock(g_lock);
    if (!record::any_cpu_session_active() && g_running.load(std::memory_order_acquire))
        stop_all_locked();
}

char g_timer_description[160];

const char* source_description() {
    switch (g_kind) {
        case Kind::Perf:
            return "perf_event_open task-clock events per thread";
        case Kind::Timer:
            snprintf(g_timer_description, sizeof g_timer_description,
                     "CLOCK_THREAD_CPUTIME_ID timers per thread%s", g_timer_reason);
            return g_timer_description;
        case Kind::Unknown:
            break;
    }
    return "";
}

void thread_started() {
    if (!g_running.load(std::memory_order_acquire)) return;
    base::ReentryGuard guard;
    base::SpinGuard lock(g_lock);
    if (!g_running.load(std::memory_order_acquire)) return;
    pid_t tid = this_tid();
    CpuThreadSlot* slot = record::find_cpu_slot(tid);
    if (slot == nullptr) slot = record::claim_cpu_slot(tid);
    if (slot == nullptr) return;  // the sweep retries, or the process-wide timer covers it
    record::adopt_cpu_slot(slot);
    give_source(slot, tid, true);
}

void thread_ending() {
    CpuThreadSlot* slot = record::end_current_cpu_slot();
    if (slot == nullptr && g_running.load(std::memory_order_acquire))
        slot = record::find_cpu_slot(this_tid());
    if (slot == nullptr) return;
    base::ReentryGuard guard;
    base::SpinGuard lock(g_lock);
    stop_source(slot);
    record::release_cpu_slot(slot);
}

bool program_takes_signal(int sig) {
    int ours = g_signal.load(std::memory_order_acquire);
    if (ours == 0 || sig != ours) return false;
    if (!g_refused.exchange(true, std::memory_order_acq_rel)) {
        {
            base::ReentryGuard guard;
            base::SpinGuard lock(g_lock);
            stop_all_locked();
        }
        log::problem("the program installed a handler on signal %d, which gprof's CPU profile "
                     "used; CPU profiling is off from here",
                     sig);
        base::note("gprof: the program took the CPU profile's signal for itself: CPU profiling "
                   "stopped there");
    }
    return true;
}

void stop_thread() {
    g_thread_quit.store(true, std::memory_order_release);
    record::wake_cpu_drain();
}

void child_after_fork() {
    // Neither timers nor the perf events' mappings (VM_DONTCOPY) are inherited.
    g_process_timer = -1;
    g_lock.unlock();
    unwind::reset_signal_modules_after_fork();
    record::reset_cpu_samples_after_fork();
    g_thread_running.store(false, std::memory_order_relaxed);
    bool was_running = g_running.exchange(false, std::memory_order_acq_rel);
    if (was_running && (config().profiles & kProfileCpu)) begin(record::CpuSession::Dump);
}

bool pause_thread() {
    if (!g_thread_running.load(std::memory_order_acquire) ||
        g_thread_quit.load(std::memory_order_acquire))
        return false;
    stop_thread();
    base::wait_ended(g_thread_running, g_drain_tid, 2000);
    return true;
}

void resume_thread() {
    base::ReentryGuard guard;  // the thread is gprof's own
    start_thread();
}

}  // namespace gprof::cpu_sampler

