#include "unwind/thread_bounds.h"

#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstring>

extern "C" void* __libc_stack_end;  // ld.so's: the main thread's stack pointer at its start

namespace gprof::unwind {

constinit thread_local StackBounds t_stack_bounds [[gnu::tls_model("initial-exec")]] = {0, 0};

namespace {

[[gnu::always_inline]] inline uintptr_t current_sp() {
    uintptr_t sp;
    asm volatile("movq %%rsp, %0" : "=r"(sp));
    return sp;
}

// How far under the lower bound a stack pointer still counts as the thread's (set_thread_stack's
// slack, and a guard page).
constexpr uintptr_t kBelowBottom = 4096;

}  // namespace

size_t stack_room() {
    uintptr_t sp = current_sp();
    if (sp >= t_stack_bounds.lo && sp < t_stack_bounds.hi) return sp - t_stack_bounds.lo;
    // Just under a conservative lower bound (set_thread_stack's) is still the thread's stack, or
    // its guard: a signal frame the kernel pushed at the very end of it puts the handler there.
    if (t_stack_bounds.hi > 1 && sp < t_stack_bounds.lo && t_stack_bounds.lo - sp <= kBelowBottom)
        return 0;
    stack_t alternate;
    if (sigaltstack(nullptr, &alternate) == 0 && (alternate.ss_flags & SS_ONSTACK)) {
        auto base = reinterpret_cast<uintptr_t>(alternate.ss_sp);
        if (sp >= base && sp - base < alternate.ss_size) return sp - base;
    }
    return SIZE_MAX;
}

bool main_stack_from_layout(StackBounds* out) {
    auto execfn = reinterpret_cast<const char*>(getauxval(AT_EXECFN));
    uintptr_t page = getauxval(AT_PAGESZ);
    struct rlimit limit;
    if (execfn == nullptr || page == 0 || (page & (page - 1)) != 0 ||
        getrlimit(RLIMIT_STACK, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return false;
    // Linux leaves 8 bytes above the string; valgrind's loader, which lays out its guest's stack
    // itself, 11.
    constexpr uintptr_t kMostAbove = 64;
    uintptr_t string_end = reinterpret_cast<uintptr_t>(execfn) + strlen(execfn) + 1;
    uintptr_t end = (string_end + page - 1) & -page;
    uintptr_t top = (reinterpret_cast<uintptr_t>(__libc_stack_end) & -page) + page;
    if (end - string_end > kMostAbove || top > end || end - top >= limit.rlim_cur)
        return false;  // not the layout described above
    uintptr_t size = (limit.rlim_cur - (end - top)) & -page;
    if (size > top) return false;
    out->lo = top - size;
    out->hi = top;
    return true;
}

void learn_main_thread_stack() {
    if (!main_stack_from_layout(&t_stack_bounds)) learn_thread_stack();
}

void learn_thread_stack() {
    pthread_attr_t attr;
    void* base = nullptr;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &base, &size);
        pthread_attr_destroy(&attr);
    }
    t_stack_bounds.lo = reinterpret_cast<uintptr_t>(base);
    t_stack_bounds.hi = t_stack_bounds.lo + size;
    if (t_stack_bounds.hi == 0)
        t_stack_bounds.hi = 1;  // unknown: every read takes the checked path
}

void set_thread_stack(size_t stack_size) {
    auto top = reinterpret_cast<uintptr_t>(pthread_self());
    uintptr_t sp = current_sp();
    // glibc 2.36 maps the guard below the whole requested size and puts the descriptor 2 368
    // bytes under the top (pthread_getattr_np's bounds: [descriptor - size + 2 368, descriptor +
    // 2 368), measured for 16 KiB to 8 MiB): 3 KiB less than the size below the descriptor is
    // inside the stack.
    constexpr size_t kSlack = 3072;
    if (stack_size <= kSlack || top <= sp || top - sp >= stack_size - kSlack) return;  // not that
    t_stack_bounds.hi = top;
    t_stack_bounds.lo = top - stack_size + kSlack;
}

}  // namespace gprof::unwind
