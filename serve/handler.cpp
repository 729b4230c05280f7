#include "serve/handler.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>

#include "serve/profile_delta.h"

namespace gprof::serve {
namespace {

constexpr std::string_view kPrefix = "/debug/pprof/";

// ---- Go's url and strconv, as far as the handlers use them. ----

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// url.PathUnescape (query=false) or url.QueryUnescape (query=true: '+' is a space).
bool unescape(std::string_view in, bool query, std::string* out) {
    out->clear();
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            out->push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && query) {
            out->push_back(' ');
        } else {
            out->push_back(c);
        }
    }
    return true;
}

// url.ParseQuery then Values.Get: the first value of `key`; pairs that do not parse are skipped.
std::string form_value(std::string_view query, std::string_view key) {
    std::string k, v;
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty() || pair.find(';') != std::string_view::npos) continue;
        size_t eq = pair.find('=');
        std::string_view raw_key = pair.substr(0, eq);
        std::string_view raw_value =
            eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
        if (!unescape(raw_key, true, &k) || !unescape(raw_value, true, &v)) continue;
        if (k == key) return v;
    }
    return {};
}

// strconv.ParseInt(s, 10, 64).
bool parse_int(std::string_view s, int64_t* out) {
    if (s.empty()) return false;
    bool negative = false;
    if (s[0] == '+' || s[0] == '-') {
        negative = s[0] == '-';
        s.remove_prefix(1);
        if (s.empty()) return false;
    }
    uint64_t v = 0;
    const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        uint64_t d = static_cast<uint64_t>(c - '0');
        if (v > (limit - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
    return true;
}

// strconv.Atoi, errors giving 0.
int atoi_or_zero(std::string_view s) {
    int64_t v = 0;
    if (!parse_int(s, &v) || v < INT32_MIN || v > INT32_MAX) return 0;
    return static_cast<int>(v);
}

// strconv.ParseUint(s, 0, 64): 0x, 0o, 0b or a leading 0 choose the base; '_' between digits
// only with a prefix.
bool parse_uint_base0(std::string_view s, uint64_t* out) {
    if (s.empty()) return false;
    int base = 10;
    bool prefixed = false;
    if (s.size() >= 2 && s[0] == '0') {
        char b = static_cast<char>(s[1] | 0x20);
        if (b == 'x') base = 16;
        else if (b == 'o') base = 8;
        else if (b == 'b') base = 2;
        if (base != 10) {
            s.remove_prefix(2);
            prefixed = true;
        } else {
            base = 8;
            s.remove_prefix(1);
            prefixed = true;
        }
    }
    if (s.empty() && base != 8) return false;
    uint64_t v = 0;
    char previous = '_';
    bool any = false;
    for (char c : s) {
        if (c == '_' && prefixed) {
            if (previous == '_' && any) return false;
            previous = c;
            continue;
        }
        int d = hex_digit(c);
        if (d < 0 || d >= base) return false;
        if (v > (UINT64_MAX - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) return false;
        v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
        previous = c;
        any = true;
    }
    if (previous == '_' && any) return false;
    *out = v;
    return true;
}

// path.Clean, and ServeMux's cleanPath: a rooted path, a trailing slash kept.
std::string clean_path(std::string_view p) {
    if (p.empty()) return "/";
    std::vector<std::string_view> parts;
    size_t i = 0;
    while (i < p.size()) {
        size_t slash = p.find('/', i);
        std::string_view part = p.substr(i, slash == std::string_view::npos ? p.npos : slash - i);
        i = slash == std::string_view::npos ? p.size() : slash + 1;
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (!parts.empty()) parts.pop_back();
            continue;
        }
        parts.push_back(part);
    }
    std::string out;
    for (auto part : parts) {
        out += '/';
        out += part;
    }
    if (out.empty()) out = "/";
    if (p.back() == '/' && out != "/") out += '/';
    return out;
}

std::string html_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '&': out += "&amp;"; break;
            case '\'': out += "&#39;"; break;
            case '"': out += "&#34;"; break;
            default: out += c;
        }
    }
    return out;
}

// ---- Answers. ----

void header(Response* r, std::string name, std::string value) {
    for (auto& h : r->headers) {
        if (h.first == name) {
            h.second = std::move(value);
            return;
        }
    }
    r->headers.emplace_back(std::move(name), std::move(value));
}

