// The stored tables of resolved addresses (symbolize/resolved_store.h): what is encoded reads back
// field by field, and a file that is not exactly a valid table for this build ID and DWARF source
// is refused, never read out of bounds.
#include <catch2/catch.hpp>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "symbolize/resolved_store.h"

using gprof::symbolize::ResolvedStore;
using gprof::symbolize::StoredAddress;
using gprof::symbolize::StoredFrame;

namespace {

const std::string kBuildId = "93ac61ec5a8eb1396f9fbd350e3169a558528a40";

// The strings the frames below view (a deque never moves them).
std::deque<std::string> g_strings;

std::vector<StoredAddress> random_addresses(unsigned seed, size_t count) {
    std::mt19937_64 rng(seed);
    static const char* names[] = {"malloc", "_ZN3foo3barEv", "", "exit", "__libc_start_call_main"};
    static const char* files[] = {"", "stdlib/exit.c", "malloc/malloc.c", "a/very/long/path.cpp"};
    std::vector<StoredAddress> out;
    uint64_t address = 0x1000;
    for (size_t i = 0; i < count; ++i) {
        address += 1 + rng() % 5000;
        StoredAddress a;
        a.link_address = address;
        a.from_dwarf = rng() % 3 != 0;
        a.age = static_cast<uint8_t>(rng() % 256);
        size_t frames = rng() % 5;  // 0: an address known to have no name
        for (size_t f = 0; f < frames; ++f) {
            StoredFrame frame;
            frame.system_name = names[rng() % 5];
            frame.name = g_strings.emplace_back(std::string(frame.system_name) +
                                                (rng() % 2 ? "()" : ""));
            frame.filename = files[rng() % 4];
            frame.line = static_cast<int64_t>(rng() % 100000);
            frame.start_line = static_cast<int64_t>(rng() % 100000);
            a.frames.push_back(frame);
        }
        out.push_back(a);
    }
    return out;
}

void check_equal(const StoredAddress& got, const StoredAddress& want) {
    CHECK(got.link_address == want.link_address);
    CHECK(got.from_dwarf == want.from_dwarf);
    CHECK(got.age == want.age);
    REQUIRE(got.frames.size() == want.frames.size());
    for (size_t i = 0; i < want.frames.size(); ++i) {
        CHECK(got.frames[i].name == want.frames[i].name);
        CHECK(got.frames[i].system_name == want.frames[i].system_name);
        CHECK(got.frames[i].filename == want.frames[i].filename);
        CHECK(got.frames[i].line == want.frames[i].line);
        CHECK(got.frames[i].start_line == want.frames[i].start_line);
    }
}

// The same answer. The age is left out: it is not under the record's check (a rewrite changes it
// alone), and a damaged one only changes which addresses a full table drops first.
bool same(const StoredAddress& a, const StoredAddress& b) {
    if (a.link_address != b.link_address || a.from_dwarf != b.from_dwarf ||
        a.frames.size() != b.frames.size())
        return false;
    for (size_t i = 0; i < a.frames.size(); ++i) {
        const StoredFrame &x = a.frames[i], &y = b.frames[i];
        if (x.name != y.name || x.system_name != y.system_name || x.filename != y.filename ||
            x.line != y.line || x.start_line != y.start_line)
            return false;
    }
    return true;
}

const uint8_t* bytes(const std::string& s) {
    return reinterpret_cast<const uint8_t*>(s.data());
}

}  // namespace

TEST_CASE("a stored table reads back every address, frame and string it was given",
          "[resolved-store]") {
    for (unsigned seed = 1; seed <= 20; ++seed) {
        INFO("seed " << seed);
        std::vector<StoredAddress> addresses = random_addresses(seed, seed * 37);
        uint64_t key = gprof::symbolize::resolved_source_key(kBuildId, 2049, seed, 1000, 12345);
        std::string file = gprof::symbolize::encode_resolved(kBuildId, key, addresses);
        ResolvedStore store;
        REQUIRE(store.open(bytes(file), file.size(), kBuildId, key));
        REQUIRE(store.size() == addresses.size());
        for (size_t i = 0; i < addresses.size(); ++i) {
            StoredAddress got;
            REQUIRE(store.get(i, &got));
            check_equal(got, addresses[i]);
            StoredAddress found;
            REQUIRE(store.find(addresses[i].link_address, &found));
            check_equal(found, addresses[i]);
            uint64_t between = addresses[i].link_address + 1;  // not stored, unless the next
            bool next = i + 1 < addresses.size() && addresses[i + 1].link_address == between;
            CHECK(store.find(between, &found) == next);
        }
        StoredAddress none;
        CHECK_FALSE(store.find(0, &none));
        CHECK_FALSE(store.find(~uint64_t{0}, &none));
    }
    // An empty table is a valid table.
    std::string empty = gprof::symbolize::encode_resolved(kBuildId, 7, {});
    ResolvedStore store;
    CHECK(store.open(bytes(empty), empty.size(), kBuildId, 7));
    CHECK(store.size() == 0);
}

