// The process lifecycle as gprof sees it: start, fork and (later) signals and exit.
//
// Nothing here may be needed by the allocation path: malloc works before this constructor runs
// (other libraries' constructors and the dynamic loader allocate first) and after destructors.
#include <pthread.h>

#include "preload/config.h"
#include "record/alloc_counters.h"

namespace gprof {
namespace {

// fork(): gprof's locks are taken before the allocator's (pthread_atfork runs prepare handlers
// in reverse order of registration, and jemalloc registered its own at the first malloc, before
// this constructor), and released in both parent and child.
void prepare_fork() { record::counters_prepare_fork(); }
void parent_after_fork() { record::counters_parent_after_fork(); }
void child_after_fork() { record::counters_child_after_fork(); }

__attribute__((constructor)) void start() {
    config();  // report bad GPROF_* values now, even in a program that never allocates
    pthread_atfork(prepare_fork, parent_after_fork, child_after_fork);
}

}  // namespace
}  // namespace gprof