void nosniff(Response* r) { header(r, "X-Content-Type-Options", "nosniff"); }

// Go's serveError.
Response serve_error(Response r, int status, std::string_view text) {
    header(&r, "Content-Type", "text/plain; charset=utf-8");
    header(&r, "X-Go-Pprof", "1");
    std::erase_if(r.headers, [](const auto& h) { return h.first == "Content-Disposition"; });
    r.status = status;
    r.body.assign(text);
    r.body += '\n';
    return r;
}

Response binary(Response r, std::string_view filename, std::string body) {
    header(&r, "Content-Type", "application/octet-stream");
    header(&r, "Content-Disposition", "attachment; filename=\"" + std::string(filename) + "\"");
    r.body = std::move(body);
    return r;
}

// http.NotFound
Response not_found() {
    Response r;
    r.status = 404;
    header(&r, "Content-Type", "text/plain; charset=utf-8");
    nosniff(&r);
    r.body = "404 page not found\n";
    return r;
}

// http.Redirect with 301, as ServeMux answers an unclean path or the prefix without its slash.
Response redirect(std::string location, std::string_view query, std::string_view method) {
    if (!query.empty()) {
        location += '?';
        location += query;
    }
    Response r;
    r.status = 301;
    header(&r, "Location", location);
    if (method == "GET" || method == "HEAD") {
        header(&r, "Content-Type", "text/html; charset=utf-8");
        r.body = "<a href=\"" + html_escape(location) + "\">Moved Permanently</a>.\n\n";
    }
    return r;
}

struct Entry {
    std::string name;
    std::string_view description;
    int64_t count;
};

std::string_view description(std::string_view name) {
    static constexpr std::pair<std::string_view, std::string_view> kDescriptions[] = {
        {"allocs", "A sampling of all past memory allocations"},
        {"block", "Stack traces that led to blocking on synchronization primitives"},
        {"cmdline", "The command line invocation of the current program"},
        {"goroutine",
         "Stack traces of all current goroutines. Use debug=2 as a query parameter to export in "
         "the same format as an unrecovered panic."},
        {"heap",
         "A sampling of memory allocations of live objects. You can specify the gc GET parameter "
         "to run GC before taking the heap sample."},
        {"mutex", "Stack traces of holders of contended mutexes"},
        {"profile",
         "CPU profile. You can specify the duration in the seconds GET parameter. After you get "
         "the profile file, use the go tool pprof command to investigate the profile."},
        {"threadcreate", "Number of OS threads"},
    };
    for (auto [n, d] : kDescriptions)
        if (n == name) return d;
    return {};
}

// The built-in profiles of pprof.Profiles() (threads is goroutine's alias, not listed).
constexpr std::string_view kBuiltins[] = {"allocs", "block", "goroutine",
                                          "heap",   "mutex", "threadcreate"};

Response index(Backend& backend) {
    std::vector<Entry> entries;
    std::vector<std::string> names(std::begin(kBuiltins), std::end(kBuiltins));
    for (auto& custom : backend.custom_profile_names()) names.push_back(std::move(custom));
    for (auto& name : names) {
        std::string profile;
        int64_t count = 0;
        bool builtin = std::find(std::begin(kBuiltins), std::end(kBuiltins), name) !=
                       std::end(kBuiltins);
        bool counts = !builtin || name == "goroutine" || name == "threadcreate";
        if (backend.write_profile(name, 0, &profile) == Backend::Written::Ok)
            count = std::max<int64_t>(0, profile_count(profile, counts));
        entries.push_back({std::move(name), {}, count});
    }
    entries.push_back({"cmdline", {}, 0});
    entries.push_back({"profile", {}, 0});
    for (auto& e : entries) e.description = description(e.name);
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.name < b.name; });

    Response r;
    nosniff(&r);
    header(&r, "Content-Type", "text/html; charset=utf-8");
    std::string& b = r.body;
    b = "<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n.profile-name{\n"
        "\tdisplay:inline-block;\n\twidth:6rem;\n}\n</style>\n</head>\n<body>\n/debug/pprof/\n"
        "<br>\n<p>Set debug=1 as a query parameter to export in legacy text format</p>\n<br>\n"
        "Types of profiles available:\n<table>\n<thead><td>Count</td><td>Profile</td></thead>\n";
    for (const auto& e : entries) {
        b += "<tr><td>" + std::to_string(e.count) + "</td><td><a href='" + html_escape(e.name) +
             "?debug=1'>" + html_escape(e.name) + "</a></td></tr>\n";
    }
    b += "</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n<p>\n"
         "Profile Descriptions:\n<ul>\n";
    for (const auto& e : entries) {
        b += "<li><div class=profile-name>" + html_escape(e.name) + ": </div> " +
             html_escape(e.description) + "</li>\n";
    }
    b += "</ul>\n</p>\n</body>\n</html>";
    return r;
}

