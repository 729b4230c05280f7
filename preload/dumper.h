// When profiles are written: on GPROF_SIGNAL (the handler only wakes the dumper thread), at
// normal exit (GPROF_AT_EXIT), and on request from the C API. One dump at a time; each takes the
// next sequence number, shared by all its files.
#pragma once

namespace gprof::dumper {

// From gprof's constructor: the dumper thread, the signal handler, the at-exit hook.
void start();

// Async-signal-safe: asks the dumper thread for a dump.
void request();

// Writes a dump from the calling thread (at exit, C API). Waits at most `wait_ms` for a dump in
// progress to finish first; returns false if it had to give up.
bool dump_now(int wait_ms);

// fork(): the child gets its own thread, wake-up descriptor and sequence numbers.
void child_after_fork();

}  // namespace gprof::dumper
