// Allocations from stacks that test gprof's stack walk (unwind/fast_walk.h), at
// GPROF_MEM_PROFILE_RATE=1:
//   * one call site reached alternately through two callers with identical frames, so the site's
//     stack pointer and instruction pointer are the same from both and only the return address
//     above differs: a walk that reused the previous walk's frames without checking them would
//     file samples under the wrong caller. Prints `PATH <caller> <allocations>`.
//   * a coroutine (makecontext) running on a stack of its own, outside the thread's: walked by
//     libunwind;
//   * a thread with a small stack (64 KiB), deep in recursion.
// Each site prints `TRUTH <site> <alloc_objects> <alloc_space> <inuse_objects> <inuse_space>`.
#include <pthread.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>

#include "test/heap/site.h"

#define NOINLINE __attribute__((noinline))

namespace {

Site site_alt{"site_alt"}, site_coro{"site_coro"}, site_small{"site_small"};
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

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_t thread;
    if (pthread_create(&thread, &attr, small_stack_thread, nullptr) != 0) return 1;
    pthread_join(thread, nullptr);
    pthread_attr_destroy(&attr);

    printf("PATH path_a %ld\nPATH path_b %ld\n", path_a_count, path_b_count);
    site_alt.print("TRUTH");
    site_coro.print("TRUTH");
    site_small.print("TRUTH");
    return 0;
}
