#include "preload/cpu_sampler.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/free_signal.h"
#include "base/log.h"
#include "base/own_thread.h"
#include "base/reentry_guard.h"
#include "base/spin_lock.h"
#include "record/cpu_samples.h"
#include "record/threads.h"
#include "unwind/frame_rules.h"
#include "unwind/stack.h"

namespace gprof::cpu_sampler {
namespace {

using record::CpuThreadSlot;

// si_value of the timers' signals: which timer sent it.
constexpr int kThreadTimerTag = 0x67707431;   // "gpt1"
constexpr int kProcessTimerTag = 0x67707032;  // "gpp2"
// A perf event stops itself after this many overflows (the last signalled with POLL_HUP) and the
// handler re-arms it then: at most this many of its signals are ever queued, and the re-arming,
// costly in a virtual machine, is paid once per this many samples.
constexpr int kPerfRefresh = 8;
// How often the drain thread sweeps for threads without a source and slots of ended threads.
constexpr int kSweepMs = 1000;

std::atomic<int> g_signal{0};       // the CPU signal, once chosen
std::atomic<bool> g_running{false};  // sources are given to threads
std::atomic<bool> g_refused{false};  // the program took the signal: no sampling any more
constinit base::SpinLock g_lock;     // starting, stopping, giving sources

// The source chosen at the first start: perf events unless refused (or GPROF_CPU_TIMER).
enum class Kind { Unknown, Perf, Timer };
Kind g_kind = Kind::Unknown;
int g_perf_refused_errno = 0;
// Perf descriptors are kept at or above g_fd_floor, out of the way of the program's low
// descriptors (and of select()'s 1024), at most g_fd_budget of them; past it, timers.
int g_fd_floor = 0;
int g_fd_budget = 0;
int g_perf_fds = 0;
int g_process_timer = -1;
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

// The event counts its thread's CPU time in the kernel too, but samples only in user space: the
// periods that ended in the kernel were skipped. Their time since the last sample is charged to
// this one, so the profile's total matches the thread's CPU time (CLOCK_THREAD_CPUTIME_ID).
uint64_t skipped_since_last(CpuThreadSlot* slot, bool first) {
    uint64_t counted = 0;
    if (read(slot->perf_fd, &counted, sizeof counted) != sizeof counted) return 0;
    uint64_t period = first ? slot->perf_first_period : static_cast<uint64_t>(period_nanos());
    uint64_t elapsed = counted > slot->counted_seen ? counted - slot->counted_seen : 0;
    slot->counted_seen = counted;
    return elapsed > period ? elapsed - period : 0;
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
    } else if (info->si_code == POLL_IN || info->si_code == POLL_HUP) {
        // A perf event's overflow. After kPerfRefresh of them it stopped itself (POLL_HUP) and
        // is re-armed here; after its random first period it gets the full one.
        CpuThreadSlot* slot = record::cpu_slot_for_sample(1);
        if (slot != nullptr) {
            uint64_t in_kernel = 0;
            if (slot->perf_fd == info->si_fd) {
                bool first = slot->perf_first;
                if (first) {
                    uint64_t period = static_cast<uint64_t>(period_nanos());
                    ioctl(info->si_fd, PERF_EVENT_IOC_PERIOD, &period);
                    slot->perf_first = false;
                }
                in_kernel = skipped_since_last(slot, first);
            }
            record::record_cpu_sample(slot, interrupted, 1, in_kernel,
                                      record::CpuSource::PerfEvent, gprof_image());
        }
        if (info->si_code == POLL_HUP) ioctl(info->si_fd, PERF_EVENT_IOC_REFRESH, kPerfRefresh);
    }
    errno = saved;
}

// ---- Sources. ----

long perf_event_open(struct perf_event_attr* attr, pid_t tid) {
    return syscall(SYS_perf_event_open, attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

// Whether `fd` is still the event gprof opened (a program may close any descriptor, and reuse
// its number for a file of its own, which gprof must then never touch).
bool still_ours(int fd, uint64_t id) {
    uint64_t now = 0;
    return ioctl(fd, PERF_EVENT_IOC_ID, &now) == 0 && now == id;
}

bool start_perf(CpuThreadSlot* slot, pid_t tid) {
    if (g_perf_fds >= g_fd_budget) return false;
    struct perf_event_attr attr = {};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.sample_period = static_cast<uint64_t>(first_expiry());
    attr.disabled = 1;
    // Not sampled in the kernel: a signal raised there during execve would be delivered to the
    // new program, which does not handle it. The time is charged to the next sample instead
    // (skipped_since_last).
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    int fd = static_cast<int>(perf_event_open(&attr, tid));
    if (fd < 0) return false;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, g_fd_floor);
    close(fd);
    if (high < 0) return false;
    struct f_owner_ex owner = {F_OWNER_TID, tid};
    uint64_t id = 0;
    if (fcntl(high, F_SETFL, O_ASYNC) != 0 ||
        fcntl(high, F_SETSIG, g_signal.load(std::memory_order_relaxed)) != 0 ||
        fcntl(high, F_SETOWN_EX, &owner) != 0 || ioctl(high, PERF_EVENT_IOC_ID, &id) != 0) {
        close(high);
        return false;
    }
    slot->perf_fd = high;
    slot->perf_id = id;
    slot->perf_first = true;
    slot->perf_first_period = attr.sample_period;
    slot->counted_seen = 0;
    ++g_perf_fds;
    if (ioctl(high, PERF_EVENT_IOC_REFRESH, kPerfRefresh) != 0) {
        slot->perf_fd = -1;
        --g_perf_fds;
        close(high);
        return false;
    }
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

// Under g_lock.
bool give_source(CpuThreadSlot* slot, pid_t tid) {
    if (slot->has_source()) return true;
    if (g_kind == Kind::Perf && start_perf(slot, tid)) return true;
    return start_timer(slot, tid);
}

// Under g_lock (or in the thread itself, at its end).
void stop_source(CpuThreadSlot* slot) {
    if (slot->timer >= 0) syscall(SYS_timer_delete, slot->timer);
    slot->timer = -1;
    if (slot->perf_fd >= 0) {
        if (still_ours(slot->perf_fd, slot->perf_id)) close(slot->perf_fd);
        --g_perf_fds;
    }
    slot->perf_fd = -1;
    slot->perf_first = false;
}

// Perf events, unless refused; decided once, with the descriptor room they may use.
void choose_kind(const Config& c) {
    if (g_kind != Kind::Unknown) return;
    struct rlimit limit;
    int soft = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (1u << 20)
                   ? static_cast<int>(limit.rlim_cur)
                   : 1 << 20;
    g_fd_floor = soft > 2048 ? 1024 : soft * 3 / 4;
    g_fd_budget = (soft - g_fd_floor) / 2;
    if (c.cpu_timer_only) {
        g_kind = Kind::Timer;
        return;
    }
    struct perf_event_attr attr = {};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.sample_period = 1000000;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    int fd = static_cast<int>(perf_event_open(&attr, 0));
    if (fd >= 0) {
        close(fd);
        g_kind = g_fd_budget > 0 ? Kind::Perf : Kind::Timer;
    } else {
        g_perf_refused_errno = errno;
        g_kind = Kind::Timer;
    }
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
        if (slot->perf_fd >= 0 && !still_ours(slot->perf_fd, slot->perf_id)) {
            slot->perf_fd = -1;  // the program's now: never closed by gprof
            --g_perf_fds;
        }
        return true;
    });
    int without_source = 0;
    for_each_program_thread([&](pid_t tid) {
        CpuThreadSlot* slot = record::find_cpu_slot(tid);
        if (slot == nullptr) slot = record::claim_cpu_slot(tid);
        if (slot == nullptr || !give_source(slot, tid)) ++without_source;
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

void* drain_main(void*) {
    base::ReentryGuard guard;
    struct timespec last_sweep;
    clock_gettime(CLOCK_MONOTONIC, &last_sweep);
    while (!g_thread_quit.load(std::memory_order_acquire)) {
        record::wait_for_cpu_samples(kSweepMs);
        if (g_thread_quit.load(std::memory_order_acquire)) break;
        record::drain_cpu_samples();
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - last_sweep.tv_sec) * 1000 + (now.tv_nsec - last_sweep.tv_nsec) / 1000000 >=
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
    const Config& c = config();
    if (g_signal.load(std::memory_order_relaxed) == 0) {
        int sig = base::install_on_free_signal(on_cpu_signal, c.dump_signal);
        if (sig == 0) {
            log::problem("no free real-time signal for the CPU profile; it is off");
            g_refused.store(true, std::memory_order_release);
            return false;
        }
        g_signal.store(sig, std::memory_order_release);
    }
    unwind::publish_signal_modules();
    choose_kind(c);
    record::set_cpu_source(source_description());
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

const char* source_description() {
    switch (g_kind) {
        case Kind::Perf:
            return "perf_event_open task-clock events per thread";
        case Kind::Timer:
            return g_perf_refused_errno != 0
                       ? "CLOCK_THREAD_CPUTIME_ID timers per thread (perf events refused)"
                       : "CLOCK_THREAD_CPUTIME_ID timers per thread";
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
    give_source(slot, tid);
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
    }
    return true;
}

void stop_thread() {
    g_thread_quit.store(true, std::memory_order_release);
    record::wake_cpu_drain();
}

void child_after_fork() {
    // The parent's perf descriptors are inherited, its events still counting the parent's
    // threads: closed here (timers are not inherited).
    record::for_each_cpu_slot([](CpuThreadSlot* slot) {
        if (slot->perf_fd >= 0 && still_ours(slot->perf_fd, slot->perf_id)) close(slot->perf_fd);
        return true;
    });
    g_perf_fds = 0;
    g_process_timer = -1;
    g_lock.unlock();
    unwind::reset_signal_modules_after_fork();
    record::reset_cpu_samples_after_fork();
    g_thread_running.store(false, std::memory_order_relaxed);
    bool was_running = g_running.exchange(false, std::memory_order_acq_rel);
    if (was_running && (config().profiles & kProfileCpu)) begin(record::CpuSession::Dump);
}

}  // namespace gprof::cpu_sampler
