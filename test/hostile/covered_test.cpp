// Catalogue cases 1-6 (the API contract) and 38, most of them checked by programs of
// test/programs that the e2e suite runs too; run here as rows of the catalogue. Cases 39-43 (the
// HTTP endpoint): http_test.cpp and README.md.
#include <signal.h>
#include <unistd.h>

#include <regex>

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

namespace {

// The run with each printed pointer (0x...) replaced by "0x?": they differ from run to run.
RunResult without_addresses(RunResult r) {
    r.out = std::regex_replace(r.out, std::regex("0x[0-9a-f]{6,}"), "0x?");
    return r;
}

// malloc_contract behind another allocator, with the lines where it may differ from the other
// alone taken from the latter: gprof adds jemalloc's API (mallocx...), which the program then
// checks too; and tcmalloc's memalign with an alignment that is not a power of two (its own,
// the program calls it directly) is aligned by chance, which the heap's layout decides.
std::string as_alone(const std::string& out, const std::string& alone) {
    static const std::regex chance("FAIL: memalign\\([0-9]+, \\.\\.\\.\\) = 0x\\?, not aligned .*");
    static const std::regex api(
        "jemalloc API: .*|FAIL: only 1 of the 7 \\*allocx .*|[0-9]+ checks, [0-9]+ failed");
    std::string kept;
    for (const std::string& l : e2e::split_lines(out))
        if (!std::regex_match(l, chance) && !std::regex_match(l, api)) kept += l + "\n";
    std::string alone_kept;
    for (const std::string& l : e2e::split_lines(alone))
        if (!std::regex_match(l, chance) && !std::regex_match(l, api)) alone_kept += l + "\n";
    // Equal but for those lines: the other's output stands for both.
    return kept == alone_kept ? alone : out;
}

}  // namespace

TEST_CASE("#6 another allocator earlier in LD_PRELOAD: tcmalloc, Debian's jemalloc",
          "[hostile][contract]") {
    // Before the fix, with GPROF_ALLOCATOR=jemalloc behind tcmalloc, mixed_heaps and
    // malloc_contract died of SIGSEGV (status 139), as a function the other allocator lacks
    // (reallocarray, pvalloc, memalign...) handed its pointer to gprof's jemalloc. gprof now
    // serves what it is still asked for from the other's heap, samples nothing, and says so in
    // one line and in every profile's comments.
    // Compared with the other allocator alone: gprof behind it must change nothing else.
    const std::vector<std::string> others = {
        "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
        "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    };
    const std::string said = "gprof: the program's malloc is ";
    const std::string noted = "gprof: the program's allocator is not gprof's";
    for (const std::string& other : others) {
        INFO(other);
        REQUIRE(access(other.c_str(), R_OK) == 0);
        for (const std::string& prog : {program("mixed_heaps"), e2e::program("malloc_contract"),
                                        e2e::program("cxx_contract")}) {
            INFO(prog);
            const bool mixed = prog == program("mixed_heaps");
            const std::string mixed_out = "failures 0; overflowing reallocarray: NULL, ENOMEM\n";
            RunResult alone = without_addresses(e2e::run({prog}, options({{"LD_PRELOAD", other}})));
            // Debian's jemalloc alone lacks reallocarray and pvalloc: glibc's serve them with
            // glibc's heap and the program dies (mixed_heaps, malloc_contract). gprof behind it
            // serves them from jemalloc's heap: the program runs to its end.
            const bool alone_died = alone.status == 128 + SIGSEGV;
            if (mixed && alone_died) {
                alone.status = 0;
                alone.out = mixed_out;
            }
            for (const Config& config : configs(false)) {
                INFO(config.describe());
                std::string dir = e2e::make_dir("preload-after");
                auto env = gprof_env(config, dir, {{"LD_PRELOAD", other + ":" + e2e::kGprofLib},
                                                   {"GPROF_MEM_PROFILE_RATE", "1"}});
                RunResult r = without_addresses(e2e::run({prog}, options(env, 60, dir)));
                if (prog == e2e::program("malloc_contract")) r.out = as_alone(r.out, alone.out);
                std::string line;
                if (alone_died && !mixed) {
                    INFO(r.describe());
                    CHECK(r.status < 128);
                    CHECK(r.err.rfind(said + other + "'s, not gprof's", 0) == 0);
                } else {
                    check_outcome(alone, r, Outcome::kOneLine, &line);
                    CHECK(line.rfind(said + other + "'s, not gprof's", 0) == 0);
                }
                check_written(dir);
            }
            if (mixed) CHECK(alone.out == mixed_out);
        }
        // A dump's profiles say it too (exec_chain at level 0 dumps and forks a child).
        for (const Config& config : configs(false)) {
            INFO(config.describe());
            std::string dir = e2e::make_dir("preload-after-dump");
            auto env = gprof_env(config, dir, {{"LD_PRELOAD", other + ":" + e2e::kGprofLib}});
            RunResult r = e2e::run({program("exec_chain"), dir, "0"}, options(env, 60, dir));
            INFO(r.describe());
            CHECK(r.status == 0);
            check_written(dir);
            std::vector<std::string> profiles = e2e::list_files(dir, ".threads.pb.gz");
            CHECK(!profiles.empty());
            CHECK(e2e::list_files(dir, ".heap.pb.gz").empty());  // nothing sampled
            for (const std::string& f : profiles) CHECK(e2e::contains(comments(f), noted));
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
