// The programs of test/programs under gprof: the malloc and C++ contracts, the _Znwm binding of a
// dlopened C++ module, exceptions, and start-up and exit with threads that never stop allocating.
#include <catch2/catch.hpp>
#include <sstream>
#include <map>
#include <regex>

#include "test/e2e/e2e.h"
#include "test/e2e/profile_reader.h"

using namespace e2e;

namespace {

// A contract program passes: exit 0, no FAIL line, its summary says 0 failed, stderr is empty.
void check_contract(const RunResult& r) {
    INFO(r.describe());
    CHECK(r.status == 0);
    CHECK_FALSE(contains(r.out, "FAIL:"));
    CHECK(std::regex_search(r.out,
                            std::regex(R"(^[0-9]+ checks, 0 failed$)", std::regex::multiline)));
    CHECK(r.err.empty());
}

}  // namespace

TEST_CASE("malloc contract: glibc baseline and both gprof modes", "[programs][contract]") {
    RunResult base = run({program("malloc_contract")});
    {
        INFO("the program must pass on plain glibc, or it tests the wrong contract");
        check_contract(base);
        CHECK(contains(base.out, "jemalloc API: absent"));
    }
    for (const std::string& mode : kModes) {
        for (const char* rate : {"", "1"}) {
            INFO("GPROF_ALLOCATOR=" << mode << " GPROF_MEM_PROFILE_RATE=" << rate);
            auto env = preload_env(mode);
            if (*rate) env["GPROF_MEM_PROFILE_RATE"] = rate;
            RunResult r = run({program("malloc_contract")}, with_env(env));
            check_contract(r);
            INFO(r.out);
            CHECK(contains(r.out, "jemalloc API: present"));
        }
    }
}

TEST_CASE("C++ contract: glibc baseline and both gprof modes", "[programs][contract]") {
    RunResult base = run({program("cxx_contract")});
    {
        INFO("the program must pass with libstdc++'s own operator new");
        check_contract(base);
    }
    for (const std::string& mode : kModes) {
        for (const char* rate : {"", "1"}) {
            INFO("GPROF_ALLOCATOR=" << mode << " GPROF_MEM_PROFILE_RATE=" << rate);
            auto env = preload_env(mode);
            if (*rate) env["GPROF_MEM_PROFILE_RATE"] = rate;
            RunResult r = run({program("cxx_contract")}, with_env(env));
            check_contract(r);
            CHECK(r.out == base.out);  // same checks, same container checksum
        }
    }
}

TEST_CASE("a C program's dlopened C++ module keeps its new-handler under gprof",
          "[programs][dlopen]") {
    // gprof's operator new must call the handler the module set in its own libstdc++, which the
    // program loaded with RTLD_LOCAL (gprof carries a private libstdc++ of its own).
    RunResult base = run({program("dlopen_new"), "--new-handler"});
    INFO("baseline: " << base.describe());
    REQUIRE(base.status == 0);
    REQUIRE(base.out == "new_handler_calls=2\n");
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        RunResult r = run({program("dlopen_new"), "--new-handler"},
                          with_env(preload_env(mode, {{"GPROF_AT_EXIT", "0"}})));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.err.empty());
        CHECK(r.out == "new_handler_calls=2\n");
    }
}

TEST_CASE("a C program's dlopened C++ module allocates through gprof", "[programs][dlopen]") {
    // The setup means something only if the program has no libstdc++ of its own.
    REQUIRE_FALSE(kReadelf.empty());
    RunResult elf = run({kReadelf, "-d", program("dlopen_new")});
    INFO(elf.describe());
    REQUIRE(elf.status == 0);
    CHECK_FALSE(contains(elf.out, "libstdc++"));

    RunResult base = run({program("dlopen_new")});
    INFO("baseline: " << base.describe());
    CHECK(base.status == 0);
    CHECK(base.out == "gprof: absent\n");

    const unsigned long n = 100000, slack = 2000;
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        // Rate 1: every allocation is sampled, so the heap profile, and gprof_read_memstats
        // with it, counts each new and delete that passed through gprof's facade, exactly.
        std::string dir = make_dir("dlopen-new");
        RunResult r = run({program("dlopen_new")},
                          with_env(preload_env(mode, {{"GPROF_MEM_PROFILE_RATE", "1"},
                                                      {"GPROF_OUTPUT", dir + "/p"}})));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.err.empty());
        std::smatch m;
        REQUIRE(
            std::regex_search(r.out, m, std::regex(R"(mallocs_delta=(\d+) frees_delta=(\d+))")));
        unsigned long mallocs = std::stoul(m[1]), frees = std::stoul(m[2]);
        CHECK(mallocs >= n);
        CHECK(mallocs < n + slack);
        CHECK(frees >= n);
        CHECK(frees < n + slack);

        // The written profile says the same: n + 10 (warm-up) `new int` objects, all freed. (The
        // module is dlclose'd before exit, so its frames have no names here; the size tells them.)
        std::vector<std::string> files = list_files(dir, ".heap.pb.gz");
        REQUIRE(files.size() == 1);
        int64_t ints = 0, live_ints = 0;
        for (const FlatSample& s : flatten(read_profile(files[0]))) {
            if (s.numbers.count("bytes") == 0 || s.numbers.at("bytes") != sizeof(int)) continue;
            ints += s.values[0];
            live_ints += s.values[2];
        }
        CHECK(ints >= static_cast<int64_t>(n + 10));
        CHECK(ints < static_cast<int64_t>(n + 10 + slack));
        CHECK(live_ints < static_cast<int64_t>(slack));
    }
}

