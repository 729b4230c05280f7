// base::StopScope, and the work that honours it: a profile builder and gzip fail with "stopped"
// once the flag is set, on the scope's thread only.
#include <catch2/catch.hpp>
#include <atomic>
#include <string>
#include <thread>

#include "base/stop_scope.h"
#include "pprof/gzip.h"
#include "pprof/profile_builder.h"

using gprof::base::StopScope;

namespace {
const gprof::pprof::ValueType kTypes[] = {{"samples", "count"}};
}  // namespace

TEST_CASE("a stop scope sees its flag, nests, and concerns its own thread only", "[stop]") {
    std::atomic<int> flag{0};
    CHECK_FALSE(StopScope::stopped());
    {
        StopScope scope(&flag);
        CHECK_FALSE(StopScope::stopped());
        flag.store(1);
        CHECK(StopScope::stopped());
        bool other_thread = true;
        std::thread([&] { other_thread = StopScope::stopped(); }).join();
        CHECK_FALSE(other_thread);
        {
            StopScope inner(nullptr);  // work that must run to its end
            CHECK_FALSE(StopScope::stopped());
        }
        CHECK(StopScope::stopped());
    }
    CHECK_FALSE(StopScope::stopped());
}

TEST_CASE("a builder and gzip stop when asked, and work as before otherwise", "[stop]") {
    std::atomic<int> flag{0};
    const uintptr_t stack[] = {0x1000, 0x2000};
    const int64_t one[] = {1};
    std::string input(1 << 20, 'x');
    for (size_t i = 0; i < input.size(); i += 7) input[i] = static_cast<char>(i);

    StopScope scope(&flag);
    gprof::pprof::ProfileBuilder builder(kTypes, kTypes[0], 1, nullptr, nullptr);
    CHECK(builder.add_sample(stack, 2, one, 1));
    std::string compressed, error;
    CHECK(gprof::pprof::gzip_compress(input, &compressed, &error));
    CHECK_FALSE(compressed.empty());

    flag.store(1);
    CHECK_FALSE(builder.add_sample(stack, 2, one, 1));
    std::string raw;
    CHECK_FALSE(builder.build(&raw, &error));
    CHECK(error == "stopped");
    compressed.clear();
    CHECK_FALSE(gprof::pprof::gzip_compress(input, &compressed, &error));
    CHECK(error == "stopped");
    CHECK(compressed.empty());
}
