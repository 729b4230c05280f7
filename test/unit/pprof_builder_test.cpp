// ProfileBuilder: what it writes, decoded with libprotobuf (pprof/profile.proto).
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "profile.pb.h"
#include "symbolize/debug_info.h"
#include "symbolize/modules.h"
#include "pprof/profile_builder.h"
#include "symbolize/symbols.h"

namespace {

namespace pb = perftools::profiles;
using gprof::symbolize::Module;
using gprof::symbolize::ModuleSnapshot;
using gprof::pprof::NumericLabel;
using gprof::pprof::ProfileBuilder;
using gprof::pprof::SampleLabels;
using gprof::pprof::StringLabel;
using gprof::symbolize::SymbolCache;
using gprof::pprof::ValueType;

const ValueType kHeapTypes[] = {{"alloc_objects", "count"},
                                {"alloc_space", "bytes"},
                                {"inuse_objects", "count"},
                                {"inuse_space", "bytes"}};

pb::Profile decode(ProfileBuilder& builder) {
    std::string bytes;
    REQUIRE(builder.build(&bytes));
    pb::Profile profile;
    REQUIRE(profile.ParseFromString(bytes));
    return profile;
}

const std::string& text(const pb::Profile& p, int64_t index) {
    REQUIRE(index >= 0);
    REQUIRE(index < p.string_table_size());
    return p.string_table(static_cast<int>(index));
}

const pb::Location& location(const pb::Profile& p, uint64_t id) {
    for (const auto& l : p.location()) {
        if (l.id() == id) return l;
    }
    FAIL("no location " << id);
    return p.location(0);
}

const pb::Function& function(const pb::Profile& p, uint64_t id) {
    for (const auto& f : p.function()) {
        if (f.id() == id) return f;
    }
    FAIL("no function " << id);
    return p.function(0);
}

// pprof's structural rules (google/pprof profile.CheckValid and the parser): nonzero unique ids,
// every reference resolves, every sample as wide as sample_type, string indexes in range.
void check_valid(const pb::Profile& p) {
    REQUIRE(p.string_table_size() > 0);
    CHECK(p.string_table(0).empty());
    std::set<uint64_t> mappings, locations, functions;
    for (const auto& m : p.mapping()) {
        CHECK(m.id() != 0);
        CHECK(mappings.insert(m.id()).second);
        CHECK(m.filename() < p.string_table_size());
        CHECK(m.build_id() < p.string_table_size());
    }
    for (const auto& f : p.function()) {
        CHECK(f.id() != 0);
        CHECK(functions.insert(f.id()).second);
        CHECK(f.name() < p.string_table_size());
        CHECK(f.system_name() < p.string_table_size());
    }
    for (const auto& l : p.location()) {
        CHECK(l.id() != 0);
        CHECK(locations.insert(l.id()).second);
        CHECK((l.mapping_id() == 0 || mappings.count(l.mapping_id()) == 1));
        for (const auto& line : l.line()) CHECK(functions.count(line.function_id()) == 1);
    }
    for (const auto& s : p.sample()) {
        CHECK(s.value_size() == p.sample_type_size());
        for (uint64_t id : s.location_id()) CHECK(locations.count(id) == 1);
        for (const auto& label : s.label()) {
            CHECK(label.key() < p.string_table_size());
            CHECK(label.str() < p.string_table_size());
            CHECK(label.num_unit() < p.string_table_size());
        }
    }
    // ids are 1..n in order.
    for (int i = 0; i < p.mapping_size(); ++i) CHECK(p.mapping(i).id() == uint64_t(i) + 1);
    for (int i = 0; i < p.location_size(); ++i) CHECK(p.location(i).id() == uint64_t(i) + 1);
    for (int i = 0; i < p.function_size(); ++i) CHECK(p.function(i).id() == uint64_t(i) + 1);
}

}  // namespace

// Code for the tests to find by address. Long enough that several addresses fall inside.
extern "C" __attribute__((noinline)) int pprof_builder_test_function(int x) {
    volatile int v = x;
    for (int i = 0; i < 3; ++i) v = v * 7 + i;
    return v;
}

