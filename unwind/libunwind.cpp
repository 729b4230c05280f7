#include "unwind/libunwind.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "unwind/stack.h"
#include "unwind/thread_bounds.h"

namespace gprof::unwind {
namespace {

// libunwind is opened at start with RTLD_LOCAL, not linked: libunwind.so.8 also defines
// _Unwind_RaiseException and the rest of the C++ exception ABI, and as a dependency of a preloaded
// library it would come before libgcc_s in the global scope of a program linked with --as-needed,
// taking over its exceptions. Debian's static libunwind.a is not position-independent, so it
// cannot be linked into a shared library either. Only the three entry points below are used.
using BacktraceFn = int (*)(void**, int);
using CachingPolicyFn = int (*)(void*, int);
using InitLocal2Fn = int (*)(unw_cursor_t*, unw_context_t*, int);
using StepFn = int (*)(unw_cursor_t*);
using GetRegFn = int (*)(unw_cursor_t*, int, unw_word_t*);
using GetContextFn = int (*)(unw_context_t*);
using IsSignalFrameFn = int (*)(unw_cursor_t*);
constexpr int kCachePerThread = 2;  // UNW_CACHE_PER_THREAD

BacktraceFn g_backtrace = nullptr;
InitLocal2Fn g_init_local2 = nullptr;
StepFn g_step = nullptr;
GetRegFn g_get_reg = nullptr;
GetContextFn g_getcontext = nullptr;  // libunwind's: no system call (glibc's saves the signal mask)
IsSignalFrameFn g_is_signal_frame = nullptr;
// glibc's executable segment (handler_interrupted_gprof looks through its frames).
uintptr_t g_libc_lo = 0, g_libc_hi = 0;
std::atomic<bool> g_ready{false};

// Memory reads during unwinding. libunwind's own reader validates doubtful addresses by writing
// them into a pipe it keeps open; after a program's closefrom(3) it "re-opens" that pipe by
// closing its old descriptor numbers, which by then may be the program's files (libunwind#291).
// gprof's reader needs no descriptor: reads inside the calling thread's own stack (nearly all of
// them) are plain loads; any other page is checked once per captured stack with
// process_vm_readv on ourselves, which fails cleanly on unmapped or unreadable memory.
using AccessMemFn = int (*)(unw_addr_space_t, unw_word_t, unw_word_t*, int, void*);
AccessMemFn g_libunwind_access_mem = nullptr;
// Set while a walk runs inside a signal handler: the thread may have been interrupted inside the
// allocator, so nothing may allocate (pthread_getattr_np does); reads then take the checked path.
constinit thread_local bool t_in_handler [[gnu::tls_model("initial-exec")]] = false;
constexpr int kPageCacheSize = 16;
constinit thread_local uintptr_t t_pages[kPageCacheSize]
    [[gnu::tls_model("initial-exec")]] = {};  // readable pages (page number + 1), this capture
constinit thread_local bool t_pages_used [[gnu::tls_model("initial-exec")]] = false;

// A walk forgets the pages an earlier one found readable: they may be gone now. Most walks read
// only their own stack and have nothing to forget.
void forget_pages() {
    if (!t_pages_used) return;
    for (uintptr_t& page : t_pages) page = 0;
    t_pages_used = false;
}

bool readable(uintptr_t addr) {
    uintptr_t page = addr >> 12;
    uintptr_t& slot = t_pages[page % kPageCacheSize];
    if (slot == page + 1) return true;
    char byte;
    struct iovec local = {&byte, 1};
    struct iovec remote = {reinterpret_cast<void*>(page << 12), 1};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != 1) return false;
    slot = page + 1;
    t_pages_used = true;
    return true;
}

int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t* val, int write, void* arg) {
    if (write) return g_libunwind_access_mem(as, addr, val, write, arg);
    bool in_stack = thread_bounds().holds(addr, sizeof(unw_word_t));
    if (!in_stack && (!readable(addr) || !readable(addr + sizeof(unw_word_t) - 1)))
        return -UNW_EINVAL;
    *val = *reinterpret_cast<const unw_word_t*>(addr);
    return 0;
}