Response cmdline(Backend& backend) {
    Response r;
    nosniff(&r);
    header(&r, "Content-Type", "text/plain; charset=utf-8");
    r.body = backend.command_line();
    return r;
}

Response symbol(const Request& request, std::string_view raw_query, Backend& backend) {
    Response r;
    nosniff(&r);
    header(&r, "Content-Type", "text/plain; charset=utf-8");
    if (request.method == "POST" && request.body_too_large)
        return serve_error(std::move(r), 413, "http: request body too large");
    std::string_view input = request.method == "POST" ? request.body : raw_query;
    r.body = "num_symbols: 1\n";
    std::vector<uint64_t> pcs;
    for (;;) {
        size_t plus = input.find('+');
        uint64_t pc = 0;
        if (parse_uint_base0(input.substr(0, plus), &pc) && pc != 0) pcs.push_back(pc);
        if (plus == std::string_view::npos) break;
        input.remove_prefix(plus + 1);
    }
    if (pcs.empty()) return r;
    std::vector<std::string> names = backend.function_names(pcs);
    for (size_t i = 0; i < pcs.size() && i < names.size(); ++i) {
        if (names[i].empty()) continue;
        char address[24];
        snprintf(address, sizeof address, "%#" PRIx64 " ", pcs[i]);
        r.body += address;
        r.body += names[i];
        r.body += '\n';
    }
    return r;
}

Response cpu_profile(std::string_view query, Backend& backend) {
    Response r;
    nosniff(&r);
    int64_t seconds = 0;
    if (!parse_int(form_value(query, "seconds"), &seconds) || seconds <= 0) seconds = 30;
    if (seconds > kMaxDurationSeconds)
        return serve_error(std::move(r), 400, "profile duration exceeds server's WriteTimeout");
    std::string reason;
    int err = backend.cpu_begin(&reason);
    if (err == EBUSY) reason = "cpu profiling already in use";
    if (err != 0)
        return serve_error(std::move(r), 500, "Could not enable CPU profiling: " + reason);
    backend.wait(seconds);  // a client gone early still ends the profile here
    std::string profile, error;
    if (!backend.cpu_end(&profile, &error))
        return serve_error(std::move(r), 500, "Could not write CPU profile: " + error);
    return binary(std::move(r), "profile", std::move(profile));
}

bool supports_delta(std::string_view name) {
    return name == "allocs" || name == "block" || name == "goroutine" || name == "heap" ||
           name == "mutex" || name == "threadcreate" || name == "threads";
}

// Go's handler.serveDeltaProfile.
Response delta(std::string_view name, std::string_view seconds_text, std::string_view query,
               Backend& backend, Response r) {
    int64_t seconds = 0;
    if (!parse_int(seconds_text, &seconds) || seconds <= 0)
        return serve_error(std::move(r), 400,
                           "invalid value for \"seconds\" - must be a positive integer");
    if (!supports_delta(name))
        return serve_error(std::move(r), 400,
                           "\"seconds\" parameter is not supported for this profile type");
    if (seconds > kMaxDurationSeconds)
        return serve_error(std::move(r), 400, "profile duration exceeds server's WriteTimeout");
    if (atoi_or_zero(form_value(query, "debug")) != 0)
        return serve_error(std::move(r), 400, "seconds and debug params are incompatible");
    std::string p0, p1;
    if (backend.write_profile(name, 0, &p0) != Backend::Written::Ok)
        return serve_error(std::move(r), 500, "failed to collect profile");
    int64_t t0 = backend.now_nanos();
    if (!backend.wait(seconds)) return serve_error(std::move(r), 500, "context canceled");
    if (backend.write_profile(name, 0, &p1) != Backend::Written::Ok)
        return serve_error(std::move(r), 500, "failed to collect profile");
    int64_t t1 = backend.now_nanos();
    std::string out, error;
    if (!profile_delta(p0, p1, t1, t1 - t0, &out, &error))
        return serve_error(std::move(r), 500, "failed to compute delta");
    return binary(std::move(r), std::string(name) + "-delta", std::move(out));
}

