// Allocations from stacks that test gprof's stack walk (unwind/fast_walk.h), at
// GPROF_MEM_PROFILE_RATE=1; each site prints a TRUTH line (test/heap/site.h):
//   * one site reached alternately through two callers with identical frames, where only the
//     return address above differs: a walk that reused the previous walk's frames unchecked
//     would file samples under the wrong caller. Prints `PATH <caller> <allocations>`;
//   * a coroutine (makecontext) on a stack of its own, walked by libunwind;
//   * a thread with a small stack (64 KiB), deep in recursion;
//   * hostile stacks allocating 1 MiB blocks (sampled at any rate): a thread on a 16 KiB stack, a
//     signal handler on an 8 KiB alternate stack, a thread recursing to within 4 KiB of its
//     stack's end. The program must survive them (a sample without room for a walk is taken
//     without a stack).
#include <pthread.h>
#include <signal.h>
#include <ucontext.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "test/heap/site.h"

#define NOINLINE __attribute__((noinline))

namespace {

Site site_alt{"site_alt"}, site_coro{"site_coro"}, site_small{"site_small"}, site_tiny{"site_tiny"};
long path_a_count, path_b_count;
void* volatile sink;
volatile int sink_value;
void* kept[4096];
int nkept;

NOINLINE void site_alt_fn() {  // 96 B, freed at once
    void* p = malloc(96);
    site_alt.alloc(96);
    sink = p;
    free(p);
    site_alt.free(96);
}

NOINLINE void path_a_fn() {
    volatile int pad[8];
    pad[0] = 1;
    site_alt_fn();
    ++path_a_count;
    sink_value = pad[0];
}

NOINLINE void path_b_fn() {
    volatile int pad[8];
    pad[0] = 2;
    site_alt_fn();
    ++path_b_count;
    sink_value = pad[0] + 1;
}

NOINLINE void site_coro_fn() {  // 300 x 48 B, kept
    for (int i = 0; i < 300; ++i) {
        kept[nkept++] = malloc(48);
        site_coro.alloc(48);
    }
}

ucontext_t main_context, coro_context;

void coroutine() {
    site_coro_fn();
    swapcontext(&coro_context, &main_context);
}

NOINLINE void site_small_fn() {  // 400 x 32 B, kept
    for (int i = 0; i < 400; ++i) {
        kept[nkept++] = malloc(32);
        site_small.alloc(32);
    }
}

NOINLINE int recurse(int depth) {
    volatile char pad[256];
    pad[0] = static_cast<char>(depth);
    if (depth == 0)
        site_small_fn();
    else
        recurse(depth - 1);
    return pad[0];
}

void* small_stack_thread(void*) {
    recurse(40);  // about 12 KiB of the 64
    return nullptr;
}

constexpr long kBlock = 1 << 20;

NOINLINE void site_tiny_fn() {  // 10 x 1 MiB, freed at once
    for (int i = 0; i < 10; ++i) {
        void* p = malloc(kBlock);
        site_tiny.alloc(kBlock);
        sink = p;
        free(p);
        site_tiny.free(kBlock);
    }
}

void* tiny_stack_thread(void*) {
    site_tiny_fn();
    return nullptr;
}

void on_alternate_stack(int) {
    void* p = malloc(kBlock);
    sink = p;
    free(p);
}

uintptr_t g_stack_lo;

// Recurses until its frame is within 4 KiB of the stack's end (as close as glibc alone survives),
// then allocates.
NOINLINE int near_the_end(int depth) {
    volatile char pad[512];
    pad[0] = static_cast<char>(depth);
    if (reinterpret_cast<uintptr_t>(&pad[0]) - g_stack_lo > 4096)
        return near_the_end(depth + 1) + pad[0];
    for (int i = 0; i < 10; ++i) {
        void* p = malloc(kBlock);
        sink = p;
        free(p);
    }
    return depth;
}

void* deep_thread(void*) {
    pthread_attr_t attr;
    void* base = nullptr;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return nullptr;
    pthread_attr_getstack(&attr, &base, &size);
    pthread_attr_destroy(&attr);
    g_stack_lo = reinterpret_cast<uintptr_t>(base);
    near_the_end(0);
    return nullptr;
}

bool run_thread(void* (*fn)(void*), size_t stack_size) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack_size);
    pthread_t thread;
    bool ok = pthread_create(&thread, &attr, fn, nullptr) == 0;
    if (ok) pthread_join(thread, nullptr);
    pthread_attr_destroy(&attr);
    return ok;
}

}  // namespace

int main() {
    // a, b, b, a, a, a, b, ...: runs of each caller, and changes.
    unsigned seed = 12345;
    for (int i = 0; i < 3000; ++i) {
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 3 == 0)
            path_a_fn();
        else
            path_b_fn();
    }

    static char coro_stack[64 * 1024];
    getcontext(&coro_context);
    coro_context.uc_stack.ss_sp = coro_stack;
    coro_context.uc_stack.ss_size = sizeof coro_stack;
    coro_context.uc_link = &main_context;
    makecontext(&coro_context, coroutine, 0);
    if (swapcontext(&main_context, &coro_context) != 0) return 1;

    if (!run_thread(small_stack_thread, 64 * 1024)) return 1;
    if (!run_thread(tiny_stack_thread, PTHREAD_STACK_MIN)) return 1;
    if (!run_thread(deep_thread, 64 * 1024)) return 1;

    static char alternate[8192];
    stack_t ss = {};
    ss.ss_sp = alternate;
    ss.ss_size = sizeof alternate;
    struct sigaction sa = {};
    sa.sa_handler = on_alternate_stack;
    sa.sa_flags = SA_ONSTACK;
    if (sigaltstack(&ss, nullptr) != 0 || sigaction(SIGUSR1, &sa, nullptr) != 0) return 1;
    for (int i = 0; i < 10; ++i) raise(SIGUSR1);

    printf("PATH path_a %ld\nPATH path_b %ld\n", path_a_count, path_b_count);
    site_alt.print("TRUTH");
    site_coro.print("TRUTH");
    site_small.print("TRUTH");
    site_tiny.print("TRUTH");
    return 0;
}
