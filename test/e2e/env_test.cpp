// The program's environment belongs to the program: its MALLOC_CONF must not reach gprof's
// jemalloc, and a bad GPROF_* value costs one stderr line and nothing else.
#include <catch2/catch.hpp>

#include "test/e2e/e2e.h"

using namespace e2e;

TEST_CASE("MALLOC_CONF=abort_conf:true,bogus:1 does not reach gprof's jemalloc", "[env]") {
    RunResult base = run({program("throw_loop"), "2000"});
    RunResult contract_base = run({program("cxx_contract")});
    REQUIRE(base.status == 0);
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        auto env = preload_env(mode, {{"MALLOC_CONF", "abort_conf:true,bogus:1"}});
        RunResult r = run({program("throw_loop"), "2000"}, with_env(env));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.out == base.out);
        CHECK_FALSE(contains(r.err, "<jemalloc>"));
        CHECK(r.err.empty());

        RunResult c = run({program("malloc_contract")}, with_env(env));
        INFO(c.describe());
        CHECK(c.status == 0);
        CHECK_FALSE(contains(c.out, "FAIL:"));
        CHECK_FALSE(contains(c.err, "<jemalloc>"));
        CHECK(c.err.empty());

        RunResult x = run({program("cxx_contract")}, with_env(env));
        INFO(x.describe());
        CHECK(x.status == 0);
        CHECK(x.out == contract_base.out);
        CHECK(x.err.empty());
    }
}

TEST_CASE("a bad GPROF_* value gives one gprof: line and changes nothing else", "[env]") {
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"GPROF_MEM_PROFILE_RATE", "banana"},
        {"GPROF_ALLOCATOR", "tcmalloc"},
        {"GPROF_SIGNAL", "USR9"},
    };
    SECTION("one line naming the variable; output and status unchanged") {
        RunResult base = run({program("throw_loop"), "1000"});
        REQUIRE(base.status == 0);
        for (const auto& [name, value] : bad) {
            INFO(name << "=" << value);
            RunResult r =
                run({program("throw_loop"), "1000"}, with_env(preload_env("", {{name, value}})));
            INFO(r.describe());
            CHECK(r.status == base.status);
            CHECK(r.out == base.out);
            std::vector<std::string> lines = split_lines(r.err);
            REQUIRE(lines.size() == 1);
            CHECK(lines[0].rfind("gprof: ", 0) == 0);
            CHECK(contains(lines[0], name));
        }
    }
    SECTION("GPROF_ALLOCATOR=tcmalloc falls back to the default, jemalloc") {
        RunResult r = run({program("which_heap")},
                          with_env(preload_env("", {{"GPROF_ALLOCATOR", "tcmalloc"}})));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.out == "heap: other\n");
        CHECK(split_lines(r.err).size() == 1);
    }
    SECTION("a bad value next to a good one: only the bad one is reported") {
        RunResult r =
            run({program("which_heap")}, with_env(preload_env("libc", {{"GPROF_SIGNAL", "USR9"}})));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.out == "heap: glibc\n");
        std::vector<std::string> lines = split_lines(r.err);
        REQUIRE(lines.size() == 1);
        CHECK(contains(lines[0], "GPROF_SIGNAL"));
    }
}

TEST_CASE("a clean environment: LD_PRELOAD alone adds no noise", "[env]") {
    // Only LD_PRELOAD: every GPROF_* default applies, so a profile may be written at exit into
    // the working directory (the scratch one here) with one `gprof:` line per file, as the
    // README says. Nothing else may appear: no problem line, no `<jemalloc>:` line.
    RunResult base = run({program("throw_loop"), "5000"});
    REQUIRE(base.status == 0);
    for (const std::string& mode : {std::string(), std::string("libc")}) {
        INFO("GPROF_ALLOCATOR=" << mode);
        RunOptions o;
        o.env = {{"LD_PRELOAD", kGprofLib}};
        if (!mode.empty()) o.env["GPROF_ALLOCATOR"] = mode;
        o.cwd = make_dir("clean-env");
        RunResult r = run({program("throw_loop"), "5000"}, o);
        INFO(r.describe());
        CHECK(r.status == base.status);
        CHECK(r.out == base.out);
        CHECK_FALSE(contains(r.err, "<jemalloc>"));
        for (const std::string& line : split_lines(r.err)) {
            INFO("stderr line: " << line);
            CHECK((line.rfind("gprof: ", 0) == 0 && contains(line, ".pb.gz")));
        }
    }
}
