#include "unwind/thread_stacks.h"

#include <dirent.h>
#include <link.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/files.h"
#include "base/free_signal.h"
#include "unwind/libunwind.h"


namespace gprof::unwind {
namespace {

// One request at a time (dumps are exclusive). The signalled thread claims it (Requested ->
// Claimed), copies its interrupted registers into g_context, publishes Parked and waits, its stack
// frozen, while the dumper walks that stack; the dumper then sets Released, and the thread Left. The handler itself never unwinds,
// allocates or takes a lock: the thread may have been interrupted inside the allocator or the
// loader, holding a lock the unwinder needs. Its wait is bounded (kParkMs): if the dumper is held
// up (say, by a lock the parked thread holds), the thread leaves (Parked -> Left), the program
// goes on, and the dumper discards its walk. The dumper gives up on a thread that never answers
// with Requested -> Abandoned; a late signal finds no request for it and returns at once.
enum State : int { kIdle, kRequested, kClaimed, kParked, kReleased, kLeft, kAbandoned };
constexpr int kParkMs = 100;
constexpr int kAnswerMs = 200;
std::atomic<int> g_state{kIdle};
std::atomic<pid_t> g_target{0};
ucontext_t g_context;
std::atomic<int> g_signal{0};

void futex_wake(std::atomic<int>* word) {
    syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// Waits while *word == value, for at most `ms` in all. Async-signal-safe.
void futex_wait_while(std::atomic<int>* word, int value, int ms) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (word->load(std::memory_order_acquire) == value) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left_ns = ms * 1000000L - ((now.tv_sec - start.tv_sec) * 1000000000L +
                                        (now.tv_nsec - start.tv_nsec));
        if (left_ns <= 0) return;
        struct timespec slice = {0, left_ns < 2000000 ? left_ns : 2000000};
        syscall(SYS_futex, reinterpret_cast<int*>(word), FUTEX_WAIT_PRIVATE, value, &slice,
                nullptr, 0);
    }
}

void on_capture_signal(int, siginfo_t* info, void* context) {
    int saved_errno = errno;
    // Only gprof's own request for this very thread; a stale or foreign signal is ignored.
    if (info->si_code == SI_TKILL && info->si_pid == getpid() &&
        g_target.load(std::memory_order_acquire) == gettid()) {
        int expected = kRequested;
        if (g_state.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel)) {
            memcpy(&g_context, context, sizeof g_context);
            g_state.store(kParked, std::memory_order_release);
            futex_wake(&g_state);
            futex_wait_while(&g_state, kParked, kParkMs);
            // Released, or not within kParkMs: either way this request ends here. Only this
            // request's states are replaced, never a later request's.
            expected = kParked;
            if (!g_state.compare_exchange_strong(expected, kLeft, std::memory_order_acq_rel) &&
                expected == kReleased)
                g_state.compare_exchange_strong(expected, kLeft, std::memory_order_acq_rel);
            futex_wake(&g_state);
        }
    }
    errno = saved_errno;
}

// The capture signal, re-chosen if the program took it over.
int capture_signal(int reserved) {
    int sig = g_signal.load(std::memory_order_relaxed);
    if (sig != 0 && base::handler_installed(sig, on_capture_signal)) return sig;
    sig = base::install_on_free_signal(on_capture_signal, reserved);
    g_signal.store(sig, std::memory_order_relaxed);
    return sig;
}

// Reads a small /proc file into buf (NUL-terminated). False if it cannot be read.
bool read_proc(pid_t tid, const char* leaf, char* buf, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/%s", static_cast<int>(tid), leaf);
    int fd = base::open_read_only(path);
    if (fd < 0) return false;
    ssize_t n;
    do {
        n = read(fd, buf, size - 1);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0) return false;
    buf[n] = '\0';
    return true;
}

struct Parked {
    bool in_syscall = false;
    bool restarts = false;  // the call resumes after an SA_RESTART handler: a signal is harmless
    uintptr_t sp = 0, pc = 0;
};