TEST_CASE("builder: profile shape follows the constructor and setters", "[writer][builder]") {
    ProfileBuilder builder(kHeapTypes, {"space", "bytes"}, 524288, nullptr, nullptr);
    builder.set_time_nanos(1700000000123456789);
    builder.set_duration_nanos(-5);
    builder.set_default_sample_type("alloc_space");
    builder.add_comment("first comment");
    builder.add_comment("second, ünïcode");
    pb::Profile p = decode(builder);
    check_valid(p);

    REQUIRE(p.sample_type_size() == 4);
    for (int i = 0; i < 4; ++i) {
        CHECK(text(p, p.sample_type(i).type()) == kHeapTypes[i].type);
        CHECK(text(p, p.sample_type(i).unit()) == kHeapTypes[i].unit);
    }
    CHECK(text(p, p.period_type().type()) == "space");
    CHECK(text(p, p.period_type().unit()) == "bytes");
    CHECK(p.period() == 524288);
    CHECK(p.time_nanos() == 1700000000123456789);
    CHECK(p.duration_nanos() == -5);
    CHECK(text(p, p.default_sample_type()) == "alloc_space");
    REQUIRE(p.comment_size() == 2);
    CHECK(text(p, p.comment(0)) == "first comment");
    CHECK(text(p, p.comment(1)) == "second, ünïcode");
    CHECK(p.sample_size() == 0);
}

TEST_CASE("builder: locations are deduplicated and store return address - 1", "[writer][builder]") {
    const ValueType types[] = {{"goroutine", "count"}};
    ProfileBuilder builder(types, {"goroutine", "count"}, 1, nullptr, nullptr);
    const uintptr_t first[] = {0x1001, 0x2001, 0x3001};
    const uintptr_t second[] = {0x1001, 0x4001, 0x3001};
    const uintptr_t with_zero[] = {0x5001, 0, 0x1001};
    const int64_t one[] = {1};
    const int64_t many[] = {-42};
    REQUIRE(builder.add_sample(first, 3, one, 1));
    REQUIRE(builder.add_sample(second, 3, many, 1));
    REQUIRE(builder.add_sample(with_zero, 3, one, 1));
    pb::Profile p = decode(builder);
    check_valid(p);

    REQUIRE(p.location_size() == 5);  // 0x1000 0x2000 0x3000 0x4000 0x5000
    REQUIRE(p.sample_size() == 3);
    auto addresses = [&](int sample) {
        std::vector<uint64_t> out;
        for (uint64_t id : p.sample(sample).location_id()) out.push_back(location(p, id).address());
        return out;
    };
    CHECK(addresses(0) == std::vector<uint64_t>{0x1000, 0x2000, 0x3000});
    CHECK(addresses(1) == std::vector<uint64_t>{0x1000, 0x4000, 0x3000});
    CHECK(addresses(2) == std::vector<uint64_t>{0x5000, 0x1000});  // the zero is skipped
    CHECK(p.sample(0).location_id(0) == p.sample(1).location_id(0));
    CHECK(p.sample(0).location_id(2) == p.sample(1).location_id(2));
    CHECK(p.sample(0).value(0) == 1);
    CHECK(p.sample(1).value(0) == -42);
    for (const auto& l : p.location()) {
        CHECK(l.mapping_id() == 0);  // no modules given
        CHECK(l.line_size() == 0);   // no symbols given
    }
    CHECK(p.mapping_size() == 0);
}

TEST_CASE("builder: values and labels round-trip; strings are unique", "[writer][builder]") {
    ProfileBuilder builder(kHeapTypes, {"space", "bytes"}, 1, nullptr, nullptr);
    const uintptr_t stack[] = {0x10, 0x20};
    const int64_t values[] = {INT64_MAX, INT64_MIN, 0, -1};
    const StringLabel strings[] = {{"thread_name", "worker 1"}, {"thread_name", "bytes"}};
    const NumericLabel numbers[] = {{"bytes", 4096, ""}, {"delay", -3, "nanoseconds"}};
    REQUIRE(builder.add_sample(stack, 2, values, 4, SampleLabels{strings, numbers}));
    REQUIRE(builder.add_sample(stack, 2, values, 4));
    pb::Profile p = decode(builder);
    check_valid(p);

    REQUIRE(p.sample_size() == 2);
    const auto& s = p.sample(0);
    REQUIRE(s.value_size() == 4);
    for (int i = 0; i < 4; ++i) CHECK(s.value(i) == values[i]);
    REQUIRE(s.label_size() == 4);
    CHECK(text(p, s.label(0).key()) == "thread_name");
    CHECK(text(p, s.label(0).str()) == "worker 1");
    CHECK(s.label(0).num() == 0);
    CHECK(text(p, s.label(1).str()) == "bytes");
    CHECK(text(p, s.label(2).key()) == "bytes");
    CHECK(s.label(2).num() == 4096);
    CHECK(s.label(2).num_unit() == 0);  // no unit: pprof takes the key ("bytes")
    CHECK(s.label(2).str() == 0);
    CHECK(text(p, s.label(3).key()) == "delay");
    CHECK(s.label(3).num() == -3);
    CHECK(text(p, s.label(3).num_unit()) == "nanoseconds");
    CHECK(p.sample(1).label_size() == 0);
    CHECK(p.sample(0).location_id(0) == p.sample(1).location_id(0));

    std::set<std::string> seen;
    for (const auto& entry : p.string_table()) CHECK(seen.insert(entry).second);
}

