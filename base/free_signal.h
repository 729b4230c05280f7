// A real-time signal for gprof's own use: one that nobody handles.
#pragma once

#include <signal.h>

namespace gprof::base {

using SignalHandler = void (*)(int, siginfo_t*, void*);

// Installs `handler` (SA_SIGINFO | SA_RESTART | SA_ONSTACK, every signal blocked while it runs)
// on the highest real-time signal that has neither a handler nor SIG_IGN, never `reserved` (the
// dump signal); programs that use real-time signals mostly take the lowest ones. Returns the
// signal, or 0 when none is free.
int install_on_free_signal(SignalHandler handler, int reserved);

// Installs `handler` (as above) on `sig` if it has neither a handler nor SIG_IGN.
bool install_if_free(int sig, SignalHandler handler);

// Whether `handler` is still the one installed on `sig`.
bool handler_installed(int sig, SignalHandler handler);

}  // namespace gprof::base
