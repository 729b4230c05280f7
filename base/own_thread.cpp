#include "base/own_thread.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace gprof::base {

int start_own_thread(void* (*routine)(void*), const char* name) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all;
    sigfillset(&all);
    pthread_attr_setsigmask_np(&attr, &all);
    pthread_t thread;
    int err = pthread_create(&thread, &attr, routine, nullptr);
    pthread_attr_destroy(&attr);
    if (err == 0) pthread_setname_np(thread, name);
    return err;
}

bool wait_gone(int tid, int wait_ms) {
    if (tid <= 0) return true;
    for (int waited = 0; waited <= wait_ms; ++waited) {
        if (syscall(SYS_tgkill, getpid(), tid, 0) != 0 && errno == ESRCH) return true;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, nullptr);
    }
    return false;
}

}  // namespace gprof::base
