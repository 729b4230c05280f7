// An alternate signal stack for each of the program's threads that has none: the main thread from
// gprof's constructor, every thread gprof sees start. The kernel puts a signal's frame (3.4 KiB
// with AVX-512 state, AT_MINSIGSTKSZ) wherever the interrupted stack pointer is and kills the
// process where it does not fit; gprof's signals (the CPU profile's at up to 10 kHz, the threads
// profile's, the dump signal) arrive at any moment, such as in a recursion within a few KiB of its
// stack's end, and their handlers are SA_ONSTACK. A stack the program sets (sigaltstack) replaces
// gprof's; a handler of the program's with SA_ONSTACK runs on gprof's where the program set none.
#pragma once

namespace gprof::signal_stack {

// From the thread itself: gives it a stack if it has none. Returns gprof's stack, or null.
void* give();

// From the thread itself, at its end, with what give() returned: disables the stack if it is
// still the thread's, and unmaps it (unless the thread is running on it).
void take_back(void* stack);

}  // namespace gprof::signal_stack
