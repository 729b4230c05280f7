// The C API (api/gprof.h) end to end: programs built against the header, never linked with gprof,
// run with and without LD_PRELOAD; what they wrote through the API is decoded with libprotobuf and
// opened with `go tool pprof`.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <sstream>
#include <tuple>

#include "test/e2e/e2e.h"
#include "test/e2e/profile_reader.h"

using namespace e2e;

namespace {

const std::string kApiPrograms = API_PROGRAMS_BUILD_DIR;

std::map<std::string, std::string> read_results(const std::string& path) {
    std::map<std::string, std::string> results;
    for (const std::string& line : split_lines(read_file(path))) {
        size_t eq = line.find('=');
        if (eq != std::string::npos) results[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return results;
}

// The sum of each sample type's values.
std::vector<int64_t> totals(const perftools::profiles::Profile& p) {
    std::vector<int64_t> sums(static_cast<size_t>(p.sample_type_size()));
    for (const auto& s : p.sample())
        for (int i = 0; i < s.value_size() && i < p.sample_type_size(); ++i)
            sums[static_cast<size_t>(i)] += s.value(i);
    return sums;
}

// A profile gprof wrote: decoded, consistent, and opened by go tool pprof without a warning.
perftools::profiles::Profile checked_profile(const std::string& path) {
    INFO(path);
    perftools::profiles::Profile p = read_profile(path);
    CHECK(consistency_problems(p).empty());
    CHECK(pprof_stderr({"-raw"}, path) == "");
    return p;
}

// A debug=1 text profile as go tool pprof reads it (converted to a protobuf by pprof itself).
perftools::profiles::Profile text_as_read(const std::string& path) {
    INFO(path);
    CHECK(pprof_stderr({"-raw"}, path) == "");
    const std::string converted = path + ".pb.gz";
    pprof_stderr({"-proto", "-output", converted}, path);  // says only where it wrote
    return read_profile(converted);
}

// The sum of sample type `type`'s values over samples whose stack holds `function`.
int64_t value_at(const perftools::profiles::Profile& p, const std::string& function, int type) {
    int64_t sum = 0;
    for (const FlatSample& s : flatten(p))
        for (const std::string& f : s.functions)
            if (f == function) {
                sum += s.values[static_cast<size_t>(type)];
                break;
            }
    return sum;
}

RunResult run_program(const std::string& name, const std::string& dir,
                      const std::map<std::string, std::string>& env) {
    RunOptions options = with_env(env);
    options.cwd = dir;
    options.timeout_seconds = 120;
    return run({kApiPrograms + "/" + name, dir}, options);
}

}  // namespace

TEST_CASE("api: a C program using every function runs the same without gprof", "[api]") {
    const std::string bare = make_dir("api-c-bare");
    RunResult baseline = run_program("api_c", bare, {});
    REQUIRE(baseline.status == 0);
    CHECK(baseline.err.empty());
    for (const std::string& line : split_lines(read_file(bare + "/functions.txt")))
        CHECK(contains(line, " absent"));
    CHECK(list_files(bare, ".0").empty());  // nothing written

    for (const std::string& mode : kModes) {
        DYNAMIC_SECTION(mode) {
            const std::string dir = make_dir("api-c-" + mode);
            // libc mode: the shims sample, and a thread takes a new rate at the end of the interval
            // it drew under the old one, so the heap rate starts at 0 there (README, "C API").
            std::map<std::string, std::string> extra = {{"GPROF_OUTPUT", dir + "/gp"},
                                                        {"GPROF_BLOCK_PROFILE_RATE", "0"},
                                                        {"GPROF_MUTEX_PROFILE_FRACTION", "0"}};
            if (mode == "libc") extra["GPROF_MEM_PROFILE_RATE"] = "0";
            RunResult r = run_program("api_c", dir, preload_env(mode, extra));
            INFO(r.describe());
            REQUIRE(r.status == 0);
            CHECK(r.out == baseline.out);
            for (const std::string& line : split_lines(read_file(dir + "/functions.txt")))
                if (!contains(line, "_cpu_profile")) CHECK(contains(line, " present"));

            std::map<std::string, std::string> res = read_results(dir + "/results.txt");
            CHECK(res["mem_rate.start"] == (mode == "libc" ? "0" : "524288"));
            CHECK(res["mem_rate.was"] == "0");
            CHECK(res["mem_rate.now"] == "1");
            CHECK(res["block_rate.start"] == "0");
            CHECK(res["mutex_fraction.start"] == "0");
            CHECK(res["block_rate.now"] == "1");

            // Misuse: -1 (or NULL) with the documented errno, and one line per kind.
            CHECK(res["misuse.remove_absent"] == "-1,2");  // ENOENT
            CHECK(res["misuse.add_twice"] == "-1,17");     // EEXIST
            CHECK(res["misuse.remove_twice"] == "-1,2");
            CHECK(res["misuse.profile_dup"] == "1,17");
            CHECK(res["misuse.profile_builtin"] == "1,22");
            CHECK(res["misuse.profile_null"] == "1,22");
            CHECK(res["misuse.profile_slash"] == "1,22");
            CHECK(res["misuse.add_null"] == "-1,22");
            CHECK(res["misuse.write_unknown"] == "-1,22");
            CHECK(res["misuse.write_null"] == "-1,22");
            CHECK(res["misuse.write_debug"] == "-1,22");
            CHECK(res["misuse.write_closed_fd"] == "-1,9");  // EBADF, the write's own
            CHECK(res["misuse.write_read_only"] == "-1,9");
            CHECK(res["misuse.push_null"] == "-1,22");
            CHECK(res["misuse.pop_empty_errno"] == "0");  // a void function leaves errno alone
            CHECK(res["misuse.push_long"] == "-1,22");
            CHECK(res["misuse.memstats_small"] == "-1,22");
            CHECK(res["misuse.memstats_null"] == "-1,22");
            CHECK(res["misuse.cpu_stop_broken_pipe"] == "-1,32");  // EPIPE, the write's own
            std::map<std::string, int> said;
            for (const std::string& line : split_lines(r.err)) {
                CHECK(line.rfind("gprof: ", 0) == 0);
                ++said[line];
            }
            for (const auto& [line, times] : said) {
                INFO(line);
                CHECK(times == 1);
            }
            CHECK(said.size() == 11);  // the kinds of misuse above

            // Every profile through the API: the protobuf decoded and read by pprof, the text
            // read back by pprof with the same totals.
            for (const std::string name : {"heap", "allocs", "goroutine", "threads", "threadcreate",
                                           "block", "mutex", "connections"}) {
                INFO(name);
                CHECK(res["write." + name + ".0"] == "0");
                CHECK(res["write." + name + ".1"] == "0");
                perftools::profiles::Profile binary = checked_profile(dir + "/" + name + ".0");
                perftools::profiles::Profile text = text_as_read(dir + "/" + name + ".1");
                std::vector<int64_t> from_binary = totals(binary);
                CHECK(totals(text) == from_binary);
                CHECK(from_binary[0] > 0);
            }
            perftools::profiles::Profile allocs = read_profile(dir + "/allocs.0");
            CHECK(string_at(allocs, allocs.default_sample_type()) == "alloc_space");

            // Rates: heap rate 0 then 1 records exactly what came after; block and mutex rates 0
            // at start, then 1, record the waits for the lock (a busy machine may wake main late
            // for the holder's 20 ms, so a wait is only known to be more than none).
            perftools::profiles::Profile heap = read_profile(dir + "/heap.0");
            CHECK(value_at(heap, "before_rate_site", 0) == 0);
            CHECK(value_at(heap, "after_rate_site", 0) == 1000);
            CHECK(value_at(heap, "after_rate_site", 1) == 200000);
            CHECK(value_at(heap, "after_rate_site", 3) == 200000);
            CHECK(value_at(read_profile(dir + "/block.0"), "blocked_site", 1) > 0);
            CHECK(value_at(read_profile(dir + "/mutex.0"), "holder", 1) > 0);

            // Labels split heap samples, the innermost value winning.
            for (const FlatSample& s : flatten(heap)) {
                bool a = std::find(s.functions.begin(), s.functions.end(), "labelled_site_a") !=
                         s.functions.end();
                bool b = std::find(s.functions.begin(), s.functions.end(), "labelled_site_b") !=
                         s.functions.end();
                if (a) CHECK(s.strings == std::map<std::string, std::string>{{"request", "a"}});
                if (b)
                    CHECK(s.strings ==
                          std::map<std::string, std::string>{{"request", "b"}, {"user", "x"}});
                if (!a && !b) CHECK(s.strings.empty());
            }
            std::string top;
            pprof_stderr({"-top", "-sample_index=alloc_space", "-tagfocus=request=b"},
                         dir + "/heap.0", &top);
            CHECK(contains(top, "labelled_site_b"));
            CHECK_FALSE(contains(top, "labelled_site_a"));
            CHECK(contains(top, "accounting for 19.53kB"));  // 50 x 400 bytes

            // The custom profile: 4 threads added 10 000 keys each and removed 7 500: 10 000 left,
            // all by open_connection's stack.
            CHECK(res["profile_count"] == "10000");
            perftools::profiles::Profile connections = read_profile(dir + "/connections.0");
            REQUIRE(connections.sample_type_size() == 1);
            CHECK(string_at(connections, connections.sample_type(0).type()) == "connections");
            CHECK(totals(connections)[0] == 10000);
            CHECK(value_at(connections, "open_connection", 0) == 10000);

            // goroutine debug=2: every thread with its id, name, state and named frames.
            const std::string dump = read_file(dir + "/goroutine.2");
            CHECK(dump.rfind("goroutine ", 0) == 0);
            CHECK(contains(dump, "[running, \"api_c\"]:\n"));
            CHECK(contains(dump, "\nuse_gprof()\n\t"));
            CHECK(contains(dump, "api_c.c:"));

            // gprof_dump: its sequence number names its files, the custom profile's among them.
            const std::string seq = res["dump"];
            REQUIRE(seq.size() == 1);
            std::vector<std::string> dumped = list_files(dir, ".000" + seq + ".connections.pb.gz");
            REQUIRE(dumped.size() == 1);
            CHECK(totals(checked_profile(dumped[0]))[0] == 10000);
            CHECK(res["memstats"] == "0");
        }
    }
}

TEST_CASE("api: a C++ program's labels split heap samples between two threads", "[api]") {
    const std::string bare = make_dir("api-cxx-bare");
    RunResult baseline = run_program("api_cxx", bare, {});
    REQUIRE(baseline.status == 0);
    CHECK(read_file(bare + "/functions.txt") == "all_present=0\nall_absent=1\n");
    for (const std::string& mode : kModes) {
        DYNAMIC_SECTION(mode) {
            const std::string dir = make_dir("api-cxx-" + mode);
            std::map<std::string, std::string> extra = {{"GPROF_OUTPUT", dir + "/gp"}};
            if (mode == "libc") extra["GPROF_MEM_PROFILE_RATE"] = "0";
            RunResult r = run_program("api_cxx", dir, preload_env(mode, extra));
            INFO(r.describe());
            REQUIRE(r.status == 0);
            CHECK(r.out == baseline.out);
            CHECK(r.err.empty());
            CHECK(read_file(dir + "/functions.txt").rfind("all_present=1\n", 0) == 0);
            std::map<std::string, std::string> res = read_results(dir + "/results.txt");
            CHECK(res["profile_count"] == "60");
            CHECK(res["label.pushed"] == "1");
            for (const std::string name :
                 {"heap", "allocs", "goroutine", "threadcreate", "block", "mutex", "sockets"}) {
                INFO(name);
                CHECK(res["write." + name + ".0"] == "0");
                CHECK(res["write." + name + ".1"] == "0");
                checked_profile(dir + "/" + name + ".0");
                text_as_read(dir + "/" + name + ".1");
            }
            const std::string heap = dir + "/heap.0";
            for (const auto& [label, site, other] :
                 {std::tuple{"a", "site_a", "site_b"}, std::tuple{"b", "site_b", "site_a"}}) {
                std::string top;
                CHECK(pprof_stderr({"-top", "-tagfocus=request=" + std::string(label)}, heap,
                                   &top) == "");
                INFO(top);
                CHECK(contains(top, site));
                CHECK_FALSE(contains(top, other));
            }
            // Each site's 1000-byte objects, all under its thread's label (rate 1: exact).
            std::map<std::string, int64_t> objects;  // "<site> <request label>"
            for (const FlatSample& s : flatten(read_profile(heap))) {
                if (s.numbers.count("bytes") == 0 || s.numbers.at("bytes") != 1000) continue;
                for (const std::string& f : s.functions) {
                    if (contains(f, "site_a()") || contains(f, "site_b()")) {
                        std::string label =
                            s.strings.count("request") ? s.strings.at("request") : "none";
                        objects[f.substr(f.find("site_"), 6) + " " + label] += s.values[0];
                        break;
                    }
                }
            }
            CHECK(objects ==
                  std::map<std::string, int64_t>{{"site_a a", 3000}, {"site_b b", 1000}});
            // The main thread's label is on its threads-profile sample.
            bool labelled = false;
            for (const FlatSample& s : flatten(read_profile(dir + "/goroutine.0")))
                labelled |= s.strings.count("phase") && s.strings.at("phase") == "write";
            CHECK(labelled);
            CHECK(contains(read_file(dir + "/threads.2"), "goroutine "));
        }
    }
}

TEST_CASE("api: MemStats at rate 1 against known allocations", "[api]") {
    for (const std::string& mode : kModes) {
        DYNAMIC_SECTION(mode) {
            RunResult r = run({kApiPrograms + "/api_memstats"},
                              with_env(preload_env(mode, {{"GPROF_MEM_PROFILE_RATE", "1"},
                                                          {"GPROF_AT_EXIT", "0"}})));
            INFO(r.describe());
            REQUIRE(r.status == 0);
            std::map<std::string, int64_t> v;
            std::vector<std::string> by_size;
            for (const std::string& line : split_lines(r.out)) {
                std::istringstream in(line);
                std::string key;
                in >> key;
                if (key == "by_size" || key == "invariants" || key == "gc") {
                    by_size.push_back(line);
                    continue;
                }
                if (key == "expect") in >> key;
                in >> v[key];
            }
            // 1000 + 600 + 300 small objects and 20 large ones; pthread_create allocates each
            // thread's dynamic thread vector, 16 bytes for each module with TLS (libc, libgprof)
            // and 16 more (288 bytes here; 304 while gprof opened libunwind at start): 4 more.
            const int64_t dtv = 4, dtv_bytes = 4 * 288;
            CHECK(v["mallocs"] == 1920 + dtv);
            CHECK(v["frees"] == 800);
            CHECK(v["heap_objects"] == 1120 + dtv);
            CHECK(v["total_alloc"] ==
                  1000 * 24 + 600 * 1000 + 300 * 5000 + 20 * 100000 + dtv_bytes);
            // The allocator's own count: the large objects exactly (jemalloc counts objects above
            // its thread cache as they are made), the live small ones within their size classes,
            // and what the threads' caches hold, which moves with where each cache's periodic
            // flush falls: 81 KiB over the rest with a start-up that allocates nothing of its own,
            // none while gprof's start-up opened libunwind in the main thread.
            CHECK(v["alloc"] >= v["large_usable"]);
            CHECK(v["alloc"] <= v["large_usable"] + 600 * 48 + 500 * 1040 + 128 * 1024);
            CHECK(v["stack_sys"] == 4 << 20);  // four threads made with 1 MiB stacks
            CHECK(by_size == std::vector<std::string>{"by_size 32 1000 400", "by_size 1024 600 100",
                                                      "by_size 5120 300 300", "invariants 1 1 1 1",
                                                      "gc 0 0 0"});
        }
    }
}
