// gprof leaves no trace in the program it is loaded into: what a program's own test suite would
// notice (its stderr, its descriptors, the files left behind, how and when it ends, its signal
// dispositions, deep recursion) is the same with and without gprof. Each case runs
// test/programs/no_trace.c (or a real program) both ways.
#include <signal.h>

#include <catch2/catch.hpp>

#include "test/e2e/e2e.h"
#include "test/e2e/profile_reader.h"

using namespace e2e;

namespace {

// gprof's defaults as a user gets them: GPROF_LOG unset (auto), output in a fresh directory.
std::map<std::string, std::string> default_env(const std::string& mode, const std::string& dir,
                                               std::map<std::string, std::string> extra = {}) {
    auto env = preload_env(mode, {{"GPROF_OUTPUT", dir + "/p"}});
    env.erase("GPROF_LOG");
    for (auto& [k, v] : extra) env[k] = v;
    return env;
}

// Every file in dir (list_files also lists "." and ".." for an empty suffix).
std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> files;
    for (const std::string& f : list_files(dir, ""))
        if (!f.ends_with("/.") && !f.ends_with("/..")) files.push_back(f);
    return files;
}

}  // namespace

TEST_CASE("a child's stderr through a pipe is byte-identical with and without gprof",
          "[no-trace]") {
    // python3 writes to stderr and exits; every process of a test suite looks like this.
    const std::vector<std::string> argv = {
        kPython, "-c",
        "import sys\nx = [bytes(4096) for i in range(2000)]\nsys.stderr.write('pineapple')\n"};
    RunResult base = run(argv);
    REQUIRE(base.status == 0);
    REQUIRE(base.err == "pineapple");
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        std::string dir = make_dir("no-trace-stderr");
        RunResult r = run(argv, with_env(default_env(mode, dir)));
        check_same(base, r);
        CHECK(!list_files(dir, ".heap.pb.gz").empty());  // it did profile: the files are there
    }
}

TEST_CASE("GPROF_LOG: auto names the files only on a terminal, 1 always, 0 never", "[no-trace]") {
    const std::string prog = program("no_trace");
    for (const char* log : {"auto", "1", "0"}) {
        INFO("GPROF_LOG=" << log);
        std::string dir = make_dir("no-trace-log");
        // script(1) gives the program a terminal for stdout and stderr.
        RunResult tty = run({"script", "-qec", prog + " deep 10 2>&1", "/dev/null"},
                            with_env(default_env("", dir, {{"GPROF_LOG", log},
                                                           {"GPROF_MEM_PROFILE_RATE", "1"}})));
        RunResult pipe = run({prog, "deep", "10"},
                             with_env(default_env("", dir, {{"GPROF_LOG", log},
                                                            {"GPROF_MEM_PROFILE_RATE", "1"}})));
        INFO(tty.describe());
        INFO(pipe.describe());
        CHECK(tty.status == 0);
        CHECK(pipe.status == 0);
        const bool on_terminal = std::string(log) != "0";
        const bool on_pipe = std::string(log) == "1";
        CHECK(contains(tty.out, "gprof: wrote ") == on_terminal);
        CHECK(contains(pipe.err, "gprof: wrote ") == on_pipe);
        CHECK(pipe.out == "sum 55\n");
    }
}

TEST_CASE("the lowest free descriptor is 3 under gprof, at start and after a dump", "[no-trace]") {
    for (const std::string& mode : kModes) {
        for (const char* rate : {"524288", "1"}) {
            INFO("GPROF_ALLOCATOR=" << mode << " GPROF_MEM_PROFILE_RATE=" << rate);
            std::string dir = make_dir("no-trace-fds");
            RunResult r = run({program("no_trace"), "fds", dir},
                              with_env(default_env(mode, dir, {{"GPROF_MEM_PROFILE_RATE", rate}})));
            INFO(r.describe());
            CHECK(r.status == 0);
            CHECK(r.out == "at start 3\nafter a dump 3 (dumped)\n");
            CHECK(r.err.empty());
        }
    }
}

TEST_CASE("a closed descriptor 0 stays the lowest free one: cat <&- fails as without gprof",
          "[no-trace]") {
    const std::vector<std::string> argv = {"/bin/sh", "-c", "cat <&-"};
    RunResult base = run(argv);
    REQUIRE(base.status != 0);
    REQUIRE(contains(base.err, "Bad file descriptor"));
    std::string dir = make_dir("no-trace-stdin");
    check_same(base, run(argv, with_env(default_env("", dir))));
}

TEST_CASE("a process that allocates nothing, creates no thread and takes no lock leaves no file",
          "[no-trace]") {
    // (A process that allocates a little may have a sample: /bin/echo's 4 KiB stdio buffer is
    // sampled about once in a hundred runs at the default rate, and then written.)
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        std::string dir = make_dir("no-trace-empty");
        for (int i = 0; i < 5; ++i) {
            for (const std::vector<std::string>& argv :
                 {std::vector<std::string>{"/bin/true"}, {program("no_trace"), "nothing"}}) {
                RunResult r = run(argv, with_env(default_env(mode, dir)));
                CHECK(r.status == 0);
                CHECK(r.err.empty());
            }
        }
        CHECK(files_in(dir).empty());
    }
}

