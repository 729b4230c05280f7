// What gprof adds to a process that does little (a build's or a test suite's thousands of short
// commands), and to an allocation: counted, not timed. Each count has a cause behind it
// (docs/overhead.md, "Once per process"): libraries loaded only when needed (libunwind; libstdc++
// never), jemalloc's profiler started without touching its lock tables or warming up libgcc's
// unwinder, the main thread's stack found without reading /proc/self/maps.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <set>

#include "test/e2e/e2e.h"

using namespace e2e;

extern char** environ;

namespace {

// The libraries the loader mapped in a run, by the names it looked for (LD_DEBUG=files): those
// a program or library needs, and those opened with dlopen.
std::set<std::string> libraries_loaded(const std::vector<std::string>& argv,
                                       std::map<std::string, std::string> env) {
    env["LD_DEBUG"] = "files";
    RunResult r = run(argv, with_env(env));
    INFO(r.describe());
    REQUIRE(r.status == 0);
    std::set<std::string> names;
    for (const std::string& line : split_lines(r.err)) {
        size_t at = line.find("file=");
        size_t end = line.find(" [", at);
        if (at == std::string::npos || end == std::string::npos) continue;
        std::string name = line.substr(at + 5, end - at - 5);
        names.insert(name.substr(name.rfind('/') + 1));
    }
    return names;
}

// Instructions a run takes under callgrind (the loader's, libc's and gprof's alike).
long long instructions(const std::vector<std::string>& argv,
                       const std::map<std::string, std::string>& env) {
    std::vector<std::string> full = {kValgrind, "--tool=callgrind",
                                     "--callgrind-out-file=/dev/null"};
    full.insert(full.end(), argv.begin(), argv.end());
    RunOptions slow;
    slow.timeout_seconds = 300;
    RunResult r = run(full, with_env(env, slow));
    INFO(r.describe());
    REQUIRE(r.status == 0);
    size_t at = r.err.find("Collected : ");
    REQUIRE(at != std::string::npos);
    return std::stoll(r.err.substr(at + 12));
}

// The minor page faults of one run of argv, the smallest of `runs` (a run may meet a page the
// kernel reclaimed; none takes fewer than the program needs). The environment is `env` alone
// and PATH.
long minor_faults(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, int runs = 5) {
    std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin"};
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp, args;
    for (std::string& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (std::string& s : argv_copy) args.push_back(s.data());
    args.push_back(nullptr);
    long fewest = -1;
    for (int i = 0; i < runs; ++i) {
        pid_t pid;
        REQUIRE(posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), envp.data()) == 0);
        int status = 0;
        struct rusage usage = {};
        REQUIRE(wait4(pid, &status, 0, &usage) == pid);
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 0);
        if (fewest < 0 || usage.ru_minflt < fewest) fewest = usage.ru_minflt;
    }
    return fewest;
}

}  // namespace

TEST_CASE("a short process maps only libgprof.so and its libgcc_s", "[cost]") {
    // libunwind (and the liblzma it needs) are opened when a stack needs them, libstdc++ is
    // linked in, libm's three functions are gprof's own: /bin/true, and python3 sampled at every
    // allocation, load nothing else of gprof's.
    const std::set<std::string> bare = libraries_loaded({"/bin/true"}, {});
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        std::set<std::string> with = libraries_loaded({"/bin/true"}, preload_env(mode));
        std::set<std::string> added;
        std::set_difference(with.begin(), with.end(), bare.begin(), bare.end(),
                            std::inserter(added, added.end()));
        CHECK(added == std::set<std::string>{"libgprof.so", "libgcc_s.so.1"});
    }
    std::set<std::string> python = libraries_loaded(
        {kPython, "-c", "x = [bytes(100) for i in range(20000)]"},
        preload_env("", {{"GPROF_MEM_PROFILE_RATE", "1"}, {"GPROF_AT_EXIT", "1"}}));
    CHECK(python.count("libunwind.so.8") == 0);
    // libdw (which needs liblzma too) is opened by the at-exit dump where the debug cache does
    // not hold python3's table yet (the machine's first such dump).
    CHECK((python.count("liblzma.so.5") == 0 || python.count("libdw.so.1") == 1));
}