TEST_CASE("the source key tells sources apart, DWARF or a module's own file", "[resolved-store]") {
    using gprof::symbolize::resolved_source_key;
    uint64_t key = resolved_source_key(kBuildId, 1, 2, 3, 4);
    CHECK(key == resolved_source_key(kBuildId, 1, 2, 3, 4));
    CHECK(key != resolved_source_key(kBuildId, 9, 2, 3, 4));
    CHECK(key != resolved_source_key(kBuildId, 1, 9, 3, 4));
    CHECK(key != resolved_source_key(kBuildId, 1, 2, 9, 4));
    CHECK(key != resolved_source_key(kBuildId, 1, 2, 3, 9));
    CHECK(key != resolved_source_key("ab" + kBuildId.substr(2), 1, 2, 3, 4));
    // The same file as a module without DWARF (its symbol table's names) never shares a key with
    // it as a DWARF source.
    CHECK(key != resolved_source_key(kBuildId, 1, 2, 3, 4, false));
    CHECK(resolved_source_key(kBuildId, 1, 2, 3, 4, false) ==
          resolved_source_key(kBuildId, 1, 2, 3, 4, false));
}

TEST_CASE("a stored table that is not right is refused whole, or record by record",
          "[resolved-store]") {
    std::vector<StoredAddress> addresses = random_addresses(99, 50);
    const uint64_t key = 0x1234;
    const std::string good = gprof::symbolize::encode_resolved(kBuildId, key, addresses);
    ResolvedStore store;
    REQUIRE(store.open(bytes(good), good.size(), kBuildId, key));

    // Another build ID or DWARF source, none at all, or bytes that are not a table.
    CHECK_FALSE(store.open(bytes(good), good.size(), "ff" + kBuildId.substr(2), key));
    CHECK_FALSE(store.open(bytes(good), good.size(), kBuildId, key + 1));
    CHECK_FALSE(store.open(nullptr, 0, kBuildId, key));
    std::string text(200, 'x');
    CHECK_FALSE(store.open(bytes(text), text.size(), kBuildId, key));

    // Cut anywhere, or one byte longer: the sizes in the header do not add up.
    for (size_t size : {size_t{0}, size_t{10}, size_t{47}, size_t{48}, good.size() / 2,
                        good.size() - 1}) {
        INFO("cut to " << size);
        CHECK_FALSE(store.open(bytes(good), size, kBuildId, key));
    }
    std::string longer = good + '\0';
    CHECK_FALSE(store.open(bytes(longer), longer.size(), kBuildId, key));

    // Any one byte changed: the header's check refuses the table, or the records that the byte
    // belongs to fail their own check and read as misses. Never a wrong frame, never a read
    // outside the table (the unit tests also run under ASan). Only the header's reserved word and
    // the padding after the build ID are read by nothing.
    size_t tables_refused = 0, records_missed = 0, wrong = 0;
    for (size_t at = 0; at < good.size(); ++at) {
        std::string bad = good;
        bad[at] = static_cast<char>(bad[at] ^ 0x5a);
        INFO("byte " << at);
        if (!store.open(bytes(bad), bad.size(), kBuildId, key)) {
            ++tables_refused;
            continue;
        }
        bool missed = false;
        for (const StoredAddress& want : addresses) {
            StoredAddress got;
            if (!store.find(want.link_address, &got))
                missed = true;
            else if (!same(got, want))
                ++wrong;
        }
        for (size_t i = 0; i < store.size(); ++i) {
            StoredAddress got;
            if (!store.get(i, &got)) continue;
            bool known = false;
            for (const StoredAddress& want : addresses) known = known || same(got, want);
            if (!known) ++wrong;
        }
        if (missed) ++records_missed;
    }
    CHECK(wrong == 0);
    CHECK(tables_refused >= 84);  // every header byte but the reserved word's 4, the build ID
    CHECK(records_missed > good.size() / 2);
}
