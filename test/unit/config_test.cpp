#include "base/config.h"

#include <signal.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

using gprof::Config;

namespace {

struct FakeEnv {
    std::map<std::string, std::string> vars;
    std::vector<std::string> lines;
};

Config parse(FakeEnv& env) {
    return gprof::parse_config(
        [](const char* name, void* ctx) -> const char* {
            auto& vars = static_cast<FakeEnv*>(ctx)->vars;
            auto it = vars.find(name);
            return it == vars.end() ? nullptr : it->second.c_str();
        },
        [](const char* line, void* ctx) { static_cast<FakeEnv*>(ctx)->lines.push_back(line); },
        &env);
}

}  // namespace

TEST_CASE("defaults are those the README promises") {
    FakeEnv env;
    Config c = parse(env);
    CHECK(env.lines.empty());
    CHECK(c.mem_profile_rate == 524288);
    CHECK(c.allocator == gprof::Allocator::Jemalloc);
    CHECK(c.dump_signal == SIGUSR2);
    CHECK(c.at_exit);
    CHECK(c.profiles ==
          (gprof::kProfileHeap | gprof::kProfileThreads | gprof::kProfileThreadCreate |
           gprof::kProfileBlock | gprof::kProfileMutex));
    CHECK(c.block_profile_rate > 0);
    CHECK(c.mutex_profile_fraction > 0);
    CHECK(c.cpu_hz == 0);
    CHECK_FALSE(c.http.enabled);
    CHECK(c.log == gprof::LogFiles::WhenTerminal);
    CHECK(c.output[0] == '/');
    CHECK(std::string(c.output).size() > std::string("/gprof").size() - 1);
    CHECK(std::string(c.output).substr(std::string(c.output).size() - 6) == "/gprof");
}

TEST_CASE("the table lists every variable of the contract once") {
    size_t n = 0;
    const gprof::ConfigOption* options = gprof::config_options(&n);
    std::vector<std::string> names;
    for (size_t i = 0; i < n; ++i) names.push_back(options[i].name);
    CHECK(names == std::vector<std::string>{
                       "GPROF_MEM_PROFILE_RATE", "GPROF_ALLOCATOR", "GPROF_OUTPUT", "GPROF_SIGNAL",
                       "GPROF_AT_EXIT", "GPROF_PROFILES", "GPROF_BLOCK_PROFILE_RATE",
                       "GPROF_MUTEX_PROFILE_FRACTION", "GPROF_CPU_HZ", "GPROF_CPU_TIMER",
                       "GPROF_HTTP",
                       "GPROF_HTTP_ALLOW_REMOTE", "GPROF_LOG", "GPROF_DEBUG_CACHE"});
}

TEST_CASE("byte counts take k, m, g suffixes and reject junk") {
    int64_t v = -7;
    CHECK(gprof::parse_byte_count("0", &v));
    CHECK(v == 0);
    CHECK(gprof::parse_byte_count("1", &v));
    CHECK(v == 1);
    CHECK(gprof::parse_byte_count("512k", &v));
    CHECK(v == 524288);
    CHECK(gprof::parse_byte_count("64K", &v));
    CHECK(v == 65536);
    CHECK(gprof::parse_byte_count("2m", &v));
    CHECK(v == 2 << 20);
    CHECK(gprof::parse_byte_count("1g", &v));
    CHECK(v == int64_t{1} << 30);
    v = 42;
    for (const char* bad : {"", "banana", "-1", "1e99", "12kb", "k", " 5", "5 ", "0x10",
                            "99999999999999999999", "9223372036854775807g", "1.5"}) {
        INFO(bad);
        CHECK_FALSE(gprof::parse_byte_count(bad, &v));
        CHECK(v == 42);
    }
    CHECK(gprof::parse_byte_count("9223372036854775807", &v));
    CHECK(v == INT64_MAX);
}

