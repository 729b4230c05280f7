// The threads, threadcreate, block and mutex profiles end to end: programs whose threads and waits
// are known (test/threads) run under LD_PRELOAD; what they write is decoded with libprotobuf and
// opened with `go tool pprof`; what they print shows the program was not disturbed.
#include <signal.h>

#include <algorithm>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>
#include <sstream>

#include "test/e2e/e2e.h"
#include "test/e2e/profile_reader.h"

using namespace e2e;

namespace {

const std::string kThreadPrograms = THREAD_PROGRAMS_BUILD_DIR;

bool has_function(const FlatSample& s, const std::string& name) {
    return std::any_of(s.functions.begin(), s.functions.end(), [&](const std::string& f) {
        return f == name || f.find("::" + name + "(") != std::string::npos ||
               f.rfind(name + "(", 0) == 0;
    });
}

struct Totals {
    int64_t samples = 0;
    std::vector<int64_t> values;
};

// Sums the values of the samples whose stack contains `function`.
Totals totals_at(const std::vector<FlatSample>& samples, const std::string& function) {
    Totals t;
    for (const FlatSample& s : samples) {
        if (!has_function(s, function)) continue;
        ++t.samples;
        if (t.values.size() < s.values.size()) t.values.resize(s.values.size());
        for (size_t i = 0; i < s.values.size(); ++i) t.values[i] += s.values[i];
    }
    return t;
}

// One file of the given dump, checked both ways; returns its samples.
std::vector<FlatSample> read_checked(const std::string& path, perftools::profiles::Profile* out = nullptr) {
    INFO(path);
    perftools::profiles::Profile p = read_profile(path);
    CHECK(consistency_problems(p).empty());
    CHECK(pprof_stderr({"-raw"}, path) == "");
    if (out) *out = p;
    return flatten(p);
}

std::string type_of(const perftools::profiles::Profile& p, int i) {
    return string_at(p, p.sample_type(i).type()) + "/" + string_at(p, p.sample_type(i).unit());
}

std::string dump_file(const std::string& prefix, const std::string& pid, int seq,
                      const std::string& kind) {
    char s[8];
    snprintf(s, sizeof s, "%04d", seq);
    return prefix + "." + pid + "." + s + "." + kind + ".pb.gz";
}

std::string pid_of(const std::string& dir) {
    std::vector<std::string> files = list_files(dir, ".pb.gz");
    if (files.empty()) return "";
    std::string name = files[0].substr(dir.size() + 3);  // after "/p."
    return name.substr(0, name.find('.'));
}

}  // namespace