// Whether system call `nr` with these arguments is restarted after a handler installed with
// SA_RESTART, rather than failing with EINTR (signal(7) and the kernel's -ERESTARTSYS returns).
// Only the common, certain cases: anything else is walked from outside.
bool restarts_after_handler(unsigned long long nr, const unsigned long long* arg) {
    switch (nr) {
        // Not a write: one that has written part of its data returns that count when a handler
        // runs (a short write, which programs rarely expect), SA_RESTART or not.
        case SYS_read:
        case SYS_readv:
        case SYS_pread64: {
            // Not on a socket: one with SO_RCVTIMEO or SO_SNDTIMEO fails with EINTR.
            struct stat st;
            return fstat(static_cast<int>(arg[0]), &st) == 0 && !S_ISSOCK(st.st_mode);
        }
        case SYS_wait4:
        case SYS_waitid:
        case SYS_flock:
            return true;
        case SYS_futex: {
            // A wait without a timeout (a mutex, a condition variable or a join waiting for
            // good); with one, the kernel's restart block is cancelled by any handler.
            unsigned long long op = arg[1] & ~static_cast<unsigned long long>(FUTEX_PRIVATE_FLAG |
                                                                              FUTEX_CLOCK_REALTIME);
            return (op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET) && arg[3] == 0;
        }
        default:
            return false;
    }
}

// /proc/<tid>/syscall: "running", or "-1 sp pc" (blocked outside a system call), or
// "nr arg1 ... arg6 sp pc".
Parked parked_state(pid_t tid) {
    Parked p;
    char buf[256];
    if (!read_proc(tid, "syscall", buf, sizeof buf)) return p;
    if (buf[0] < '0' || buf[0] > '9') return p;  // "running" or "-1 ...": not in a system call
    unsigned long long field[9];
    char* cursor = buf;
    int n = 0;
    for (; n < 9; ++n) {
        char* end;
        field[n] = strtoull(cursor, &end, n == 0 ? 10 : 16);
        if (end == cursor) break;
        cursor = end;
    }
    if (n != 9) return p;
    p.in_syscall = true;
    p.restarts = restarts_after_handler(field[0], field + 1);
    p.sp = static_cast<uintptr_t>(field[7]);
    p.pc = static_cast<uintptr_t>(field[8]);
    return p;
}

bool signal_blocked(pid_t tid, int sig) {
    char buf[2048];
    if (!read_proc(tid, "status", buf, sizeof buf)) return false;
    const char* line = strstr(buf, "\nSigBlk:");
    if (line == nullptr) return false;
    unsigned long long mask = strtoull(line + 8, nullptr, 16);
    return (mask >> (sig - 1)) & 1;
}

void read_name(pid_t tid, char* name) {
    char buf[32];
    if (!read_proc(tid, "comm", buf, sizeof buf)) return;
    size_t len = strcspn(buf, "\n");
    if (len > 15) len = 15;
    memcpy(name, buf, len);
    name[len] = '\0';
}

// The executable segments of the loaded modules, to tell a return address from other data.
struct CodeRanges {
    std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
    bool contains(uintptr_t pc) const {
        for (const auto& [lo, hi] : ranges)
            if (pc >= lo && pc < hi) return true;
        return false;
    }
};

CodeRanges code_ranges() {
    CodeRanges code;
    dl_iterate_phdr(
        [](struct dl_phdr_info* info, size_t, void* data) {
            auto* ranges = static_cast<CodeRanges*>(data);
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr)& ph = info->dlpi_phdr[i];
                if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
                    ranges->ranges.emplace_back(info->dlpi_addr + ph.p_vaddr,
                                                info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
            }
            return 0;
        },
        &code);
    return code;
}

