#include "unwind/thread_bounds.h"

#include <pthread.h>
#include <signal.h>

#include <cstdint>

namespace gprof::unwind {

constinit thread_local StackBounds t_stack_bounds [[gnu::tls_model("initial-exec")]] = {0, 0};

namespace {

[[gnu::always_inline]] inline uintptr_t current_sp() {
    uintptr_t sp;
    asm volatile("movq %%rsp, %0" : "=r"(sp));
    return sp;
}

}  // namespace

size_t stack_room() {
    uintptr_t sp = current_sp();
    if (sp >= t_stack_bounds.lo && sp < t_stack_bounds.hi) return sp - t_stack_bounds.lo;
    stack_t alternate;
    if (sigaltstack(nullptr, &alternate) == 0 && (alternate.ss_flags & SS_ONSTACK)) {
        auto base = reinterpret_cast<uintptr_t>(alternate.ss_sp);
        if (sp >= base && sp - base < alternate.ss_size) return sp - base;
    }
    return SIZE_MAX;
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