TEST_CASE("builder: a sample of the wrong width is dropped, the profile stays valid",
          "[writer][builder]") {
    ProfileBuilder builder(kHeapTypes, {"space", "bytes"}, 1, nullptr, nullptr);
    const uintptr_t stack[] = {0x10};
    const int64_t values[] = {1, 2, 3, 4, 5};
    CHECK_FALSE(builder.add_sample(stack, 1, values, 3));
    CHECK_FALSE(builder.add_sample(stack, 1, values, 5));
    CHECK(builder.add_sample(stack, 1, values, 4));
    CHECK(builder.dropped_samples() == 2);
    pb::Profile p = decode(builder);
    check_valid(p);
    CHECK(p.sample_size() == 1);
}

TEST_CASE("builder: mappings: main first, only used ones, unknown addresses get none",
          "[writer][builder]") {
    std::vector<Module> modules(4);
    modules[0] = {0x1000, 0x2000, 0x0, "/usr/lib/libfirst.so", "aa11", false, true, false};
    modules[1] = {0x3000, 0x4000, 0x2000, "/usr/lib/libused.so", "", false, true, false};
    modules[2] = {0x5000, 0x6000, 0x0, "[anon]", "", false, false, false};
    modules[3] = {0x9000, 0xa000, 0x1000, "/opt/app/main", "beef", true, true, false};
    ModuleSnapshot snapshot;
    snapshot.assign(modules);
    const ValueType types[] = {{"samples", "count"}};
    ProfileBuilder builder(types, {"cpu", "nanoseconds"}, 10000000, &snapshot, nullptr);
    const uintptr_t stack[] = {0x3101, 0x7001, 0x5001, 0x9801, 0x3201};
    const int64_t one[] = {1};
    REQUIRE(builder.add_sample(stack, 5, one, 1));
    pb::Profile p = decode(builder);
    check_valid(p);

    // main (not first in address order nor first used), then libused, then [anon]; libfirst
    // is used by no location and left out.
    REQUIRE(p.mapping_size() == 3);
    CHECK(text(p, p.mapping(0).filename()) == "/opt/app/main");
    CHECK(p.mapping(0).memory_start() == 0x9000);
    CHECK(p.mapping(0).memory_limit() == 0xa000);
    CHECK(p.mapping(0).file_offset() == 0x1000);
    CHECK(text(p, p.mapping(0).build_id()) == "beef");
    CHECK(text(p, p.mapping(1).filename()) == "/usr/lib/libused.so");
    CHECK(p.mapping(1).build_id() == 0);
    CHECK(text(p, p.mapping(2).filename()) == "[anon]");
    for (const auto& m : p.mapping()) {
        // No symbol cache was given: no names, so nothing claimed.
        CHECK_FALSE(m.has_functions());
        CHECK_FALSE(m.has_filenames());
        CHECK_FALSE(m.has_line_numbers());
        CHECK_FALSE(m.has_inline_frames());
    }

    const auto& ids = p.sample(0).location_id();
    REQUIRE(ids.size() == 5);
    CHECK(location(p, ids[0]).mapping_id() == 2);  // 0x3100 in libused
    CHECK(location(p, ids[1]).mapping_id() == 0);  // 0x7000 in nothing
    CHECK(location(p, ids[2]).mapping_id() == 3);  // 0x5000 in [anon]
    CHECK(location(p, ids[3]).mapping_id() == 1);  // 0x9800 in main
    CHECK(location(p, ids[4]).mapping_id() == 2);

    // Building again gives the same bytes.
    std::string once, twice;
    REQUIRE(builder.build(&once));
    REQUIRE(builder.build(&twice));
    CHECK(once == twice);
}

TEST_CASE("builder: the main executable's mapping is first even when unused", "[writer][builder]") {
    std::vector<Module> modules(2);
    modules[0] = {0x1000, 0x2000, 0x0, "/usr/lib/libc.so.6", "", false, true, false};
    modules[1] = {0x9000, 0xa000, 0x0, "/opt/app/main", "", true, true, false};
    ModuleSnapshot snapshot;
    snapshot.assign(modules);
    const ValueType types[] = {{"samples", "count"}};
    ProfileBuilder builder(types, {"samples", "count"}, 1, &snapshot, nullptr);
    const uintptr_t stack[] = {0x1801};
    const int64_t one[] = {1};
    REQUIRE(builder.add_sample(stack, 1, one, 1));
    pb::Profile p = decode(builder);
    check_valid(p);
    REQUIRE(p.mapping_size() == 2);
    CHECK(text(p, p.mapping(0).filename()) == "/opt/app/main");
    CHECK(location(p, p.sample(0).location_id(0)).mapping_id() == 2);
}

