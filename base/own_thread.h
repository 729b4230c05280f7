// gprof's own threads (the dumper, the CPU profile's drain).
#pragma once

#include <atomic>

namespace gprof::base {

// Starts `routine` on a detached thread named `name` that blocks every signal, so the program's
// signals (a SIGTERM meant for its sigwait()ing thread, its own SIGUSR1) are never delivered to
// it. Called inside gprof (the re-entry guard held), so the thread is marked gprof's own. Returns
// 0 or pthread_create's error.
int start_own_thread(void* (*routine)(void*), const char* name);

// Waits up to wait_ms for the thread `tid` of this process to be gone from the kernel (so it no
// longer counts against RLIMIT_NPROC). True when it is.
bool wait_gone(int tid, int wait_ms);

// Waits up to wait_ms for a thread of gprof's that was asked to end to be gone: first until it
// clears `running` at its very end (a thread started a moment ago has not yet stored its id in
// `tid`, which it does first), then until the kernel has it gone. True when it is.
bool wait_ended(const std::atomic<bool>& running, const std::atomic<int>& tid, int wait_ms);

}  // namespace gprof::base