// A frame pointer for a parked thread, whose registers other than the stack and instruction
// pointers are unknown. A walk that stops at a frame built with a frame pointer (-O0 code, or
// distributions built with -fno-omit-frame-pointer) needs it. Candidates: stack slots at or above
// that frame's stack pointer that start a chain of two frame records (a saved frame pointer
// further up the stack, or 0, then a return address into code).
bool frame_record_at(const uintptr_t* words, size_t n, size_t i, uintptr_t base, const CodeRanges& code,
                     int levels) {
    if (i + 1 >= n) return false;
    uintptr_t here = base + i * sizeof(uintptr_t);
    uintptr_t saved = words[i];
    if (!code.contains(words[i + 1])) return false;
    if (saved == 0) return true;  // the outermost frame
    if (saved <= here || saved > here + (1u << 20) || (saved & 7) != 0) return false;
    if (levels == 1) return true;
    return frame_record_at(words, n, (saved - base) / sizeof(uintptr_t), base, code, levels - 1);
}

// Candidates for the frame pointer, lowest first, up to `max`.
int frame_pointer_candidates(uintptr_t sp, const CodeRanges& code, uintptr_t* out, int max) {
    constexpr size_t kWords = 2048;
    static uintptr_t words[kWords];  // only the dumper thread walks parked threads
    struct iovec local = {words, sizeof words};
    struct iovec remote = {reinterpret_cast<void*>(sp), sizeof words};
    ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (got <= 16) return 0;
    size_t n = static_cast<size_t>(got) / sizeof(uintptr_t);
    int found = 0;
    for (size_t i = 0; i + 1 < n && i < 512 && found < max; ++i) {
        if (frame_record_at(words, n, i, sp, code, 2)) out[found++] = sp + i * sizeof(uintptr_t);
    }
    return found;
}

int walk_from(uintptr_t sp, uintptr_t pc, uintptr_t fp, uintptr_t* pcs, WalkEnd* end) {
    ucontext_t context;
    memset(&context, 0, sizeof context);
    context.uc_mcontext.gregs[REG_RSP] = static_cast<greg_t>(sp);
    context.uc_mcontext.gregs[REG_RIP] = static_cast<greg_t>(pc);
    context.uc_mcontext.gregs[REG_RBP] = static_cast<greg_t>(fp);
    return capture_context(&context, false, pcs, kMaxFrames, end);
}

// The walk of a parked thread: plain, or, when that stops short, the deepest walk among the
// frame-pointer guesses that reach the thread's outermost frame. A stale frame record left in an
// uninitialised local usually points into the real chain further up, so its walk also ends well
// but skips the frames in between: the deepest complete walk is the real one.
int walk_parked_once(const Parked& p, const CodeRanges& code, uintptr_t* pcs) {
    WalkEnd end;
    int depth = walk_from(p.sp, p.pc, 0, pcs, &end);
    if (end.complete) return depth;
    uintptr_t candidates[8];
    int n = frame_pointer_candidates(end.sp, code, candidates, 8);
    for (int i = 0; i < n; ++i) {
        uintptr_t guessed[kMaxFrames];
        WalkEnd guessed_end;
        int guessed_depth = walk_from(p.sp, p.pc, candidates[i], guessed, &guessed_end);
        if (guessed_end.complete && guessed_depth > depth) {
            memcpy(pcs, guessed, sizeof(uintptr_t) * static_cast<size_t>(guessed_depth));
            depth = guessed_depth;
        }
    }
    return depth;
}

// Walks a parked thread's stack from the dumper. The thread may leave its system call meanwhile;
// then the registers read before and after differ and the walk is repeated.
bool walk_parked(pid_t tid, Parked first, const CodeRanges& code, ThreadSnapshot* out) {
    for (int attempt = 0; attempt < 3; ++attempt) {
        out->depth = walk_parked_once(first, code, out->pcs);
        Parked again = parked_state(tid);
        if (again.in_syscall && again.sp == first.sp && again.pc == first.pc) return true;
        if (!again.in_syscall) return false;
        first = again;
    }
    out->depth = 0;
    return false;
}

