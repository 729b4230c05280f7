// Catalogue cases 37 and 44-47: hostile GPROF_* values and output paths.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "test/e2e/profile_reader.h"
#include "test/hostile/suite.h"

using namespace hostile;

namespace {

using Values = std::vector<std::string>;

// plain under gprof with one variable set to a hostile value: the same status and stdout as
// without gprof, and stderr empty or exactly one gprof: line (which must name the variable).
// Returns that line, if any.
std::string run_plain_with(const std::string& name, const std::string& value,
                           const RunResult& bare) {
    INFO(name << "=" << (value.size() > 60 ? value.substr(0, 60) + "..." : value));
    std::string dir = e2e::make_dir("hostile-env");
    std::string line;
    auto env = gprof_env({"jemalloc", 0}, dir, {{name, value}});
    RunResult r = e2e::run({program("plain")}, options(env, 60, dir));
    check_outcome(bare, r, Outcome::kSameOrOneLine, &line);
    if (!line.empty()) {
        INFO(line);
        CHECK(e2e::contains(line, name));
    }
    check_written(dir, 2);
    return line;
}

}  // namespace

TEST_CASE("#37 hostile GPROF_* values: the program runs as without, one line at most",
          "[hostile][env]") {
    RunResult bare = e2e::run({program("plain")});
    REQUIRE(bare.status == 0);
    REQUIRE(bare.out == "plain: 3000 blocks\n");
    // Longer than any name or number, within the kernel's limit on one environment string (128 KiB).
    const std::string huge(100 << 10, '7');
    for (const std::string& v :
         Values{"0", "-1", "1e99", "abc", "", "99999999999999999999999", huge})
        run_plain_with("GPROF_MEM_PROFILE_RATE", v, bare);
    // Clearly wrong values are reported.
    for (const std::string& v : Values{"-1", "1e99", "abc", huge})
        CHECK(!run_plain_with("GPROF_MEM_PROFILE_RATE", v, bare).empty());
    for (const std::string& v : Values{"0", "-5", "abc", "", huge}) {
        run_plain_with("GPROF_BLOCK_PROFILE_RATE", v, bare);
        run_plain_with("GPROF_MUTEX_PROFILE_FRACTION", v, bare);
        run_plain_with("GPROF_CPU_HZ", v, bare);
    }
    for (const std::string& v : Values{"0", "65", "RTMIN+99", "KILL", "STOP", "SEGV", "", huge})
        run_plain_with("GPROF_SIGNAL", v, bare);
    for (const std::string& v : Values{"2", "yes", "", huge}) {
        run_plain_with("GPROF_AT_EXIT", v, bare);
        run_plain_with("GPROF_LOG", v, bare);
    }
    for (const std::string& v : Values{"", "glibc", huge})
        run_plain_with("GPROF_ALLOCATOR", v, bare);
    for (const std::string& v : Values{"a,b,,heap", "", "cpu", huge})
        run_plain_with("GPROF_PROFILES", v, bare);
    // Ports: 0, out of range, not a number, not loopback.
    for (const std::string& v : Values{":0", ":65536", "x", ":x", "10.1.2.3:6060", huge})
        run_plain_with("GPROF_HTTP", v, bare);
}