// libunwind's initialisation opens a pipe, kept for ever, to check addresses before its own
// memory reads; gprof replaces those reads (access_mem), so the pipe is never used, and a program
// must not find two descriptors of gprof's open (its first open() returning 5, or 0 if it started
// with stdin closed). libunwind keeps the pipe's numbers in a static int[2] that starts as
// {-1, -1}: before its initialisation every such pair in its writable data is noted, and after it
// the one that then holds a pipe's two ends (non-blocking and close-on-exec, as libunwind opens
// it) is closed. Nothing is guessed from descriptor numbers, so a pipe that one of the program's
// threads opens meanwhile is never taken for it.
struct PipeSlots {
    static constexpr int kMax = 16;
    int* slots[kMax];
    int count = 0;
    uintptr_t base = 0;
};

int find_pipe_slots(struct dl_phdr_info* info, size_t, void* arg) {
    auto* found = static_cast<PipeSlots*>(arg);
    if (info->dlpi_addr != found->base) return 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_W)) continue;
        // The initialised part only: {-1, -1} is not zero.
        auto* words = reinterpret_cast<int*>(info->dlpi_addr + ph.p_vaddr);
        size_t n = ph.p_filesz / sizeof(int);
        for (size_t k = 0; k + 1 < n && found->count < PipeSlots::kMax; ++k)
            if (words[k] == -1 && words[k + 1] == -1) found->slots[found->count++] = words + k;
    }
    return 1;
}

PipeSlots pipe_slots(void* lib) {
    PipeSlots found;
    struct link_map* map = nullptr;
    if (dlinfo(lib, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) return found;
    found.base = map->l_addr;
    dl_iterate_phdr(find_pipe_slots, &found);
    return found;
}

bool is_unused_pipe(int read_fd, int write_fd) {
    struct stat read_end, write_end;
    if (read_fd < 0 || write_fd < 0 || read_fd == write_fd) return false;
    if (fstat(read_fd, &read_end) != 0 || fstat(write_fd, &write_end) != 0) return false;
    if (!S_ISFIFO(read_end.st_mode) || read_end.st_ino != write_end.st_ino ||
        read_end.st_dev != write_end.st_dev)
        return false;
    int read_flags = fcntl(read_fd, F_GETFL), write_flags = fcntl(write_fd, F_GETFL);
    return read_flags != -1 && write_flags != -1 && (read_flags & O_ACCMODE) == O_RDONLY &&
           (write_flags & O_ACCMODE) == O_WRONLY && (read_flags & O_NONBLOCK) &&
           (write_flags & O_NONBLOCK) && (fcntl(read_fd, F_GETFD) & FD_CLOEXEC) &&
           (fcntl(write_fd, F_GETFD) & FD_CLOEXEC);
}

void close_validation_pipe(const PipeSlots& before) {
    for (int i = 0; i < before.count; ++i) {
        int* slot = before.slots[i];
        if (is_unused_pipe(slot[0], slot[1])) {
            close(slot[0]);
            close(slot[1]);
            return;
        }
    }
}

// Finds glibc's executable segment from the link map of the object defining getpid.
void find_libc_text() {
    Dl_info info;
    struct link_map* map = nullptr;
    if (dladdr1(reinterpret_cast<void*>(&getpid), &info, reinterpret_cast<void**>(&map),
                RTLD_DL_LINKMAP) == 0 ||
        map == nullptr || info.dli_fbase == nullptr)
        return;
    const auto* ehdr = static_cast<const ElfW(Ehdr)*>(info.dli_fbase);
    const auto* phdr = reinterpret_cast<const ElfW(Phdr)*>(
        static_cast<const char*>(info.dli_fbase) + ehdr->e_phoff);
    for (int i = 0; i < ehdr->e_phnum; ++i) {
        if (phdr[i].p_type != PT_LOAD || (phdr[i].p_flags & PF_X) == 0) continue;
        g_libc_lo = map->l_addr + phdr[i].p_vaddr;
        g_libc_hi = g_libc_lo + phdr[i].p_memsz;
        return;
    }
}

bool in_libc(uintptr_t pc) { return pc >= g_libc_lo && pc < g_libc_hi; }

bool read_checked(uintptr_t addr, void* out, size_t n) {
    if (!readable(addr) || !readable(addr + n - 1)) return false;
    memcpy(out, reinterpret_cast<const void*>(addr), n);
    return true;
}

// Whether the call that returns to `ra` went to libgprof.so through the caller's GOT: `call
// rel32` to a PLT stub (`endbr64`, then `jmp *GOT(%rip)`, `bnd` or not), or `call *GOT(%rip)`.
// (With glibc's allocator, gprof's malloc jumps to glibc's and leaves no frame of its own.)
bool calls_gprof(uintptr_t ra) {
    unsigned char call[6];
    int32_t disp;
    uintptr_t slot;
    if (!read_checked(ra - 6, call, 6)) return false;
    if (call[0] == 0xff && call[1] == 0x15) {
        memcpy(&disp, call + 2, 4);
        slot = ra + disp;
    } else if (call[1] == 0xe8) {
        memcpy(&disp, call + 2, 4);
        uintptr_t stub = ra + disp;
        unsigned char code[11];
        if (!read_checked(stub, code, sizeof code)) return false;
        size_t at = 0;
        if (code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa) at = 4;
        if (code[at] == 0xf2) ++at;
        if (code[at] != 0xff || code[at + 1] != 0x25) return false;
        memcpy(&disp, code + at + 2, 4);
        slot = stub + at + 6 + disp;
    } else {
        return false;
    }
    uintptr_t target;
    return read_checked(slot, &target, sizeof target) && in_gprof(target);
}

// The first n entries of pcs without gprof's own frames, at most max of them, in place.
int without_gprof(uintptr_t* pcs, int n, int max) {
    int depth = 0;
    for (int i = 0; i < n && depth < max; ++i)
        if (!in_gprof(pcs[i])) pcs[depth++] = pcs[i];
    return depth;
}

}  // namespace

