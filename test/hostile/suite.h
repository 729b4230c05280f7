// Shared by the hostile-case tests: where the programs are, how a case runs with and without
// gprof, and the checks every case ends with (the outcome, and everything written on disk).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "test/e2e/e2e.h"

namespace hostile {

using e2e::RunOptions;
using e2e::RunResult;

inline const std::string kBuildDir = HOSTILE_BUILD_DIR;
inline const std::string kSourceDir = HOSTILE_SOURCE_DIR;

inline std::string program(const std::string& name) { return kBuildDir + "/" + name; }

// `hostile_tests --long` runs the storms at the catalogue's full size; without it (CI) they run
// at a size that takes seconds.
bool long_run();
inline int sized(int ci, int full) { return long_run() ? full : ci; }

// The configurations a case runs in: both allocators, and (where the case involves stacks being
// walked from a signal handler) both again with the CPU profile on at 1000 Hz.
struct Config {
    std::string allocator;  // GPROF_ALLOCATOR
    int cpu_hz = 0;         // GPROF_CPU_HZ, 0: off
    std::string describe() const;
};
std::vector<Config> configs(bool with_cpu);

// The environment of a run under gprof in `config`, writing into dir/p.
std::map<std::string, std::string> gprof_env(const Config& config, const std::string& dir,
                                             std::map<std::string, std::string> extra = {});

RunOptions options(std::map<std::string, std::string> env, int timeout_seconds = 120,
                   const std::string& cwd = "");

// The two acceptable outcomes of a hostile case. kSame: the same exit status, stdout and stderr
// as the bare run. kOneLine: the same status and stdout, and stderr is the bare run's plus
// exactly one line starting "gprof: " (returned through *line when given). kGprofLines: the same
// status and stdout, and stderr the bare run's plus one or more lines, each starting "gprof: ",
// one for each feature gprof had to leave off (kSameOrGprofLines: or none).
enum class Outcome { kSame, kOneLine, kSameOrOneLine, kGprofLines, kSameOrGprofLines };
void check_outcome(const RunResult& bare, const RunResult& r, Outcome outcome,
                   std::string* line = nullptr);

// Everything gprof left in dir (recursively): no temporary file, and every profile decodes with
// libprotobuf into a consistent profile and opens in `go tool pprof -raw` with no warning (the
// latter for at most `pprof_max` files, the newest ones, where a storm writes hundreds).
// Returns the profiles found.
std::vector<std::string> check_written(const std::string& dir, size_t pprof_max = 1000);

// One hostile case: argv runs bare once, then under gprof in each config, each run writing into
// a fresh directory that replaces each "{dir}" in argv (the bare run gets one too). Each run under
// gprof must have `outcome` and leave only complete profiles (check_written); `more`, when given,
// checks a run further. Returns the bare run, for the test to check that the case happened.
using MoreChecks =
    std::function<void(const Config&, const RunResult&, const std::string& dir)>;
RunResult check_case(const std::string& name, const std::vector<std::string>& argv,
                     const std::vector<Config>& run_configs, Outcome outcome,
                     const std::map<std::string, std::string>& extra_env = {},
                     int timeout_seconds = 120, const MoreChecks& more = nullptr,
                     size_t pprof_max = 1000);

// The comments of a profile, joined by newlines.
std::string comments(const std::string& path);

}  // namespace hostile