TEST_CASE("threadcreate counts every pthread_create at its site; threads shows named waiters", "[threads]") {
    for (const std::string& mode : kModes) {
        INFO("GPROF_ALLOCATOR=" << mode);
        std::string dir = make_dir("threads-sites");
        std::string prefix = dir + "/p";
        RunResult r = run({kThreadPrograms + "/thread_sites", prefix},
                          with_env(preload_env(mode, {{"GPROF_OUTPUT", prefix}})));
        INFO(r.describe());
        REQUIRE(r.status == 0);
        CHECK(r.err.empty());
        CHECK(contains(r.out, "cancelled yes\n"));
        CHECK(contains(r.out, "pthread_exit value 42\n"));
        CHECK(contains(r.out, "detached create 0\n"));
        CHECK(contains(r.out, "dump seen\n"));
        CHECK(contains(r.out, "done\n"));
        std::string pid = pid_of(dir);
        REQUIRE(!pid.empty());

        // The signal dump: 5 named threads waiting in wait_here.
        perftools::profiles::Profile threads;
        std::vector<FlatSample> samples = read_checked(dump_file(prefix, pid, 1, "threads"), &threads);
        REQUIRE(threads.sample_type_size() == 1);
        CHECK(type_of(threads, 0) == "goroutine/count");
        CHECK(string_at(threads, threads.period_type().type()) == "goroutine");
        CHECK(threads.period() == 1);
        std::set<std::string> names;
        int64_t waiting = 0;
        for (const FlatSample& s : samples) {
            if (!has_function(s, "wait_here")) continue;
            waiting += s.values[0];
            names.insert(s.strings.count("thread_name") ? s.strings.at("thread_name") : "");
        }
        CHECK(waiting == 5);
        CHECK(names == std::set<std::string>{"waiter-0", "waiter-1", "waiter-2", "waiter-3", "waiter-4"});
        for (const FlatSample& s : samples) CHECK(s.strings.count("thread_name") == 1);
        CHECK_FALSE(std::any_of(samples.begin(), samples.end(), [](const FlatSample& s) {
            return s.strings.count("thread_name") && s.strings.at("thread_name") == "gprof-dumper";
        }));

        // The exit dump: every creation since start, by site.
        perftools::profiles::Profile created;
        samples = read_checked(dump_file(prefix, pid, 2, "threadcreate"), &created);
        CHECK(type_of(created, 0) == "threadcreate/count");
        CHECK(totals_at(samples, "spawn_workers").values == std::vector<int64_t>{7});
        CHECK(totals_at(samples, "spawn_more").values == std::vector<int64_t>{3});
        int64_t total = 0;
        for (const FlatSample& s : samples) total += s.values[0];
        CHECK(total == 7 + 3 + 3 + 5);  // workers, lifecycle threads, waiters
        // The leaf is the program's call site: no frame of gprof's, nor pthread_create itself.
        for (const FlatSample& s : samples) {
            REQUIRE_FALSE(s.functions.empty());
            CHECK(s.functions.front().find("pthread_create") == std::string::npos);
            CHECK(s.mappings.front().find("libgprof") == std::string::npos);
        }
    }
}

TEST_CASE("threads capture leaves read, write, poll, nanosleep, sigwait and the program's signals alone",
          "[threads]") {
    struct Case {
        std::string signal_name;
        int signal_number;
    };
    for (const Case& c : {Case{"USR2", SIGUSR2}, Case{"RTMIN+3", SIGRTMIN + 3}}) {
        INFO("GPROF_SIGNAL=" << c.signal_name);
        std::string dir = make_dir("threads-parked");
        std::string prefix = dir + "/p";
        RunOptions options = with_env(
            preload_env("", {{"GPROF_OUTPUT", prefix}, {"GPROF_SIGNAL", c.signal_name}}));
        RunResult r = run({kThreadPrograms + "/parked_threads", prefix,
                           std::to_string(c.signal_number)},
                          options);
        INFO(r.describe());
        REQUIRE(r.status == 0);
        CHECK(r.err.empty());
        CHECK(contains(r.out, "dump seen\n"));
        CHECK(contains(r.out, "read 1 x \n"));
        CHECK(contains(r.out, "write 1048576 \n"));
        CHECK(contains(r.out, "poll 1 \n"));
        CHECK(contains(r.out, "nanosleep 0 \n"));
        CHECK(contains(r.out, "sigwait 0 SIGTERM\n"));
        CHECK(contains(r.out, "usr1 handled yes\n"));
        if (c.signal_number != SIGUSR2) CHECK(contains(r.out, "usr2 handled yes\n"));

        std::string pid = pid_of(dir);
        REQUIRE(!pid.empty());
        perftools::profiles::Profile p;
        std::vector<FlatSample> samples = read_checked(dump_file(prefix, pid, 1, "threads"), &p);
        struct Where {
            const char* function;
            const char* thread;
        };
        for (const Where& w : {Where{"reader_wait", "reader"}, Where{"poller_wait", "poller"},
                               Where{"sleeper_wait", "sleeper"}, Where{"sigwaiter_wait", "sigwaiter"},
                               Where{"writer_wait", "writer"}}) {
            INFO(w.function);
            bool found = false;
            for (const FlatSample& s : samples)
                if (has_function(s, w.function) && s.strings.at("thread_name") == w.thread) found = true;
            CHECK(found);
        }
        // The busy thread that blocks every signal has no stack, and the profile says so.
        std::string comments;
        for (int64_t c : p.comment()) comments += string_at(p, c) + "\n";
        CHECK(contains(comments, "1 run with signal"));
        for (const FlatSample& s : samples) CHECK(s.strings.at("thread_name") != "spinner");
    }
}

