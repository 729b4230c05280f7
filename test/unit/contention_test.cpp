// The pure parts of the thread and lock profiles: counters by stack, Go's block sampling and
// mutex charging rules, the waiter registry and the thread registry.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <thread>
#include <vector>

#include "record/contention.h"
#include "record/stack_counters.h"
#include "record/threads.h"

using namespace gprof::record;

namespace {
std::map<uint32_t, StackCounts> by_stack(const StackCounters& c) {
    std::vector<StackCounts> all(c.size() + 16);
    size_t n = c.snapshot(all.data(), all.size());
    std::map<uint32_t, StackCounts> out;
    for (size_t i = 0; i < n; ++i) out[all[i].stack_id] = all[i];
    return out;
}
}  // namespace

TEST_CASE("stack counters add up per stack, from many threads at once") {
    StackCounters c(1u << 10);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) c.add(1 + static_cast<uint32_t>(i % 50), 1000, 3);
        });
    }
    for (auto& t : threads) t.join();
    auto m = by_stack(c);
    REQUIRE(m.size() == 50);
    for (auto& [id, counts] : m) {
        CHECK(counts.count == 4 * 200 * 1000);
        CHECK(counts.value == 4 * 200 * 3);
    }
    CHECK(c.dropped() == 0);
}

TEST_CASE("stack counters drop what does not fit, and stack 0, and count it") {
    StackCounters c(16);  // room for 12 stacks (three quarters)
    for (uint32_t id = 1; id <= 20; ++id) c.add(id, 1000, 1);
    c.add(0, 1000, 1);
    CHECK(c.size() == 12);
    CHECK(c.dropped() == 8 + 1);
    c.add(1, 1000, 1);  // a known stack still counts when full
    CHECK(by_stack(c)[1].count == 2000);
}

TEST_CASE("block sampling follows Go: long waits kept as they are, short ones un-biased") {
    int64_t total = 0;
    CHECK(block_sample(5000, 0, 0, &total) == 0);            // rate 0: off
    CHECK(block_sample(5000, 1, 12345, &total) == 1000);     // rate 1: every event, as it is
    CHECK(total == 5000);
    CHECK(block_sample(20000, 10000, 999999, &total) == 1000);  // delay >= rate: always
    CHECK(total == 20000);
    // delay < rate: kept when random % rate <= delay, then counted as rate/delay events of
    // `rate` ns in all.
    CHECK(block_sample(2500, 10000, 2501, &total) == 0);
    CHECK(block_sample(2500, 10000, 10000 + 2500, &total) == 4000);
    CHECK(total == 10000);
    // Un-biased, the expected totals equal the truth: 100 000 waits of 2.5 us at rate 10 us.
    uint64_t x = 88172645463325252ull;
    double count = 0, delay = 0;
    for (int i = 0; i < 100000; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t t = 0;
        count += static_cast<double>(block_sample(2500, 10000, x, &t)) / 1000;
        delay += static_cast<double>(t);
    }
    CHECK(std::abs(count - 100000) < 100000 * 0.03);
    CHECK(std::abs(delay - 2.5e8) < 2.5e8 * 0.03);
}

TEST_CASE("a release is charged Go 1.22's estimate of the waiting it caused") {
    CHECK(mutex_release_delay(100, 100, 0) == 0);
    CHECK(mutex_release_delay(100, 100, 1) == 100);  // one waiter: its wait
    // head waited 100, tail 40, 3 waiters: 100 + (40 + 100) / 2 * 2
    CHECK(mutex_release_delay(100, 40, 3) == 240);
    CHECK(mutex_release_delay(-5, -5, 2) == 0);  // clocks that disagree never charge negatively
}

TEST_CASE("the mutex profile tracks 1 waiter in `fraction`: none at 0, every one at 1") {
    int64_t saved = mutex_profile_fraction();
    auto tracked = [](int64_t fraction, int n) {
        set_mutex_profile_fraction(fraction);
        int k = 0;
        for (int i = 0; i < n; ++i) k += mutex_sampled();
        return k;
    };
    CHECK(tracked(0, 1000) == 0);
    CHECK(tracked(1, 1000) == 1000);
    // 200 000 draws at 1 in 100: mean 2 000, standard deviation 44.5; 5 of them either way.
    int k = tracked(100, 200000);
    CHECK(k > 2000 - 223);
    CHECK(k < 2000 + 223);
    set_mutex_profile_fraction(saved);
}

TEST_CASE("the wait registry finds a lock's waiters and restarts their clocks at each release") {
    static WaitRegistry registry;  // 200 KiB: not on the stack
    int lock_a = 0, lock_b = 0;
    CHECK_FALSE(registry.maybe_waiting(&lock_a));
    uint32_t w1 = registry.arrive(&lock_a, 1000);
    uint32_t w2 = registry.arrive(&lock_a, 1600);
    REQUIRE(w1 != 0);
    CHECK(w2 == w1);
    CHECK(registry.maybe_waiting(&lock_a));
    CHECK_FALSE(registry.maybe_waiting(&lock_b));
    // At 2000 the head has waited 1000 and the tail 400: 1000 + (400 + 1000) / 2 * 1.
    CHECK(registry.release(&lock_a, 2000) == 1700);
    registry.leave(w1, &lock_a);
    // The remaining waiter's clock restarted at 2000.
    CHECK(registry.release(&lock_a, 2500) == 500);
    registry.leave(w2, &lock_a);
    CHECK_FALSE(registry.maybe_waiting(&lock_a));
    CHECK(registry.release(&lock_a, 3000) == 0);
    CHECK(registry.release(&lock_b, 3000) == 0);
}

TEST_CASE("the thread registry keeps live threads, their creation stacks and gprof's own") {
    static ThreadRegistry registry;
    registry.add(100, 7, false);
    registry.add(101, 8, true);
    CHECK(registry.live() == 2);
    CHECK(registry.creation_stack(100) == 7);
    CHECK_FALSE(registry.is_own(100));
    CHECK(registry.is_own(101));
    CHECK(registry.creation_stack(555) == 0);  // a thread made without pthread_create
    registry.remove(100);
    CHECK(registry.live() == 1);
    CHECK(registry.creation_stack(100) == 0);
    // Freed slots are reused: a churn of many short threads never fills the table.
    for (int i = 0; i < 100000; ++i) {
        registry.add(1000 + i, 1, false);
        registry.remove(1000 + i);
    }
    CHECK(registry.live() == 1);
    CHECK(registry.is_own(101));
}