TEST_CASE("100000 exceptions, linked with --as-needed", "[programs][exceptions]") {
    RunResult base = run({program("throw_loop")});
    INFO("baseline: " << base.describe());
    REQUIRE(base.status == 0);
    REQUIRE(contains(base.out, "caught 100000 exceptions"));
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        check_same(base, run({program("throw_loop")}, with_env(preload_env(mode))));
    }
}

TEST_CASE("start-up, thread exit and process exit with allocating threads", "[programs][exit]") {
    RunResult base = run({program("exit_survival")});
    INFO("baseline: " << base.describe());
    REQUIRE(base.status == 0);
    REQUIRE(contains(base.out, "early_lib: ok\n"));
    REQUIRE(contains(base.out, "thread_local destructors: 8, key destructors: 16\n"));
    REQUIRE(contains(base.out, "main returns while 4 threads allocate\n"));
    REQUIRE(contains(base.out, "static destructor ran"));
    // Exit races are rare by nature: many runs, with and without sampling every allocation.
    for (const std::string& mode : kModes) {
        for (const char* rate : {"", "1"}) {
            for (int i = 0; i < 15; ++i) {
                INFO("GPROF_ALLOCATOR=" << mode << " GPROF_MEM_PROFILE_RATE=" << rate << " run "
                                        << i);
                auto env = preload_env(mode);
                if (*rate) env["GPROF_MEM_PROFILE_RATE"] = rate;
                RunOptions o = with_env(env);
                o.timeout_seconds = 30;
                check_same(base, run({program("exit_survival")}, o));
            }
        }
    }
}

TEST_CASE("GPROF_ALLOCATOR=libc: gprof leaves next to nothing of its own in the program's heap",
          "[programs][allocator]") {
    // glibc's heap is the program's: what gprof puts there moves where glibc places and trims the
    // program's blocks. What may remain is the loader's record of libunwind.
    auto footprint = [](const RunResult& r) {
        std::map<std::string, long> v;
        std::istringstream in(r.out);
        std::string key;
        long n = 0;
        while (in >> key >> n) v[key] = n;
        return v;
    };
    RunResult base = run({program("which_heap"), "--footprint"});
    INFO("glibc alone: " << base.describe());
    REQUIRE(base.status == 0);
    auto plain = footprint(base);
    REQUIRE(plain.count("start"));
    for (const char* rate : {"0", "524288", "1"}) {
        INFO("GPROF_MEM_PROFILE_RATE=" << rate);
        RunResult r = run({program("which_heap"), "--footprint"},
                          with_env(preload_env("libc", {{"GPROF_MEM_PROFILE_RATE", rate},
                                                        {"GPROF_AT_EXIT", "0"}})));
        INFO(r.describe());
        REQUIRE(r.status == 0);
        auto mine = footprint(r);
        REQUIRE(mine.count("start"));
        REQUIRE(mine.count("end"));
        CHECK(mine["start"] - plain["start"] < 16 * 1024);
        // Sampling (every allocation at rate 1) adds nothing to it either.
        CHECK(mine["end"] - plain["end"] < 16 * 1024);
    }
}

TEST_CASE("GPROF_ALLOCATOR chooses the heap behind malloc", "[programs][allocator]") {
    RunResult base = run({program("which_heap")});
    INFO("baseline: " << base.describe());
    REQUIRE(base.out == "heap: glibc\n");

    RunResult je = run({program("which_heap")}, with_env(preload_env("jemalloc")));
    RunResult libc = run({program("which_heap")}, with_env(preload_env("libc")));
    RunResult dflt = run({program("which_heap")}, with_env(preload_env("")));
    INFO("jemalloc: " << je.describe());
    INFO("libc: " << libc.describe());
    INFO("default: " << dflt.describe());
    CHECK(je.out == "heap: other\n");
    CHECK(libc.out == "heap: glibc\n");
    CHECK(dflt.out == "heap: other\n");  // the default is the embedded jemalloc
    CHECK(je.err.empty());
    CHECK(libc.err.empty());
    CHECK(dflt.err.empty());
}
