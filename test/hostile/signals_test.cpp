// Catalogue cases 19-24: the program's signals and gprof's.
#include "test/e2e/profile_reader.h"
#include "test/hostile/suite.h"

using namespace hostile;

TEST_CASE("#19 a 10 kHz dump-signal storm while 8 threads allocate", "[hostile][signals][cpu]") {
    const std::string n = long_run() ? "100000" : "3000";
    size_t dumps = 0;
    RunResult bare = check_case(
        "dump-storm", {program("dump_storm"), n}, configs(true), Outcome::kSame, {}, 120,
        [&dumps](const Config&, const RunResult&, const std::string& dir) {
            // Requests are coalesced, but several dumps happened, each complete.
            size_t n = e2e::list_files(dir, ".threads.pb.gz").size();
            CHECK(n >= 2);
            dumps += n;
        },
        3);
    CHECK(bare.out == "signals sent: " + n + "\n");
    CHECK(dumps > 0);
}

TEST_CASE("#20 #21 the program's own SIGUSR2 handler; a read restarted after the dump signal",
          "[hostile][signals]") {
    // The program's handler wins and gprof says so once (also e2e "the program's own signal use
    // is unchanged"); a blocking read() is restarted (SA_RESTART) while dumps happen.
    const std::string heap = HEAP_PROGRAMS_BUILD_DIR;
    // Every profile written says it too (the at-exit ones here).
    RunResult own = check_case(
        "own-handler", {heap + "/signal_host", "own"}, configs(false), Outcome::kOneLine,
        {{"GPROF_MEM_PROFILE_RATE", "1"}}, 120,
        [](const Config&, const RunResult&, const std::string& dir) {
            std::vector<std::string> profiles = e2e::list_files(dir, ".pb.gz");
            CHECK(!profiles.empty());
            for (const std::string& f : profiles)
                CHECK(e2e::contains(comments(f), "gprof: the program handles the dump signal "
                                                 "(GPROF_SIGNAL) itself: no dumps on it"));
        });
    CHECK(own.out == "own handler ran: yes\n");
    // signal_host read sends itself the dump signal, which would end it without gprof: checked
    // under gprof alone.
    for (const Config& config : configs(true)) {
        INFO(config.describe());
        std::string dir = e2e::make_dir("restarted-read");
        RunResult r = e2e::run({heap + "/signal_host", "read"}, options(gprof_env(config, dir)));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.out == "read 5 bytes: hello\n");
        CHECK(r.err.empty());
        CHECK(!check_written(dir).empty());
    }
}

TEST_CASE("#22 a SIGALRM handler allocating at 2 kHz while main allocates", "[hostile][signals]") {
    // glibc's allocator only: with gprof's jemalloc, a handler's malloc that finds its thread
    // cache's bin emptied (jemalloc's cache GC returns idle objects; glibc's cache keeps them) or
    // that jemalloc samples takes a lock the interrupted allocation may hold, and waits for ever
    // (README, known limits). gprof's part is the same in both modes: its recorder and its walks
    // (libunwind's thread-local made with malloc: glibc mode hung on it) allocate nothing there.
    std::vector<Config> glibc_only;
    for (const Config& c : configs(true))
        if (c.allocator == "libc") glibc_only.push_back(c);
    RunResult bare = check_case("alarm-malloc", {program("alarm_malloc"), long_run() ? "10" : "1"},
                                glibc_only, Outcome::kSame, {{"GPROF_MEM_PROFILE_RATE", "1"}},
                                60);
    CHECK(bare.out == "handler ran: yes\n");
}

TEST_CASE("#23 a cgo Go program sent the dump signal: no SA_ONSTACK abort", "[hostile][signals]") {
    // Built here: go is one of the test packages. GO111MODULE=off builds a lone file.
    const std::string go = GO_PATH;
    REQUIRE(!go.empty());
    std::string dir = e2e::make_dir("cgo");
    std::string binary = dir + "/cgo_usr2";
    RunResult build = e2e::run(
        {go, "build", "-o", binary, kSourceDir + "/cgo_usr2.go"},
        options({{"GO111MODULE", "off"}, {"CGO_ENABLED", "1"}, {"GOCACHE", kBuildDir + "/go-cache"},
                 {"GOFLAGS", ""}},
                300, dir));
    INFO(build.describe());
    REQUIRE(build.status == 0);
    // The program signals itself only when LD_PRELOAD is set (the bare run must not depend on
    // it). Go's runtime installs a handler on every signal at start: gprof steps aside from its
    // dump signal (and the CPU profile's), saying so, and the program runs on.
    RunResult bare = check_case("cgo-run", {binary}, configs(true), Outcome::kGprofLines, {}, 60);
    CHECK(bare.out == "goroutines done\n");
}

TEST_CASE("#24 every signal blocked, SIGTERM taken by sigwait in one thread",
          "[hostile][signals][cpu]") {
    RunResult bare = check_case("sigwait-all", {program("sigwait_all")}, configs(true),
                                Outcome::kSame, {}, 60);
    CHECK(bare.out == "sigwait got SIGTERM\nSIGUSR2 pending: yes\n");
}