TEST_CASE("signals by name, number, real-time offset, or none") {
    int s = -1;
    CHECK(gprof::parse_signal("USR2", &s));
    CHECK(s == SIGUSR2);
    CHECK(gprof::parse_signal("SIGUSR1", &s));
    CHECK(s == SIGUSR1);
    CHECK(gprof::parse_signal("usr1", &s));
    CHECK(s == SIGUSR1);
    CHECK(gprof::parse_signal("RTMIN+3", &s));
    CHECK(s == SIGRTMIN + 3);
    CHECK(gprof::parse_signal("SIGRTMIN", &s));
    CHECK(s == SIGRTMIN);
    CHECK(gprof::parse_signal("RTMAX-1", &s));
    CHECK(s == SIGRTMAX - 1);
    CHECK(gprof::parse_signal("10", &s));
    CHECK(s == 10);
    CHECK(gprof::parse_signal("none", &s));
    CHECK(s == 0);
    s = 99;
    for (const char* bad : {"", "USR3", "0", "9", "19", "65", "RTMIN+99", "RTMIN-1", "RTMAX+1",
                            "SIG", "12x", "-12"}) {
        INFO(bad);
        CHECK_FALSE(gprof::parse_signal(bad, &s));
        CHECK(s == 99);
    }
}

TEST_CASE("profile lists") {
    uint32_t p = 0;
    CHECK(gprof::parse_profiles("heap", &p));
    CHECK(p == gprof::kProfileHeap);
    CHECK(gprof::parse_profiles("heap,cpu,mutex", &p));
    CHECK(p == (gprof::kProfileHeap | gprof::kProfileCpu | gprof::kProfileMutex));
    p = 77;
    for (const char* bad : {"", "heap,", ",heap", "heapx", "heap,,cpu", "HEAP", "goroutine"}) {
        INFO(bad);
        CHECK_FALSE(gprof::parse_profiles(bad, &p));
        CHECK(p == 77);
    }
}

TEST_CASE("HTTP addresses") {
    gprof::HttpAddress a;
    CHECK(gprof::parse_http_address(":6060", &a));
    CHECK(a.enabled);
    CHECK(std::string(a.host) == "127.0.0.1");
    CHECK(a.port == 6060);
    CHECK(gprof::parse_http_address("localhost:80", &a));
    CHECK(std::string(a.host) == "localhost");
    CHECK(gprof::parse_http_address("[::1]:7000", &a));
    CHECK(std::string(a.host) == "::1");
    CHECK(a.port == 7000);
    for (const char* bad : {"", "6060", ":0", ":65536", ":x", "::1:80", "a b:80", "host:"}) {
        INFO(bad);
        CHECK_FALSE(gprof::parse_http_address(bad, &a));
    }
    CHECK(gprof::is_loopback_host("127.0.0.1"));
    CHECK(gprof::is_loopback_host("::1"));
    CHECK_FALSE(gprof::is_loopback_host("0.0.0.0"));
    CHECK_FALSE(gprof::is_loopback_host("10.0.0.1"));
}

TEST_CASE("a bad value gives exactly one line and keeps the default") {
    FakeEnv env;
    env.vars = {{"GPROF_MEM_PROFILE_RATE", "banana"},
                {"GPROF_SIGNAL", "USR9"},
                {"GPROF_ALLOCATOR", "tcmalloc"},
                {"GPROF_AT_EXIT", "0"},
                {"GPROF_LOG", "yes"}};
    Config c = parse(env);
    REQUIRE(env.lines.size() == 4);
    CHECK(env.lines[0].find("GPROF_MEM_PROFILE_RATE=\"banana\"") != std::string::npos);
    CHECK(env.lines[0].find("using 524288") != std::string::npos);
    CHECK(env.lines[1].find("GPROF_ALLOCATOR") != std::string::npos);
    CHECK(env.lines[2].find("GPROF_SIGNAL") != std::string::npos);
    CHECK(env.lines[3].find("GPROF_LOG") != std::string::npos);
    CHECK(c.mem_profile_rate == 524288);
    CHECK(c.dump_signal == SIGUSR2);
    CHECK(c.allocator == gprof::Allocator::Jemalloc);
    CHECK_FALSE(c.at_exit);  // the good value next to the bad ones still applies
    CHECK(c.log == gprof::LogFiles::WhenTerminal);
}

TEST_CASE("GPROF_LOG: auto, 1 and 0") {
    for (auto [text, mode] : {std::pair{"auto", gprof::LogFiles::WhenTerminal},
                              std::pair{"1", gprof::LogFiles::Always},
                              std::pair{"0", gprof::LogFiles::Never}}) {
        FakeEnv env;
        env.vars = {{"GPROF_LOG", text}};
        CHECK(parse(env).log == mode);
        CHECK(env.lines.empty());
    }
}

TEST_CASE("a huge value is cut in the complaint, not in memory") {
    FakeEnv env;
    env.vars = {{"GPROF_MEM_PROFILE_RATE", std::string(1 << 20, '7') + "x"}};
    Config c = parse(env);
    REQUIRE(env.lines.size() == 1);
    CHECK(env.lines[0].size() < 600);
    CHECK(c.mem_profile_rate == 524288);
}