TEST_CASE("builder: functions are named from DWARF and symbols, and deduplicated",
          "[writer][builder]") {
    ModuleSnapshot snapshot;
    std::string error;
    REQUIRE(snapshot.capture(&error));
    SymbolCache symbols;
    const ValueType types[] = {{"samples", "count"}};
    ProfileBuilder builder(types, {"samples", "count"}, 1, &snapshot, &symbols);

    const uintptr_t entry = reinterpret_cast<uintptr_t>(&pprof_builder_test_function);
    REQUIRE(pprof_builder_test_function(1) != 0);
    // Two different return addresses inside the same function, and one repeated.
    const uintptr_t stack[] = {entry + 3, entry + 5, entry + 3};
    const int64_t one[] = {1};
    REQUIRE(builder.add_sample(stack, 3, one, 1));
    pb::Profile p = decode(builder);
    check_valid(p);

    REQUIRE(p.location_size() == 2);
    REQUIRE(p.function_size() == 1);
    CHECK(text(p, p.function(0).name()) == "pprof_builder_test_function");
    CHECK(text(p, p.function(0).system_name()) == "pprof_builder_test_function");
    // The test binary is built with -g: with libdw the function has its file and first line.
    const bool dwarf = gprof::symbolize::debug_info_library_available();
    if (dwarf) {
        CHECK(text(p, p.function(0).filename()).ends_with("test/unit/pprof_builder_test.cpp"));
        CHECK(p.function(0).start_line() > 0);
    } else {
        WARN("libdw.so.1 missing: only symbol-table names are checked");
        CHECK(p.function(0).filename() == 0);
    }
    for (const auto& l : p.location()) {
        REQUIRE(l.line_size() == 1);
        if (dwarf) CHECK(l.line(0).line() >= p.function(0).start_line());
        CHECK(function(p, l.line(0).function_id()).id() == 1);
        REQUIRE(l.mapping_id() != 0);
        const auto& m = p.mapping(static_cast<int>(l.mapping_id() - 1));
        CHECK(m.memory_start() <= l.address());
        CHECK(l.address() < m.memory_limit());
        CHECK(m.has_functions());
        CHECK(m.has_filenames() == dwarf);
        CHECK(m.has_line_numbers() == dwarf);
        CHECK(m.has_inline_frames() == dwarf);
    }
    CHECK(location(p, p.sample(0).location_id(0)).address() == entry + 2);
    CHECK(location(p, p.sample(0).location_id(1)).address() == entry + 4);
    // The test program is mapping[0], and it carries a build ID.
    CHECK(p.location(0).mapping_id() == 1);
    CHECK_FALSE(text(p, p.mapping(0).build_id()).empty());
}

TEST_CASE("builder: a named sample is one pseudo-frame, shared, without address or mapping",
          "[writer][builder]") {
    const ValueType types[] = {{"samples", "count"}, {"cpu", "nanoseconds"}};
    ProfileBuilder builder(types, {"cpu", "nanoseconds"}, 10000000, nullptr, nullptr);
    const uintptr_t stack[] = {0x1001, 0x2001};
    const int64_t values[] = {3, 30000000};
    const StringLabel label[] = {{"thread_name", "worker"}};
    REQUIRE(builder.add_sample(stack, 2, values, 2));
    REQUIRE(builder.add_named_sample("[lost]", values, 2, SampleLabels{label, {}}));
    REQUIRE(builder.add_named_sample("[lost]", values, 2));
    CHECK_FALSE(builder.add_named_sample("[lost]", values, 1));  // the wrong width
    pb::Profile p = decode(builder);
    check_valid(p);
    REQUIRE(p.sample_size() == 3);
    REQUIRE(p.sample(1).location_id_size() == 1);
    CHECK(p.sample(1).location_id(0) == p.sample(2).location_id(0));
    const pb::Location& lost = location(p, p.sample(1).location_id(0));
    CHECK(lost.address() == 0);
    CHECK(lost.mapping_id() == 0);
    REQUIRE(lost.line_size() == 1);
    CHECK(text(p, function(p, lost.line(0).function_id()).name()) == "[lost]");
    CHECK(p.sample(1).value(1) == 30000000);
    REQUIRE(p.sample(1).label_size() == 1);
    CHECK(text(p, p.sample(1).label(0).str()) == "worker");
}
