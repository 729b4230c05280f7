// Catalogue cases 13-18: fork, vfork, posix_spawn and exec.
#include <filesystem>
#include <set>

#include "test/e2e/profile_reader.h"
#include "test/hostile/suite.h"

using namespace hostile;

TEST_CASE("#13 tst-malloc-fork-deadlock: fork with getline readers and fflush(NULL)",
          "[hostile][fork]") {
    const std::string seconds = long_run() ? "10" : "2";
    RunResult bare = check_case("fork-deadlock", {program("fork_deadlock"), seconds},
                                configs(false), Outcome::kSame, {}, 60);
    CHECK(bare.out == "done: some forks, some lines\n");
}

TEST_CASE("#14 fork storm: 8 threads sampled at every byte while another thread forks",
          "[hostile][fork][cpu]") {
    const std::string forks = std::to_string(sized(20, 10000));
    RunResult bare =
        check_case("fork-storm", {program("fork_storm"), forks}, configs(true), Outcome::kSame,
                   {{"GPROF_MEM_PROFILE_RATE", "1"}}, long_run() ? 900 : 120);
    CHECK(bare.out == "forks " + forks + ", children exited 0: " + forks + "\n");
}

TEST_CASE("#15 tst-mallocfork2: fork from a signal handler that interrupted malloc",
          "[hostile][fork]") {
    // The handler's fork would take locks the interrupted allocation holds (jemalloc's, gprof's,
    // glibc's arena lock in libc mode, taken because gprof's thread makes the process
    // multi-threaded): gprof's fork sees the interrupted allocation and runs glibc's _Fork.
    const std::string forks = std::to_string(sized(100, 3000));
    RunResult bare =
        check_case("fork-in-handler", {program("fork_in_handler"), forks}, configs(false),
                   Outcome::kSame, {{"GPROF_MEM_PROFILE_RATE", "1"}}, 20);
    CHECK(bare.out == "forks from the handler: all, failures: 0\n");
}

TEST_CASE("#16 vfork and posix_spawn storm: the parent's records intact", "[hostile][fork][cpu]") {
    const int n = sized(50, 10000);
    RunResult bare = check_case(
        "spawn-storm", {program("spawn_storm"), std::to_string(n)}, configs(true), Outcome::kSame,
        {{"GPROF_MEM_PROFILE_RATE", "1"}}, long_run() ? 900 : 120,
        [](const Config&, const RunResult&, const std::string& dir) {
            // The parent's heap profile: the 1000 blocks of site_keep_fn, all still in use.
            // (Each /bin/true writes nothing: it allocates too little to be sampled at exit.)
            int64_t kept = 0, kept_bytes = 0;
            size_t parents = 0;
            for (const std::string& f : e2e::list_files(dir, ".heap.pb.gz")) {
                bool parent = false;
                for (const e2e::FlatSample& s : e2e::flatten(e2e::read_profile(f))) {
                    if (s.functions.empty() || s.functions[0] != "site_keep_fn") continue;
                    parent = true;
                    kept += s.values[2];
                    kept_bytes += s.values[3];
                }
                parents += parent;
            }
            CHECK(parents == 1);
            CHECK(kept == 1000);
            CHECK(kept_bytes == 1000 * 1000);
        },
        4);
    CHECK(bare.out == "children " + std::to_string(2 * n) + ", as expected " +
                          std::to_string(2 * n) + ", kept blocks 1000\n");
}

namespace {

// The level of the exec chain each heap profile comes from, by its site_level_fn sample's size
// (1000 + level); -1 for the forked child's profile (site_child_fn), -2 for neither.
std::multiset<int> chain_levels(const std::string& dir) {
    std::multiset<int> levels;
    for (const std::string& f : e2e::list_files(dir, ".heap.pb.gz")) {
        int level = -2;
        bool child = false;  // (the child inherited level 0's blocks too)
        for (const e2e::FlatSample& s : e2e::flatten(e2e::read_profile(f))) {
            if (s.functions.empty()) continue;
            if (s.functions[0] == "site_level_fn") level = int(s.numbers.at("bytes")) - 1000;
            child = child || s.functions[0] == "site_child_fn";
        }
        levels.insert(child ? -1 : level);
    }
    return levels;
}

}  // namespace

