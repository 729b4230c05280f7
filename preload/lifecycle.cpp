// The process lifecycle as gprof sees it: start and fork (signals and exit: dumper.cpp).
//
// Nothing here may be needed by the allocation path: malloc works before this constructor runs
// (other libraries' constructors and the dynamic loader allocate first, unsampled) and after
// destructors.
#include <pthread.h>

#include "base/config.h"
#include "base/log.h"
#include "base/notes.h"
#include "base/reentry_guard.h"
#include "preload/backing.h"
#include "preload/cpu_sampler.h"
#include "preload/dumper.h"
#include "preload/http.h"
#include "preload/originals.h"
#include "preload/routes.h"
#include "preload/signal_stack.h"
#include "record/contention.h"
#include "record/heap_profile.h"
#include "record/own_records.h"
#include "record/stack_table.h"
#include "unwind/libunwind.h"
#include "unwind/stack.h"
#include "writer/dump.h"

// glibc's lock of the list of stdio streams (exported from libc.so.6; recursive). fork() takes
// it after the prepare handlers, and resets it in the child.
extern "C" void _IO_list_lock() noexcept;
extern "C" void _IO_list_unlock() noexcept;

namespace gprof {
namespace {

// fork(): gprof's locks are taken before the allocator's (pthread_atfork runs prepare handlers
// in reverse order of registration, and jemalloc registers its own when it starts, which start()
// makes sure happens before it registers these), and released in both parent and child, where
// jemalloc's handlers have run first and gprof's may allocate. glibc's stream-list lock comes
// before them: fork takes it after the prepare handlers, and meanwhile fflush(NULL) holds it while
// it waits for a stream's lock, whose holder (in fclose) waits for the heap profile's lock to free
// a buffer: a cycle if the profile's locks were taken first (glibc's tst-malloc-fork-deadlock).
void prepare_fork() {
    dumper::prepare_fork();  // first: a dump in progress takes the locks below
    _IO_list_lock();
    record::heap_profile().lock_all();
    record::stack_table().lock().lock();
    unwind::prepare_fork();
}

void parent_after_fork() {
    unwind::after_fork();
    record::stack_table().lock().unlock();
    record::heap_profile().unlock_all();
    _IO_list_unlock();  // (in the child, fork has reset it)
    dumper::parent_after_fork();
}

void child_after_fork() {
    record::forget_own_records();
    unwind::after_fork();
    unwind::libunwind_child_after_fork();
    record::stack_table().lock().unlock();
    record::heap_profile().unlock_all();
    base::ReentryGuard guard;
    dumper::child_after_fork();
    cpu_sampler::child_after_fork();
    http::child_after_fork();
}

__attribute__((constructor)) void start() {
    base::ReentryGuard guard;
    config();  // report bad GPROF_* values now, even in a program that never allocates
    if (const char* other = backing::adopt_foreign()) {
        routes::choose_routes();
        log::problem("the program's malloc is %s's, not gprof's (LD_PRELOAD order, or an "
                     "allocator of the program's own): no heap profile",
                     other);
        base::note("gprof: the program's allocator is not gprof's (another malloc comes first): "
                   "this process's allocations are not sampled");
    }
    backing::make_arenas();  // before the program can have a second thread
    record::heap_profile().start();
    record::start_stack_table();
    originals::functions();  // before the program can have a second thread
    unwind::warm_up();       // from here on, allocations are sampled
    record::start_contention();
    writer::start(config());  // each profile kind's records, with their settings
    // Nothing above allocates (a program that never does never starts gprof's jemalloc for it);
    // the fork handlers below need jemalloc's registered first.
    backing::start_allocator();
    pthread_atfork(prepare_fork, parent_after_fork, child_after_fork);
    signal_stack::give();  // the main thread's, kept for the process's life
    dumper::start();
    cpu_sampler::start(config());  // the cpu profile's clock, when it is on
    http::start(config());  // after dumper::start: its at-exit stop runs before the exit dump
    routes::end_start_up();  // the last: everything above is gprof's start-up
}

}  // namespace
}  // namespace gprof
