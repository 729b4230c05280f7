// GPROF_HTTP end to end: test/http/serve_target (busy threads that allocate, contend and burn
// CPU) runs under LD_PRELOAD with the server on a free loopback port, and the tests ask it what
// go tool pprof, Parca and Grafana Alloy ask, and what hostile clients send. Every profile is
// decoded with libprotobuf and opened with `go tool pprof` with no warning.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "test/e2e/e2e.h"
#include "test/e2e/http_client.h"
#include "test/e2e/profile_reader.h"

using namespace e2e;
using namespace e2e::http;

namespace {

const std::string kTarget = std::string(HTTP_PROGRAMS_BUILD_DIR) + "/serve_target";

// serve_target in the background, with the server on `port`.
struct Target {
    std::string dir, cpu_file;
    int port = 0;
    std::future<RunResult> result;
    pid_t pid = 0;
};

pid_t find_pid(const std::string& argument) {
    for (int tries = 0; tries < 500; ++tries, usleep(10000)) {
        DIR* dir = opendir("/proc");
        while (dirent* e = readdir(dir)) {
            if (!isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
            std::string cmdline = read_file(std::string("/proc/") + e->d_name + "/cmdline");
            if (contains(cmdline, argument) && contains(cmdline, "serve_target")) {
                closedir(dir);
                return atoi(e->d_name);
            }
        }
        closedir(dir);
    }
    return 0;
}

std::unique_ptr<Target> start_target(double seconds, std::map<std::string, std::string> extra = {},
                                     const std::string& mode = "-", int threads = 4) {
    auto t = std::make_unique<Target>();
    t->dir = make_dir("http");
    t->cpu_file = t->dir + "/cpu";
    t->port = free_port();
    extra["GPROF_HTTP"] = ":" + std::to_string(t->port);
    extra["GPROF_OUTPUT"] = t->dir + "/p";
    extra["GPROF_AT_EXIT"] = "0";
    RunOptions options = with_env(preload_env("", extra));
    options.timeout_seconds = static_cast<int>(seconds) + 120;
    std::vector<std::string> argv = {kTarget, std::to_string(static_cast<int>(seconds)),
                                     std::to_string(threads),
                                     t->cpu_file};
    if (mode != "-") argv.push_back(mode);
    t->result = std::async(std::launch::async, [argv, options] { return run(argv, options); });
    t->pid = find_pid(t->cpu_file);
    REQUIRE(t->pid != 0);
    REQUIRE(wait_serving(t->port));
    return t;
}

std::string url(const Target& t, const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(t.port) + "/debug/pprof/" + path;
}

// go tool pprof -top on the URL: no warning, and its output.
std::string pprof_top(const Target& t, const std::string& path) {
    std::string out;
    std::string err = pprof_stderr({"-top"}, url(t, path), &out);
    INFO(path << "\n" << err);
    CHECK_FALSE(contains(err, "arning"));
    CHECK_FALSE(contains(err, "rror"));
    CHECK(contains(err, "Fetching profile over HTTP"));
    return out;
}

// A profile answer, decoded and checked (consistent, opened by go tool pprof with no warning).
perftools::profiles::Profile decode_answer(const Answer& a, const std::string& dir) {
    static int n = 0;
    std::string path = dir + "/answer-" + std::to_string(++n) + ".pb.gz";
    write_file(path, a.body);
    auto p = read_profile(path);
    auto problems = consistency_problems(p);
    INFO(path << ": " << (problems.empty() ? "" : problems[0]));
    CHECK(problems.empty());
    std::string err = pprof_stderr({"-raw"}, path);
    CHECK_FALSE(contains(err, "arning"));
    return p;
}

int64_t total(const perftools::profiles::Profile& p, int column) {
    int64_t sum = 0;
    for (const auto& s : p.sample()) sum += s.value(column);
    return sum;
}

std::vector<std::string> sample_types(const perftools::profiles::Profile& p) {
    std::vector<std::string> types;
    for (const auto& t : p.sample_type()) types.push_back(string_at(p, t.type()));
    return types;
}

bool has_function(const perftools::profiles::Profile& p, const std::string& name) {
    for (const auto& f : flatten(p))
        for (const auto& fn : f.functions)
            if (contains(fn, name)) return true;
    return false;
}

int count_entries(const std::string& dir) {
    int n = 0;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') ++n;
        closedir(d);
    }
    return n;
}

// The process's CPU seconds so far (user + system), from /proc/<pid>/stat.
double process_cpu(pid_t pid) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) return -1;
    std::istringstream in(stat.substr(close_paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

// The count the index page gives a profile (`<tr><td>N</td><td><a href='NAME?debug=1'>`), or -1.
long index_count(const std::string& index, const std::string& name) {
    size_t at = index.find("<td><a href='" + name + "?debug=1'>");
    size_t open = at == std::string::npos ? at : index.rfind("<tr><td>", at);
    if (open == std::string::npos) return -1;
    return strtol(index.c_str() + open + 8, nullptr, 10);
}

TEST_CASE("http: every endpoint through go tool pprof, as a dump has them", "[http]") {
    auto t = start_target(40);
    // Until the workers' contended locks are in the block and mutex profiles (1 in 100 releases
    // at the default fraction: on a loaded machine, seconds).
    for (int tries = 0; tries < 300; ++tries, usleep(100000)) {
        std::string index = request(t->port, "/debug/pprof/").body;
        if (index_count(index, "block") > 0 && index_count(index, "mutex") > 0) break;
    }
    CHECK(contains(pprof_top(*t, "heap"), "churn_memory"));
    CHECK(contains(pprof_top(*t, "allocs"), "churn_memory"));
    CHECK(contains(pprof_top(*t, "goroutine"), "worker"));
    CHECK(contains(pprof_top(*t, "threads"), "worker"));
    CHECK(contains(pprof_top(*t, "threadcreate"), "main"));
    CHECK(contains(pprof_top(*t, "block"), "worker"));
    CHECK(contains(pprof_top(*t, "mutex"), "worker"));
    CHECK(contains(pprof_top(*t, "profile?seconds=2"), "burn_cpu"));
    CHECK(contains(pprof_top(*t, "allocs?seconds=1"), "churn_memory"));
    CHECK(contains(pprof_top(*t, "delta_heap"), "churn_memory"));
    CHECK(contains(pprof_top(*t, "delta_mutex"), "worker"));

    // The same profiles as a dump at that moment: the threadcreate profile (which no longer
    // changes) equal, sample for sample.
    Answer http = request(t->port, "/debug/pprof/threadcreate");
    REQUIRE(http.status == 200);
    auto from_http = decode_answer(http, t->dir);
    kill(t->pid, SIGUSR2);
    std::string dumped;
    for (int i = 0; i < 200 && dumped.empty(); ++i, usleep(50000)) {
        auto files = list_files(t->dir, ".threadcreate.pb.gz");
        if (!files.empty()) dumped = files[0];
    }
    REQUIRE(!dumped.empty());
    usleep(200000);
    auto from_dump = read_profile(dumped);
    CHECK(sample_types(from_http) == sample_types(from_dump));
    CHECK(total(from_http, 0) == total(from_dump, 0));
    CHECK(total(from_http, 0) == 4);
    CHECK(from_http.sample_size() == from_dump.sample_size());
    kill(t->pid, SIGTERM);
    t->result.get();
}

TEST_CASE("http: a duration longer than the idle timeout is answered", "[http][slow]") {
    auto t = start_target(60);
    Answer a = request(t->port, "/debug/pprof/allocs?seconds=35", "GET", "", 90);
    CHECK(a.status == 200);
    CHECK(decode_answer(a, t->dir).duration_nanos() >= 35'000'000'000);
    kill(t->pid, SIGTERM);
    t->result.get();
}

TEST_CASE("http: answers, headers and errors as Go's net/http/pprof", "[http]") {
    auto t = start_target(40);
    const int port = t->port;

    // The server answers from gprof's start, before main has started its four threads.
    const std::string five_threads = "<tr><td>5</td><td><a href='goroutine?debug=1'>goroutine</a>";
    Answer index;
    for (int tries = 0; tries < 100; ++tries, usleep(100000)) {
        index = request(port, "/debug/pprof/");
        if (contains(index.body, five_threads)) break;
    }
    CHECK(index.status == 200);
    CHECK(index.headers["content-type"] == "text/html; charset=utf-8");
    CHECK(index.headers["x-content-type-options"] == "nosniff");
    CHECK(contains(index.body, five_threads));
    CHECK(contains(index.body, "<a href='threadcreate?debug=1'>threadcreate</a>"));
    CHECK(contains(index.body, "<a href=\"goroutine?debug=2\">full goroutine stack dump</a>"));

    Answer cmdline = request(port, "/debug/pprof/cmdline");
    CHECK(cmdline.status == 200);
    CHECK(cmdline.body == kTarget + std::string(1, '\0') + "40" + std::string(1, '\0') + "4" +
                              std::string(1, '\0') + t->cpu_file);

    // The workers' first samples may come a moment after they start.
    auto churn_leaf = [](const perftools::profiles::Profile& p) -> uint64_t {
        for (const auto& s : flatten(p))
            if (!s.functions.empty() && contains(s.functions[0], "churn_memory"))
                return s.addresses[0];
        return 0;
    };
    Answer heap = request(port, "/debug/pprof/heap?gc=1");
    auto heap_profile = decode_answer(heap, t->dir);
    for (int tries = 0; tries < 50 && heap.status == 200 && churn_leaf(heap_profile) == 0;
         ++tries) {
        usleep(200000);
        heap = request(port, "/debug/pprof/heap?gc=1");
        heap_profile = decode_answer(heap, t->dir);
    }
    CHECK(heap.status == 200);
    CHECK(heap.headers["content-type"] == "application/octet-stream");
    CHECK(heap.headers["content-disposition"] == "attachment; filename=\"heap\"");
    CHECK(heap.headers["x-content-type-options"] == "nosniff");
    CHECK(sample_types(heap_profile) ==
          std::vector<std::string>{"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"});

    Answer text = request(port, "/debug/pprof/heap?debug=1");
    CHECK(text.status == 200);
    CHECK(text.headers["content-type"] == "text/plain; charset=utf-8");
    CHECK(text.body.rfind("heap profile: ", 0) == 0);
    Answer stacks = request(port, "/debug/pprof/goroutine?debug=2");
    CHECK(stacks.status == 200);
    CHECK(contains(stacks.body, "goroutine "));
    CHECK(contains(stacks.body, "worker"));

    // symbol: the address of churn_memory in the heap profile, by POST and by GET.
    const uint64_t address = churn_leaf(heap_profile);
    REQUIRE(address != 0);
    char hex[32];
    snprintf(hex, sizeof hex, "%#llx", static_cast<unsigned long long>(address));
    Answer post = request(port, "/debug/pprof/symbol", "POST", std::string(hex) + "+0x0+junk");
    CHECK(post.status == 200);
    CHECK(post.body == "num_symbols: 1\n" + std::string(hex) +
                           " (anonymous namespace)::churn_memory(unsigned long)\n");
    Answer get = request(port, "/debug/pprof/symbol?" + std::string(hex));
    CHECK(get.body == post.body);
    CHECK(request(port, "/debug/pprof/symbol").body == "num_symbols: 1\n");

    struct Error {
        std::string target;
        int status;
        std::string message;
    };
    const Error errors[] = {
        {"/debug/pprof/nosuch", 404, "Unknown profile\n"},
        {"/debug/pprof/heap?seconds=-1", 400,
         "invalid value for \"seconds\" - must be a positive integer\n"},
        {"/debug/pprof/heap?seconds=x", 400,
         "invalid value for \"seconds\" - must be a positive integer\n"},
        {"/debug/pprof/heap?seconds=99999999999999999999", 400,
         "invalid value for \"seconds\" - must be a positive integer\n"},
        {"/debug/pprof/heap?seconds=1&debug=1", 400,
         "seconds and debug params are incompatible\n"},
        {"/debug/pprof/heap?seconds=301", 400, "profile duration exceeds server's WriteTimeout\n"},
        {"/debug/pprof/profile?seconds=100000", 400,
         "profile duration exceeds server's WriteTimeout\n"},
        {"/debug/pprof/cpu?seconds=1", 404, "Unknown profile\n"},
    };
    for (const auto& e : errors) {
        Answer a = request(port, e.target);
        INFO(e.target);
        CHECK(a.status == e.status);
        CHECK(a.body == e.message);
        CHECK(a.headers["x-go-pprof"] == "1");
        CHECK(a.headers["content-type"] == "text/plain; charset=utf-8");
        CHECK(a.headers.count("content-disposition") == 0);
    }
    Answer outside = request(port, "/nothing/here");
    CHECK(outside.status == 404);
    CHECK(outside.body == "404 page not found\n");
    Answer moved = request(port, "/debug/pprof?debug=1");
    CHECK(moved.status == 301);
    CHECK(moved.headers["location"] == "/debug/pprof/?debug=1");
    CHECK(request(port, "/debug/pprof/./heap/../heap").headers["location"] == "/debug/pprof/heap");

    // One CPU profile at a time; go tool pprof prints the server's message.
    auto first = std::async(std::launch::async,
                            [port] { return request(port, "/debug/pprof/profile?seconds=3"); });
    usleep(500000);
    Answer busy = request(port, "/debug/pprof/profile?seconds=1");
    CHECK(busy.status == 500);
    CHECK(busy.body == "Could not enable CPU profiling: cpu profiling already in use\n");
    CHECK(busy.headers["x-go-pprof"] == "1");
    std::string out;
    RunOptions options;
    options.env = {{"HOME", scratch_dir()}, {"PPROF_TMPDIR", scratch_dir()}};
    RunResult refused = run({"go", "tool", "pprof", "-top", url(*t, "profile?seconds=1")}, options);
    CHECK(contains(refused.err, "cpu profiling already in use"));
    Answer cpu = first.get();
    CHECK(cpu.status == 200);
    CHECK(cpu.headers["content-disposition"] == "attachment; filename=\"profile\"");
    auto cpu_profile = decode_answer(cpu, t->dir);
    CHECK(has_function(cpu_profile, "burn_cpu"));
    CHECK(cpu_profile.duration_nanos() > 2'500'000'000);

    // A delta: named <name>-delta, time and duration set, allocations counted in the window only.
    Answer all = request(port, "/debug/pprof/allocs");
    Answer delta = request(port, "/debug/pprof/allocs?seconds=1");
    CHECK(delta.status == 200);
    CHECK(delta.headers["content-disposition"] == "attachment; filename=\"allocs-delta\"");
    auto d = decode_answer(delta, t->dir);
    auto cumulative = decode_answer(all, t->dir);
    CHECK(d.duration_nanos() >= 1'000'000'000);
    CHECK(d.duration_nanos() < 3'000'000'000);
    CHECK(d.time_nanos() > 0);
    CHECK(total(d, 0) > 0);
    CHECK(total(d, 0) < total(cumulative, 0) + total(d, 0));
    for (const auto& s : d.sample()) {
        CHECK(s.value(0) >= 0);
        CHECK(s.value(1) >= 0);
    }
    // On heap, in-use values are those at the end, as godeltaprof gives them.
    Answer heap_delta = request(port, "/debug/pprof/heap?seconds=1");
    auto hd = decode_answer(heap_delta, t->dir);
    CHECK(total(hd, 3) > 0);
    for (const auto& s : hd.sample()) CHECK(s.value(3) >= 0);
    kill(t->pid, SIGTERM);
    t->result.get();
}

namespace {

struct Scrape {
    std::string path;
    int round = 0;
    Answer answer;
    double cpu_before = 0, cpu_after = 0;  // the process's CPU seconds around a CPU profile
};

// A scraper's default schedule: every `interval` seconds, each path at once (each a loop of its
// own, as Parca and Alloy run one per profile type), for `rounds` rounds.
std::vector<Scrape> replay(const Target& t, int interval, int rounds,
                           const std::vector<std::string>& paths) {
    std::vector<Scrape> scrapes;
    std::mutex mutex;
    const double start = now_seconds();
    for (int round = 0; round < rounds; ++round) {
        double at = start + round * interval;
        while (now_seconds() < at) usleep(10000);
        std::vector<std::thread> threads;
        for (const auto& path : paths) {
            threads.emplace_back([&, path, round] {
                Scrape s;
                s.path = path;
                s.round = round;
                bool cpu = path.rfind("profile", 0) == 0;
                if (cpu) s.cpu_before = process_cpu(t.pid);
                s.answer = request(t.port, "/debug/pprof/" + path, "GET", "", interval + 30);
                if (cpu) s.cpu_after = process_cpu(t.pid);
                std::lock_guard lock(mutex);
                scrapes.push_back(std::move(s));
            });
        }
        for (auto& thread : threads) thread.join();
    }
    return scrapes;
}

// The checks of a replayed schedule: every answer 200 and a valid profile, deltas never
// negative, cumulative totals never falling, and the CPU profiles' seconds those the process used.
void check_scrapes(const char* scraper, const Target& t, std::vector<Scrape> scrapes) {
    std::sort(scrapes.begin(), scrapes.end(), [](const Scrape& a, const Scrape& b) {
        return a.path != b.path ? a.path < b.path : a.round < b.round;
    });
    double profiled = 0, used = 0;
    std::map<std::string, int64_t> last_total;
    for (const auto& s : scrapes) {
        INFO(scraper << " " << s.path << " round " << s.round << ": " << s.answer.status << " "
                     << s.answer.body.substr(0, 200));
        REQUIRE(s.answer.status == 200);
        auto p = decode_answer(s.answer, t.dir);
        if (s.round > 0) CHECK(p.sample_size() > 0);  // the first scrape may come before any
        if (s.path.rfind("delta_", 0) == 0) {
            for (const auto& sample : p.sample())
                for (int v = 0; v < sample.value_size(); ++v) CHECK(sample.value(v) >= 0);
        } else if (s.path.rfind("profile", 0) == 0) {
            profiled += static_cast<double>(total(p, 1)) * 1e-9;
            used += s.cpu_after - s.cpu_before;
        } else if (s.path != "goroutine") {
            int64_t now = total(p, 0);
            CHECK(now >= last_total[s.path]);
            last_total[s.path] = now;
        }
    }
    printf("%s schedule: %zu scrapes, all 200; CPU profiles %.2f s, process CPU in their windows "
           "%.2f s (%.1f%%)\n",
           scraper, scrapes.size(), profiled, used, used > 0 ? 100 * profiled / used : 0.0);
    CHECK(used > 1);
    CHECK(profiled >= used * 0.9);
    CHECK(profiled <= used * 1.1);
}

// GPROF_HTTP_SCRAPE_SECONDS (default 30) is how long each schedule runs; 120 is the issue's.
int scrape_seconds() {
    const char* s = getenv("GPROF_HTTP_SCRAPE_SECONDS");
    return s != nullptr && atoi(s) > 0 ? atoi(s) : 30;
}

}  // namespace

TEST_CASE("http: Parca's default scrapes of a busy program", "[http][scrape]") {
    const int rounds = std::max(1, scrape_seconds() / 10);
    auto t = start_target(rounds * 10 + 15, {{"GPROF_MUTEX_PROFILE_FRACTION", "1"}});
    auto scrapes = replay(*t, 10, rounds,
                          {"allocs", "block", "goroutine", "mutex", "profile?seconds=10"});
    kill(t->pid, SIGTERM);
    t->result.get();
    check_scrapes("Parca", *t, std::move(scrapes));
}

TEST_CASE("http: Grafana Alloy's default scrapes of a busy program", "[http][scrape]") {
    const int rounds = std::max(1, scrape_seconds() / 15);
    auto t = start_target(rounds * 15 + 15, {{"GPROF_MUTEX_PROFILE_FRACTION", "1"}});
    auto scrapes = replay(*t, 15, rounds,
                          {"allocs", "block", "goroutine", "mutex", "profile?seconds=14",
                           "delta_heap", "delta_block", "delta_mutex"});
    kill(t->pid, SIGTERM);
    t->result.get();
    check_scrapes("Alloy", *t, std::move(scrapes));
}

namespace {

int count_threads(pid_t pid) { return count_entries("/proc/" + std::to_string(pid) + "/task"); }
int count_fds(pid_t pid) { return count_entries("/proc/" + std::to_string(pid) + "/fd"); }

// Non-blocking connections, each sent `first` (possibly nothing).
std::vector<int> open_many(int port, int n, const std::string& first) {
    std::vector<int> fds;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    for (int i = 0; i < n; ++i) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) break;
        connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fds.push_back(fd);
    }
    usleep(200000);
    for (int fd : fds)
        if (!first.empty()) ::send(fd, first.data(), first.size(), MSG_NOSIGNAL);
    return fds;
}

// Waits (at most 10 s) for the process's threads and descriptors to come back to the counts given.
bool settles(pid_t pid, int threads, int fds) {
    for (int i = 0; i < 200; ++i, usleep(50000))
        if (count_threads(pid) == threads && count_fds(pid) == fds) return true;
    return false;
}

}  // namespace

TEST_CASE("http: hostile clients never disturb the program", "[http][hostile]") {
    const std::vector<std::string> argv = {kTarget, "25", "4", "-"};
    RunResult baseline = run(argv);
    REQUIRE(baseline.status == 0);

    auto t = start_target(25);
    const int port = t->port;
    // The first CPU profile starts the sampler's own thread, which stays.
    REQUIRE(request(port, "/debug/pprof/profile?seconds=1").status == 200);
    usleep(300000);
    const int threads = count_threads(t->pid), fds = count_fds(t->pid);
    INFO("threads " << threads << ", descriptors " << fds);

    // 1000 connections at once, half of them with a request line and no end of headers.
    auto many = open_many(port, 1000, "GET /debug/pprof/heap HTTP/1.1\r\n");
    CHECK(many.size() == 1000);
    usleep(500000);
    for (int fd : many) close(fd);

    // Slow-loris: more connections than the server takes, each a byte every 100 ms.
    auto slow = open_many(port, 40, "G");
    for (int i = 0; i < 15; ++i, usleep(100000))
        for (int fd : slow) ::send(fd, "E", 1, MSG_NOSIGNAL);
    for (int fd : slow) close(fd);

    // A 10 MiB body; garbage; odd and hostile parameters; unknown paths.
    std::string big(10 << 20, 'x');
    Answer too_big = request(port, "/debug/pprof/symbol", "POST", big);
    CHECK((too_big.status == 413 || too_big.status == 0));
    std::string garbage;
    for (int i = 0; i < 65536; ++i) garbage.push_back(static_cast<char>((i * 7919) % 251));
    int g = connect_to(port);
    send_all(g, garbage);
    Answer garbled = parse_answer(read_all(g, 2));
    close(g);
    CHECK((garbled.status == 400 || garbled.status == 0 || garbled.status == 431));
    CHECK(request(port, "/debug/pprof/heap?seconds=99999999999").status == 400);
    CHECK(request(port, "/debug/pprof/heap?seconds=-99").status == 400);
    Answer up = request(port, "/debug/pprof/../../etc/passwd");
    CHECK(up.status == 301);  // ServeMux's answer to an unclean path: the clean one, never a file
    CHECK(up.headers["location"] == "/etc/passwd");
    CHECK(request(port, "/debug/pprof/" + std::string(3000, 'a')).status == 404);
    CHECK(request(port, "/%00").status == 400);

    // HTTP/1.0, and two requests on one kept-alive connection.
    int h = connect_to(port);
    send_all(h, "GET /debug/pprof/cmdline HTTP/1.0\r\n\r\n");
    Answer old = parse_answer(read_all(h, 10));
    close(h);
    CHECK(old.status == 200);
    int k = connect_to(port);
    send_all(k, "GET /debug/pprof/cmdline HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /debug/pprof/nosuch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string both = read_all(k, 10);
    close(k);
    CHECK(both.find("HTTP/1.1 200") == 0);
    CHECK(both.find("HTTP/1.1 404") != std::string::npos);

    // A client that leaves in the middle of a CPU profile ends it: the next one starts at once.
    int c = connect_to(port);
    send_all(c, "GET /debug/pprof/profile?seconds=-1 HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(500000);
    close(c);
    usleep(300000);
    double asked = now_seconds();
    Answer next = request(port, "/debug/pprof/profile?seconds=1");
    CHECK(next.status == 200);
    CHECK(now_seconds() - asked < 5);

    CHECK(request(port, "/debug/pprof/heap").status == 200);
    bool settled = settles(t->pid, threads, fds);
    INFO("now: threads " << count_threads(t->pid) << ", descriptors " << count_fds(t->pid));
    CHECK(settled);
    check_same(baseline, t->result.get());
}

TEST_CASE("http: requests during fork and during exit", "[http][hostile]") {
    const std::vector<std::string> argv = {kTarget, "4", "2", "-", "fork"};
    RunResult baseline = run(argv);
    REQUIRE(baseline.status == 0);
    REQUIRE(contains(baseline.out, "children all good: yes"));

    // Forks every 100 ms while clients ask for profiles; the children serve nothing.
    auto t = start_target(4, {}, "fork", 2);
    std::atomic<bool> done{false};
    std::atomic<int> answered{0}, failed{0};
    std::vector<std::thread> clients;
    for (const char* path : {"heap", "goroutine", "threadcreate", "profile?seconds=1"}) {
        clients.emplace_back([&, path] {
            while (!done) {
                Answer a = request(t->port, std::string("/debug/pprof/") + path, "GET", "", 20);
                if (a.status == 200) ++answered;
                else if (a.status != 0) ++failed;
            }
        });
    }
    RunResult forked = t->result.get();
    done = true;
    for (auto& c : clients) c.join();
    check_same(baseline, forked);
    CHECK(answered > 4);
    CHECK(failed == 0);

    // Exit with a 30 s CPU profile in flight: the program ends when it would.
    auto e = start_target(2);
    auto pending = std::async(std::launch::async, [port = e->port] {
        return request(port, "/debug/pprof/profile?seconds=30", "GET", "", 60);
    });
    double began = now_seconds();
    RunResult exited = e->result.get();
    CHECK(exited.status == 0);
    CHECK(now_seconds() - began < 4);
    pending.get();
}

TEST_CASE("http: an idle server wakes nothing", "[http]") {
    const int port = free_port();
    RunOptions options = with_env(preload_env("", {{"GPROF_HTTP", ":" + std::to_string(port)}}));
    auto result = std::async(std::launch::async, [options] {
        return run({"/bin/sleep", "4"}, options);
    });
    REQUIRE(wait_serving(port));
    Answer a = request(port, "/debug/pprof/goroutine");
    REQUIRE(a.status == 200);
    pid_t pid = 0;
    for (int i = 0; i < 100 && pid == 0; ++i, usleep(10000)) {
        DIR* dir = opendir("/proc");
        while (dirent* e = readdir(dir)) {
            std::string comm = read_file(std::string("/proc/") + e->d_name + "/comm");
            std::string env = read_file(std::string("/proc/") + e->d_name + "/environ");
            if (comm == "sleep\n" && contains(env, "GPROF_HTTP=:" + std::to_string(port)))
                pid = atoi(e->d_name);
        }
        closedir(dir);
    }
    REQUIRE(pid != 0);
    auto switches = [pid] {
        long sum = 0;
        std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
        DIR* dir = opendir(task_dir.c_str());
        while (dirent* e = readdir(dir)) {
            if (e->d_name[0] == '.') continue;
            std::istringstream in(read_file(task_dir + "/" + e->d_name + "/status"));
            std::string line;
            while (std::getline(in, line))
                if (contains(line, "ctxt_switches:")) sum += atol(line.c_str() + line.find(':') + 1);
        }
        closedir(dir);
        return sum;
    };
    usleep(300000);
    long before = switches();
    usleep(2000000);
    CHECK(switches() == before);
    CHECK(result.get().status == 0);
}

TEST_CASE("http: an address that cannot be served is one line, the program unharmed", "[http]") {
    const std::vector<std::string> argv = {kTarget, "1", "2", "-"};
    RunResult baseline = run(argv);
    REQUIRE(baseline.status == 0);

    int taken = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(taken, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(taken, 1) == 0);
    socklen_t length = sizeof a;
    getsockname(taken, reinterpret_cast<sockaddr*>(&a), &length);
    const std::string port = std::to_string(ntohs(a.sin_port));

    RunResult in_use = run(argv, with_env(preload_env("", {{"GPROF_HTTP", ":" + port}})));
    close(taken);
    CHECK(in_use.status == baseline.status);
    CHECK(in_use.out == baseline.out);
    CHECK(in_use.err == "gprof: GPROF_HTTP=127.0.0.1:" + port +
                            ": cannot listen: Address already in use; HTTP stays off\n");

    RunResult unknown =
        run(argv, with_env(preload_env("", {{"GPROF_HTTP", "nosuch.invalid:6060"},
                                            {"GPROF_HTTP_ALLOW_REMOTE", "1"}})));
    CHECK(unknown.status == baseline.status);
    CHECK(unknown.out == baseline.out);
    CHECK(unknown.err.rfind("gprof: GPROF_HTTP=nosuch.invalid:6060: cannot resolve the host: ",
                            0) == 0);
    CHECK(split_lines(unknown.err).size() == 1);
}

TEST_CASE("http: a program the server's process starts stays silent about the address", "[http]") {
    const int port = free_port();
    RunResult r = run({"/bin/sh", "-c", "sleep 0.5; /bin/true; echo ok"},
                      with_env(preload_env("", {{"GPROF_HTTP", ":" + std::to_string(port)}})));
    CHECK(r.status == 0);
    CHECK(r.out == "ok\n");
    CHECK(r.err == "");
    // The same from a program that runs as another user (a server's worker that became
    // `nobody`), which may not read its ancestors' descriptors.
    if (getuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
        WARN("not root, or no setpriv: the privilege-dropping case is not run");
        return;
    }
    const int port2 = free_port();
    RunResult dropped =
        run({"/bin/sh", "-c",
             "sleep 0.5; /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups /bin/true; "
             "echo ok"},
            with_env(preload_env("", {{"GPROF_HTTP", ":" + std::to_string(port2)}})));
    CHECK(dropped.status == 0);
    CHECK(dropped.out == "ok\n");
    CHECK(dropped.err == "");
}

TEST_CASE("http: the server's threads step aside while the program changes its user", "[http]") {
    // glibc makes every thread of a process take a set*id call and aborts the process when their
    // results differ. setpriv keeps its capabilities across setresuid (PR_SET_KEEPCAPS, capset
    // on its own thread) and then calls setresgid: a server thread without those capabilities
    // would fail it.
    if (getuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
        WARN("not root, or no setpriv: nothing to check");
        return;
    }
    const std::vector<std::string> argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                           "--clear-groups", "/bin/sh", "-c", "id -u; id -g"};
    for (int i = 0; i < 5; ++i) {
        const int port = free_port();
        RunResult r = run(argv, with_env(preload_env("", {{"GPROF_HTTP", ":" + std::to_string(port)},
                                                          {"GPROF_AT_EXIT", "0"}})));
        INFO(r.describe());
        CHECK(r.status == 0);
        CHECK(r.out == "65534\n65534\n");
        CHECK(r.err == "");
    }
    // A program that becomes nobody and goes on: the server answers after the change, every
    // thread of the process (its own, gprof's, the server's) runs as nobody.
    const int port = free_port();
    const std::string script =
        "import os, sys, time\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "print('nobody', os.getuid(), flush=True)\n"
        "while not os.path.exists(sys.argv[1]): time.sleep(0.05)\n";
    // In /tmp: nobody may not look into the test's scratch directory.
    const std::string done =
        "/tmp/gprof-http-setuid-" + std::to_string(getpid()) + "-" + std::to_string(port);
    unlink(done.c_str());
    RunOptions options = with_env(preload_env("", {{"GPROF_HTTP", ":" + std::to_string(port)},
                                                   {"GPROF_AT_EXIT", "0"}}));
    options.timeout_seconds = 60;
    auto result = std::async(std::launch::async, [&] {
        return run({"/usr/bin/python3", "-c", script, done}, options);
    });
    pid_t pid = 0;
    for (int i = 0; i < 1000 && pid == 0; ++i, usleep(10000)) {
        DIR* d = opendir("/proc");
        while (dirent* e = readdir(d))
            if (isdigit(static_cast<unsigned char>(e->d_name[0])) &&
                contains(read_file(std::string("/proc/") + e->d_name + "/cmdline"), done) &&
                contains(read_file(std::string("/proc/") + e->d_name + "/status"),
                         "Uid:\t65534\t"))
                pid = atoi(e->d_name);
        closedir(d);
    }
    REQUIRE(pid != 0);
    REQUIRE(wait_serving(port));
    Answer a = request(port, "/debug/pprof/cmdline");
    CHECK(a.status == 200);
    CHECK(contains(a.body, done));
    int threads = 0, as_nobody = 0;
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = opendir(tasks.c_str());
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        // (The connection's thread may end meanwhile: a status that cannot be read is not one.)
        std::string status = read_file(tasks + "/" + e->d_name + "/status");
        if (status.empty()) continue;
        ++threads;
        as_nobody += contains(status, "Uid:\t65534\t65534\t65534\t65534\n");
    }
    closedir(d);
    CHECK(threads >= 3);  // python's, the dumper, the server's
    CHECK(as_nobody == threads);
    write_file(done, "");
    RunResult r = result.get();
    unlink(done.c_str());
    INFO(r.describe());
    CHECK(r.status == 0);
    CHECK(r.out == "nobody 65534\n");
    CHECK(r.err == "");
}
