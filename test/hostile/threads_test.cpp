// Catalogue cases 7-12 (threads) and 29-32 (start-up and exit).
#include <signal.h>

#include "test/e2e/profile_reader.h"
#include "test/hostile/suite.h"

using namespace hostile;

TEST_CASE("#7 mimalloc-style stress: 32 threads, cross-thread frees, cookies checked",
          "[hostile][threads]") {
    const std::string rounds = std::to_string(sized(20, 500));
    for (const char* rate : {"524288", "1"}) {
        INFO("GPROF_MEM_PROFILE_RATE=" << rate);
        RunResult bare = check_case("stress", {program("stress"), rounds}, configs(false),
                                    Outcome::kSame, {{"GPROF_MEM_PROFILE_RATE", rate}}, 120);
        CHECK(bare.out == "bad cookies: 0\n");
    }
}

// #8 (100k short threads, RSS bounded): covered by e2e "heap at the default rate: 3000 sampled
// threads, one after another, leave no memory behind" (test/heap/thread_churn.cpp, which also
// measures the RSS growth) and "producers end while a consumer frees their samples".

TEST_CASE("#9 threads on 16 KiB stacks and an 8 KiB sigaltstack handler allocate 1 MiB",
          "[hostile][threads][cpu]") {
    const std::string rounds = std::to_string(sized(50, 1000));
    for (const char* rate : {"524288", "1"}) {
        INFO("GPROF_MEM_PROFILE_RATE=" << rate);
        RunResult bare =
            check_case("small-stacks", {program("small_stacks"), rounds}, configs(true),
                       Outcome::kSame, {{"GPROF_MEM_PROFILE_RATE", rate}}, 120);
        CHECK(bare.out == "thread allocations " + std::to_string(std::stoi(rounds) * 40) +
                              " of " + std::to_string(std::stoi(rounds) * 40) +
                              ", handler allocations " + rounds + " of " + rounds + "\n");
    }
}

TEST_CASE("#10 #29 allocating constructors, thread_local and key destructors, exit races",
          "[hostile][threads][exit]") {
    // test/programs/exit_survival (also e2e "start-up, thread exit and process exit"): a library
    // constructor allocating 1 MiB before gprof's, destructors allocating after the thread's
    // first free, detached threads allocating while main returns.
    for (int i = 0; i < sized(2, 20); ++i) {
        RunResult bare = check_case("exit-survival", {e2e::program("exit_survival")},
                                    configs(false), Outcome::kSame,
                                    {{"GPROF_MEM_PROFILE_RATE", "1"}}, 30);
        CHECK(e2e::contains(bare.out, "early_lib: ok\n"));
    }
}

// #11 (thrd_create and raw clone threads): covered by e2e "300 threads, a thrd_create thread and
// a raw clone thread are all in the threads profile" (test/threads/many_threads.cpp).

TEST_CASE("#12 every mutex kind's return codes pass through unchanged", "[hostile][threads]") {
    // test/threads/lock_results (e2e "every lock kind returns what it returns without gprof"
    // checks the values themselves): robust, errorcheck, PI, process-shared, rwlock, cond, sem.
    RunResult bare = check_case(
        "lock-results", {std::string(THREAD_PROGRAMS_BUILD_DIR) + "/lock_results"}, configs(false),
        Outcome::kSame, {{"GPROF_BLOCK_PROFILE_RATE", "1"}, {"GPROF_MUTEX_PROFILE_FRACTION", "1"}});
    CHECK(e2e::contains(bare.out, "robust.lock_owner_dies EOWNERDEAD\n"));
}

TEST_CASE("#30 8 detached threads allocate while main returns, many times",
          "[hostile][threads][exit]") {
    const int runs = sized(10, 200);
    for (const Config& config : configs(false)) {
        INFO(config.describe());
        std::string dir = e2e::make_dir("detached-exit");
        RunResult bare = e2e::run({program("detached_exit")});
        REQUIRE(bare.out == "main returns\n");
        int same = 0;
        for (int i = 0; i < runs; ++i) {
            RunResult r = e2e::run({program("detached_exit")},
                                   options(gprof_env(config, dir), 30, dir));
            INFO("run " << i << ": " << r.describe());
            same += r.status == 0 && r.out == bare.out && r.err == bare.err && !r.timed_out;
        }
        CHECK(same == runs);
        check_written(dir, 3);
    }
}

TEST_CASE("#31 a SIGTERM handler calls exit() during tight malloc", "[hostile][exit]") {
    // The handler interrupts the allocator, which may hold an arena's lock (1 child in 4 hung in
    // the exit dump's first malloc before the fix, in both allocator modes): a child whose handler
    // interrupted an allocation writes no profile at exit and says so in one line.
    const std::string n = std::to_string(sized(12, 500));
    const std::string skipped =
        "gprof: exit() was called by a signal handler that interrupted an allocation; no profile "
        "is written at exit (it could wait for ever for the allocator's lock)";
    auto lines_said = [&](const Config&, const RunResult& r, const std::string&) {
        for (const std::string& l : e2e::split_lines(r.err)) CHECK(l == skipped);
    };
    RunResult bare = check_case("sigterm-exit", {program("sigterm_exit"), n}, configs(false),
                                Outcome::kSameOrGprofLines, {}, long_run() ? 900 : 180,
                                lines_said, 3);
    CHECK(bare.out == "children " + n + ", exited 0: " + n + ", hung: 0\n");
}

TEST_CASE("#32 quick_exit, _exit, abort and exec with a thread allocating: status preserved",
          "[hostile][exit]") {
    const std::map<std::string, std::pair<int, std::string>> expected = {
        {"quick", {5, "at_quick_exit ran\n"}},
        {"_exit", {6, ""}},
        {"abort", {128 + SIGABRT, ""}},
        {"exec", {9, "exec ran\n"}},
    };
    for (const auto& [how, want] : expected) {
        INFO(how);
        RunResult bare = check_case("exit-paths", {program("exit_paths"), how}, configs(false),
                                    Outcome::kSame, {{"GPROF_MEM_PROFILE_RATE", "1"}}, 30);
        CHECK(bare.status == want.first);
        CHECK(bare.out == want.second);
    }
}
