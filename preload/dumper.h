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

// fork(). A dump half done in another thread at the moment of fork would leave its locks (the
// symbol cache's, libdw's) held in the child, where no thread is left to release them: the child's
// own dump (at its exit) then waited forever. So prepare_fork waits for a dump in progress to end
// (at most kForkWaitMs) and keeps the next from starting until fork returns, in the parent and
// in the child; the child also gets its own thread and sequence numbers.
void prepare_fork();
void parent_after_fork();
void child_after_fork();

}  // namespace gprof::dumper