TEST_CASE("#17 exec chains keep the pid: each image's dump in a file of its own",
          "[hostile][exec][cpu]") {
    // Levels 3, 2, 1 and 0 each dump once by signal (all under one pid, each as its sequence
    // 0001), level 0 writes again at exit, and its forked child at its own exit. Seven heap
    // profiles: 3, 2, 1, 0, 0, the child, and nothing lost to a later image reusing a name (an
    // exec'ed image starts its sequence at 0001 again: it skips the numbers already taken; before
    // that fix its rename replaced the previous image's files).
    for (const bool through_shell : {false, true}) {
        INFO((through_shell ? "sh -c 'exec exec_chain'" : "exec_chain"));
        std::vector<std::string> argv = {program("exec_chain"), "{dir}", "3"};
        if (through_shell)
            argv = {"/bin/sh", "-c", "exec " + program("exec_chain") + " \"$0\" 3", "{dir}"};
        RunResult bare = check_case(
            "exec-chain", argv, configs(true), Outcome::kSame, {{"GPROF_MEM_PROFILE_RATE", "1"}},
            60, [](const Config&, const RunResult&, const std::string& dir) {
                CHECK(chain_levels(dir) == std::multiset<int>{-1, 0, 0, 1, 2, 3});
            });
        CHECK(bare.out == "level 0 reached, child status 0\n");
    }
}

TEST_CASE("#17 fork without exec: parent and child write complete files under their own pids",
          "[hostile][fork]") {
    // test/heap/fork_sites (e2e "heap after fork" checks the values; it prints its pids, so
    // only the status and stderr are compared here) and that both files are complete.
    for (const Config& config : configs(true)) {
        INFO(config.describe());
        std::string dir = e2e::make_dir("fork-sites");
        RunResult r = e2e::run({std::string(HEAP_PROGRAMS_BUILD_DIR) + "/fork_sites"},
                               options(gprof_env(config, dir, {{"GPROF_MEM_PROFILE_RATE", "1"}})));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.err.empty());
        check_written(dir);
        CHECK(e2e::list_files(dir, ".heap.pb.gz").size() == 2);
    }
}

TEST_CASE("#18 relative LD_PRELOAD, chdir, exec of a static child: no line from gprof",
          "[hostile][exec]") {
    // The loader cannot find a relative LD_PRELOAD after chdir and says so itself ("ERROR:
    // ld.so: object ... cannot be preloaded"); a static child never loads it. The child runs and
    // gprof adds nothing: the same status and stdout, and the loader's lines are the only ones.
    const std::string build = std::filesystem::path(e2e::kGprofLib).parent_path().string();
    const std::string relative = std::filesystem::path(e2e::kGprofLib).filename().string();
    std::string elsewhere = e2e::make_dir("relative-preload");
    for (const std::string& child : {program("static_child"), program("plain")}) {
        INFO(child);
        std::vector<std::string> argv = {program("chdir_exec"), elsewhere, child};
        RunResult bare = e2e::run(argv, options({}, 60, build));
        for (const std::string& mode : e2e::kModes) {
            INFO(mode);
            auto env = e2e::preload_env(mode, {{"LD_PRELOAD", relative},
                                               {"GPROF_OUTPUT", elsewhere + "/p"}});
            RunResult r = e2e::run(argv, options(env, 60, build));
            INFO(r.describe());
            CHECK(r.status == bare.status);
            CHECK(r.out == bare.out);
            for (const std::string& line : e2e::split_lines(r.err)) {
                INFO(line);
                CHECK(line.rfind("ERROR: ld.so: object '" + relative + "'", 0) == 0);
            }
        }
        if (child == program("static_child")) {
            CHECK(bare.status == 3);
            CHECK(bare.out == "static child ran: yes\n");
        }
    }
    check_written(elsewhere);
}
