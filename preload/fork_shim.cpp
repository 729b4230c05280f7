// fork(). A fork from a signal handler that interrupted an allocation (glibc's tst-mallocfork2)
// would wait for itself: the fork handlers take the allocator's locks and gprof's, which the
// interrupted code may hold. There the fork runs no handlers at all (glibc's _Fork, the fork that
// POSIX 2024 makes async-signal-safe), and the child, which may only call async-signal-safe
// functions until it execs or exits, is left unprofiled. Every other fork is glibc's own.
#include <sys/types.h>
#include <unistd.h>

#include "base/reentry_guard.h"
#include "preload/dumper.h"
#include "unwind/libunwind.h"

extern "C" {
pid_t gprof_real_fork() __asm__("__fork");
pid_t gprof_real_Fork() __asm__("_Fork");
}
__asm__(".symver __fork, __fork@GLIBC_2.2.5");
__asm__(".symver _Fork, _Fork@GLIBC_2.34");

namespace {

bool interrupted_allocation() {
    gprof::base::ReentryGuard guard;  // the look is gprof's own work
    return gprof::unwind::maybe_in_signal_handler() && gprof::unwind::handler_interrupted_gprof();
}

}  // namespace

extern "C" pid_t fork() {
    if (!interrupted_allocation()) [[likely]]
        return gprof_real_fork();
    pid_t pid = gprof_real_Fork();
    if (pid == 0) {
        ++gprof::base::t_reentry_depth;  // for good: nothing this thread does is recorded
        gprof::dumper::child_without_handlers();
    }
    return pid;
}
