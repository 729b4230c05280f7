// Running programs for the e2e suite: a child process with a chosen environment, its stdout and
// stderr captured separately, a timeout that kills its whole process group.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace e2e {

struct RunOptions {
    // Added to (or replacing) the inherited environment. The inherited LD_PRELOAD, GPROF_*,
    // MALLOC_* and GLIBC_TUNABLES are always removed first, so every run starts clean.
    std::map<std::string, std::string> env;
    std::string cwd;                       // empty: the current directory
    std::string stdin_path = "/dev/null";  // the child's standard input
    int timeout_seconds = 60;
};

struct RunResult {
    int status = -1;         // exit code; 128 + N when killed by signal N; -1: could not start
    bool timed_out = false;  // killed by the timeout (status is then 128 + SIGKILL)
    std::string out;
    std::string err;

    // A summary for test failure messages: status, and the ends of stdout and stderr.
    std::string describe() const;
};

RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

// A directory of our own for the whole run (created on first use, removed at exit unless
// GPROF_E2E_KEEP=1 is set), and fresh subdirectories in it.
const std::string& scratch_dir();
std::string make_dir(const std::string& name_prefix);

std::vector<std::string> split_lines(const std::string& text);
// The files in dir whose names end in `suffix`, sorted, as full paths.
std::vector<std::string> list_files(const std::string& dir, const std::string& suffix);
bool contains(const std::string& text, const std::string& part);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

}  // namespace e2e
