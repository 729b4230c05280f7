// gprof's only voice: single `gprof: ...` lines on stderr, each one write(2) call, so lines from
// several threads or processes never interleave and nothing is buffered in stdio.
#pragma once

#include <signal.h>

namespace gprof::log {

// A problem: always printed (bad variable, unwritable path, ...).
void problem(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// News of a file written: printed as GPROF_LOG says (by default only when stderr is a terminal,
// so a program's stderr seen by a pipe, a file or a test harness never gains a line).
void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Writes an already formatted line (without the prefix and newline).
void line(const char* text);
// Notes whether stderr is open now; called once at start so a later fd 2 is never mistaken for it.
void start();

// While one lives, a write of this thread to a pipe or socket whose reader has gone fails with
// EPIPE and raises no SIGPIPE that the program could see: the signal is blocked, and one that the
// write raised is taken back before the mask is restored. (A line lost beats a program killed.)
class SigpipeShield {
public:
    SigpipeShield();
    ~SigpipeShield();
    SigpipeShield(const SigpipeShield&) = delete;
    SigpipeShield& operator=(const SigpipeShield&) = delete;

private:
    sigset_t previous_;
    bool was_pending_;
};

}  // namespace gprof::log
