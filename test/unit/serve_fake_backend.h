// A Backend with made-up profiles, for the unit tests and the fuzzer of serve/handler.h: a heap
// profile whose allocations grow by a known amount at each collection, a goroutine profile, a
// CPU session that can be busy, symbols for a few addresses, and waits that take no time.
#pragma once

#include <cerrno>
#include <map>
#include <string>
#include <vector>

#include "pprof/gzip.h"
#include "pprof/profile_message.h"
#include "serve/handler.h"

namespace fake {

// A profile with two stacks (addresses 0x1000 <- 0x2000, and 0x3000) and the given values per
// stack; heap-like (4 columns, in-use last) or a count profile (1 column).
inline std::string make_profile(bool heap, const std::vector<std::vector<int64_t>>& values,
                                bool third_stack = false) {
    using namespace gprof::pprof;
    // The same few profiles come again and again (the fuzzer asks for them millions of times).
    static std::map<std::string, std::string> made;
    std::string key = std::to_string(heap) + std::to_string(third_stack);
    for (const auto& v : values)
        for (int64_t x : v) key += "," + std::to_string(x);
    if (auto it = made.find(key); it != made.end()) return it->second;
    ProfileMessage p;
    p.string_table = {"",        "alloc_objects", "count", "alloc_space", "bytes",
                      "inuse_objects", "inuse_space", "f", "g", "h", "goroutine", "space"};
    if (heap) {
        p.sample_type = {{1, 2}, {3, 4}, {5, 2}, {6, 4}};
        p.period_type = {11, 4};
    } else {
        p.sample_type = {{10, 2}};
        p.period_type = {10, 2};
    }
    p.period = 1;
    p.function = {{1, 7, 7, 0, 0}, {2, 8, 8, 0, 0}, {3, 9, 9, 0, 0}};
    p.location = {{1, 0, 0x1000, {{1, 0, 0}}, false},
                  {2, 0, 0x2000, {{2, 0, 0}}, false},
                  {3, 0, 0x3000, {{3, 0, 0}}, false}};
    std::vector<std::vector<uint64_t>> stacks = {{1, 2}, {3}, {3, 2}};
    for (size_t i = 0; i < values.size() && i < (third_stack ? 3u : 2u); ++i)
        p.sample.push_back({stacks[i], values[i], {}});
    std::string raw, out, error;
    encode_profile(p, &raw);
    gzip_compress(raw, &out, &error);
    if (made.size() < 1000) made.emplace(key, out);
    return out;
}

class Backend final : public gprof::serve::Backend {
public:
    int collections = 0;
    bool cpu_busy = false;
    bool cpu_running = false;
    int cpu_sessions_ended = 0;
    int64_t waited = 0;
    bool client_gone = false;
    std::vector<std::string> custom = {"mine"};
    std::map<std::string, std::string> previous;

    bool has_profile(std::string_view name) override {
        return name == "heap" || name == "allocs" || name == "goroutine" || name == "threads" ||
               name == "threadcreate" || name == "block" || name == "mutex" || name == "mine";
    }

    Written write_profile(std::string_view name, int debug, std::string* out) override {
        if (!has_profile(name)) return Written::UnknownName;
        if (debug != 0) {
            *out = std::string(name) + " text " + std::to_string(debug);
            return Written::Ok;
        }
        int64_t n = ++collections;
        if (name == "heap" || name == "allocs" || name == "block" || name == "mutex")
            *out = make_profile(true, {{10 * n, 1000 * n, 5, 500}, {n, 100 * n, 1, 100}});
        else
            *out = make_profile(false, {{3}, {n % 2 == 1 ? 2 : 0}}, false);
        return Written::Ok;
    }

    std::vector<std::string> custom_profile_names() override { return custom; }
    std::string command_line() override { return std::string("prog\0arg", 8); }

    std::vector<std::string> function_names(const std::vector<uint64_t>& pcs) override {
        std::vector<std::string> names;
        for (uint64_t pc : pcs) names.push_back(pc == 0x1000 ? "f" : pc == 0x2000 ? "g" : "");
        return names;
    }

    int cpu_begin(std::string* reason) override {
        if (cpu_busy) return EBUSY;
        if (cpu_running) {
            *reason = "not possible";
            return EAGAIN;
        }
        cpu_running = true;
        return 0;
    }

    bool cpu_end(std::string* out, std::string* error) override {
        cpu_running = false;
        ++cpu_sessions_ended;
        *out = make_profile(false, {{7}, {8}});
        (void)error;
        return true;
    }

    bool wait(int64_t seconds) override {
        waited += seconds;
        return !client_gone;
    }
    int64_t now_nanos() override { return waited * 1'000'000'000 + 1'000; }

    std::string swap_previous(std::string_view path, std::string current) override {
        std::string& slot = previous[std::string(path)];
        slot.swap(current);
        return current;
    }
};

}  // namespace fake
