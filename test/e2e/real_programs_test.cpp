// Real programs under gprof, in both allocator modes, must behave exactly as without it: python3
// (pymalloc and PYTHONMALLOC=malloc), g++ (with cc1plus and as preloaded too), git and sqlite3.
#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <sstream>

#include "test/e2e/e2e.h"

using namespace e2e;

namespace {

void require_tool(const std::string& path, const char* package) {
    INFO(package << " is not installed (Debian package: " << package << ")");
    REQUIRE_FALSE(path.empty());
}

}  // namespace

TEST_CASE("python3 allocation-heavy script", "[real][python]") {
    require_tool(kPython, "python3");
    const std::string script = kProgramsSrcDir + "/alloc_heavy.py";
    for (const char* pymalloc : {"", "malloc"}) {
        INFO("PYTHONMALLOC=" << pymalloc);
        std::map<std::string, std::string> extra;
        if (*pymalloc) extra["PYTHONMALLOC"] = pymalloc;
        RunResult base = run({kPython, script}, with_env(extra));
        INFO("baseline: " << base.describe());
        REQUIRE(base.status == 0);
        REQUIRE(contains(base.out, "sha256 "));
        for (const std::string& mode : kModes) {
            INFO("GPROF_ALLOCATOR=" << mode);
            check_same(base, run({kPython, script}, with_env(preload_env(mode, extra))));
        }
    }
}

TEST_CASE("g++ -O2 -c: the same object file symbols", "[real][gxx]") {
    require_tool(kGxx, "g++");
    require_tool(kNm, "binutils");
    const std::string source = kProgramsSrcDir + "/compile_me.cpp";
    auto compile = [&](const std::map<std::string, std::string>& env, std::string* symbols) {
        std::string dir = make_dir("gxx");
        RunOptions o = with_env(env);
        o.cwd = dir;
        o.timeout_seconds = 180;
        RunResult r = run({kGxx, "-O2", "-c", source, "-o", dir + "/out.o"}, o);
        RunResult nm = run({kNm, dir + "/out.o"});
        INFO(nm.describe());
        CHECK(nm.status == 0);
        *symbols = nm.out;
        return r;
    };
    std::string base_symbols;
    RunResult base = compile({}, &base_symbols);
    INFO("baseline: " << base.describe());
    REQUIRE(base.status == 0);
    REQUIRE(split_lines(base_symbols).size() > 100);
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        std::string symbols;
        RunResult r = compile(preload_env(mode), &symbols);
        check_same(base, r);
        CHECK(symbols == base_symbols);
    }
}

namespace {

// A repository built from scratch by a fixed script; the transcript holds every command's
// status and output, and the commit hashes depend on every byte git wrote.
std::string git_session(const std::map<std::string, std::string>& gprof_env) {
    require_tool(kGit, "git");
    const std::string dir = make_dir("git");
    const std::string work = dir + "/repo";
    std::filesystem::create_directories(work + "/src/deep/er");
    std::filesystem::create_directories(dir + "/home");

    std::map<std::string, std::string> env = gprof_env;
    env["HOME"] = dir + "/home";
    env["GIT_CONFIG_NOSYSTEM"] = "1";
    env["GIT_CONFIG_GLOBAL"] = "/dev/null";
    env["GIT_AUTHOR_DATE"] = "2024-01-02T03:04:05+0000";
    env["GIT_COMMITTER_DATE"] = "2024-01-02T03:04:05+0000";
    env["GIT_TERMINAL_PROMPT"] = "0";
    env["LC_ALL"] = "C";
    env["TZ"] = "UTC";
    RunOptions o = with_env(env);
    o.cwd = work;
    o.timeout_seconds = 120;

    std::ostringstream transcript;
    auto git = [&](std::vector<std::string> args) {
        static const char* const kConfig[] = {
            "user.name=gprof e2e", "user.email=e2e@gprof.invalid", "init.defaultBranch=main",
            "gc.auto=0",           "commit.gpgsign=false",         "core.pager=cat",
        };
        std::vector<std::string> argv = {kGit};
        for (const char* c : kConfig) argv.insert(argv.end(), {"-c", c});
        argv.insert(argv.end(), args.begin(), args.end());
        RunResult r = run(argv, o);
        std::string cmd;
        for (auto& a : args) cmd += a + " ";
        transcript << "$ git " << cmd << "\n[status " << r.status << "]\n"
                   << r.out << "[stderr]\n"
                   << r.err;
        return r;
    };
    auto file_path = [&](int i) {
        const char* sub = i % 3 == 0 ? "/src/deep/er/" : i % 3 == 1 ? "/src/" : "/";
        return work + sub + "f" + std::to_string(i) + ".txt";
    };
    auto write_files = [&](int from, int to, const std::string& tag) {
        for (int i = from; i < to; ++i) {
            std::ostringstream content;
            for (int line = 0; line < 20 + i % 50; ++line)
                content << tag << " file " << i << " line " << line << " "
                        << std::string(i % 17, 'z') << "\n";
            write_file(file_path(i), content.str());
        }
    };

    git({"init", "-q"});
    write_files(0, 300, "first");
    git({"add", "."});
    git({"commit", "-q", "-m", "first commit"});
    write_files(100, 160, "second");
    for (int i = 0; i < 300; i += 29) std::filesystem::remove(file_path(i));
    write_files(300, 320, "new");
    git({"add", "-A"});
    git({"commit", "-q", "-m", "second commit"});
    git({"branch", "side", "HEAD~1"});
    git({"gc", "-q", "--prune=now"});
    git({"fsck", "--strict", "--no-progress"});
    git({"log", "--format=%H %T %s", "--stat", "--all"});
    git({"diff", "--stat", "HEAD~1", "HEAD"});
    git({"rev-parse", "HEAD", "side"});
    return transcript.str();
}

}  // namespace