TEST_CASE("#37 hostile output paths: printf specifiers, missing and unwritable directories",
          "[hostile][env][output]") {
    RunResult bare = e2e::run({program("plain")});
    std::string dir = e2e::make_dir("hostile-paths");
    SECTION("%s%n%x is a name like any other") {
        RunResult r = e2e::run({program("plain")},
                               options(gprof_env({"jemalloc", 0}, dir,
                                                 {{"GPROF_OUTPUT", "%s%n%x"}}),
                                       60, dir));
        check_outcome(bare, r, Outcome::kSame);
        std::vector<std::string> files = check_written(dir);
        CHECK(!files.empty());
        for (const std::string& f : files) CHECK(e2e::contains(f, "/%s%n%x."));
    }
    SECTION("a missing directory is created") {
        RunResult r = e2e::run({program("plain")},
                               options(gprof_env({"libc", 0}, dir, {{"GPROF_OUTPUT",
                                                                      dir + "/a/b/c/p"}})));
        check_outcome(bare, r, Outcome::kSame);
        CHECK(!check_written(dir + "/a/b/c").empty());
    }
    for (const std::string& out : {std::string("/dev/full/p"), std::string("/sys/gprof-test/p"),
                                   std::string("/proc/self/p"), std::string("/dev/null/x/p")}) {
        SECTION("unwritable: " + out) {
            // (GPROF_SIGNAL set: plain asks for no dump by signal, so one dump is due, at exit.)
            std::string line;
            RunResult r = e2e::run({program("plain")},
                                   options(gprof_env({"jemalloc", 0}, dir,
                                                     {{"GPROF_OUTPUT", out},
                                                      {"GPROF_SIGNAL", "USR2"}})));
            check_outcome(bare, r, Outcome::kOneLine, &line);
            CHECK(line.rfind("gprof: cannot", 0) == 0);
        }
    }
    SECTION("a read-only file system") {
        // A read-only tmpfs, where root's permissions do not help.
        std::string ro = dir + "/ro";
        std::filesystem::create_directories(ro);
        if (mount("tmpfs", ro.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0) {
            WARN("mount failed (" << std::strerror(errno) << "): the read-only case is skipped");
        } else {
            std::string line;
            auto env = gprof_env({"libc", 0}, dir,
                                 {{"GPROF_OUTPUT", ro + "/p"}, {"GPROF_SIGNAL", "USR2"}});
            RunResult r = e2e::run({program("plain")}, options(env));
            umount(ro.c_str());
            check_outcome(bare, r, Outcome::kOneLine, &line);
            CHECK(e2e::contains(line, "Read-only file system"));
        }
    }
}

TEST_CASE("#45 something planted at the profile's name: a symlink, a FIFO, a directory",
          "[hostile][output]") {
    std::string victim_dir = e2e::make_dir("planted-victim");
    std::string victim = victim_dir + "/victim";
    e2e::write_file(victim, "the victim's content\n");
    for (const std::string& what : Values{"symlink", "fifo", "dir"}) {
        for (const Config& config : configs(false)) {
            INFO(what << " " << config.describe());
            std::string dir = e2e::make_dir("planted");
            std::vector<std::string> argv = {program("plant"), dir + "/p", what, victim};
            RunResult bare = e2e::run(argv, options({}, 60, dir));
            REQUIRE(bare.status == 0);
            std::filesystem::remove_all(dir);
            std::filesystem::create_directories(dir);
            std::string line;
            RunResult r = e2e::run(argv, options(gprof_env(config, dir,
                                                           {{"GPROF_MEM_PROFILE_RATE", "1"}}),
                                                 60, dir));
            // Never written through a symlink; a FIFO is never opened (the writer would block).
            CHECK(e2e::read_file(victim) == "the victim's content\n");
            if (what == "dir") {
                // rename cannot replace a directory: one line, and nothing left behind.
                check_outcome(bare, r, Outcome::kOneLine, &line);
                CHECK(e2e::contains(line, "Is a directory"));
            } else {
                check_outcome(bare, r, Outcome::kSame);
            }
            check_written(dir);
        }
    }
}

TEST_CASE("#44 a file already at the profile's name (same pid, another pid namespace) is kept",
          "[hostile][output]") {
    // The names of the contract (<prefix>.<pid>.<seq>) repeat for processes of the same pid: pid
    // 1 of two containers sharing a directory, or the images of one exec chain (#17). A dump
    // skips a number at which a regular file of its own names exists (before that fix, the
    // rename replaced it).
    for (const Config& config : configs(false)) {
        INFO(config.describe());
        std::string dir = e2e::make_dir("planted-file");
        std::vector<std::string> argv = {program("plant"), dir + "/p", "file"};
        RunResult bare = e2e::run(argv, options({}, 60, dir));
        REQUIRE(bare.status == 0);
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        RunResult r = e2e::run(
            argv, options(gprof_env(config, dir, {{"GPROF_MEM_PROFILE_RATE", "1"}}), 60, dir));
        check_outcome(bare, r, Outcome::kSameOrOneLine);
        std::vector<std::string> kept;
        for (const std::string& f : e2e::list_files(dir, ".heap.pb.gz"))
            if (e2e::read_file(f) == "an earlier process's file\n") kept.push_back(f);
        CHECK(kept.size() == 1);
    }
    // The real thing: each `unshare --pid --fork` child is pid 1 and writes p.1.0001.*.
    std::string dir = e2e::make_dir("same-pid");
    RunResult probe = e2e::run({"unshare", "--pid", "--fork", "/bin/true"});
    if (probe.status != 0) {
        WARN("unshare --pid does not work here (" << probe.err << "): that part is skipped");
        return;
    }
    for (int i = 0; i < 2; ++i) {
        RunResult r = e2e::run({"unshare", "--pid", "--fork", program("many_stacks"), "4",
                                dir + "/rss"},
                               options(gprof_env({"jemalloc", 0}, dir,
                                                 {{"GPROF_MEM_PROFILE_RATE", "1"}})));
        INFO(r.describe());
        CHECK(r.status == 0);
    }
    check_written(dir);
    size_t from_many_stacks = 0;  // (unshare itself writes its own profile under its real pid)
    for (const std::string& f : e2e::list_files(dir, ".heap.pb.gz")) {
        bool mine = false;
        for (const e2e::FlatSample& s : e2e::flatten(e2e::read_profile(f)))
            mine = mine || (!s.functions.empty() && s.functions[0] == "chain");
        from_many_stacks += mine;
    }
    CHECK(from_many_stacks == 2);
}

TEST_CASE("ENOSPC on a 1 MiB tmpfs: the first dump stays complete, the second fails with one line",
          "[hostile][output]") {
    for (const Config& config : configs(false)) {
        INFO(config.describe());
        std::string dir = e2e::make_dir("enospc");
        if (mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=1m") != 0) {
            WARN("mount -t tmpfs failed (" << std::strerror(errno) << "): ENOSPC case skipped");
            return;
        }
        std::vector<std::string> argv = {program("fill_disk"), dir, dir + "/filler"};
        RunResult bare = e2e::run(argv);
        std::filesystem::remove(dir + "/filler");
        CHECK(bare.out == "file system full: yes\n");
        std::string line;
        RunResult r = e2e::run(argv, options(gprof_env(config, dir,
                                                       {{"GPROF_MEM_PROFILE_RATE", "1"}})));
        check_outcome(bare, r, Outcome::kOneLine, &line);
        CHECK(e2e::contains(line, "No space left on device"));
        std::vector<std::string> files = check_written(dir);
        CHECK(e2e::list_files(dir, ".0001.heap.pb.gz").size() == 1);
        CHECK(e2e::list_files(dir, ".0002.heap.pb.gz").empty());
        umount(dir.c_str());
    }
}

TEST_CASE("#46 the program changes directory or drops privileges after start",
          "[hostile][output]") {
    for (const Config& config : configs(false)) {
        INFO(config.describe());
        std::string cwd = e2e::make_dir("move-away");
        RunResult bare = e2e::run({program("move_away"), "chdir"}, options({}, 60, cwd));
        // A relative GPROF_OUTPUT is resolved at start: the files land in the first directory.
        auto env = gprof_env(config, cwd, {{"GPROF_OUTPUT", "rel/p"}});
        RunResult r = e2e::run({program("move_away"), "chdir"}, options(env, 60, cwd));
        check_outcome(bare, r, Outcome::kSame);
        CHECK(!check_written(cwd + "/rel").empty());

        // nobody cannot write into root's 0755 directory: one line, nothing else.
        std::string dir = e2e::make_dir("drop-privileges");  // (0700, root's)
        RunResult bare2 = e2e::run({program("move_away"), "setuid"}, options({}, 60, "/"));
        REQUIRE(bare2.out == "setuid done, 2000 blocks\n");
        std::string line;
        RunResult r2 =
            e2e::run({program("move_away"), "setuid"}, options(gprof_env(config, dir), 60, "/"));
        check_outcome(bare2, r2, Outcome::kOneLine, &line);
        CHECK(e2e::contains(line, "Permission denied"));
        check_written(dir);
    }
}

TEST_CASE("#47 gprof's descriptors are not inherited by exec; closed 0-2 are never written",
          "[hostile][output]") {
    for (const Config& config : configs(true)) {
        INFO(config.describe());
        std::string dir = e2e::make_dir("cloexec");
        RunResult bare = e2e::run({program("fds"), "exec", dir});
        REQUIRE(bare.out.rfind("fd 0\nfd 1\nfd 2\n", 0) == 0);  // and what the runner leaks
        RunResult r = e2e::run({program("fds"), "exec", dir},
                               options(gprof_env(config, dir, {{"GPROF_MEM_PROFILE_RATE", "1"}})));
        check_outcome(bare, r, Outcome::kSame);
        CHECK(!check_written(dir).empty());

        // Started with 0, 1 and 2 closed; gprof's problem line (the output cannot be written)
        // must not go into the program's files that took those numbers.
        std::string closed = e2e::make_dir("closed-std");
        const std::string script = "exec \"$0\" closed \"$1\" <&- >&- 2>&-";
        RunResult r2 = e2e::run(
            {"/bin/sh", "-c", script, program("fds"), closed},
            options(gprof_env(config, dir, {{"GPROF_OUTPUT", "/proc/version/p"}})));
        INFO(r2.describe());
        CHECK(r2.status == 0);
        for (int fd = 0; fd < 3; ++fd)
            CHECK(e2e::read_file(closed + "/fd" + std::to_string(fd)) ==
                  "opened as fd " + std::to_string(fd) + "\n");
    }
}