namespace {
// Set when libunwind could not be opened for a passing reason (no descriptor left, say): the next
// ensure_libunwind() tries again, and nothing is said.
bool g_load_failed_for_now = false;
}  // namespace

bool load_libunwind() {
    void* lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
        const char* why = dlerror();
        g_load_failed_for_now = why != nullptr && strstr(why, "No such file") == nullptr;
        if (!g_load_failed_for_now)
            log::problem("libunwind.so.8 not found (Debian package libunwind8); stacks that gprof "
                         "cannot walk itself are left out");
        return false;
    }
    struct ClosePipe {
        PipeSlots before;
        ~ClosePipe() {
            int saved = errno;
            close_validation_pipe(before);
            errno = saved;
        }
    } close_pipe{pipe_slots(lib)};
    auto backtrace = reinterpret_cast<BacktraceFn>(dlsym(lib, "unw_backtrace"));
    auto set_policy = reinterpret_cast<CachingPolicyFn>(dlsym(lib, "_ULx86_64_set_caching_policy"));
    void* local_space = dlsym(lib, "_ULx86_64_local_addr_space");
    if (backtrace == nullptr || set_policy == nullptr || local_space == nullptr) {
        log::problem("libunwind.so.8 lacks unw_backtrace; stacks that gprof cannot walk itself "
                     "are left out");
        return false;
    }
    // Per-thread caches would keep libunwind from blocking signals (two sigprocmask calls) around
    // every look-up in its global cache of frame rules, which each unw_step makes. Debian's
    // libunwind 1.6.2 is built without them (--enable-per-thread-cache is off by default) and
    // quietly keeps the global cache: measured, two sigprocmask per step. Asked for anyway, for a
    // libunwind that has them.
    set_policy(*static_cast<void**>(local_space), kCachePerThread);
    using GetAccessorsFn = unw_accessors_t* (*)(unw_addr_space_t);
    auto get_accessors = reinterpret_cast<GetAccessorsFn>(dlsym(lib, "_Ux86_64_get_accessors"));
    unw_accessors_t* accessors =
        get_accessors ? get_accessors(*static_cast<unw_addr_space_t*>(local_space)) : nullptr;
    if (accessors == nullptr || accessors->access_mem == nullptr) {
        log::problem("libunwind.so.8 lacks unw_get_accessors; stacks that gprof cannot walk "
                     "itself are left out");
        return false;
    }
    g_libunwind_access_mem = accessors->access_mem;
    accessors->access_mem = access_mem;
    g_init_local2 = reinterpret_cast<InitLocal2Fn>(dlsym(lib, "_ULx86_64_init_local2"));
    g_step = reinterpret_cast<StepFn>(dlsym(lib, "_ULx86_64_step"));
    g_get_reg = reinterpret_cast<GetRegFn>(dlsym(lib, "_ULx86_64_get_reg"));
    g_getcontext = reinterpret_cast<GetContextFn>(dlsym(lib, "_Ux86_64_getcontext"));
    g_is_signal_frame = reinterpret_cast<IsSignalFrameFn>(dlsym(lib, "_ULx86_64_is_signal_frame"));
    find_libc_text();
    g_backtrace = backtrace;
    g_ready.store(true, std::memory_order_release);
    // libunwind's one-time initialisation, and its caches for the start-up path, happen here
    // rather than inside the first sampled malloc; without the frame cache, which a process that
    // never samples in its main thread does not need.
    uintptr_t pcs[kMaxFrames];
    capture_once(pcs, kMaxFrames);
    return true;
}

