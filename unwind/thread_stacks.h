// The current stack of every thread of the process, for the threads profile (Go's goroutine
// profile).
//
// A thread parked in a system call has a stack that does not move: /proc/self/task/<tid>/syscall
// gives its stack pointer and the instruction after the syscall, and the dumper walks that stack
// itself, without disturbing the thread. That matters because a signal handler run during poll(),
// nanosleep(), epoll_wait(), sigtimedwait() or a futex wait with a timeout makes the call fail
// with EINTR whatever SA_RESTART says (signal(7)), and because threads that block every signal
// mostly wait in such calls. A thread running in user space (or parked in a call that SA_RESTART
// resumes) is sent a real-time signal no one else handles; its handler copies the interrupted
// registers and parks for at most 100 ms while the dumper walks the frozen stack. The handler
// never unwinds, allocates or locks (the thread may hold the allocator's or the loader's lock). A
// thread that blocks that signal, or does not answer within 200 ms, is counted and reported,
// never waited for; a late answer is ignored.
//
// The dumper's walk of a parked thread starts with only the stack and instruction pointers known.
// Frames whose unwind rules need another register (a frame pointer that no inner frame saved)
// end the walk early; the census counts such short stacks.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "unwind/stack.h"

namespace gprof::unwind {

struct ThreadSnapshot {
    pid_t tid = 0;
    int depth = 0;  // 0: the stack could not be captured
    uintptr_t pcs[kMaxFrames];
    char name[16] = {};  // as /proc/self/task/<tid>/comm has it
};

struct ThreadCensus {
    size_t threads = 0;          // threads looked at
    size_t parked = 0;           // walked from their system call
    size_t signalled = 0;        // walked by their own signal handler
    size_t signal_blocked = 0;   // running with the capture signal blocked: no stack
    size_t no_answer = 0;        // did not answer in time: no stack
    int signal = 0;              // the capture signal used (0: none was free)
};

// Captures every thread but those for which skip(tid) is true; the calling thread walks its own
// stack (left out of the census's parked and signalled counts). The capture
// signal is never `reserved` (the dump signal). Runs in the dumper (re-entry guard held);
// allocates.
std::vector<ThreadSnapshot> capture_all_threads(bool (*skip)(pid_t tid), int reserved,
                                                ThreadCensus* census);

}  // namespace gprof::unwind