TEST_CASE("a program that exits while a dump is being written exits normally", "[threads]") {
    std::string dir = make_dir("threads-exit");
    std::string prefix = dir + "/p";
    RunResult r = run({kThreadPrograms + "/parked_threads", prefix, std::to_string(SIGUSR2), "exit-now"},
                      with_env(preload_env("", {{"GPROF_OUTPUT", prefix}})));
    INFO(r.describe());
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    CHECK(r.out == "exiting during the dump\n");
    // Whatever was written is complete and well formed (temporary names are never left behind).
    // At least the at-exit dump's threadcreate profile (the program started threads).
    std::vector<std::string> files = list_files(dir, ".pb.gz");
    CHECK(list_files(dir, ".threadcreate.pb.gz").size() >= 1);
    for (const std::string& f : files) read_checked(f);
    CHECK(list_files(dir, ".tmp").empty());
}

TEST_CASE("block and mutex profiles measure a known contention (rate 1, fraction 1)", "[locks]") {
    std::string dir = make_dir("locks-contention");
    std::string prefix = dir + "/p";
    RunResult r = run({kThreadPrograms + "/lock_contention"},
                      with_env(preload_env("", {{"GPROF_OUTPUT", prefix},
                                                {"GPROF_BLOCK_PROFILE_RATE", "1"},
                                                {"GPROF_MUTEX_PROFILE_FRACTION", "1"}})));
    INFO(r.describe());
    REQUIRE(r.status == 0);
    std::istringstream truth(r.out.substr(r.out.find("TRUTH")));
    std::string word;
    int64_t wait_ns = 0, long_waits = 0, calls = 0;
    truth >> word >> word >> wait_ns >> word >> long_waits >> word >> calls;
    REQUIRE(wait_ns > 50 * 1000 * 1000);  // the program did contend: 4 threads, 2 ms holds
    std::string pid = pid_of(dir);
    REQUIRE(!pid.empty());

    perftools::profiles::Profile block;
    std::vector<FlatSample> waits = read_checked(dump_file(prefix, pid, 1, "block"), &block);
    REQUIRE(block.sample_type_size() == 2);
    CHECK(type_of(block, 0) == "contentions/count");
    CHECK(type_of(block, 1) == "delay/nanoseconds");
    CHECK(string_at(block, block.period_type().type()) == "contentions");
    CHECK(block.period() == 1);
    Totals at_lock = totals_at(waits, "wait_for_lock");
    REQUIRE(at_lock.values.size() == 2);
    INFO("truth: " << wait_ns << " ns in " << calls << " calls, " << long_waits << " over 100 us; "
                   << "block: " << at_lock.values[1] << " ns in " << at_lock.values[0]);
    // gprof times the wait inside the interval the program times around the same call, so its
    // delay can only be smaller, by the calls' own overhead (microseconds in all).
    CHECK(at_lock.values[1] <= wait_ns);
    CHECK(at_lock.values[1] >= wait_ns * 9 / 10);
    // Every wait the program saw as long is a contention; no call is counted twice.
    CHECK(at_lock.values[0] >= long_waits);
    CHECK(at_lock.values[0] <= calls);
    // The waiter's stack: the leaf is its call site, not the lock function or gprof.
    for (const FlatSample& s : waits)
        if (has_function(s, "wait_for_lock")) CHECK(s.functions.front().find("wait_for_lock") != std::string::npos);

    // The other primitives: each waited about 50 ms at a known site.
    for (const char* site : {"wait_rdlock", "wait_cond", "wait_sem"}) {
        INFO(site);
        Totals t = totals_at(waits, site);
        REQUIRE(t.values.size() == 2);
        CHECK(t.values[0] >= 1);
        CHECK(t.values[1] >= 40 * 1000 * 1000);
        CHECK(t.values[1] <= 2000 * 1000 * 1000LL);
    }

    perftools::profiles::Profile mutex;
    std::vector<FlatSample> releases = read_checked(dump_file(prefix, pid, 1, "mutex"), &mutex);
    CHECK(type_of(mutex, 1) == "delay/nanoseconds");
    Totals at_release = totals_at(releases, "release_lock");
    REQUIRE(at_release.values.size() == 2);
    INFO("mutex: " << at_release.values[1] << " ns in " << at_release.values[0]);
    // The waiting is charged to the releasers by Go 1.22's estimate (head wait plus the mean of
    // head and tail waits per further waiter), which is exact for one waiter and assumes evenly
    // spread arrivals for more: within a factor 1.5 of the total wait here.
    CHECK(at_release.values[1] >= wait_ns * 2 / 3);
    CHECK(at_release.values[1] <= wait_ns * 3 / 2);
    // Each contended release has one to three waiters (four threads), and is one of the calls.
    CHECK(at_release.values[0] >= at_lock.values[0] / 3);
    CHECK(at_release.values[0] <= calls);
    CHECK(totals_at(releases, "wait_for_lock").samples == 0);
}

