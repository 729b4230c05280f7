// Every GPROF_* variable in one table (config.cpp), parsed once from the environment.
//
// The first use may come from the very first malloc of the process, before any constructor has
// run and possibly while glibc holds its exit lock, so loading allocates nothing, takes no lock
// that the program could hold, and reports a bad value with one raw write(2).
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>

namespace gprof {

enum class Allocator : uint8_t { Jemalloc, Libc };

// GPROF_LOG: when the news of each file written is printed (problems always are).
enum class LogFiles : uint8_t { WhenTerminal, Always, Never };

// Bits of Config::profiles, one per profile kind.
enum ProfileKind : uint32_t {
    kProfileHeap = 1u << 0,
    kProfileThreads = 1u << 1,
    kProfileThreadCreate = 1u << 2,
    kProfileBlock = 1u << 3,
    kProfileMutex = 1u << 4,
    kProfileCpu = 1u << 5,
};

struct HttpAddress {
    bool enabled = false;
    char host[64] = {};  // numeric address or name, without brackets
    uint16_t port = 0;
};

// Go's runtime.MemProfileRate default: also the sampler's until the first allocation hands down
// GPROF_MEM_PROFILE_RATE.
constexpr int64_t kDefaultMemProfileRate = 512 * 1024;

// The CPU profile's rate when it is asked for without one (runtime/pprof's).
constexpr int64_t kDefaultCpuHz = 100;

struct Config {
    int64_t mem_profile_rate = kDefaultMemProfileRate;
    Allocator allocator = Allocator::Jemalloc;
    char output[4096] = "./gprof";  // made absolute by parse_config()
    int dump_signal = SIGUSR2;      // 0: no dump signal
    bool at_exit = true;
    uint32_t profiles =
        kProfileHeap | kProfileThreads | kProfileThreadCreate | kProfileBlock | kProfileMutex;
    int64_t block_profile_rate = 100000;   // ns; why 100 us: docs/design.md, "Lock profiling"
    int64_t mutex_profile_fraction = 100;  // 1 in N contention events
    int64_t cpu_hz = 0;
    bool cpu_timer_only = false;  // GPROF_CPU_TIMER: per-thread timers even where perf events work
    HttpAddress http;
    bool http_allow_remote = false;
    LogFiles log = LogFiles::WhenTerminal;
    // Inflated copies of compressed debug files (symbolize/debug_cache.h); "" when off. The
    // default, $XDG_CACHE_HOME/gprof or $HOME/.cache/gprof, is filled in by parse_config.
    char debug_cache[4096] = "";
    bool debug_cache_explicit = false;  // set by GPROF_DEBUG_CACHE (problems with it are reported)
};

// One entry of the table: a variable, its default as the user would write it, and its parser.
struct ConfigOption {
    const char* name;
    const char* default_text;
    const char* expected;  // what a good value looks like, for the one-line complaint
    bool (*parse)(const char* text, Config& into);
};

// The table itself, in the README's order, for the README and the tests.
const ConfigOption* config_options(size_t* count);

// Parses a whole configuration from `lookup` (getenv in the library, a fake in tests). Each bad
// value is reported through `report` as one finished line and its default is kept.
using ConfigLookup = const char* (*)(const char* name, void* ctx);
using ConfigReport = void (*)(const char* line, void* ctx);
Config parse_config(ConfigLookup lookup, ConfigReport report, void* ctx);

// The process's configuration: parsed on first use, then fixed. Safe from any thread and from
// inside malloc. A re-entrant call during loading (which should not happen) gets the defaults.
const Config& config();

// The pure parsers, exposed for unit tests. Each returns false on a bad value and then leaves
// *out alone.
bool parse_byte_count(const char* text, int64_t* out);   // 524288, 512k, 1m, 1g; >= 0
bool parse_nonnegative(const char* text, int64_t* out);  // plain decimal >= 0
bool parse_signal(const char* text, int* out);           // USR2, SIGUSR1, RTMIN+3, 12, none (0)
bool parse_profiles(const char* text, uint32_t* out);    // heap,threads,...; empty list is bad
bool parse_http_address(const char* text, HttpAddress* out);  // host:port, :port, [::1]:port
bool is_loopback_host(const char* host);

}  // namespace gprof
