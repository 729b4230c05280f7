// The CPU profile's clock: a sampling source per thread, the signal handler that records the
// samples (record/cpu_samples.h), and the gprof thread that drains them.
//
// Every thread is sampled by its own CPU time. Where the kernel allows a process to sample itself
// (perf_event_paranoid <= 2, no seccomp filter in the way), each thread gets a perf_event_open
// task-clock event that signals that thread at every period of its CPU time, unbound to the
// scheduler tick; elsewhere a CLOCK_THREAD_CPUTIME_ID timer (SIGEV_THREAD_ID), which the kernel
// checks at its tick, counted with its overruns. Either starts at a random point of the first
// period, so a thread's expected samples are its CPU time over the period even when it lives less
// than one. The threads alive when sampling starts get theirs from the sampler, threads started
// through pthread_create from their start trampoline, and any other (a raw clone) from a sweep
// once a second; only a thread that could get neither is left to a process-wide timer, whose
// samples are told apart by their si_value and ignored on threads that have their own source.
//
// Sources only tick while their thread runs, so a thread blocked in poll, nanosleep, a futex or a
// read never sees a signal of gprof's and never fails with EINTR. The signal is a real-time one
// that nobody handles, never SIGPROF: a program's own profiler keeps SIGPROF and setitimer.
#pragma once

#include "base/config.h"
#include "record/cpu_samples.h"

namespace gprof::cpu_sampler {

// The rate every CPU profile runs at: GPROF_CPU_HZ, or 100 where that is 0.
int hz();

// From gprof's constructor: the dump's session when the cpu profile is on.
void start(const Config& c);

// Starts a session (sources started for every thread if none ran). 0, or an errno: EBUSY when
// an on-demand session runs already, EAGAIN when sampling cannot start (said in one gprof: line).
int begin(record::CpuSession session);
// Ends an on-demand session after its data was taken; sources stop with the last session.
void end_on_demand();

// What delivers the samples now, for the profile's comments ("" when nothing runs).
const char* source_description();

// From the start trampoline of every thread pthread_create starts, and its end.
void thread_started();
void thread_ending();

// The program installed a handler of its own on gprof's CPU signal: sampling stops for good,
// said once. True when `sig` is that signal.
bool program_takes_signal(int sig);

// The drain thread ends with the program's last thread (preload/dumper.h).
void stop_thread();
// Around a change of user (preload/dumper.h): ends the drain thread and waits until it is gone
// (true if it ran), and starts it again (a line if it cannot).
bool pause_thread();
void resume_thread();

// fork(): the child has no source, no sample and no thread of the parent's, and starts its own
// dump session.
void child_after_fork();

}  // namespace gprof::cpu_sampler
