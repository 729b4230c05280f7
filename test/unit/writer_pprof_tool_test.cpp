// The whole writer path (modules, symbols, builder, gzip, file) read back by `go tool pprof`,
// which must accept the file without a single warning and show gprof's function names.
#include <dlfcn.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "pprof/gzip.h"
#include "symbolize/modules.h"
#include "pprof/profile_builder.h"
#include "writer/sink.h"
#include "symbolize/symbols.h"

extern "C" __attribute__((noinline)) int writer_pprof_test_leaf(int x) {
    volatile int v = x;
    for (int i = 0; i < 5; ++i) v = v * 11 + i;
    return v;
}

namespace writer_pprof_test {
struct Widget {
    __attribute__((noinline)) static int make(int x) {
        volatile int v = x;
        for (int i = 0; i < 5; ++i) v = v * 13 + i;
        return v;
    }
};
}  // namespace writer_pprof_test

namespace {

struct CommandResult {
    int status = -1;
    std::string out;
    std::string err;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs a shell command, stdout and stderr captured apart.
CommandResult run(const std::string& command, const std::string& directory) {
    const std::string out_path = directory + "/stdout.txt";
    const std::string err_path = directory + "/stderr.txt";
    CommandResult result;
    result.status = system((command + " >'" + out_path + "' 2>'" + err_path + "'").c_str());
    result.out = read_file(out_path);
    result.err = read_file(err_path);
    return result;
}

bool have_go() {
    return system("command -v go >/dev/null 2>&1") == 0;
}

}  // namespace

TEST_CASE("pprof: go tool pprof reads a written heap profile with no warnings", "[writer][pprof]") {
    if (!have_go()) {
        WARN("go is not installed (Debian package golang-go); go tool pprof check skipped");
        return;
    }
    REQUIRE(writer_pprof_test_leaf(1) != 0);
    REQUIRE(writer_pprof_test::Widget::make(1) != 0);

    gprof::symbolize::ModuleSnapshot modules;
    std::string error;
    REQUIRE(modules.capture(&error));
    gprof::symbolize::SymbolCache symbols;

    const gprof::pprof::ValueType types[] = {{"alloc_objects", "count"},
                                              {"alloc_space", "bytes"},
                                              {"inuse_objects", "count"},
                                              {"inuse_space", "bytes"}};
    gprof::pprof::ProfileBuilder builder(types, {"space", "bytes"}, 524288, &modules, &symbols);
    builder.set_time_nanos(1700000000000000000);

    const uintptr_t leaf = reinterpret_cast<uintptr_t>(&writer_pprof_test_leaf);
    const uintptr_t widget = reinterpret_cast<uintptr_t>(&writer_pprof_test::Widget::make);
    const uintptr_t libc = reinterpret_cast<uintptr_t>(dlsym(RTLD_DEFAULT, "getpid"));
    REQUIRE(libc != 0);
    // Return addresses: a few bytes into each function.
    const uintptr_t first[] = {leaf + 6, widget + 6, libc + 3};
    const uintptr_t second[] = {widget + 9, libc + 3};
    const uintptr_t unknown[] = {0x10, leaf + 6};  // an address in no mapping
    const int64_t big[] = {10, 10 << 20, 4, 4 << 20};
    const int64_t small[] = {3, 96, 1, 32};
    const gprof::pprof::NumericLabel size_big[] = {{"bytes", 1 << 20, ""}};
    const gprof::pprof::NumericLabel size_small[] = {{"bytes", 32, ""}};
    REQUIRE(builder.add_sample(first, 3, big, 4, {{}, size_big}));
    REQUIRE(builder.add_sample(second, 2, small, 4, {{}, size_small}));
    REQUIRE(builder.add_sample(unknown, 2, small, 4, {{}, size_small}));

    std::string encoded, compressed;
    REQUIRE(builder.build(&encoded));
    REQUIRE(gprof::pprof::gzip_compress(encoded, &compressed, &error));

    char pattern[] = "/tmp/gprof-writer-pprof-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    const std::string directory = pattern;
    const std::string path =
        gprof::writer::profile_file_path(directory + "/out/gprof", getpid(), 1, "heap");
    REQUIRE(gprof::writer::write_file_atomically(path, compressed, &error));

    // GOTOOLCHAIN=local: never let a newer Go try to fetch a toolchain.
    const std::string pprof = "cd '" + directory + "' && GOTOOLCHAIN=local go tool pprof ";

    CommandResult raw = run(pprof + "-raw '" + path + "'", directory);
    INFO("stdout:\n" << raw.out << "\nstderr:\n" << raw.err);
    CHECK(raw.status == 0);
    CHECK(raw.err.empty());
    CHECK(raw.out.find("writer_pprof_test_leaf") != std::string::npos);
    CHECK(raw.out.find("writer_pprof_test::Widget::make(int)") != std::string::npos);
    CHECK(raw.out.find("getpid") != std::string::npos);
    CHECK(raw.out.find("bytes:[1048576]") != std::string::npos);

    CommandResult top = run(pprof + "-top -sample_index=alloc_space '" + path + "'", directory);
    INFO("stdout:\n" << top.out << "\nstderr:\n" << top.err);
    CHECK(top.status == 0);
    CHECK(top.err.empty());
    CHECK(top.out.find("Type: alloc_space") != std::string::npos);
    CHECK(top.out.find("writer_pprof_test_leaf") != std::string::npos);
    CHECK(top.out.find("getpid") != std::string::npos);

    std::string cleanup = "rm -rf '" + directory + "'";
    CHECK(system(cleanup.c_str()) == 0);
}