TEST_CASE("a non-loopback HTTP address needs GPROF_HTTP_ALLOW_REMOTE") {
    FakeEnv env;
    env.vars = {{"GPROF_HTTP", "0.0.0.0:6060"}};
    Config c = parse(env);
    CHECK(env.lines.size() == 1);
    CHECK_FALSE(c.http.enabled);
    env.lines.clear();
    env.vars.emplace("GPROF_HTTP_ALLOW_REMOTE", std::string(1, '1'));
    c = parse(env);
    CHECK(env.lines.empty());
    CHECK(c.http.enabled);
    CHECK(c.http.port == 6060);
}

TEST_CASE("the output prefix becomes absolute") {
    FakeEnv env;
    env.vars = {{"GPROF_OUTPUT", "out/prof"}};
    Config c = parse(env);
    std::string out = c.output;
    CHECK(out[0] == '/');
    CHECK(out.substr(out.size() - 9) == "/out/prof");
    env.vars = {{"GPROF_OUTPUT", "/tmp/x/y"}};
    c = parse(env);
    CHECK(std::string(c.output) == "/tmp/x/y");
    env.vars = {{"GPROF_OUTPUT", ""}};
    env.lines.clear();
    c = parse(env);
    CHECK(env.lines.size() == 1);
}

TEST_CASE("the debug cache: XDG_CACHE_HOME, then HOME, a path of the user's, or none") {
    FakeEnv env;
    CHECK(std::string(parse(env).debug_cache).empty());  // neither HOME nor XDG_CACHE_HOME
    env.vars["HOME"] = "/home/ann";
    CHECK(std::string(parse(env).debug_cache) == "/home/ann/.cache/gprof");
    CHECK_FALSE(parse(env).debug_cache_explicit);
    env.vars["XDG_CACHE_HOME"] = "relative/not/used";  // XDG: a relative value is ignored
    CHECK(std::string(parse(env).debug_cache) == "/home/ann/.cache/gprof");
    env.vars["XDG_CACHE_HOME"] = "/var/cache/ann";
    CHECK(std::string(parse(env).debug_cache) == "/var/cache/ann/gprof");
    env.vars["GPROF_DEBUG_CACHE"] = "/tmp/dc";
    Config c = parse(env);
    CHECK(std::string(c.debug_cache) == "/tmp/dc");
    CHECK(c.debug_cache_explicit);
    env.vars["GPROF_DEBUG_CACHE"] = "none";
    CHECK(std::string(parse(env).debug_cache).empty());
    env.vars["GPROF_DEBUG_CACHE"] = "rel/dc";
    std::string made = parse(env).debug_cache;
    CHECK(made.front() == '/');
    CHECK(made.ends_with("/rel/dc"));
    CHECK(env.lines.empty());
    env.vars["GPROF_DEBUG_CACHE"] = "";
    c = parse(env);
    REQUIRE(env.lines.size() == 1);
    CHECK(env.lines[0].starts_with("GPROF_DEBUG_CACHE=\"\" is not a directory path or none"));
    CHECK(std::string(c.debug_cache) == "/var/cache/ann/gprof");  // the default stays
}

TEST_CASE("the cpu profile: a rate adds it, naming it alone means 100 Hz") {
    FakeEnv off;
    Config c = parse(off);
    CHECK(c.cpu_hz == 0);
    CHECK((c.profiles & gprof::kProfileCpu) == 0);
    CHECK_FALSE(c.cpu_timer_only);

    FakeEnv rate;
    rate.vars = {{"GPROF_CPU_HZ", "250"}, {"GPROF_PROFILES", "heap"}};
    c = parse(rate);
    CHECK(c.cpu_hz == 250);
    CHECK(c.profiles == (gprof::kProfileHeap | gprof::kProfileCpu));

    FakeEnv named;
    named.vars = {{"GPROF_PROFILES", "cpu"}, {"GPROF_CPU_TIMER", "1"}};
    c = parse(named);
    CHECK(c.cpu_hz == gprof::kDefaultCpuHz);
    CHECK(c.profiles == gprof::kProfileCpu);
    CHECK(c.cpu_timer_only);

    FakeEnv bad;
    bad.vars = {{"GPROF_CPU_HZ", "10001"}};
    c = parse(bad);
    CHECK(c.cpu_hz == 0);
    CHECK(bad.lines.size() == 1);
}