TEST_CASE("libunwind is opened when a dump or a sample needs it", "[cost]") {
    // The threads profile walks other threads' stacks with libunwind: a dump by signal opens it.
    std::string dir = make_dir("cost-libunwind-dump");
    std::set<std::string> dumped = libraries_loaded(
        {program("no_trace"), "fds", dir}, preload_env("", {{"GPROF_OUTPUT", dir + "/p"}}));
    CHECK(dumped.count("libunwind.so.8") == 1);
    // odd_stacks allocates on a coroutine's stack, which gprof's own walk leaves to libunwind;
    // its profile's stacks are checked in heap_test.cpp.
    std::string dir2 = make_dir("cost-libunwind-sample");
    std::set<std::string> sampled = libraries_loaded(
        {std::string(HEAP_PROGRAMS_BUILD_DIR) + "/odd_stacks"},
        preload_env("", {{"GPROF_MEM_PROFILE_RATE", "1"}, {"GPROF_OUTPUT", dir2 + "/p"}}));
    CHECK(sampled.count("libunwind.so.8") == 1);
}

TEST_CASE("/bin/true under gprof: instructions and page faults", "[cost]") {
    REQUIRE_FALSE(kValgrind.empty());
    // At the defaults (at-exit dump on). Before these were counted, gprof added about 1 010 000
    // instructions with its jemalloc and 710 000 with glibc's (libunwind and liblzma opened and
    // relocated, /proc/self/maps parsed, jemalloc started with its profiler's 1 289 mutexes and
    // libgcc's unwinder warmed up), and 200 and 143 page faults; now about 430 000 and 290 000,
    // and 107 and 54 (jemalloc is started only when it is the allocator; libm is not loaded).
    long long bare = instructions({"/bin/true"}, {});
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        const bool libc = mode == "libc";
        auto env = preload_env(mode);
        env.erase("GPROF_LOG");
        long long gprof = instructions({"/bin/true"}, env);
        INFO("instructions: " << bare << " bare, " << gprof << " under gprof");
        CHECK(bare > 50000);
        CHECK(gprof - bare < (libc ? 350000 : 500000));
        long bare_faults = minor_faults({"/bin/true"}, {});
        long gprof_faults = minor_faults({"/bin/true"}, env);
        INFO("minor faults: " << bare_faults << " bare, " << gprof_faults << " under gprof");
        CHECK(bare_faults > 20);
        CHECK(gprof_faults - bare_faults < (libc ? 75 : 125));
    }
}

TEST_CASE("a malloc+free pair at the default rate: instructions, as jemalloc alone", "[cost]") {
    // bench_churn in one thread: callgrind counts 2 and 12 million malloc+free pairs (8-512
    // bytes), and the difference over 10 million is one pair's cost, start-up and exit cancelled
    // out. Here: 126.2 instructions with Debian's libjemalloc.so.2 alone, 128.3 under gprof with
    // sampling off (the shims' two jumps through the allocator table), 128.9 at the default rate
    // (jemalloc's sampling event counter, and the samples themselves, about 4 500 instructions
    // each, one per 512 KiB).
    REQUIRE_FALSE(kValgrind.empty());
    const std::string churn = kProgramsDir + "/../bench/bench_churn";
    auto per_pair = [&](std::map<std::string, std::string> env) {
        auto count = [&](const char* scale) {
            RunOptions slow;
            slow.timeout_seconds = 600;
            RunResult r = run({kValgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
                               churn, "1", scale},
                              with_env(env, slow));
            INFO(r.describe());
            REQUIRE(r.status == 0);
            REQUIRE(contains(r.out, "churn threads=1"));
            size_t at = r.err.find("Collected : ");
            REQUIRE(at != std::string::npos);
            return std::stoll(r.err.substr(at + 12));
        };
        return static_cast<double>(count("0.12") - count("0.02")) / 10e6;
    };
    double off =
        per_pair(preload_env("", {{"GPROF_MEM_PROFILE_RATE", "0"}, {"GPROF_AT_EXIT", "0"}}));
    double sampling = per_pair(preload_env("", {{"GPROF_AT_EXIT", "0"}}));
    INFO("instructions per pair: " << off << " with sampling off, " << sampling << " sampling");
    CHECK(off > 100);
    CHECK(sampling < off + 1.5);
    CHECK(sampling < 131);
}