bool libunwind_ready() { return g_ready.load(std::memory_order_acquire); }

namespace {

// 0: not loaded yet; 1: being loaded; 2: tried (g_ready says whether it worked).
std::atomic<int> g_load_state{0};
std::atomic<bool (*)()> g_load_elsewhere{nullptr};

void sleep_1ms() {
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, nullptr);
}

// Waits up to wait_ms for a load in progress elsewhere.
bool wait_for_load(int wait_ms) {
    for (int waited = 0; g_load_state.load(std::memory_order_acquire) != 2; ++waited) {
        if (waited >= wait_ms) return false;
        sleep_1ms();
    }
    return libunwind_ready();
}

}  // namespace

bool ensure_libunwind(int wait_ms) {
    if (g_load_state.load(std::memory_order_acquire) == 2) return libunwind_ready();
    int expected = 0;
    if (g_load_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        g_load_failed_for_now = false;
        load_libunwind();
        g_load_state.store(g_load_failed_for_now ? 0 : 2, std::memory_order_release);
        return libunwind_ready();
    }
    return wait_for_load(wait_ms);
}

void libunwind_child_after_fork() {
    int loading = 1;
    g_load_state.compare_exchange_strong(loading, 2, std::memory_order_acq_rel);
}

void set_libunwind_loader(bool (*ask)()) {
    g_load_elsewhere.store(ask, std::memory_order_release);
}

bool libunwind_for_sample() {
    if (libunwind_ready()) [[likely]]
        return true;
    if (g_load_state.load(std::memory_order_acquire) == 2) return false;
    bool (*ask)() = g_load_elsewhere.load(std::memory_order_acquire);
    if (ask == nullptr || !ask()) return false;
    // Samples wait for the load from a budget for the whole process: a sampling thread may hold
    // a lock the loading thread needs (the loader's; an allocator's, interrupted by a signal
    // handler that allocates), and then every sample would stall in turn.
    static std::atomic<int> budget_ms{kSampleLoadBudgetMs};
    int wait_ms = std::min(budget_ms.load(std::memory_order_relaxed), kSampleLoadWaitMs);
    if (wait_ms <= 0) return libunwind_ready();
    int saved = errno;  // the allocation path leaves errno alone
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool ready = wait_for_load(wait_ms);
    clock_gettime(CLOCK_MONOTONIC, &end);
    budget_ms.fetch_sub(static_cast<int>((end.tv_sec - start.tv_sec) * 1000 +
                                         (end.tv_nsec - start.tv_nsec) / 1000000),
                        std::memory_order_relaxed);
    errno = saved;
    return ready;
}

namespace {

// Walks taken in this thread so far, up to kStepwiseWalks.
constinit thread_local uint32_t t_walks [[gnu::tls_model("initial-exec")]] = 0;

const ucontext_t* innermost_signal_context();

// Whether this frame is on the thread's own stack, where a signal frame can be looked for (not
// an alternate signal stack, where a handler runs by definition, nor a coroutine's).
bool on_own_stack() {
    int here;
    return thread_bounds().holds(reinterpret_cast<uintptr_t>(&here), sizeof here);
}

}  // namespace