TEST_CASE("block profile at the default rate keeps every long wait", "[locks]") {
    std::string dir = make_dir("locks-default");
    std::string prefix = dir + "/p";
    RunResult r = run({kThreadPrograms + "/lock_contention"},
                      with_env(preload_env("", {{"GPROF_OUTPUT", prefix}})));
    INFO(r.describe());
    REQUIRE(r.status == 0);
    std::istringstream truth(r.out.substr(r.out.find("TRUTH")));
    std::string word;
    int64_t wait_ns = 0;
    truth >> word >> word >> wait_ns;
    std::string pid = pid_of(dir);
    REQUIRE(!pid.empty());
    std::vector<FlatSample> waits = read_checked(dump_file(prefix, pid, 1, "block"));
    Totals at_lock = totals_at(waits, "wait_for_lock");
    REQUIRE(at_lock.values.size() == 2);
    // Waits of milliseconds are far above the default rate: all kept, un-biasing leaves them be.
    CHECK(at_lock.values[1] <= wait_ns);
    CHECK(at_lock.values[1] >= wait_ns * 8 / 10);
    // About 1 in 100 of the 160 contended releases is recorded: often none, and then no file.
    if (access(dump_file(prefix, pid, 1, "mutex").c_str(), F_OK) == 0)
        read_checked(dump_file(prefix, pid, 1, "mutex"));
}

TEST_CASE("every lock kind returns what it returns without gprof", "[locks]") {
    RunResult base = run({kThreadPrograms + "/lock_results"});
    INFO(base.describe());
    REQUIRE(base.status == 0);
    // The expected values themselves, so that the comparison means something.
    for (const char* line : {"normal.trylock_held EBUSY", "normal.lock_contended 0",
                             "plain.owner_is_caller 1 nusers 1",
                             "plain.unlocked owner 0 nusers 0 lock 0",
                             "plain.owner_is_forked_child 1", "plain.cond_timedwait ETIMEDOUT",
                             "plain.after_wait owner_is_caller 1 nusers 1",
                             "errorcheck.relock EDEADLK", "errorcheck.timedlock_own EDEADLK",
                             "errorcheck.unlock_unowned EPERM", "errorcheck.unlock_other EPERM",
                             "errorcheck.timedlock_contended ETIMEDOUT",
                             "errorcheck.clocklock_contended ETIMEDOUT", "recursive.lock_again 0",
                             "recursive.unlock_unowned EPERM", "robust.lock_owner_dies EOWNERDEAD",
                             "robust.lock_owner_dead EOWNERDEAD",
                             "robust.lock_unrecoverable ENOTRECOVERABLE", "pi.relock EDEADLK",
                             "pi.trylock_held EBUSY", "pi.lock_contended 0",
                             "pshared.trylock_held EBUSY", "pshared.lock_contended 0",
                             "rwlock.timedwrlock_read_held ETIMEDOUT", "rwlock.wrlock_own_write EDEADLK",
                             "cond.timedwait ETIMEDOUT", "sem.trywait EAGAIN",
                             "sem.timedwait ETIMEDOUT", "sem.wait 0 errno 4321",
                             "errno after lock 777"})
        CHECK(contains(base.out, std::string(line) + "\n"));
    for (const std::string& mode : kModes) {
        for (const char* rate : {"1", "0"}) {
            INFO("GPROF_ALLOCATOR=" << mode << " GPROF_BLOCK_PROFILE_RATE=" << rate);
            RunResult r = run({kThreadPrograms + "/lock_results"},
                              with_env(preload_env(mode, {{"GPROF_BLOCK_PROFILE_RATE", rate},
                                                          {"GPROF_MUTEX_PROFILE_FRACTION", rate}})));
            check_same(base, r);
        }
    }
}

