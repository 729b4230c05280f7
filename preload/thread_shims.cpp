// pthread_create: the creator's stack for the threadcreate profile, and the registry of live
// threads (record/threads.h).
//
// Defined without a symbol version, the one definition serves both pthread_create@@GLIBC_2.34 and
// the older pthread_create@GLIBC_2.2.5, the same function in glibc 2.34 and later (called here
// through dlvsym).
//
// The new thread starts in a small trampoline that registers it and calls the start routine. A
// destructor undoes the registration, so pthread_exit and cancellation (abi::__forced_unwind) pass
// through unchanged and still unregister it; nothing here catches. Threads created while gprof
// works for itself (its dumper) are marked as gprof's own and left out of the profiles.
#include <pthread.h>
#include <unistd.h>

#include <cerrno>

#include "base/reentry_guard.h"
#include "preload/backing.h"
#include "preload/cpu_sampler.h"
#include "preload/dumper.h"
#include "preload/originals.h"
#include "preload/signal_stack.h"
#include "record/stack_table.h"
#include "record/threads.h"
#include "unwind/stack.h"
#include "unwind/thread_bounds.h"

namespace r = gprof::record;

namespace {

struct Start {
    void* (*routine)(void*);
    void* arg;
    uint32_t creation_stack;
    bool own;
    size_t stack_size;  // as the thread is created with (0: not known)
};

// The stack size a thread gets from `attr` (or the process's defaults), for its stack's bounds
// (unwind::set_thread_stack). pthread_getattr_np in the new thread would tell them exactly,
// but it queries the thread's CPU affinity (a system call into a freshly allocated set, page
// faults and all), and in the allocation path it cannot be called at all.
size_t stack_size(const pthread_attr_t* attr) {
    pthread_attr_t defaults;
    if (attr == nullptr) {
        if (pthread_getattr_default_np(&defaults) != 0) return 0;
        attr = &defaults;
    }
    size_t size = 0;
    if (pthread_attr_getstacksize(attr, &size) != 0) size = 0;
    if (attr == &defaults) pthread_attr_destroy(&defaults);
    return size;
}

// The thread in the registry, and (a program's thread) in the CPU profile's clock and with an
// alternate signal stack (preload/signal_stack.h), for its life.
class Registration {
public:
    Registration(uint32_t stack, bool own) : tid_(gettid()), own_(own) {
        r::thread_registry().add(tid_, stack, own);
        if (own_) return;  // gprof's own threads block every signal
        signal_stack_ = gprof::signal_stack::give();
        gprof::cpu_sampler::thread_started();
    }
    ~Registration() {
        if (!own_) {
            gprof::cpu_sampler::thread_ending();
            gprof::signal_stack::take_back(signal_stack_);
        }
        r::thread_registry().remove(tid_);
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

private:
    pid_t tid_;
    bool own_;
    void* signal_stack_ = nullptr;
};

void* trampoline(void* raw) {
    Start start = *static_cast<Start*>(raw);
    {
        gprof::base::ReentryGuard guard;
        gprof::backing::free(raw);
    }
    gprof::unwind::set_thread_stack(start.stack_size);
    if (!start.own) gprof::dumper::program_thread_started();
    Registration registration(start.creation_stack, start.own);
    if (start.own) {
        // A thread of gprof's (or of a library gprof runs, such as an HTTP server's) does only
        // gprof's work: nothing it does is sampled.
        gprof::base::ReentryGuard guard;
        return start.routine(start.arg);
    }
    return start.routine(start.arg);
}

}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                              void* (*routine)(void*), void* arg) {
    auto real = gprof::originals::functions().pthread_create;
    bool own = gprof::base::inside_gprof();
    uint32_t stack = 0;
    Start* start;
    {
        int saved = errno;  // unwinding may set it; pthread_create's caller sees it unchanged
        gprof::base::ReentryGuard guard;
        if (!own && r::thread_creations_on()) {
            uintptr_t pcs[gprof::unwind::kCaptureRoom];
            int depth = gprof::unwind::capture(pcs, gprof::unwind::kMaxFrames);
            if (depth > 0) stack = r::stack_table().intern(pcs, depth);
        }
        start = static_cast<Start*>(gprof::backing::malloc(sizeof(Start)));
        errno = saved;
    }
    if (start == nullptr) return real(thread, attr, routine, arg);  // unprofiled, but honoured
    *start = Start{routine, arg, stack, own, stack_size(attr)};
    int err = real(thread, attr, trampoline, start);
    if (err != 0) {
        gprof::base::ReentryGuard guard;
        gprof::backing::free(start);
        return err;
    }
    if (!own && r::thread_creations_on())
        r::thread_creations().add(stack, r::StackCounters::kCountUnit, 0);
    return 0;
}