int libunwind_capture(uintptr_t* pcs, int max) {
    // Step by step for a thread's first walks, and in a signal handler: unw_backtrace keeps its
    // cache in a thread-local of libunwind's, which ld.so makes with malloc at the thread's first
    // call (and grows again, with malloc and free, after a library with thread-locals is loaded).
    // From a handler that interrupted the allocator, that malloc would wait for ever for the lock
    // the interrupted code holds. The step-by-step walk uses no thread-local.
    if (t_walks < kStepwiseWalks) {
        ++t_walks;
        return capture_once(pcs, max);
    }
    if (!on_own_stack() || innermost_signal_context() != nullptr) return capture_once(pcs, max);
    forget_pages();
    int n = g_backtrace(reinterpret_cast<void**>(pcs), kCaptureRoom);
    return without_gprof(pcs, n, max);
}

__attribute__((noinline)) int capture_once(uintptr_t* pcs, int max) {
    ucontext_t context;  // unw_context_t is ucontext_t on x86-64
    if (!libunwind_ready()) return 0;
    if (g_getcontext != nullptr ? g_getcontext(&context) != 0 : getcontext(&context) != 0) return 0;
    return capture_context(&context, false, pcs, max);
}

int capture_context(ucontext_t* context, bool interrupted, uintptr_t* pcs, int max,
                    WalkEnd* end) {
    if (!libunwind_ready() || g_init_local2 == nullptr || g_step == nullptr || g_get_reg == nullptr)
        return 0;
    forget_pages();
    struct HandlerMark {
        bool saved = t_in_handler;
        explicit HandlerMark(bool on) { t_in_handler = t_in_handler || on; }
        ~HandlerMark() { t_in_handler = saved; }
    } mark(interrupted);
    unw_cursor_t cursor;
    if (g_init_local2(&cursor, context, interrupted ? UNW_INIT_SIGNAL_FRAME : 0) != 0) return 0;
    int depth = 0;
    for (int frame = 0; depth < max && frame < kMaxFrames + 16; ++frame) {
        unw_word_t ip = 0;
        if (g_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0) break;
        uintptr_t pc = frame == 0 && interrupted ? ip + 1 : ip;
        if (!in_gprof(ip)) pcs[depth++] = pc;
        if (end != nullptr) {
            unw_word_t sp = 0;
            g_get_reg(&cursor, UNW_REG_SP, &sp);
            end->sp = sp;
        }
        int step = g_step(&cursor);
        if (step <= 0) {
            if (end != nullptr) end->complete = step == 0;
            break;
        }
    }
    return depth;
}