TEST_CASE("300 threads, a thrd_create thread and a raw clone thread are all in the threads profile", "[threads]") {
    std::string dir = make_dir("threads-many");
    std::string prefix = dir + "/p";
    RunOptions options = with_env(preload_env("", {{"GPROF_OUTPUT", prefix}}));
    options.timeout_seconds = 120;
    RunResult r = run({kThreadPrograms + "/many_threads", prefix}, options);
    INFO(r.describe());
    REQUIRE(r.status == 0);
    CHECK(r.out == "dump seen\ndone\n");
    CHECK(r.err.empty());
    std::string pid = pid_of(dir);
    REQUIRE(!pid.empty());
    std::vector<FlatSample> samples = read_checked(dump_file(prefix, pid, 1, "threads"));
    CHECK(totals_at(samples, "sleep_here").values == std::vector<int64_t>{300});
    // Threads that never passed pthread_create are the program's too, and are walked.
    CHECK(totals_at(samples, "c11_sleeper").values == std::vector<int64_t>{1});
    CHECK(totals_at(samples, "clone_spinner").values == std::vector<int64_t>{1});
    int64_t total = 0;
    for (const FlatSample& s : samples) total += s.values[0];
    CHECK(total == 300 + 1 + 1 + 1);  // and the main thread
    // threadcreate sees only what passed pthread_create: the 300.
    std::vector<FlatSample> created = read_checked(dump_file(prefix, pid, 1, "threadcreate"));
    total = 0;
    for (const FlatSample& s : created) total += s.values[0];
    CHECK(total == 300);
}

TEST_CASE("an uncontended lock+unlock pair costs glibc's instructions and a load and a branch",
          "[locks]") {
    // Instructions, not time: callgrind counts lock_pairs with 20 000 and 220 000 pairs, and the
    // difference over 200 000 is one pair's cost, start-up and exit cancelled out. glibc's pair
    // is about 69 instructions here; gprof locks a plain mutex itself (glibc's fast path without
    // the call into glibc) and reads the lock word before glibc's unlock: 62. Before, it called
    // glibc's try-lock and hashed the mutex's address into its waiter table on each unlock: 102.
    REQUIRE_FALSE(kValgrind.empty());
    auto per_pair = [](const std::map<std::string, std::string>& env) {
        auto instructions = [&](const char* pairs) {
            RunOptions slow;
            slow.timeout_seconds = 300;
            RunResult r = run({kValgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
                               kThreadPrograms + "/lock_pairs", pairs},
                              with_env(env, slow));
            INFO(r.describe());
            REQUIRE(r.status == 0);
            REQUIRE(r.out == std::string("pairs ") + pairs + "\n");
            size_t at = r.err.find("Collected : ");
            REQUIRE(at != std::string::npos);
            return std::stoll(r.err.substr(at + 12));
        };
        return static_cast<double>(instructions("220000") - instructions("20000")) / 200000;
    };
    double glibc = per_pair({});
    // The defaults: block and mutex profiles on (no profile written: nothing waited).
    double gprof = per_pair(preload_env("", {{"GPROF_AT_EXIT", "0"}}));
    INFO("instructions per pair: " << glibc << " glibc, " << gprof << " under gprof");
    CHECK(glibc > 20);
    CHECK(gprof <= glibc + 3);
}
