// sigaction, signal, bsd_signal and sysv_signal: the dump signal's disposition as the program sees
// it (preload/dumper.h: program_sigaction); every other signal, and every call while gprof does
// not hold the dump signal, goes to glibc unchanged.
//
// signal() and friends do not call sigaction through the symbol gprof interposes, so each is
// wrapped too: for the dump signal with the semantics glibc gives them (BSD: SA_RESTART and the
// signal blocked in its handler; System V: the handler reset and the signal not blocked).
#include <dlfcn.h>
#include <signal.h>

#include <cerrno>

#include "base/reentry_guard.h"
#include "preload/cpu_sampler.h"
#include "preload/dumper.h"
#include "preload/originals.h"

namespace {

using SignalFn = sighandler_t (*)(int, sighandler_t);

SignalFn next_function(const char* name) {
    return reinterpret_cast<SignalFn>(dlsym(RTLD_NEXT, name));
}

// A disposition the program sets: on the CPU profile's signal, a handler of its own wins over
// gprof's sampling.
void program_handler(int sig, sighandler_t handler) {
    if (handler != SIG_DFL && handler != SIG_IGN && !gprof::base::inside_gprof())
        gprof::cpu_sampler::program_takes_signal(sig);
}

// signal() for the dump signal, given the flags of its flavour; false when gprof does not hold
// it (the caller then asks glibc).
bool dump_signal_call(int sig, sighandler_t handler, int flags, sighandler_t* result) {
    struct sigaction act = {}, old = {};
    act.sa_handler = handler;
    act.sa_flags = flags;
    sigemptyset(&act.sa_mask);
    if (!(flags & SA_NODEFER)) sigaddset(&act.sa_mask, sig);
    if (!gprof::dumper::program_sigaction(sig, &act, &old)) return false;
    *result = old.sa_handler;
    return true;
}

// signal() and its flavours: the dump signal's as the program sees it, with the flavour's flags;
// any other through glibc's function of that name.
sighandler_t signal_flavour(const char* name, int flags, int sig, sighandler_t handler) {
    program_handler(sig, handler);
    sighandler_t result;
    if (dump_signal_call(sig, handler, flags, &result)) return result;
    SignalFn next = next_function(name);
    if (next == nullptr) {
        errno = ENOSYS;
        return SIG_ERR;
    }
    return next(sig, handler);
}

}  // namespace

extern "C" int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
    int saved = errno;
    if (act != nullptr) program_handler(sig, act->sa_handler);
    if (gprof::dumper::program_sigaction(sig, act, old)) {
        errno = saved;
        return 0;
    }
    return gprof::originals::real_sigaction(sig, act, old);
}

extern "C" sighandler_t signal(int sig, sighandler_t handler) {
    return signal_flavour("signal", SA_RESTART, sig, handler);
}

extern "C" sighandler_t bsd_signal(int sig, sighandler_t handler) {
    return signal_flavour("bsd_signal", SA_RESTART, sig, handler);
}

extern "C" sighandler_t sysv_signal(int sig, sighandler_t handler) {
    return signal_flavour("sysv_signal", SA_RESETHAND | SA_NODEFER, sig, handler);
}