TEST_CASE("the at-exit dump writes only profiles with samples, and no threads profile",
          "[no-trace]") {
    std::string dir = make_dir("no-trace-exit");
    RunResult r = run({program("no_trace"), "deep", "50"},
                      with_env(default_env("", dir, {{"GPROF_MEM_PROFILE_RATE", "1"}})));
    INFO(r.describe());
    REQUIRE(r.status == 0);
    std::vector<std::string> files = files_in(dir);
    REQUIRE(files.size() == 1);  // one thread, no lock waited on: the heap profile alone
    CHECK(contains(files[0], ".0001.heap.pb.gz"));
    CHECK(consistency_problems(read_profile(files[0])).empty());
    CHECK(pprof_stderr({"-raw"}, files[0]) == "");
}

namespace {

// no_trace <mode> under gprof, in both allocator modes, ends as it does without: same status and
// output, within 20 s (a process kept alive by gprof would time out). Returns the run without.
RunResult check_ends_as_without(const std::string& mode_arg) {
    RunResult base = run({program("no_trace"), mode_arg});
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        std::string dir = make_dir("no-trace-" + mode_arg);
        RunOptions options = with_env(default_env(mode, dir));
        options.timeout_seconds = 20;
        check_same(base, run({program("no_trace"), mode_arg}, options));
    }
    return base;
}

}  // namespace

TEST_CASE("a main() that calls pthread_exit: the process ends with its last thread, status 0",
          "[no-trace]") {
    RunResult base = check_ends_as_without("main-exits");
    CHECK(base.status == 0);
    CHECK(base.out == "worker done\n");
}

TEST_CASE("a child forked from a second thread ends when that thread returns, status 0",
          "[no-trace]") {
    RunResult base = check_ends_as_without("fork-in-thread");
    CHECK(base.out == "child exited 0\n");
}

TEST_CASE("SIGTERM ends a program under gprof as it does without", "[no-trace]") {
    RunResult base = check_ends_as_without("sigterm");
    CHECK(base.out == "child ended by signal " + std::to_string(SIGTERM) + "\n");
}

TEST_CASE("a 3 000-deep recursion allocating at every level, at rate 1: a truncated stack, no "
          "crash",
          "[no-trace]") {
    RunResult base = run({program("no_trace"), "deep", "3000"});
    REQUIRE(base.status == 0);
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        std::string dir = make_dir("no-trace-deep");
        RunResult r = run({program("no_trace"), "deep", "3000"},
                          with_env(default_env(mode, dir, {{"GPROF_MEM_PROFILE_RATE", "1"}})));
        check_same(base, r);
        std::vector<std::string> heap = list_files(dir, ".heap.pb.gz");
        REQUIRE(heap.size() == 1);
        perftools::profiles::Profile p = read_profile(heap[0]);
        CHECK(consistency_problems(p).empty());
        bool truncated_noted = false;
        for (int64_t c : p.comment())
            truncated_noted = truncated_noted || contains(string_at(p, c), "deeper than 128");
        CHECK(truncated_noted);
        size_t deepest = 0;
        for (const FlatSample& s : flatten(p)) deepest = std::max(deepest, s.addresses.size());
        CHECK(deepest == 128);
        CHECK(pprof_stderr({"-raw"}, heap[0]) == "");
    }
}

TEST_CASE("a line to a stderr pipe whose reader has gone raises no SIGPIPE", "[no-trace]") {
    RunResult base = run({program("no_trace"), "closed-stderr"});
    REQUIRE(base.status == 0);
    std::string dir = make_dir("no-trace-sigpipe");
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        RunResult r = run({program("no_trace"), "closed-stderr"},
                          with_env(default_env(mode, dir, {{"GPROF_LOG", "1"},
                                                           {"GPROF_MEM_PROFILE_RATE", "1"}})));
        check_same(base, r);
    }
    CHECK(!list_files(dir, ".heap.pb.gz").empty());  // the lines were due: files were written
}

TEST_CASE("the dump signal's disposition is the program's own: SIG_DFL, then SIG_IGN",
          "[no-trace]") {
    RunResult base = run({program("no_trace"), "disposition"});
    REQUIRE(base.out ==
            "at start: default\nreplaced: default\nafter SIG_IGN: ignore\n"
            "after signal(SIG_DFL): default\n");
    std::string dir = make_dir("no-trace-disposition");
    RunResult r = run({program("no_trace"), "disposition"}, with_env(default_env("", dir)));
    check_same(base, r);

    // Python asks at start-up for every signal's disposition.
    const std::vector<std::string> py = {
        kPython, "-c", "import signal; print(signal.getsignal(signal.SIGUSR2))"};
    RunResult py_base = run(py);
    REQUIRE(py_base.status == 0);
    check_same(py_base, run(py, with_env(default_env("", dir))));
}

TEST_CASE("a program that takes the dump signal for itself gets it; gprof steps aside and says so",
          "[no-trace]") {
    RunResult base = run({program("no_trace"), "own-handler"});
    REQUIRE(base.out == "installed: handler\nown handler ran: yes\n");
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        std::string dir = make_dir("no-trace-own-handler");
        RunResult r = run({program("no_trace"), "own-handler"}, with_env(default_env(mode, dir)));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.out == base.out);
        std::vector<std::string> lines = split_lines(r.err);
        REQUIRE(lines.size() == 1);
        CHECK(contains(lines[0], "gprof: "));
        CHECK(contains(lines[0], "GPROF_SIGNAL"));
        CHECK(list_files(dir, ".threads.pb.gz").empty());  // no dump: the signal was the program's
    }
}
