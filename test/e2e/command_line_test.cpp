// scripts/gprof, the command line the README documents: run (with a program and with the bundled
// demo), dump PID, top.
#include <signal.h>

#include <catch2/catch.hpp>
#include <thread>

#include "test/e2e/e2e.h"
#include "test/e2e/profile_reader.h"

using namespace e2e;

namespace {
const std::string kGprof = std::string(SOURCE_ROOT) + "/scripts/gprof";
const std::string kKnownAllocs = std::string(HEAP_PROGRAMS_BUILD_DIR) + "/known_allocs";
}  // namespace

TEST_CASE("gprof run -- PROGRAM names the files and prints the top of the heap profile", "[cli]") {
    std::string dir = make_dir("cli-run");
    RunOptions options;
    options.cwd = dir;
    options.timeout_seconds = 300;
    RunResult r = run({kGprof, "run", "--rate", "1", "--", kKnownAllocs}, options);
    INFO(r.describe());
    REQUIRE(r.status == 0);
    CHECK(contains(r.out, "TRUTH site_keep 1000 100000 1000 100000"));  // its own output
    std::vector<std::string> files = list_files(dir, ".heap.pb.gz");      // default prefix ./gprof
    REQUIRE(files.size() == 1);
    CHECK(files[0].rfind(dir + "/gprof.", 0) == 0);
    CHECK(contains(r.out, "gprof: profiles written:\n"));
    CHECK(contains(r.out, "\n  " + files[0] + "\n"));
    CHECK(contains(r.out, "site_keep_fn"));  // the top lists the sites
    CHECK(contains(r.out, "site_churn_fn"));

    RunResult top = run({kGprof, "top", files[0]}, options);
    INFO(top.describe());
    CHECK(top.status == 0);
    CHECK(contains(top.out, "site_keep_fn"));
}

TEST_CASE("gprof run with no program profiles the bundled demo", "[cli]") {
    std::string dir = make_dir("cli-demo");
    RunOptions options;
    options.cwd = dir;
    options.timeout_seconds = 300;
    RunResult r = run({kGprof, "run"}, options);
    INFO(r.describe());
    REQUIRE(r.status == 0);
    CHECK(contains(r.out, "demo: "));
    REQUIRE(list_files(dir, ".heap.pb.gz").size() == 1);
    CHECK(contains(r.out, "compress_chunk"));  // the allocating sites of the demo
    CHECK(contains(r.out, "leak_buffers"));
}

TEST_CASE("gprof dump PID signals a running program and prints the new files", "[cli]") {
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        std::string dir = make_dir("cli-dump");
        std::string stop = dir + "/stop";
        RunResult program;
        std::thread background([&] {
            program = run({kKnownAllocs, "--until", stop},
                          with_env(preload_env(mode, {{"GPROF_MEM_PROFILE_RATE", "1"},
                                                      {"GPROF_OUTPUT", dir + "/p"}})));
        });
        std::string pid;
        for (int i = 0; i < 3000 && pid.empty(); ++i) {
            pid = read_file(stop + ".pid");
            if (pid.empty()) usleep(10000);
        }
        while (!pid.empty() && pid.back() == '\n') pid.pop_back();
        RunResult d;
        if (!pid.empty()) d = run({kGprof, "dump", pid});
        write_file(stop, "");
        background.join();
        REQUIRE(!pid.empty());
        INFO(d.describe());
        INFO(program.describe());
        CHECK(d.status == 0);
        std::string expected = dir + "/p." + pid + ".0001.heap.pb.gz";
        // Every profile of the dump with samples (known_allocs waits on no lock), as ls sorts them.
        std::string listing;
        for (const char* kind : {"heap", "threadcreate", "threads"})
            listing += dir + "/p." + pid + ".0001." + kind + ".pb.gz\n";
        CHECK(d.out == listing);
        CHECK(program.status == 0);
        CHECK(program.err.empty());
        perftools::profiles::Profile p = read_profile(expected);
        CHECK(consistency_problems(p).empty());
        CHECK(pprof_stderr({"-top"}, expected) == "");
        // The exit dump followed with the next number.
        CHECK(list_files(dir, ".heap.pb.gz").size() == 2);
    }
}

TEST_CASE("gprof dump of a process that is not running fails with one clear line", "[cli]") {
    RunResult d = run({kGprof, "dump", "999999999"});
    CHECK(d.status != 0);
    CHECK(d.err == "gprof: no process 999999999\n");
}
