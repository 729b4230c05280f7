#include "unwind/stack.h"

#include <dlfcn.h>

#include <atomic>

#include "preload/log.h"

// libgprof.so's own image, from the ELF header to the end of .bss (hidden: ours, not the
// executable's).
extern "C" char __ehdr_start[] __attribute__((visibility("hidden")));
extern "C" char _end[] __attribute__((visibility("hidden")));

namespace gprof::unwind {
namespace {

// libunwind is opened at start with RTLD_LOCAL, not linked: libunwind.so.8 also defines
// _Unwind_RaiseException and the rest of the C++ exception ABI, and as a dependency of a preloaded
// library it would come before libgcc_s in the global scope of a program linked with --as-needed,
// taking over its exceptions. Debian's static libunwind.a is not position-independent, so it
// cannot be linked into a shared library either. Only the three entry points below are used.
using BacktraceFn = int (*)(void**, int);
using CachingPolicyFn = int (*)(void*, int);
constexpr int kCachePerThread = 2;  // UNW_CACHE_PER_THREAD

BacktraceFn g_backtrace = nullptr;
std::atomic<bool> g_ready{false};

}  // namespace

bool in_gprof(uintptr_t pc) {
    return pc >= reinterpret_cast<uintptr_t>(__ehdr_start) && pc < reinterpret_cast<uintptr_t>(_end);
}

void warm_up() {
    void* lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
        log::problem("libunwind.so.8 not found (Debian package libunwind8); no heap samples");
        return;
    }
    auto backtrace = reinterpret_cast<BacktraceFn>(dlsym(lib, "unw_backtrace"));
    auto set_policy = reinterpret_cast<CachingPolicyFn>(dlsym(lib, "_ULx86_64_set_caching_policy"));
    void* local_space = dlsym(lib, "_ULx86_64_local_addr_space");
    if (backtrace == nullptr || set_policy == nullptr || local_space == nullptr) {
        log::problem("libunwind.so.8 lacks unw_backtrace; no heap samples");
        return;
    }
    // Per-thread caches keep libunwind from blocking signals (two sigprocmask calls) around every
    // look-up in its global cache.
    set_policy(*static_cast<void**>(local_space), kCachePerThread);
    void* pcs[kMaxFrames];
    backtrace(pcs, kMaxFrames);  // warms the caches for the start-up path
    g_backtrace = backtrace;
    g_ready.store(true, std::memory_order_release);
}

bool ready() { return g_ready.load(std::memory_order_acquire); }

__attribute__((noinline)) int capture(uintptr_t* pcs, int max) {
    if (!ready()) return 0;
    // Room for gprof's own frames (shim, facade, sampler, this function) on top of `max`.
    constexpr int kOwnFrames = 8;
    void* raw[kMaxFrames + kOwnFrames];
    int limit = max + kOwnFrames;
    if (limit > kMaxFrames + kOwnFrames) limit = kMaxFrames + kOwnFrames;
    int n = g_backtrace(raw, limit);
    int first = 0;
    while (first < n && in_gprof(reinterpret_cast<uintptr_t>(raw[first]))) ++first;
    int depth = 0;
    for (int i = first; i < n && depth < max; ++i) pcs[depth++] = reinterpret_cast<uintptr_t>(raw[i]);
    return depth;
}

}  // namespace gprof::unwind
