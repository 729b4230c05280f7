// Catalogue cases 1-6 (the API contract) and 38, most of them checked by programs of
// test/programs that the e2e suite runs too; run here as rows of the catalogue. Cases 39-43 (the
// HTTP endpoint) wait for the server: see README.md.
#include <unistd.h>

#include "test/e2e/profile_reader.h"
#include "test/hostile/suite.h"

using namespace hostile;

TEST_CASE("#1 #2 #3 the malloc contract: glibc's assertions, overflows, sizes and alignments",
          "[hostile][contract]") {
    // test/programs/malloc_contract.c (e2e "malloc contract: glibc baseline and both gprof
    // modes"): tst-posix_memalign, tst-memalign, tst-realloc, tst-calloc, tst-malloc-too-large,
    // tst-free-errno, calloc and reallocarray overflows, size 0 and odd alignments (also through
    // mallocx under gprof, where it exists: the output then differs by that section, so only the
    // failure count is compared).
    RunResult bare = e2e::run({e2e::program("malloc_contract")});
    REQUIRE(bare.status == 0);
    for (const Config& config : configs(false)) {
        INFO(config.describe());
        RunResult r = e2e::run({e2e::program("malloc_contract")},
                               options(gprof_env(config, e2e::make_dir("contract"))));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.err.empty());
        CHECK_FALSE(e2e::contains(r.out, "FAIL:"));
        CHECK(e2e::contains(r.out, " checks, 0 failed"));
    }
}

TEST_CASE("#4 the C++ contract: new_handler, bad_alloc, nothrow, aligned and sized delete",
          "[hostile][contract]") {
    // test/programs/cxx_contract.cpp (e2e "C++ contract: glibc baseline and both gprof modes").
    check_case("cxx-contract", {e2e::program("cxx_contract")}, configs(false), Outcome::kSame,
               {{"GPROF_MEM_PROFILE_RATE", "1"}});
}

// #5 (a C program dlopens a C++ module doing 100k new: the sampled bytes match): covered by e2e
// "a C program's dlopened C++ module allocates through gprof" (test/programs/dlopen_new.c).

TEST_CASE("#6 another allocator earlier in LD_PRELOAD: tcmalloc, Debian's jemalloc",
          "[hostile][contract][!mayfail]") {
    // Fails today with GPROF_ALLOCATOR=jemalloc behind tcmalloc: mixed_heaps and
    // malloc_contract die of SIGSEGV (status 139), as a function the other allocator lacks
    // (reallocarray, pvalloc, memalign...) hands its pointer to gprof's jemalloc.
    // Compared with the other allocator alone: gprof behind it must change nothing (its
    // functions that the other lacks get the other's pointers).
    const std::vector<std::string> others = {
        "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
        "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    };
    for (const std::string& other : others) {
        INFO(other);
        REQUIRE(access(other.c_str(), R_OK) == 0);
        for (const std::string& prog : {program("mixed_heaps"), e2e::program("malloc_contract"),
                                        e2e::program("cxx_contract")}) {
            INFO(prog);
            RunResult alone = e2e::run({prog}, options({{"LD_PRELOAD", other}}));
            for (const Config& config : configs(false)) {
                INFO(config.describe());
                std::string dir = e2e::make_dir("preload-after");
                auto env = gprof_env(config, dir, {{"LD_PRELOAD", other + ":" + e2e::kGprofLib},
                                                   {"GPROF_MEM_PROFILE_RATE", "1"}});
                RunResult r = e2e::run({prog}, options(env, 60, dir));
                check_outcome(alone, r, Outcome::kSameOrOneLine);
                check_written(dir);
            }
            if (prog == program("mixed_heaps"))
                CHECK(alone.out == "failures 0; overflowing reallocarray: NULL, ENOMEM\n");
        }
    }
}

TEST_CASE("#38 MALLOC_CONF=abort_conf:true,bogus:1 does not reach gprof's jemalloc",
          "[hostile][env]") {
    // Also e2e "MALLOC_CONF=abort_conf:true,bogus:1 does not reach gprof's jemalloc".
    RunResult bare = check_case("malloc-conf", {program("plain")}, configs(false), Outcome::kSame,
                                {{"MALLOC_CONF", "abort_conf:true,bogus:1"}});
    CHECK(bare.out == "plain: 3000 blocks\n");
}
