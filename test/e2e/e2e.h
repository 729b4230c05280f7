// Shared by the e2e test files: where things are (compile definitions from test/e2e/meson.build)
// and the environments the programs run in.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "test/e2e/run.h"

namespace e2e {

// Paths fixed at configure time. A tool that meson did not find is an empty string.
inline const std::string kGprofLib = GPROF_LIB;
inline const std::string kProgramsDir = PROGRAMS_BUILD_DIR;
inline const std::string kProgramsSrcDir = PROGRAMS_SOURCE_DIR;
inline const std::string kNm = NM_PATH;
inline const std::string kReadelf = READELF_PATH;
inline const std::string kPython = PYTHON3_PATH;
inline const std::string kGxx = GXX_PATH;
inline const std::string kGit = GIT_PATH;
inline const std::string kSqlite = SQLITE3_PATH;
inline const std::string kValgrind = VALGRIND_PATH;

inline std::string program(const std::string& name) {
    return kProgramsDir + "/" + name;
}

// The two backing allocators of GPROF_ALLOCATOR.
inline const std::vector<std::string> kModes = {"jemalloc", "libc"};

// The environment of a run under gprof. GPROF_LOG=0 keeps only problem lines on stderr, and
// profiles written at exit land in the scratch directory, never in the program's working
// directory (the git test commits everything in its directory).
inline std::map<std::string, std::string> preload_env(
    const std::string& mode, std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> env = {
        {"LD_PRELOAD", kGprofLib},
        {"GPROF_LOG", "0"},
        {"GPROF_OUTPUT", scratch_dir() + "/profiles/gprof"},
    };
    if (!mode.empty()) env["GPROF_ALLOCATOR"] = mode;
    for (auto& [k, v] : extra) env[k] = v;
    return env;
}

inline RunOptions with_env(std::map<std::string, std::string> env, RunOptions base = {}) {
    base.env = std::move(env);
    return base;
}

// A program under gprof behaves as without it: the same exit status, stdout and stderr (so a
// program that prints nothing on stderr must not get a line from gprof either).
inline void check_same(const RunResult& baseline, const RunResult& r) {
    INFO("baseline: " << baseline.describe());
    INFO("under gprof: " << r.describe());
    CHECK_FALSE(r.timed_out);
    CHECK(r.status == baseline.status);
    CHECK(r.out == baseline.out);
    CHECK(r.err == baseline.err);
}

}  // namespace e2e