TEST_CASE("git init/add/commit/gc/fsck/log: the same hashes", "[real][git]") {
    std::string base = git_session({});
    INFO("baseline transcript:\n" << base);
    REQUIRE_FALSE(std::regex_search(base, std::regex(R"(\[status [^0])")));  // all succeeded
    REQUIRE(contains(base, "second commit"));
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        std::string t = git_session(preload_env(mode));
        INFO("under gprof:\n" << t);
        CHECK(t == base);
    }
}

TEST_CASE("sqlite3: thousands of inserts and queries", "[real][sqlite]") {
    require_tool(kSqlite, "sqlite3");
    std::ostringstream sql;
    sql << "PRAGMA journal_mode=WAL;\n"
           "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, payload BLOB, score "
           "REAL);\n"
           "BEGIN;\n";
    for (int i = 1; i <= 6000; ++i)
        sql << "INSERT INTO t VALUES(" << i << ", 'name-" << i * 7919 % 10007 << "-"
            << std::string(i % 40, 'n') << "', " << i % 37 << ", zeroblob(" << i % 300 << "), "
            << (i * 31 % 1000) / 8.0 << ");\n";
    sql << "COMMIT;\n"
           "CREATE INDEX t_grp ON t(grp, score);\n"
           "SELECT count(*), sum(grp), total(score) FROM t;\n"
           "SELECT grp, count(*), max(length(name)), round(avg(score), 3) FROM t GROUP BY grp "
           "ORDER BY grp;\n"
           "SELECT a.id, b.id FROM t a JOIN t b ON a.grp = b.grp AND b.id = a.id + 37 "
           "WHERE a.id % 500 = 0 ORDER BY a.id;\n"
           "UPDATE t SET name = name || '-updated-' || id WHERE id % 7 = 0;\n"
           "DELETE FROM t WHERE id % 11 = 0;\n"
           "SELECT count(*), sum(length(name)), sum(length(payload)) FROM t;\n"
           "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000) "
           "SELECT count(*), sum(x) FROM c;\n"
           "SELECT group_concat(name, ',') FROM (SELECT name FROM t WHERE name LIKE "
           "'%-updated-%' ORDER BY name DESC LIMIT 20);\n"
           "SELECT name FROM t ORDER BY score DESC, name LIMIT 5;\n"
           "VACUUM;\n"
           "PRAGMA integrity_check;\n";
    const std::string script = make_dir("sqlite-script") + "/script.sql";
    write_file(script, sql.str());

    auto session = [&](const std::map<std::string, std::string>& env) {
        std::string dir = make_dir("sqlite");
        RunOptions o = with_env(env);
        o.stdin_path = script;
        o.cwd = dir;
        return run({kSqlite, "-batch", "-bail", dir + "/test.db"}, o);
    };
    RunResult base = session({});
    INFO("baseline: " << base.describe());
    REQUIRE(base.status == 0);
    REQUIRE(contains(base.out, "\nok\n"));
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        check_same(base, session(preload_env(mode)));
    }
}
