// serve/handler.h and serve/profile_delta.h against a fake backend: Go's routing, parameters,
// headers and error texts, and the arithmetic of delta profiles (decoded with libprotobuf).
#include <catch2/catch.hpp>
#include <zlib.h>

#include "profile.pb.h"
#include "serve/handler.h"
#include "serve/profile_delta.h"
#include "test/unit/serve_fake_backend.h"

using gprof::serve::handle;
using gprof::serve::Request;
using gprof::serve::Response;

namespace {

Response get(fake::Backend& b, std::string_view target) {
    return handle(Request{"GET", target, {}, false}, b);
}

std::string header(const Response& r, const std::string& name) {
    for (const auto& [n, v] : r.headers)
        if (n == name) return v;
    return "<none>";
}

perftools::profiles::Profile decode(const std::string& gz) {
    std::string raw(1 << 20, '\0');
    z_stream s{};
    inflateInit2(&s, 16 + 15);
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
    s.avail_in = static_cast<uInt>(gz.size());
    s.next_out = reinterpret_cast<Bytef*>(raw.data());
    s.avail_out = static_cast<uInt>(raw.size());
    REQUIRE(inflate(&s, Z_FINISH) == Z_STREAM_END);
    raw.resize(s.total_out);
    inflateEnd(&s);
    perftools::profiles::Profile p;
    REQUIRE(p.ParseFromString(raw));
    return p;
}

void check_error(const Response& r, int status, const std::string& text) {
    CHECK(r.status == status);
    CHECK(r.body == text + "\n");
    CHECK(header(r, "X-Go-Pprof") == "1");
    CHECK(header(r, "Content-Type") == "text/plain; charset=utf-8");
    CHECK(header(r, "Content-Disposition") == "<none>");
    CHECK(header(r, "X-Content-Type-Options") == "nosniff");
}

}  // namespace

TEST_CASE("serve: Go's errors, texts and statuses", "[serve]") {
    fake::Backend b;
    check_error(get(b, "/debug/pprof/nosuch"), 404, "Unknown profile");
    check_error(get(b, "/debug/pprof/nosuch?seconds=x"), 404, "Unknown profile");
    for (const char* bad : {"0", "-5", "x", "1.5", "9223372036854775808", "+"}) {
        INFO(bad);
        check_error(get(b, std::string("/debug/pprof/heap?seconds=") + bad), 400,
                    "invalid value for \"seconds\" - must be a positive integer");
    }
    check_error(get(b, "/debug/pprof/mine?seconds=1"), 400,
                "\"seconds\" parameter is not supported for this profile type");
    check_error(get(b, "/debug/pprof/heap?seconds=1&debug=1"), 400,
                "seconds and debug params are incompatible");
    check_error(get(b, "/debug/pprof/heap?seconds=301"), 400,
                "profile duration exceeds server's WriteTimeout");
    check_error(get(b, "/debug/pprof/profile?seconds=301"), 400,
                "profile duration exceeds server's WriteTimeout");
    CHECK(b.waited == 0);
    b.cpu_busy = true;
    check_error(get(b, "/debug/pprof/profile"), 500,
                "Could not enable CPU profiling: cpu profiling already in use");
    b.cpu_busy = false;
    b.cpu_running = true;
    check_error(get(b, "/debug/pprof/profile?seconds=1"), 500,
                "Could not enable CPU profiling: not possible");
}

TEST_CASE("serve: paths as Go's ServeMux cleans and routes them", "[serve]") {
    fake::Backend b;
    Response r = get(b, "/debug/pprof");
    CHECK(r.status == 301);
    CHECK(header(r, "Location") == "/debug/pprof/");
    CHECK(get(b, "/debug/pprof/../pprof/heap?debug=1").status == 301);
    CHECK(header(get(b, "/debug//pprof/heap?debug=1"), "Location") == "/debug/pprof/heap?debug=1");
    CHECK(get(b, "/").status == 404);
    CHECK(get(b, "/").body == "404 page not found\n");
    CHECK(get(b, "/debug/pprof/%zz").status == 400);
    CHECK(get(b, "/debug/pprof/%68eap?debug=1").body == "heap text 1");
    CHECK(get(b, "/debug/pprof/heap?debug=%31").body == "heap text 1");
    CHECK(get(b, "/debug/pprof/goroutine?debug=2").body == "goroutine text 2");
    CHECK(get(b, "/debug/pprof/goroutine?debug=7").body == "goroutine text 2");
    CHECK(get(b, "/debug/pprof/goroutine?debug=x&debug=1").body.size() > 0);
    Response heap = get(b, "/debug/pprof/heap?gc=1");
    CHECK(heap.status == 200);
    CHECK(header(heap, "Content-Type") == "application/octet-stream");
    CHECK(header(heap, "Content-Disposition") == "attachment; filename=\"heap\"");
    CHECK(header(heap, "X-Content-Type-Options") == "nosniff");
    Response text = get(b, "/debug/pprof/mutex?debug=1");
    CHECK(header(text, "Content-Type") == "text/plain; charset=utf-8");
    CHECK(header(text, "Content-Disposition") == "<none>");
    Response cmdline = get(b, "/debug/pprof/cmdline");
    CHECK(cmdline.body == std::string("prog\0arg", 8));
}

