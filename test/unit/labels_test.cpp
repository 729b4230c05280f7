#include "record/labels.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "record/custom_profiles.h"

using Pairs = std::vector<std::pair<std::string, std::string>>;
namespace r = gprof::record;

namespace {

Pairs current_pairs() {
    Pairs pairs;
    r::label_set_pairs(r::current_label_set(), &pairs);
    return pairs;
}

}  // namespace

TEST_CASE("labels nest, the innermost value of a key wins, and pops restore") {
    CHECK(r::current_label_set() == 0);
    CHECK(r::push_label("request", "a") == r::LabelPushResult::Pushed);
    const uint32_t a = r::current_label_set();
    CHECK(a != 0);
    CHECK(r::push_label("request", "b") == r::LabelPushResult::Pushed);
    CHECK(r::push_label("user", "x") == r::LabelPushResult::Pushed);
    CHECK(current_pairs() == Pairs{{"request", "b"}, {"user", "x"}});
    const uint32_t inner = r::current_label_set();
    CHECK(r::pop_label());
    CHECK(r::pop_label());
    CHECK(r::current_label_set() == a);
    CHECK(current_pairs() == Pairs{{"request", "a"}});
    // The same pushes name the same set (interned), and ids stay valid after the pops.
    CHECK(r::push_label("request", "b") == r::LabelPushResult::Pushed);
    CHECK(r::push_label("user", "x") == r::LabelPushResult::Pushed);
    CHECK(r::current_label_set() == inner);
    r::pop_label();
    r::pop_label();
    CHECK(r::pop_label());
    CHECK(r::current_label_set() == 0);
    CHECK_FALSE(r::pop_label());
    Pairs pairs;
    r::label_set_pairs(inner, &pairs);
    CHECK(pairs == Pairs{{"request", "b"}, {"user", "x"}});
}

TEST_CASE("labels: texts are copied, and pushes past the depth still pair with pops") {
    std::string key = "k", value = "v1";
    r::push_label(key, value);
    const uint32_t set = r::current_label_set();
    value[1] = '2';
    Pairs pairs;
    r::label_set_pairs(set, &pairs);
    CHECK(pairs == Pairs{{"k", "v1"}});
    r::pop_label();

    for (uint32_t i = 0; i < r::kMaxLabelDepth; ++i)
        CHECK(r::push_label("depth", std::to_string(i)) == r::LabelPushResult::Pushed);
    CHECK(r::push_label("depth", "deeper") == r::LabelPushResult::TooDeep);
    r::push_unchanged();
    CHECK(current_pairs() == Pairs{{"depth", std::to_string(r::kMaxLabelDepth - 1)}});
    r::pop_label();
    r::pop_label();
    CHECK(current_pairs() == Pairs{{"depth", std::to_string(r::kMaxLabelDepth - 1)}});
    r::pop_label();
    CHECK(current_pairs() == Pairs{{"depth", std::to_string(r::kMaxLabelDepth - 2)}});
    for (uint32_t i = 1; i < r::kMaxLabelDepth; ++i) CHECK(r::pop_label());
    CHECK(r::current_label_set() == 0);
}

TEST_CASE("labels: each thread has its own, and the threads' table names them") {
    std::vector<std::thread> threads;
    std::vector<uint32_t> seen(8);
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([t, &seen] {
            for (int i = 0; i < 2000; ++i) {
                r::push_label("thread", std::to_string(t));
                r::push_label("i", std::to_string(i % 50));
                Pairs pairs;
                r::label_set_pairs(r::current_label_set(), &pairs);
                if (pairs != Pairs{{"i", std::to_string(i % 50)}, {"thread", std::to_string(t)}})
                    seen[static_cast<size_t>(t)] = UINT32_MAX;
                r::pop_label();
                r::pop_label();
            }
            r::push_label("thread", std::to_string(t));
            if (seen[static_cast<size_t>(t)] == 0)
                seen[static_cast<size_t>(t)] =
                    r::label_set_of_thread(gettid()) == r::current_label_set() ? 1 : 2;
            r::pop_label();
        });
    for (std::thread& t : threads) t.join();
    CHECK(seen == std::vector<uint32_t>(8, 1));
}

TEST_CASE("custom profiles: add and remove under 4 threads leave exact counts") {
    bool exists = false;
    r::CustomProfile* p = r::new_custom_profile("unit_connections", &exists);
    REQUIRE(p != nullptr);
    CHECK(r::new_custom_profile("unit_connections", &exists) == nullptr);
    CHECK(exists);
    CHECK(r::find_custom_profile("unit_connections") == p);
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};  // Catch2's assertions are for the test's own thread
    for (uintptr_t t = 0; t < 4; ++t)
        threads.emplace_back([p, t, &failures] {
            for (uintptr_t i = 0; i < 50000; ++i)
                if (p->add(t << 32 | i, static_cast<uint32_t>(t + 1)) !=
                    r::CustomProfile::Result::Done)
                    ++failures;
            for (uintptr_t i = 0; i < 50000; i += 2)
                if (p->remove(t << 32 | i) != r::CustomProfile::Result::Done) ++failures;
        });
    for (std::thread& t : threads) t.join();
    CHECK(failures == 0);
    CHECK(p->size() == 100000);
    CHECK(p->add(uintptr_t{1} << 32 | 1, 9) == r::CustomProfile::Result::Duplicate);
    CHECK(p->remove(uintptr_t{1} << 32 | 2) == r::CustomProfile::Result::Absent);
    std::vector<r::StackCounts> counts = p->counts();
    REQUIRE(counts.size() == 4);
    for (const r::StackCounts& c : counts) CHECK(c.count == 25000 * r::StackCounters::kCountUnit);
    // Every key still there is found, every removed one is not.
    int wrong = 0;
    for (uintptr_t t = 0; t < 4; ++t)
        for (uintptr_t i = 0; i < 50000; ++i)
            wrong += (p->remove(t << 32 | i) == r::CustomProfile::Result::Done) != (i % 2 == 1);
    CHECK(wrong == 0);
    CHECK(p->size() == 0);
}