// Asks a running thread to park in the capture handler, walks its frozen stack, and lets it go.
// Returns true with out->depth set, or false.
bool walk_by_signal(pid_t tid, int sig, ThreadCensus* census, ThreadSnapshot* out) {
    if (signal_blocked(tid, sig)) {
        ++census->signal_blocked;
        return false;
    }
    g_target.store(tid, std::memory_order_release);
    g_state.store(kRequested, std::memory_order_release);
    if (syscall(SYS_tgkill, getpid(), tid, sig) != 0) {
        g_target.store(0, std::memory_order_release);
        g_state.store(kIdle, std::memory_order_release);
        return false;  // the thread has exited
    }
    futex_wait_while(&g_state, kRequested, kAnswerMs);
    int expected = kRequested;
    bool answered = !g_state.compare_exchange_strong(expected, kAbandoned, std::memory_order_acq_rel);
    futex_wait_while(&g_state, kClaimed, kParkMs);  // a copy of a few hundred bytes
    bool walked = false;
    if (answered && g_state.load(std::memory_order_acquire) == kParked) {
        ucontext_t context;
        memcpy(&context, &g_context, sizeof context);
        out->depth = capture_context(&context, true, out->pcs, kMaxFrames);
        // Still parked after the walk: the stack did not move under it.
        expected = kParked;
        walked = g_state.compare_exchange_strong(expected, kReleased, std::memory_order_acq_rel);
        futex_wake(&g_state);
        futex_wait_while(&g_state, kReleased, kParkMs);  // it leaves the handler: Left
    }
    g_target.store(0, std::memory_order_release);
    g_state.store(kIdle, std::memory_order_release);
    if (!walked) {
        out->depth = 0;
        ++census->no_answer;
        return false;
    }
    ++census->signalled;
    return true;
}

}  // namespace

std::vector<ThreadSnapshot> capture_all_threads(bool (*skip)(pid_t tid), int reserved,
                                                ThreadCensus* census) {
    std::vector<ThreadSnapshot> threads;
    *census = ThreadCensus{};
    ensure_libunwind();  // the walks below are libunwind's
    DIR* dir = opendir("/proc/self/task");
    if (dir == nullptr) return threads;
    std::vector<pid_t> tids;
    while (struct dirent* entry = readdir(dir)) {
        pid_t tid = static_cast<pid_t>(atoi(entry->d_name));
        if (tid > 0 && tid != gettid() && !(skip && skip(tid))) tids.push_back(tid);
    }
    closedir(dir);

    int sig = capture_signal(reserved);
    const CodeRanges code = code_ranges();
    census->signal = sig;
    threads.reserve(tids.size());
    for (pid_t tid : tids) {
        ThreadSnapshot snap;
        snap.tid = tid;
        read_name(tid, snap.name);
        if (snap.name[0] == '\0') continue;  // gone already
        ++census->threads;
        // A signal where it is harmless (the thread runs, or its call restarts): the thread's own
        // walk sees every register. A walk from outside where a handler would cause EINTR.
        Parked parked = parked_state(tid);
        if (parked.in_syscall && !parked.restarts && walk_parked(tid, parked, code, &snap)) {
            ++census->parked;
        } else if (sig != 0) {
            walk_by_signal(tid, sig, census, &snap);
        } else {
            ++census->no_answer;
        }
        threads.push_back(snap);
    }
    // The calling thread walks its own stack (the program's main thread, in the at-exit dump).
    pid_t self = gettid();
    if (!(skip && skip(self))) {
        ThreadSnapshot snap;
        snap.tid = self;
        read_name(self, snap.name);
        snap.depth = capture_once(snap.pcs, kMaxFrames);
        threads.push_back(snap);
        ++census->threads;
    }
    return threads;
}

}  // namespace gprof::unwind
