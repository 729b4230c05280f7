#include "unwind/stack.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <new>

#include "base/os_memory.h"
#include "base/spin_lock.h"
#include "unwind/fast_walk.h"
#include "unwind/frame_rules.h"
#include "unwind/libunwind.h"
#include "unwind/thread_bounds.h"

namespace gprof::unwind {
namespace {

// A thread's last walks and its LocalRules (unwind/fast_walk.h), 55 KiB, taken at the thread's
// first walk (in static TLS they would take that much from every thread's stack, sampling or not)
// and given back at its exit by a thread-specific-data destructor. They come from chunks gprof
// maps itself, kept for the next thread, never from the program's heap (with
// GPROF_ALLOCATOR=libc, glibc's, whose layout they would change).
struct ThreadWalks {
    RecentWalks recent;
    LocalRules rules;
    ThreadWalks* next_free = nullptr;
};
ThreadWalks* const kWalksGone = reinterpret_cast<ThreadWalks*>(uintptr_t{1});
constinit thread_local ThreadWalks* t_thread_walks [[gnu::tls_model("initial-exec")]] = nullptr;
pthread_key_t g_walks_key;
std::atomic<bool> g_walks_key_made{false};
constexpr size_t kWalksChunk = size_t{256} << 10;
constinit base::SpinLock g_walks_lock;
ThreadWalks* g_free_walks = nullptr;  // under g_walks_lock
char* g_walks_chunk = nullptr;        // under g_walks_lock
size_t g_walks_chunk_left = 0;

ThreadWalks* take_walks() {
    base::SpinGuard guard(g_walks_lock);
    if (ThreadWalks* walks = g_free_walks) {
        g_free_walks = walks->next_free;
        return walks;
    }
    constexpr size_t size = (sizeof(ThreadWalks) + 63) & ~size_t{63};
    if (g_walks_chunk_left < size) {
        g_walks_chunk = static_cast<char*>(base::os_reserve(kWalksChunk));
        if (g_walks_chunk == nullptr) {
            g_walks_chunk_left = 0;
            return nullptr;
        }
        g_walks_chunk_left = kWalksChunk;
    }
    auto* walks = reinterpret_cast<ThreadWalks*>(g_walks_chunk);
    g_walks_chunk += size;
    g_walks_chunk_left -= size;
    return walks;
}

void free_thread_walks(void* memory) {
    // Allocations after this (later destructors) walk with libunwind rather than take another.
    t_thread_walks = kWalksGone;
    auto* walks = static_cast<ThreadWalks*>(memory);
    base::SpinGuard guard(g_walks_lock);
    walks->next_free = g_free_walks;
    g_free_walks = walks;
}

ThreadWalks* thread_walks() {
    ThreadWalks* walks = t_thread_walks;
    if (walks != nullptr) [[likely]]
        return walks == kWalksGone ? nullptr : walks;
    if (!g_walks_key_made.load(std::memory_order_acquire)) return nullptr;
    void* memory = take_walks();
    if (memory == nullptr) return nullptr;
    walks = new (memory) ThreadWalks;
    if (pthread_setspecific(g_walks_key, walks) != 0) {
        free_thread_walks(walks);
        return nullptr;
    }
    t_thread_walks = walks;
    return walks;
}

// The stack a sample's walk runs on may be nearly used up: a thread's small stack deep in
// recursion, or an 8 KiB alternate signal stack in a handler that allocates. A walk needs room
// below the caller's frame (gprof's own at most about 2 KiB, libunwind's step-by-step walk about
// 4 KiB); where there is less, with a margin, the sample is taken with no stack rather than
// overflow the stack.
constexpr size_t kFastWalkRoom = size_t{3} << 10;
constexpr size_t kLibunwindRoom = size_t{6} << 10;

// gprof's own walk, reusing the thread's previous one where it holds (unwind/fast_walk.h): the
// thread's memory of walks, holding the stack; null where it cannot walk the stack, which
// libunwind then walks.
__attribute__((noinline)) WalkMemory* fast_capture(const Registers& start) {
    ThreadWalks* walks = thread_walks();
    if (walks == nullptr) return nullptr;
    const StackBounds& bounds = thread_bounds();
    if (bounds.hi <= 1) return nullptr;  // not known (a thread gprof did not see start)
    const PcRange gprof_image{reinterpret_cast<uintptr_t>(__ehdr_start),
                              reinterpret_cast<uintptr_t>(_end)};
    return fast_walk(start, bounds.lo, bounds.hi, gprof_image, &walks->recent, &walks->rules);
}

}  // namespace

namespace {
std::atomic<bool> g_warm{false};
}  // namespace

bool ready() { return g_warm.load(std::memory_order_acquire); }

void warm_up() {
    learn_main_thread_stack();
    if (pthread_key_create(&g_walks_key, free_thread_walks) == 0)
        g_walks_key_made.store(true, std::memory_order_release);
    g_warm.store(true, std::memory_order_release);
}

void prepare_fork() {
    lock_frame_rules();
    g_walks_lock.lock();
}

void after_fork() {
    g_walks_lock.unlock();
    unlock_frame_rules();
}

__attribute__((noinline)) int capture(uintptr_t* pcs, int max) {
    Registers start;
    gprof_caller_registers(&start);
    return capture_from(start, pcs, max);
}

// The root-first stack, leaf first: its leaf-most `max` frames.
__attribute__((noinline)) int capture_from(const Registers& start, uintptr_t* pcs, int max) {
    RootFirstStack stack = capture_root_first(start, pcs);
    int n = stack.depth < max ? stack.depth : max;
    if (stack.pcs == pcs) {  // libunwind's, turned round in place: turned back
        std::reverse(pcs, pcs + stack.depth);
        return n;
    }
    for (int i = 0; i < n; ++i) pcs[i] = stack.pcs[stack.depth - 1 - i];
    return n;
}

RootFirstStack capture_root_first(const Registers& start, uintptr_t* scratch) {
    RootFirstStack stack{scratch, 0, nullptr, nullptr, false};
    if (!ready()) return stack;
    size_t room = stack_room();
    if (room < kFastWalkRoom) return stack;
    if (WalkMemory* m = fast_capture(start)) {
        if (m->depth <= kMaxFrames) return {m->pcs, m->depth, m->tags, &m->tagged, false};
        // Cut at the root end: the tags are for stacks that begin at the root.
        return {m->pcs + (m->depth - kMaxFrames), kMaxFrames, nullptr, nullptr, true};
    }
    if (room < kLibunwindRoom || !libunwind_for_sample()) return stack;
    stack.depth = libunwind_capture(scratch, kMaxFrames + 1);
    if (stack.depth > kMaxFrames) {
        stack.truncated = true;
        stack.depth = kMaxFrames;
    }
    std::reverse(scratch, scratch + stack.depth);
    return stack;
}

}  // namespace gprof::unwind
