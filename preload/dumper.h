// When profiles are written: on GPROF_SIGNAL (the handler only wakes the dumper thread), at
// normal exit (GPROF_AT_EXIT), and on request from the C API. One dump at a time; each takes the
// next sequence number, shared by all its files.
//
// Leaving no trace: the dumper thread ends when the last of the program's threads does (glibc
// ends a process when its last thread ends, as POSIX says, and gprof's thread must not keep it
// alive), and the dump signal's disposition as the program sees it is the program's own
// (program_sigaction).
#pragma once

#include <signal.h>

namespace gprof::dumper {

// From gprof's constructor: the dumper thread, the signal handler, the at-exit hook.
void start();

// Async-signal-safe: asks the dumper thread for a dump.
void request();

// Asks the dumper thread to open libunwind (unwind::set_libunwind_loader): false when there is
// no dumper thread.
bool request_libunwind();

// A dump now, in the calling thread (the C API's gprof_dump), waiting at most wait_ms for a dump
// or fork in progress: its sequence number, or 0 when it could not run (the wait ran out, or the
// thread is writing a dump already: a signal handler that interrupted it).
unsigned dump_now(int wait_ms);

// Runs fn(arg) while no dump, fork or other such call runs (profiles written on request share
// the dumps' symbol cache), waiting at most wait_ms; false when it could not run.
bool run_exclusive(int wait_ms, void (*fn)(void*), void* arg);

// Counts the calling thread, once, as one of the program's (the start trampoline of every
// pthread_create; start() counts the main thread). When the last such thread ends, the dumper
// thread ends too.
void program_thread_started();

// sigaction(2) as the program sees it, for the signals gprof holds: true when `sig` is the dump
// signal and gprof's handler is on it; then *old (if given) gets what the program set last (or
// found at start), and act (if given) is what the program asks for: SIG_DFL or SIG_IGN are kept as
// its view while gprof's handler stays, and a handler of its own is installed for real, gprof
// stepping aside with one line. False: the caller passes the call on to glibc.
bool program_sigaction(int sig, const struct sigaction* act, struct sigaction* old);

// The set*id calls (preload/uid_shims.cpp): gprof's own threads (the dumper, the CPU profile's
// drain, the HTTP server's) end before the program changes its user or groups and start again
// after it, so that they never count against the new user's RLIMIT_NPROC when the kernel checks
// it there, nor make glibc abort when a thread of theirs lacks a capability the caller has.
struct OwnThreads {
    bool dumper = false;
    bool cpu = false;
    bool http = false;
};
OwnThreads pause_own_threads();
void resume_own_threads(OwnThreads was);

// fork(). A dump half done in another thread at the moment of fork would leave its locks (the
// symbol cache's, libdw's) held in the child, where no thread is left to release them: the child's
// own dump (at its exit) would wait forever. So prepare_fork waits for a dump in progress to end
// (at most kForkWaitMs) and keeps the next from starting until fork returns, in the parent and
// in the child; the child also gets its own thread and sequence numbers.
void prepare_fork();
void parent_after_fork();
void child_after_fork();
// The child of a fork that ran no fork handlers (preload/fork_shim.cpp): it takes no dump of any
// kind, since locks of gprof's may be held there by threads that no longer exist.
void child_without_handlers();

}  // namespace gprof::dumper