TEST_CASE("serve: the index lists every profile with its count", "[serve]") {
    fake::Backend b;
    Response r = get(b, "/debug/pprof/");
    CHECK(r.status == 200);
    CHECK(header(r, "Content-Type") == "text/html; charset=utf-8");
    CHECK(r.body.find("<tr><td>2</td><td><a href='heap?debug=1'>heap</a></td></tr>") !=
          std::string::npos);
    CHECK(r.body.find("<a href='mine?debug=1'>mine</a>") != std::string::npos);
    CHECK(r.body.find("<a href='profile?debug=1'>profile</a>") != std::string::npos);
    CHECK(r.body.find("'allocs?debug=1'") < r.body.find("'block?debug=1'"));
    CHECK(r.body.find("<li><div class=profile-name>threadcreate: </div> Number of OS threads</li>") !=
          std::string::npos);
}

TEST_CASE("serve: symbol answers as Go's, for GET and POST", "[serve]") {
    fake::Backend b;
    CHECK(get(b, "/debug/pprof/symbol?0x1000+4096+010000+0x2000+0+zz+0x3000").body ==
          "num_symbols: 1\n0x1000 f\n0x1000 f\n0x1000 f\n0x2000 g\n");
    Response post = handle(Request{"POST", "/debug/pprof/symbol", "0x2000+0x1000", false}, b);
    CHECK(post.body == "num_symbols: 1\n0x2000 g\n0x1000 f\n");
    Response big = handle(Request{"POST", "/debug/pprof/symbol", "", true}, b);
    CHECK(big.status == 413);
}

TEST_CASE("serve: the CPU profile waits its seconds and always ends its session", "[serve]") {
    fake::Backend b;
    Response r = get(b, "/debug/pprof/profile");
    CHECK(r.status == 200);
    CHECK(b.waited == 30);
    CHECK(header(r, "Content-Disposition") == "attachment; filename=\"profile\"");
    CHECK(decode(r.body).sample_size() == 2);
    get(b, "/debug/pprof/profile?seconds=-3");
    CHECK(b.waited == 60);
    get(b, "/debug/pprof/profile?seconds=14");
    CHECK(b.waited == 74);
    b.client_gone = true;
    get(b, "/debug/pprof/profile?seconds=14");
    CHECK(b.cpu_sessions_ended == 4);
    CHECK_FALSE(b.cpu_running);
}

TEST_CASE("serve: delta profiles subtract, except the heap's in-use values", "[serve]") {
    fake::Backend b;
    Response r = get(b, "/debug/pprof/heap?seconds=5");
    CHECK(r.status == 200);
    CHECK(header(r, "Content-Disposition") == "attachment; filename=\"heap-delta\"");
    auto p = decode(r.body);
    CHECK(p.duration_nanos() == 5'000'000'000);
    REQUIRE(p.sample_size() == 2);
    // Collections 1 and 2: allocations grew by one step; in-use values as at the end.
    CHECK(p.sample(0).value(0) == 10);
    CHECK(p.sample(0).value(1) == 1000);
    CHECK(p.sample(0).value(2) == 5);
    CHECK(p.sample(0).value(3) == 500);
    CHECK(p.sample(1).value(1) == 100);

    // A stack gone by the end comes out negated; one with no change is dropped.
    std::string before = fake::make_profile(false, {{3}, {2}, {4}}, true);
    std::string after = fake::make_profile(false, {{3}, {5}}, false);
    std::string out, error;
    REQUIRE(gprof::serve::profile_delta(before, after, 7, 3, &out, &error));
    auto d = decode(out);
    CHECK(d.time_nanos() == 7);
    CHECK(d.duration_nanos() == 3);
    REQUIRE(d.sample_size() == 2);
    CHECK(d.sample(0).value(0) == 3);
    CHECK(d.sample(1).value(0) == -4);
    CHECK(d.sample(1).location_id_size() == 2);

    CHECK_FALSE(gprof::serve::profile_delta(fake::make_profile(true, {{1, 1, 1, 1}}), after, 1, 1,
                                            &out, &error));
    CHECK_FALSE(gprof::serve::profile_delta("garbage", after, 1, 1, &out, &error));
}

TEST_CASE("serve: godeltaprof's paths give the delta since the previous request", "[serve]") {
    fake::Backend b;
    Response first = get(b, "/debug/pprof/delta_heap");
    CHECK(first.status == 200);
    CHECK(header(first, "Content-Disposition") == "attachment; filename=\"heap.pprof.gz\"");
    CHECK(decode(first.body).sample(0).value(1) == 1000);  // everything so far
    b.waited = 15;
    Response second = get(b, "/debug/pprof/delta_heap");
    auto p = decode(second.body);
    CHECK(p.sample(0).value(1) == 1000);
    CHECK(p.sample(0).value(3) == 500);
    CHECK(p.duration_nanos() == 15'000'000'000);
    CHECK(get(b, "/debug/pprof/delta_mutex").status == 200);
    CHECK(get(b, "/debug/pprof/delta_block").status == 200);
}