// Go's handler(name).ServeHTTP.
Response named(std::string_view name, std::string_view query, Backend& backend) {
    Response r;
    nosniff(&r);
    if (!backend.has_profile(name)) return serve_error(std::move(r), 404, "Unknown profile");
    std::string seconds = form_value(query, "seconds");
    if (!seconds.empty()) return delta(name, seconds, query, backend, std::move(r));
    int debug = atoi_or_zero(form_value(query, "debug"));  // gc= is accepted and has no use
    std::string out;
    Backend::Written written = backend.write_profile(name, std::clamp(debug < 0 ? 1 : debug, 0, 2), &out);
    if (written == Backend::Written::UnknownName)
        return serve_error(std::move(r), 404, "Unknown profile");
    if (written != Backend::Written::Ok)
        return serve_error(std::move(r), 500, "failed to collect profile");
    if (debug != 0) {
        header(&r, "Content-Type", "text/plain; charset=utf-8");
        r.body = std::move(out);
        return r;
    }
    return binary(std::move(r), name, std::move(out));
}

// godeltaprof's handlers: the delta since the previous request of the same path.
Response godeltaprof(std::string_view path, std::string_view name, Backend& backend) {
    Response r;
    nosniff(&r);
    header(&r, "Content-Type", "application/octet-stream");
    header(&r, "Content-Disposition", "attachment; filename=\"" + std::string(name) + ".pprof.gz\"");
    std::string current;
    if (backend.write_profile(name, 0, &current) != Backend::Written::Ok)
        return serve_error(std::move(r), 500, "failed to collect profile");
    int64_t now = backend.now_nanos();
    // Each profile is kept with its time: the 8 bytes before it.
    std::string stored(sizeof now, '\0');
    memcpy(stored.data(), &now, sizeof now);
    stored += current;
    std::string previous = backend.swap_previous(path, std::move(stored));
    int64_t then = 0;
    if (previous.size() >= sizeof then) {
        memcpy(&then, previous.data(), sizeof then);
        previous.erase(0, sizeof then);
    }
    std::string out, error;
    if (!profile_delta(previous, current, now, then != 0 ? now - then : 0, &out, &error))
        return serve_error(std::move(r), 500, "failed to compute delta");
    r.body = std::move(out);
    return r;
}

Response route(const Request& request, Backend& backend) {
    std::string_view target = request.target;
    size_t question = target.find('?');
    std::string_view raw_path = target.substr(0, question);
    std::string_view query =
        question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    std::string path;
    if (!unescape(raw_path, false, &path) || path.empty() || path[0] != '/' ||
        path.find('\0') != std::string::npos) {
        Response r;
        r.status = 400;
        header(&r, "Content-Type", "text/plain; charset=utf-8");
        r.body = "400 Bad Request";
        return r;
    }
    std::string clean = clean_path(path);
    if (clean != path) return redirect(clean, query, request.method);
    if (path == "/debug/pprof") return redirect("/debug/pprof/", query, request.method);
    if (!path.starts_with(kPrefix)) return not_found();
    std::string_view name = std::string_view(path).substr(kPrefix.size());
    if (name.empty()) return index(backend);
    if (name == "cmdline") return cmdline(backend);
    if (name == "profile") return cpu_profile(query, backend);
    if (name == "symbol") return symbol(request, query, backend);
    if (name == "delta_heap") return godeltaprof(name, "heap", backend);
    if (name == "delta_block") return godeltaprof(name, "block", backend);
    if (name == "delta_mutex") return godeltaprof(name, "mutex", backend);
    return named(name, query, backend);
}

}  // namespace

Response handle(const Request& request, Backend& backend) {
    try {
        return route(request, backend);
    } catch (const std::bad_alloc&) {
        Response r;
        try {
            return serve_error(std::move(r), 500, "out of memory");
        } catch (const std::bad_alloc&) {
            r.status = 500;
            return r;
        }
    }
}

}  // namespace gprof::serve
