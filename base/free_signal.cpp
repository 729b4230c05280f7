#include "base/free_signal.h"

namespace gprof::base {

bool install_if_free(int sig, SignalHandler handler) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
        old.sa_handler != SIG_DFL)
        return false;
    struct sigaction sa = {};
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    return sigaction(sig, &sa, nullptr) == 0;
}

int install_on_free_signal(SignalHandler handler, int reserved) {
    for (int candidate = SIGRTMAX - 1; candidate > SIGRTMIN + 4; --candidate)
        if (candidate != reserved && install_if_free(candidate, handler)) return candidate;
    return 0;
}

bool handler_installed(int sig, SignalHandler handler) {
    struct sigaction now;
    return sigaction(sig, nullptr, &now) == 0 && (now.sa_flags & SA_SIGINFO) &&
           now.sa_sigaction == handler;
}

}  // namespace gprof::base
