// Reading what gprof wrote, the two ways every profile is checked: decoded with libprotobuf
// (generated from pprof/profile.proto) and checked for internal consistency, and opened with
// `go tool pprof`, which must print no warning.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "profile.pb.h"

namespace e2e {

// Gunzips and parses a .pb.gz file; fails the current test (REQUIRE) when it cannot.
perftools::profiles::Profile read_profile(const std::string& path);

// Every reference in the profile points at something that exists: string indexes, mapping,
// location and function ids; ids are unique and non-zero; string_table[0] is "". Returns the
// problems found (empty: none).
std::vector<std::string> consistency_problems(const perftools::profiles::Profile& p);

// A sample with its stack resolved to function names (leaf first; a location with inlined frames
// contributes each, innermost first) and its labels.
struct FlatSample {
    std::vector<std::string> functions;
    std::vector<uint64_t> addresses;   // location address per location, leaf first
    std::vector<std::string> mappings;  // mapping file per location, leaf first
    std::vector<int64_t> values;
    std::map<std::string, int64_t> numbers;
    std::map<std::string, std::string> strings;
};
std::vector<FlatSample> flatten(const perftools::profiles::Profile& p);

std::string string_at(const perftools::profiles::Profile& p, int64_t index);

// Runs `go tool pprof <args> <file>`; returns its stderr and fills *out with stdout. An empty
// string when `go` is missing is not returned: that REQUIREs `go` to exist.
std::string pprof_stderr(const std::vector<std::string>& args, const std::string& file,
                         std::string* out = nullptr);

}  // namespace e2e
