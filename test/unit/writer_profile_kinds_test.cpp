// The table of profile kinds (writer/profile_kinds.h): one row per kind GPROF_PROFILES names,
// each complete, in the order a dump writes them; and start-up switching the records on and off.
#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "base/config.h"
#include "record/contention.h"
#include "record/threads.h"
#include "writer/profile_kinds.h"

using gprof::writer::ProfileKind;
using gprof::writer::profile_kinds;

TEST_CASE("profile kinds: one complete row per kind, the threads profile last") {
    std::set<std::string> names;
    uint32_t bits = 0;
    for (const ProfileKind& kind : profile_kinds()) {
        INFO(kind.name);
        CHECK(names.insert(kind.name).second);
        CHECK((bits & kind.bit) == 0);
        bits |= kind.bit;
        CHECK(kind.build != nullptr);
        CHECK(kind.has_samples != nullptr);
        // Only the CPU profile's build takes (resets) what it writes: a dump that a fork stops
        // must still write it whole, or its samples are lost.
        CHECK(kind.takes_samples == (std::string(kind.name) == "cpu"));
    }
    // Every default profile has a row.
    CHECK((bits & gprof::Config{}.profiles) == gprof::Config{}.profiles);
    REQUIRE(!profile_kinds().empty());
    CHECK(std::string(profile_kinds().back().name) == "threads");
    CHECK_FALSE(profile_kinds().back().at_exit);
}

TEST_CASE("profile kinds: start-up hands each kind's settings to its records") {
    gprof::Config c;
    c.block_profile_rate = 12345;
    c.mutex_profile_fraction = 7;
    c.profiles = gprof::kProfileHeap | gprof::kProfileBlock;  // no mutex, no threadcreate
    for (const ProfileKind& kind : profile_kinds())
        if (kind.start != nullptr) kind.start(c, (c.profiles & kind.bit) != 0);
    CHECK(gprof::record::block_profile_rate() == 12345);
    CHECK(gprof::record::mutex_profile_fraction() == 0);
    CHECK_FALSE(gprof::record::thread_creations_on());

    c.profiles = gprof::Config{}.profiles;
    for (const ProfileKind& kind : profile_kinds())
        if (kind.start != nullptr) kind.start(c, (c.profiles & kind.bit) != 0);
    CHECK(gprof::record::mutex_profile_fraction() == 7);
    CHECK(gprof::record::thread_creations_on());
}