namespace {

// Whether the bytes before `ra` are a call (rel32, or through memory or a register).
bool follows_call(uintptr_t ra) {
    unsigned char code[6];
    if (!read_checked(ra - 6, code, sizeof code)) return false;
    return code[1] == 0xe8 || (code[0] == 0xff && code[1] == 0x15) ||
           (code[4] == 0xff && (code[5] & 0xf8) == 0xd0) ||
           (code[3] == 0xff && (code[4] & 0xf8) == 0x50);
}

// glibc's __restore_rt, which every handler installed through its sigaction returns to: the
// restorer of any signal with such a handler (the kernel's sigaction reports it). 0 if none.
uintptr_t glibc_restorer() {
    static std::atomic<uintptr_t> known{0};  // one address for the process's life
    if (uintptr_t r = known.load(std::memory_order_relaxed)) return r;
    struct {
        uintptr_t handler;
        unsigned long flags;
        uintptr_t restorer;
        uint64_t mask;
    } action;
    constexpr unsigned long kRestorer = 0x04000000;  // SA_RESTORER
    auto found = [&](int sig) {
        return syscall(SYS_rt_sigaction, sig, nullptr, &action, 8) == 0 && action.handler > 1 &&
               (action.flags & kRestorer) != 0 && action.restorer != 0;
    };
    bool any = false;
    for (int sig : {SIGTERM, SIGINT, SIGUSR2, SIGHUP})  // the usual first
        if ((any = found(sig))) break;
    for (int sig = 1; !any && sig <= 64; ++sig) any = found(sig);
    if (!any) return 0;
    known.store(action.restorer, std::memory_order_relaxed);
    return action.restorer;
}

// The innermost signal frame on this thread's stack, without libunwind: found by its return
// address, glibc's restorer, with the interrupted context right above it (x86-64's rt_sigframe,
// the interrupted stack above it and its FPU state saved within it). Null if none is found.
const ucontext_t* innermost_signal_context() {
    const StackBounds& bounds = thread_bounds();
    uintptr_t restorer = glibc_restorer();
    if (bounds.hi <= 1 || restorer == 0) return nullptr;
    uintptr_t here = reinterpret_cast<uintptr_t>(&restorer) & ~uintptr_t{7};
    if (!bounds.holds(here, sizeof(uintptr_t))) return nullptr;  // another stack: no scan
    for (uintptr_t at = here; at + sizeof(uintptr_t) + sizeof(ucontext_t) <= bounds.hi;
         at += sizeof(uintptr_t)) {
        if (*reinterpret_cast<const uintptr_t*>(at) != restorer) continue;
        const auto* context = reinterpret_cast<const ucontext_t*>(at + sizeof(uintptr_t));
        auto sp = static_cast<uintptr_t>(context->uc_mcontext.gregs[REG_RSP]);
        auto fpregs = reinterpret_cast<uintptr_t>(context->uc_mcontext.fpregs);
        if (sp <= at || sp >= bounds.hi || fpregs <= at || fpregs >= sp) continue;
        return context;
    }
    return nullptr;
}

// Without libunwind: the interrupted code of the innermost signal frame is gprof's, or glibc's
// with a return into gprof (or a call through its GOT) in the first kilobyte of the interrupted
// stack.
bool handler_interrupted_gprof_by_scan() {
    const ucontext_t* context = innermost_signal_context();
    if (context == nullptr) return false;
    const StackBounds& bounds = thread_bounds();
    auto pc = static_cast<uintptr_t>(context->uc_mcontext.gregs[REG_RIP]);
    auto sp = static_cast<uintptr_t>(context->uc_mcontext.gregs[REG_RSP]);
    if (in_gprof(pc)) return true;
    if (g_libc_hi == 0) find_libc_text();
    if (!in_libc(pc)) return false;
    // glibc's code: its caller is the first return address above it outside glibc (a word that
    // follows a call instruction), which must be gprof's or have called gprof.
    for (uintptr_t word = sp; word < sp + 1024 && word + 8 <= bounds.hi; word += 8) {
        uintptr_t value = *reinterpret_cast<const uintptr_t*>(word);
        if (value < 4096 || in_libc(value) || !follows_call(value)) continue;
        return in_gprof(value) || calls_gprof(value);
    }
    return false;
}

}  // namespace

bool maybe_in_signal_handler() {
    return !on_own_stack() || innermost_signal_context() != nullptr;
}

bool handler_interrupted_gprof() {
    if (!libunwind_ready() || g_init_local2 == nullptr || g_step == nullptr ||
        g_get_reg == nullptr || g_is_signal_frame == nullptr || g_getcontext == nullptr)
        return handler_interrupted_gprof_by_scan();
    ucontext_t context;
    if (g_getcontext(&context) != 0) return false;
    forget_pages();
    struct HandlerMark {  // the thread may be inside the allocator: nothing may allocate
        bool saved = t_in_handler;
        HandlerMark() { t_in_handler = true; }
        ~HandlerMark() { t_in_handler = saved; }
    } mark;
    unw_cursor_t cursor;
    if (g_init_local2(&cursor, &context, 0) != 0) return false;
    // libunwind marks as a signal frame the first frame past the kernel's (the interrupted one).
    bool interrupted = false;  // this frame is the interrupted code's, or glibc's called by it
    bool libc_below = false;   // the frame below this one is glibc's, and interrupted
    for (int frame = 0; frame < kMaxFrames + 16; ++frame) {
        unw_word_t ip = 0;
        if (g_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0) break;
        if (g_is_signal_frame(&cursor) > 0) interrupted = true, libc_below = false;
        if (interrupted) {
            if (in_gprof(ip)) return true;
            if (!in_libc(ip)) {  // the interrupted code's caller, past glibc's frames
                if (libc_below && calls_gprof(ip)) return true;
                interrupted = false;
            }
            libc_below = interrupted;
        }
        if (g_step(&cursor) <= 0) break;
    }
    return false;
}

}  // namespace gprof::unwind
