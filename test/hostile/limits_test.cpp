// Catalogue cases 33-36: resource limits.
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "test/e2e/profile_reader.h"
#include "test/hostile/suite.h"

using namespace hostile;

TEST_CASE("#33 RLIMIT_NOFILE reached: the program opens as many descriptors as without gprof",
          "[hostile][limits]") {
    // The dump with no descriptor left can neither read the module list nor write its files:
    // one line says the latter (two before the fix). The program itself opens as many
    // descriptors as without gprof.
    RunResult bare = check_case("rlimit-nofile", {program("rlimit_nofile")}, configs(false),
                                Outcome::kOneLine, {{"GPROF_MEM_PROFILE_RATE", "1"}}, 60,
                                [](const Config&, const RunResult& r, const std::string& dir) {
                                    // The dump asked for with no descriptor left could not be
                                    // written (one line), the at-exit one could.
                                    CHECK(e2e::contains(r.err, "gprof: cannot write"));
                                    CHECK(e2e::list_files(dir, ".0002.heap.pb.gz").size() == 1);
                                });
    CHECK(e2e::contains(bare.out, " until EMFILE; afterwards still none\n"));
}

TEST_CASE("#34 RLIMIT_AS: 8 threads allocate until malloc returns NULL",
          "[hostile][limits]") {
    // With GPROF_ALLOCATOR=jemalloc the program died of SIGSEGV (status 139) when the address
    // space ran out, where glibc's malloc returns NULL: a thread's first malloc made its arena,
    // and jemalloc faults when it cannot. gprof now makes the first arenas at start.
    RunResult bare = check_case("rlimit-as", {program("rlimit_as")}, configs(false),
                                Outcome::kSame, {}, 120);
    CHECK(bare.out == "threads that saw NULL: some; malloc after freeing: works\n");
    // And with every allocation sampled (the tables grow under the same limit).
    check_case("rlimit-as-rate1", {program("rlimit_as")}, configs(false), Outcome::kSame,
               {{"GPROF_MEM_PROFILE_RATE", "1"}}, 120);
}

TEST_CASE("#35 RLIMIT_FSIZE of 1 KiB and a larger profile: no SIGXFSZ death, one line",
          "[hostile][limits]") {
    std::string line;
    RunResult bare = check_case(
        "rlimit-fsize", {program("rlimit_fsize")}, configs(false), Outcome::kOneLine,
        {{"GPROF_MEM_PROFILE_RATE", "1"}}, 60,
        [](const Config&, const RunResult& r, const std::string& dir) {
            CHECK(e2e::contains(r.err, "RLIMIT_FSIZE"));
            CHECK(e2e::list_files(dir, ".pb.gz").empty());
        });
    CHECK(bare.out == "kept 50 blocks\n");
}

TEST_CASE("#35 RLIMIT_NPROC reached: gprof's thread cannot start, the program runs on",
          "[hostile][limits]") {
    // gprof's threads in as_nobody counted against nobody's RLIMIT_NPROC when it called setuid,
    // so its execve failed with EAGAIN (exit status 2, with GPROF_CPU_HZ=1000), where the
    // single-threaded bare process execs. gprof's threads now end around setuid and start again
    // after it: here they cannot (one line each), and the exec works.
    // as_nobody sets RLIMIT_NPROC to 1 and becomes nobody (root is exempt from the limit), then
    // execs one_thread, whose own pthread_create fails as well. The output directory is open to
    // nobody.
    std::vector<std::string> argv = {program("as_nobody"), program("one_thread")};
    RunResult bare = e2e::run(argv);
    REQUIRE(bare.out == "pthread_create: EAGAIN\n");
    for (const Config& config : configs(true)) {
        INFO(config.describe());
        // Outside the scratch directory, which is its creator's only: nobody must reach it.
        char name[] = "/tmp/gprof-hostile-nproc-XXXXXX";
        REQUIRE(mkdtemp(name) != nullptr);
        std::string dir = name;
        std::filesystem::permissions(dir, std::filesystem::perms::all |
                                              std::filesystem::perms::sticky_bit);
        std::string line;
        RunResult r = e2e::run(argv, options(gprof_env(config, dir), 60, "/"));
        // One line per feature gprof has to leave off: the dumper thread (and the CPU profile's
        // timer thread, when on).
        check_outcome(bare, r, Outcome::kGprofLines);
        // as_nobody after setuid, then one_thread: each process says it once.
        const std::string dumper = "gprof: cannot start the dumper thread: error 11; signal "
                                   "dumps are off";
        const std::string cpu = "gprof: cannot start the CPU profile's thread: error 11; samples "
                                "are drained at dumps only";
        size_t dumper_lines = 0, cpu_lines = 0;
        for (const std::string& l : e2e::split_lines(r.err)) {
            dumper_lines += l == dumper;
            cpu_lines += l == cpu;
        }
        CHECK(dumper_lines == 2);
        CHECK(cpu_lines == (config.cpu_hz != 0 ? 2u : 0u));
        check_written(dir);
        std::filesystem::remove_all(dir);
    }
}

TEST_CASE("#36 a million distinct stacks: the stack table stops at its cap and says so",
          "[hostile][limits]") {
    // 2^BITS stacks, each 40 frames below where it parts from the others: more nodes than the
    // table's 4M (BITS 17 gives 5.4M, 20 gives 44M).
    const std::string bits = long_run() ? "20" : "17";
    std::map<std::string, long> rss_kib;
    RunResult bare = check_case(
        "many-stacks", {program("many_stacks"), bits, "{dir}/rss"}, configs(false),
        Outcome::kSame, {{"GPROF_MEM_PROFILE_RATE", "1"}}, long_run() ? 600 : 180,
        [&rss_kib](const Config& config, const RunResult&, const std::string& dir) {
            rss_kib[config.allocator] = std::stol(e2e::read_file(dir + "/rss"));
            std::vector<std::string> heap = e2e::list_files(dir, ".heap.pb.gz");
            REQUIRE(heap.size() == 1);
            std::string notes = comments(heap[0]);
            INFO(notes);
            CHECK(e2e::contains(notes, "dropped (tables full)"));
        });
    const unsigned long n = 1ul << std::stoi(bits);
    CHECK(bare.out == "stacks " + std::to_string(n) + ", allocations " + std::to_string(n) + "\n");
    // What gprof kept: the stack table at its cap (4M nodes of 16 bytes plus their index and
    // depths, about 100 MiB) and the heap tables; never more, whatever the number of stacks.
    for (const auto& [mode, kib] : rss_kib) {
        INFO(mode << ": RSS " << kib << " KiB");
        CHECK(kib < 256 * 1024);
    }
}
