#include "base/config.h"

#include <signal.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/log.h"

namespace gprof {
namespace {

bool equals_ignore_case(const char* a, const char* b) {
    return strcasecmp(a, b) == 0;
}

// Parses a decimal unsigned number at *p, advancing it; false on no digits or overflow.
bool parse_decimal(const char** p, uint64_t limit, uint64_t* out) {
    const char* s = *p;
    if (!isdigit(static_cast<unsigned char>(*s))) return false;
    uint64_t v = 0;
    for (; isdigit(static_cast<unsigned char>(*s)); ++s) {
        uint64_t d = static_cast<uint64_t>(*s - '0');
        if (v > (limit - d) / 10) return false;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

struct SignalName {
    const char* name;
    int number;
};

constexpr SignalName kSignalNames[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"USR1", SIGUSR1},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"CHLD", SIGCHLD},     {"CONT", SIGCONT}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

struct ProfileName {
    const char* name;
    uint32_t bit;
};

constexpr ProfileName kProfileNames[] = {
    {"heap", kProfileHeap},   {"threads", kProfileThreads}, {"threadcreate", kProfileThreadCreate},
    {"block", kProfileBlock}, {"mutex", kProfileMutex},     {"cpu", kProfileCpu},
};

bool parse_flag(const char* text, bool* out) {
    if (strcmp(text, "1") == 0) return *out = true, true;
    if (strcmp(text, "0") == 0) return *out = false, true;
    return false;
}

// Turns `text` into an absolute path prefix without allocating (no realpath): the program may
// chdir later, and its files must still land where the user asked at start.
bool absolute_prefix(const char* text, char* out, size_t size) {
    if (text[0] == '\0') return false;
    if (text[0] == '/') {
        size_t n = strlen(text);
        if (n >= size) return false;
        memcpy(out, text, n + 1);
        return true;
    }
    char cwd[4096];
    int saved = errno;
    bool ok = getcwd(cwd, sizeof cwd) != nullptr;
    errno = saved;
    if (!ok) return false;
    const char* rel = text;
    while (rel[0] == '.' && rel[1] == '/') rel += 2;
    int n = snprintf(out, size, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", rel);
    return n > 0 && static_cast<size_t>(n) < size;
}

// ---- The table: every GPROF_* variable, in the README's order. ----

const ConfigOption kOptions[] = {
    {"GPROF_MEM_PROFILE_RATE", "524288", "a byte count >= 0 such as 524288 or 512k",
     [](const char* t, Config& c) { return parse_byte_count(t, &c.mem_profile_rate); }},
    {"GPROF_ALLOCATOR", "jemalloc", "jemalloc or libc",
     [](const char* t, Config& c) {
         if (strcmp(t, "jemalloc") == 0) return c.allocator = Allocator::Jemalloc, true;
         if (strcmp(t, "libc") == 0) return c.allocator = Allocator::Libc, true;
         return false;
     }},
    {"GPROF_OUTPUT", "./gprof", "a writable path prefix",
     [](const char* t, Config& c) { return absolute_prefix(t, c.output, sizeof c.output); }},
    {"GPROF_SIGNAL", "USR2", "a signal name (USR2, SIGUSR1, RTMIN+3), a number, or none",
     [](const char* t, Config& c) { return parse_signal(t, &c.dump_signal); }},
    {"GPROF_AT_EXIT", "1", "0 or 1",
     [](const char* t, Config& c) { return parse_flag(t, &c.at_exit); }},
    {"GPROF_PROFILES", "heap,threads,threadcreate,block,mutex",
     "a comma-separated list of heap, threads, threadcreate, block, mutex, cpu",
     [](const char* t, Config& c) { return parse_profiles(t, &c.profiles); }},
    {"GPROF_BLOCK_PROFILE_RATE", "100000", "nanoseconds >= 0 (0 turns it off)",
     [](const char* t, Config& c) { return parse_nonnegative(t, &c.block_profile_rate); }},
    {"GPROF_MUTEX_PROFILE_FRACTION", "100", "an integer >= 0 (0 turns it off)",
     [](const char* t, Config& c) { return parse_nonnegative(t, &c.mutex_profile_fraction); }},
    {"GPROF_CPU_HZ", "0", "samples per second, 0 to 10000",
     [](const char* t, Config& c) {
         int64_t hz;
         if (!parse_nonnegative(t, &hz) || hz > 10000) return false;
         c.cpu_hz = hz;
         return true;
     }},
    {"GPROF_CPU_TIMER", "0", "0 or 1",
     [](const char* t, Config& c) { return parse_flag(t, &c.cpu_timer_only); }},
    {"GPROF_HTTP", "", "host:port, such as :6060 or 127.0.0.1:6060",
     [](const char* t, Config& c) { return parse_http_address(t, &c.http); }},
    {"GPROF_HTTP_ALLOW_REMOTE", "0", "0 or 1",
     [](const char* t, Config& c) { return parse_flag(t, &c.http_allow_remote); }},
    {"GPROF_LOG", "auto", "auto, 1 or 0",
     [](const char* t, Config& c) {
         if (strcmp(t, "auto") == 0) return c.log = LogFiles::WhenTerminal, true;
         if (strcmp(t, "1") == 0) return c.log = LogFiles::Always, true;
         if (strcmp(t, "0") == 0) return c.log = LogFiles::Never, true;
         return false;
     }},
    {"GPROF_DEBUG_CACHE", "~/.cache/gprof", "a directory path or none",
     [](const char* t, Config& c) {
         c.debug_cache_explicit = true;
         if (strcmp(t, "none") == 0) return c.debug_cache[0] = '\0', true;
         return absolute_prefix(t, c.debug_cache, sizeof c.debug_cache);
     }},
};

// $XDG_CACHE_HOME/gprof, else $HOME/.cache/gprof (XDG's rule); off when neither is an absolute
// path, and in a set-user-ID or set-group-ID program, whose environment is not to be trusted.
void default_debug_cache(ConfigLookup lookup, void* ctx, Config* c) {
    c->debug_cache[0] = '\0';
    if (getauxval(AT_SECURE) != 0) return;
    const char* xdg = lookup("XDG_CACHE_HOME", ctx);
    const char* home = lookup("HOME", ctx);
    int n = -1;
    if (xdg != nullptr && xdg[0] == '/')
        n = snprintf(c->debug_cache, sizeof c->debug_cache, "%s/gprof", xdg);
    else if (home != nullptr && home[0] == '/')
        n = snprintf(c->debug_cache, sizeof c->debug_cache, "%s/.cache/gprof", home);
    if (n < 0 || static_cast<size_t>(n) >= sizeof c->debug_cache) c->debug_cache[0] = '\0';
}

void report_bad(ConfigReport report, void* ctx, const ConfigOption& o, const char* value) {
    char line[600];
    snprintf(line, sizeof line, "%s=\"%.200s\" is not %s; using %s", o.name, value, o.expected,
             o.default_text[0] ? o.default_text : "the default (off)");
    report(line, ctx);
}

}  // namespace

const ConfigOption* config_options(size_t* count) {
    *count = sizeof kOptions / sizeof kOptions[0];
    return kOptions;
}

bool parse_byte_count(const char* text, int64_t* out) {
    const char* p = text;
    uint64_t v;
    if (!parse_decimal(&p, INT64_MAX, &v)) return false;
    int shift = 0;
    switch (*p) {
        case 'k':
        case 'K':
            shift = 10;
            ++p;
            break;
        case 'm':
        case 'M':
            shift = 20;
            ++p;
            break;
        case 'g':
        case 'G':
            shift = 30;
            ++p;
            break;
        default:
            break;
    }
    if (*p != '\0') return false;
    if (v > (static_cast<uint64_t>(INT64_MAX) >> shift)) return false;
    *out = static_cast<int64_t>(v << shift);
    return true;
}

bool parse_nonnegative(const char* text, int64_t* out) {
    const char* p = text;
    uint64_t v;
    if (!parse_decimal(&p, INT64_MAX, &v) || *p != '\0') return false;
    *out = static_cast<int64_t>(v);
    return true;
}

bool parse_signal(const char* text, int* out) {
    if (equals_ignore_case(text, "none")) return *out = 0, true;
    const char* p = text;
    uint64_t n;
    if (parse_decimal(&p, 1000, &n)) {
        if (*p != '\0' || n < 1 || n > static_cast<uint64_t>(SIGRTMAX)) return false;
        if (n == SIGKILL || n == SIGSTOP) return false;
        *out = static_cast<int>(n);
        return true;
    }
    if (strncasecmp(p, "SIG", 3) == 0) p += 3;
    for (const SignalName& s : kSignalNames) {
        if (equals_ignore_case(p, s.name)) return *out = s.number, true;
    }
    for (const char* base : {"RTMIN", "RTMAX"}) {
        if (strncasecmp(p, base, 5) != 0) continue;
        const char* q = p + 5;
        bool from_min = base[3] == 'I' || base[3] == 'i';
        int sig = from_min ? SIGRTMIN : SIGRTMAX;
        if (*q != '\0') {
            if (*q != (from_min ? '+' : '-')) return false;
            ++q;
            if (!parse_decimal(&q, 64, &n) || *q != '\0') return false;
            sig = from_min ? sig + static_cast<int>(n) : sig - static_cast<int>(n);
        }
        if (sig < SIGRTMIN || sig > SIGRTMAX) return false;
        *out = sig;
        return true;
    }
    return false;
}

bool parse_profiles(const char* text, uint32_t* out) {
    uint32_t bits = 0;
    const char* p = text;
    while (true) {
        const char* end = strchr(p, ',');
        size_t len = end ? static_cast<size_t>(end - p) : strlen(p);
        bool known = false;
        for (const ProfileName& n : kProfileNames) {
            if (strlen(n.name) == len && strncmp(p, n.name, len) == 0) {
                bits |= n.bit;
                known = true;
            }
        }
        if (!known) return false;
        if (!end) break;
        p = end + 1;
    }
    *out = bits;
    return true;
}

bool is_loopback_host(const char* host) {
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

bool parse_http_address(const char* text, HttpAddress* out) {
    const char* colon = strrchr(text, ':');
    if (!colon) return false;
    HttpAddress a;
    const char* host = text;
    size_t host_len = static_cast<size_t>(colon - text);
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        ++host;
        host_len -= 2;
    } else if (memchr(host, ':', host_len)) {
        return false;  // an IPv6 address needs brackets
    }
    if (host_len >= sizeof a.host) return false;
    if (host_len == 0) {
        strcpy(a.host, "127.0.0.1");
    } else {
        memcpy(a.host, host, host_len);
        a.host[host_len] = '\0';
        for (size_t i = 0; i < host_len; ++i) {
            unsigned char ch = static_cast<unsigned char>(a.host[i]);
            if (!isalnum(ch) && ch != '.' && ch != '-' && ch != ':') return false;
        }
    }
    const char* p = colon + 1;
    uint64_t port;
    if (!parse_decimal(&p, 65535, &port) || *p != '\0' || port == 0) return false;
    a.port = static_cast<uint16_t>(port);
    a.enabled = true;
    *out = a;
    return true;
}

Config parse_config(ConfigLookup lookup, ConfigReport report, void* ctx) {
    Config c;
    for (const ConfigOption& o : kOptions) {
        const char* value = lookup(o.name, ctx);
        if (value == nullptr) continue;
        Config candidate = c;
        if (o.parse(value, candidate)) {
            c = candidate;
        } else {
            report_bad(report, ctx, o, value);
        }
    }
    // The default output prefix is relative too: pin it to the start-up directory.
    if (c.output[0] != '/') {
        char rel[sizeof c.output];
        memcpy(rel, c.output, sizeof rel);
        if (!absolute_prefix(rel, c.output, sizeof c.output)) memcpy(c.output, rel, sizeof rel);
    }
    if (!c.debug_cache_explicit) default_debug_cache(lookup, ctx, &c);
    // The cpu profile is on with a rate: GPROF_CPU_HZ adds it to the profiles, and naming it in
    // GPROF_PROFILES without a rate means 100 Hz.
    if (c.cpu_hz > 0) c.profiles |= kProfileCpu;
    else if (c.profiles & kProfileCpu) c.cpu_hz = kDefaultCpuHz;
    if (c.http.enabled && !c.http_allow_remote && !is_loopback_host(c.http.host)) {
        char line[200];
        snprintf(line, sizeof line,
                 "GPROF_HTTP=%s:%u is not a loopback address; set GPROF_HTTP_ALLOW_REMOTE=1 to "
                 "serve it; HTTP stays off",
                 c.http.host, static_cast<unsigned>(c.http.port));
        report(line, ctx);
        c.http.enabled = false;
    }
    return c;
}

namespace {

// Constant-initialised, so both are valid before any constructor of ours has run.
constinit Config g_config{};
constinit const Config g_defaults{};
constinit std::atomic<int> g_state{0};  // 0: not loaded, 1: loading, 2: loaded
constinit thread_local bool t_loading [[gnu::tls_model("initial-exec")]] = false;

}  // namespace

const Config& config() {
    if (g_state.load(std::memory_order_acquire) == 2) [[likely]]
        return g_config;
    if (t_loading) return g_defaults;
    int expected = 0;
    if (g_state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
        t_loading = true;
        log::start();
        g_config = parse_config([](const char* name, void*) -> const char* { return getenv(name); },
                                [](const char* line, void*) { log::line(line); }, nullptr);
        t_loading = false;
        g_state.store(2, std::memory_order_release);
    } else {
        while (g_state.load(std::memory_order_acquire) != 2) sched_yield();
    }
    return g_config;
}

}  // namespace gprof
