#include "base/own_thread.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace gprof::base {
namespace {

// What a starting thread needs to know, handed over in one of a few slots (gprof starts at most
// three threads at a time): the new thread names itself with prctl, where pthread_setname_np
// from the creator opens, writes and closes /proc/self/task/<tid>/comm.
struct StartSlot {
    std::atomic<bool> taken{false};
    void* (*routine)(void*) = nullptr;
    const char* name = nullptr;
};
constexpr int kSlots = 8;
StartSlot g_slots[kSlots];

StartSlot* take_slot() {
    for (StartSlot& slot : g_slots) {
        bool expected = false;
        if (slot.taken.compare_exchange_strong(expected, true, std::memory_order_acquire))
            return &slot;
    }
    return nullptr;
}

void* named_start(void* arg) {
    auto* slot = static_cast<StartSlot*>(arg);
    void* (*routine)(void*) = slot->routine;
    prctl(PR_SET_NAME, slot->name, 0, 0, 0);
    slot->taken.store(false, std::memory_order_release);
    return routine(nullptr);
}

}  // namespace

int start_own_thread(void* (*routine)(void*), const char* name) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all;
    sigfillset(&all);
    pthread_attr_setsigmask_np(&attr, &all);
    pthread_t thread;
    StartSlot* slot = take_slot();
    int err;
    if (slot != nullptr) {
        slot->routine = routine;
        slot->name = name;
        err = pthread_create(&thread, &attr, named_start, slot);
        if (err != 0) slot->taken.store(false, std::memory_order_release);
    } else {
        err = pthread_create(&thread, &attr, routine, nullptr);
        if (err == 0) pthread_setname_np(thread, name);
    }
    pthread_attr_destroy(&attr);
    return err;
}

bool wait_ended(const std::atomic<bool>& running, const std::atomic<int>& tid, int wait_ms) {
    int waited = 0;
    for (; running.load(std::memory_order_acquire); ++waited) {
        if (waited >= wait_ms) return false;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, nullptr);
    }
    return wait_gone(tid.load(std::memory_order_acquire), wait_ms - waited);
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
