// The answers of /debug/pprof/, as Go's net/http/pprof gives them (with its ServeMux's path
// handling in front): a pure function of the request and of what a Backend reports, so that it can
// be tested and fuzzed without a server or a profiled process.
//
// Paths: /debug/pprof/ (the index), cmdline, profile (CPU for ?seconds=N, 30 by default), symbol
// (GET and POST), every profile by name (heap, allocs, goroutine, threads, threadcreate, block,
// mutex, custom ones) with debug=N and seconds=N (a delta), and godeltaprof's delta_heap,
// delta_block and delta_mutex (the delta since the previous request of that path).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gprof::serve {

// The longest duration a request may ask for (profile?seconds=N, a delta's seconds=N), in
// seconds: Go's "profile duration exceeds server's WriteTimeout" past it.
constexpr int64_t kMaxDurationSeconds = 300;

// The largest request body read (symbol's POST); a longer one gets 413.
constexpr size_t kMaxBodyBytes = size_t{1} << 20;

struct Request {
    std::string_view method;
    std::string_view target;  // the request line's target: path and query, still escaped
    std::string_view body;
    bool body_too_large = false;  // more than kMaxBodyBytes came (and was dropped)
};

struct Response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

// What the process behind the server provides. Called from the server's threads, possibly
// several at a time.
class Backend {
public:
    virtual ~Backend() = default;

    enum class Written { Ok, UnknownName, Failed };
    // Go's pprof.Lookup(name) != nil.
    virtual bool has_profile(std::string_view name) = 0;
    // Go's Lookup(name).WriteTo(out, debug): debug 0 the gzipped protobuf, 1 text, 2 the threads'
    // stacks (goroutine) or text.
    virtual Written write_profile(std::string_view name, int debug, std::string* out) = 0;
    // The custom profiles' names (the built-in ones are known here).
    virtual std::vector<std::string> custom_profile_names() = 0;
    // os.Args joined by NUL bytes.
    virtual std::string command_line() = 0;
    // The names of the functions at pcs ("" where none is known).
    virtual std::vector<std::string> function_names(const std::vector<uint64_t>& pcs) = 0;
    // Starts the on-demand CPU profile: 0, or an errno (EBUSY: one runs already) with *reason.
    virtual int cpu_begin(std::string* reason) = 0;
    // Ends it: the gzipped profile of the time since cpu_begin, or false with *error.
    virtual bool cpu_end(std::string* out, std::string* error) = 0;
    // Waits `seconds`; false when it ended early because the client left or the server stops.
    virtual bool wait(int64_t seconds) = 0;
    virtual int64_t now_nanos() = 0;
    // godeltaprof's state: stores `current` as the path's latest profile and returns the one it
    // replaces ("" the first time).
    virtual std::string swap_previous(std::string_view path, std::string current) = 0;
};

// Never throws: running out of memory gives a 500.
Response handle(const Request& request, Backend& backend);

}  // namespace gprof::serve
