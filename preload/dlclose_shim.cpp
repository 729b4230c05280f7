// dlclose: before a library is unloaded, gprof remembers its mappings (symbolize/modules.h), so the
// samples it left keep their names, files and lines in every later profile. The CPU profile's
// handlers stop reading modules' call frame information (published again on their next need);
// then the real dlclose, and the stack walk's rules are forgotten (unwind/frame_rules.h).
//
// The real one is found with dlvsym(RTLD_NEXT) at the first call (glibc 2.34 moved dlclose into
// libc with version GLIBC_2.34; older ones have GLIBC_2.2.5 in libdl), never in the allocation
// path.
#include <dlfcn.h>

#include <atomic>

#include "base/reentry_guard.h"
#include "unwind/frame_rules.h"
#include "symbolize/modules.h"

namespace {

using DlcloseFn = int (*)(void*);
std::atomic<DlcloseFn> g_real_dlclose{nullptr};

DlcloseFn real_dlclose() {
    DlcloseFn real = g_real_dlclose.load(std::memory_order_acquire);
    if (real != nullptr) return real;
    real = reinterpret_cast<DlcloseFn>(dlvsym(RTLD_NEXT, "dlclose", "GLIBC_2.34"));
    if (real == nullptr)
        real = reinterpret_cast<DlcloseFn>(dlvsym(RTLD_NEXT, "dlclose", "GLIBC_2.2.5"));
    if (real == nullptr) real = reinterpret_cast<DlcloseFn>(dlsym(RTLD_NEXT, "dlclose"));
    g_real_dlclose.store(real, std::memory_order_release);
    return real;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int dlclose(void* handle) {
    DlcloseFn real = real_dlclose();
    if (real == nullptr) return -1;  // cannot happen with a glibc
    if (!gprof::base::inside_gprof()) {
        gprof::base::ReentryGuard guard;  // the snapshot's allocations are gprof's own
        gprof::symbolize::retire_library(handle);
    }
    // No CPU sample's walk may read the library's call frame information once it is unmapped.
    gprof::unwind::retire_signal_modules();
    int result = real(handle);
    // The library's addresses may now be given to another's code: stack walks forget its rules.
    gprof::unwind::forget_frame_rules();
    return result;
}
