#include "preload/signal_stack.h"

#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <cstddef>

namespace gprof::signal_stack {
namespace {

// Room for the kernel's frame and any handler that runs there: gprof's walk and libunwind's (under
// 4 KiB each), a cgo program's Go runtime (which adopts a stack it finds, and gives its own 32 KiB).
constexpr size_t kSize = 64 * 1024;
// Below it, so that an overflow faults rather than writes elsewhere. Read-only rather than
// inaccessible: a write past the end faults just the same, and MemStats (api/memstats.cpp), which
// tells a thread's stack by the inaccessible guard glibc maps under it, does not count gprof's.
constexpr size_t kGuard = 4096;

// Stacks of ended threads, kept for the next ones: mapping, protecting and unmapping each cost a
// flush of every CPU's TLB entries for the process (tens of microseconds in a VM), which a
// program that starts a thread per task would pay at each. Lock-free, so a fork at any moment
// leaves the child a usable cache.
constexpr int kKept = 64;
std::atomic<void*> g_kept[kKept];

void* take_kept() {
    for (std::atomic<void*>& slot : g_kept) {
        if (slot.load(std::memory_order_relaxed) == nullptr) continue;
        if (void* map = slot.exchange(nullptr, std::memory_order_acquire)) return map;
    }
    return nullptr;
}

bool keep(void* map) {
    for (std::atomic<void*>& slot : g_kept) {
        void* empty = nullptr;
        if (slot.load(std::memory_order_relaxed) == nullptr &&
            slot.compare_exchange_strong(empty, map, std::memory_order_release))
            return true;
    }
    return false;
}

void* new_stack() {
    void* map = mmap(nullptr, kGuard + kSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) return nullptr;
    if (mprotect(map, kGuard, PROT_READ) != 0) {
        munmap(map, kGuard + kSize);
        return nullptr;
    }
    return map;
}

}  // namespace

void* give() {
    stack_t current;
    if (sigaltstack(nullptr, &current) != 0 || !(current.ss_flags & SS_DISABLE)) return nullptr;
    void* map = take_kept();
    if (map == nullptr) map = new_stack();
    if (map == nullptr) return nullptr;
    stack_t ours = {};
    ours.ss_sp = static_cast<char*>(map) + kGuard;
    ours.ss_size = kSize;
    if (sigaltstack(&ours, nullptr) != 0) {
        if (!keep(map)) munmap(map, kGuard + kSize);
        return nullptr;
    }
    return map;
}

void take_back(void* stack) {
    if (stack == nullptr) return;
    char* base = static_cast<char*>(stack);
    stack_t current;
    if (sigaltstack(nullptr, &current) != 0) return;
    if (current.ss_sp == base + kGuard && !(current.ss_flags & SS_DISABLE)) {
        if (current.ss_flags & SS_ONSTACK) return;  // pthread_exit from a handler running on it
        stack_t off = {};
        off.ss_flags = SS_DISABLE;
        if (sigaltstack(&off, nullptr) != 0) return;
    }
    if (!keep(stack)) munmap(stack, kGuard + kSize);
}

}  // namespace gprof::signal_stack
