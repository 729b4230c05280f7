// The main thread's stack bounds from the process's layout (unwind/thread_bounds.h) against
// pthread_getattr_np's, which reads /proc/self/maps: the same bounds, byte for byte.
#include "unwind/thread_bounds.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>

using namespace gprof::unwind;

namespace {

StackBounds from_glibc() {
    pthread_attr_t attr;
    void* base = nullptr;
    size_t size = 0;
    REQUIRE(pthread_getattr_np(pthread_self(), &attr) == 0);
    pthread_attr_getstack(&attr, &base, &size);
    pthread_attr_destroy(&attr);
    auto lo = reinterpret_cast<uintptr_t>(base);
    return {lo, lo + size};
}

}  // namespace

TEST_CASE("the main thread's stack bounds from the layout are pthread_getattr_np's",
          "[thread-bounds]") {
    // Catch2 runs test cases on the main thread.
    StackBounds layout{0, 0};
    REQUIRE(main_stack_from_layout(&layout));
    StackBounds glibc = from_glibc();
    CHECK(layout.hi == glibc.hi);
    CHECK(layout.lo == glibc.lo);
    int here = 0;
    auto sp = reinterpret_cast<uintptr_t>(&here);
    CHECK(sp > layout.lo);
    CHECK(sp < layout.hi);
}

TEST_CASE("under other stack limits too, and an unlimited stack is left to glibc",
          "[thread-bounds]") {
    // RLIMIT_STACK changes the lower bound; each limit in a child, which changes it for itself.
    for (rlim_t limit :
         {rlim_t{1} << 20, rlim_t{64} << 20, rlim_t{3} << 30, rlim_t{RLIM_INFINITY}}) {
        INFO("RLIMIT_STACK " << limit);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            struct rlimit rl;
            getrlimit(RLIMIT_STACK, &rl);
            rl.rlim_cur = limit;
            if (setrlimit(RLIMIT_STACK, &rl) != 0) _exit(3);
            StackBounds layout{0, 0};
            bool found = main_stack_from_layout(&layout);
            if (limit == RLIM_INFINITY) _exit(found ? 4 : 0);
            if (!found) _exit(5);
            pthread_attr_t attr;
            void* base = nullptr;
            size_t size = 0;
            if (pthread_getattr_np(pthread_self(), &attr) != 0) _exit(6);
            pthread_attr_getstack(&attr, &base, &size);
            auto lo = reinterpret_cast<uintptr_t>(base);
            _exit(layout.lo == lo && layout.hi == lo + size ? 0 : 7);
        }
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
}

TEST_CASE("the room left: inside the bounds, just under them, and on a stack of no one's",
          "[thread-bounds]") {
    // Run on a thread of its own, whose bounds the test may set as it likes.
    static size_t rooms[4];
    auto measure = [](void*) -> void* {
        int here = 0;
        auto sp = reinterpret_cast<uintptr_t>(&here);
        t_stack_bounds = {sp - 10000, sp + 4096};
        rooms[0] = stack_room();
        t_stack_bounds = {sp + 1024, sp + 8192};  // a signal frame pushed under the bound
        rooms[1] = stack_room();
        t_stack_bounds = {sp + (64 << 10), sp + (128 << 10)};  // far away: another stack
        rooms[2] = stack_room();
        t_stack_bounds = {0, 1};  // unknown
        rooms[3] = stack_room();
        return nullptr;
    };
    pthread_t t;
    REQUIRE(pthread_create(&t, nullptr, measure, nullptr) == 0);
    pthread_join(t, nullptr);
    // stack_room measures from its own frame, a little under `here`.
    CHECK(rooms[0] < 10000);
    CHECK(rooms[0] > 10000 - 512);
    CHECK(rooms[1] == 0);
    CHECK(rooms[2] == SIZE_MAX);
    CHECK(rooms[3] == SIZE_MAX);
}
