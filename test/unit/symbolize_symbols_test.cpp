// Modules and symbols of the running test program: /proc/self/maps, build IDs, ELF symbol tables.
#include <dlfcn.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "symbolize/elf_file.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"

using gprof::symbolize::FunctionName;
using gprof::symbolize::Module;
using gprof::symbolize::ModuleSnapshot;
using gprof::symbolize::SymbolCache;

// Known code in the test program itself: a C name and a C++ name in a namespace.
extern "C" __attribute__((noinline)) int symbolize_symbols_test_c_function(int x) {
    volatile int v = x;
    for (int i = 0; i < 4; ++i) v = v * 3 + i;
    return v;
}

namespace symbolize_symbols_test {
__attribute__((noinline)) int cpp_function(int x) {
    volatile int v = x;
    for (int i = 0; i < 4; ++i) v = v * 5 + i;
    return v;
}
}  // namespace symbolize_symbols_test

namespace {

uintptr_t address_of(const void* function) {
    return reinterpret_cast<uintptr_t>(function);
}

ModuleSnapshot capture() {
    ModuleSnapshot snapshot;
    std::string error;
    REQUIRE(snapshot.capture(&error));
    INFO(error);
    REQUIRE_FALSE(snapshot.modules().empty());
    return snapshot;
}

std::string temporary_directory() {
    char pattern[] = "/tmp/gprof-writer-symbols-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    return pattern;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("modules: /proc/self/maps lines are parsed", "[writer][modules]") {
    const char* maps =
        "55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 247134      /usr/bin/prog\n"
        "55d0c0a02000-55d0c0a07000 r-xp 00002000 fe:00 247134      /usr/bin/prog\n"
        "7f13a0000000-7f13a0021000 rw-p 00000000 00:00 0 \n"
        "7f134db8f000-7f134dce5000 r-xp 00026000 fe:00 332835    "
        "/usr/lib/x86_64-linux-gnu/libc.so.6\n"
        "7f134dd00000-7f134dd01000 r-xp 00001000 fe:00 99       /tmp/my lib.so (deleted)\n"
        "7f134dd10000-7f134dd20000 rwxp 00000000 00:00 0 \n"
        "7f134dd20000-7f134dd21000 r-xp 00000000 00:00 0        [anon:jit code]\n"
        "7ffd1c5f2000-7ffd1c5f4000 r-xp 00000000 00:00 0        [vdso]\n"
        "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]\n"
        "garbage line\n"
        "7f0000000000-7f0000001000";  // cut short, no newline
    std::vector<Module> modules = gprof::symbolize::parse_executable_mappings(maps);
    REQUIRE(modules.size() == 7);
    CHECK(modules[0].start == 0x55d0c0a02000);
    CHECK(modules[0].limit == 0x55d0c0a07000);
    CHECK(modules[0].file_offset == 0x2000);
    CHECK(modules[0].path == "/usr/bin/prog");
    CHECK(modules[0].is_file);
    CHECK_FALSE(modules[0].deleted);
    CHECK(modules[1].path == "/usr/lib/x86_64-linux-gnu/libc.so.6");
    CHECK(modules[1].file_offset == 0x26000);
    CHECK(modules[2].path == "/tmp/my lib.so");
    CHECK(modules[2].deleted);
    CHECK(modules[3].path == "[anon]");
    CHECK_FALSE(modules[3].is_file);
    CHECK(modules[4].path == "[anon:jit code]");
    CHECK(modules[5].path == "[vdso]");
    CHECK_FALSE(modules[5].is_file);
    CHECK(modules[6].path == "[vsyscall]");
    CHECK(modules[6].start == 0xffffffffff600000);
}

TEST_CASE("modules: the snapshot finds the program and libc, main first", "[writer][modules]") {
    ModuleSnapshot snapshot = capture();
    const Module* self = snapshot.find(address_of((void*)&symbolize_symbols_test_c_function));
    REQUIRE(self != nullptr);
    CHECK(self->is_main);
    CHECK(self->is_file);
    CHECK(self->path.find("unit_tests") != std::string::npos);
    CHECK(self->build_id.size() >= 16);

    // The build ID from memory is the one in the file.
    gprof::symbolize::MappedFile file;
    std::string error;
    REQUIRE(file.open(self->path, &error));
    CHECK(gprof::symbolize::build_id_of_image(
              gprof::symbolize::ElfImage(file.data(), file.size())) == self->build_id);

    void* getpid_address = dlsym(RTLD_DEFAULT, "getpid");
    REQUIRE(getpid_address != nullptr);
    const Module* libc = snapshot.find(address_of(getpid_address));
    REQUIRE(libc != nullptr);
    CHECK_FALSE(libc->is_main);
    CHECK(libc->path.find("libc.so") != std::string::npos);
    CHECK_FALSE(libc->build_id.empty());
    CHECK(snapshot.find(0) == nullptr);
    CHECK(snapshot.find(UINTPTR_MAX - 4096) == nullptr);

    for (const Module& m : snapshot.modules()) {
        CHECK(m.start < m.limit);
        if (m.is_main) CHECK(m.path == self->path);
    }
}

TEST_CASE("symbols: functions of the program itself, C and C++", "[writer][symbols]") {
    ModuleSnapshot snapshot = capture();
    SymbolCache symbols;
    REQUIRE(symbolize_symbols_test_c_function(2) != 0);
    REQUIRE(symbolize_symbols_test::cpp_function(2) != 0);

    const uintptr_t c_entry = address_of((void*)&symbolize_symbols_test_c_function);
    FunctionName name;
    for (uintptr_t offset : {0, 1, 7}) {
        const Module* module = snapshot.find(c_entry + offset);
        REQUIRE(module != nullptr);
        REQUIRE(symbols.lookup(*module, c_entry + offset, &name));
        CHECK(name.name == "symbolize_symbols_test_c_function");
        CHECK(name.system_name == "symbolize_symbols_test_c_function");
    }

    const uintptr_t cpp_entry = address_of((void*)&symbolize_symbols_test::cpp_function);
    const Module* module = snapshot.find(cpp_entry + 4);
    REQUIRE(module != nullptr);
    REQUIRE(symbols.lookup(*module, cpp_entry + 4, &name));
    CHECK(name.name == "symbolize_symbols_test::cpp_function(int)");
    CHECK(name.system_name == "_ZN22symbolize_symbols_test12cpp_functionEi");

    const size_t cached = symbols.cached_tables();
    REQUIRE(symbols.lookup(*module, c_entry + 1, &name));
    CHECK(symbols.cached_tables() == cached);  // the program's table is read once
}

TEST_CASE("symbols: a libc function through .dynsym", "[writer][symbols]") {
    ModuleSnapshot snapshot = capture();
    SymbolCache symbols;
    void* getpid_address = dlsym(RTLD_DEFAULT, "getpid");
    REQUIRE(getpid_address != nullptr);
    const uintptr_t entry = address_of(getpid_address);
    const Module* libc = snapshot.find(entry);
    REQUIRE(libc != nullptr);
    FunctionName name;
    REQUIRE(symbols.lookup(*libc, entry + 1, &name));
    // getpid and __getpid are aliases; the one without underscores is preferred.
    CHECK(name.name == "getpid");
    CHECK(name.system_name == "getpid");

    // (Under a sanitizer, printf is its interceptor, in another library, with the same name.)
    void* printf_address = dlsym(RTLD_DEFAULT, "printf");
    REQUIRE(printf_address != nullptr);
    const Module* printf_module = snapshot.find(address_of(printf_address));
    REQUIRE(printf_module != nullptr);
    REQUIRE(symbols.lookup(*printf_module, address_of(printf_address) + 2, &name));
    CHECK(name.name == "printf");
}

TEST_CASE("symbols: the vDSO is read from memory", "[writer][symbols]") {
    void* vdso = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (vdso == nullptr) {
        WARN("no vDSO handle from the loader; skipped");
        return;
    }
    void* clock_gettime_address = dlsym(vdso, "__vdso_clock_gettime");
    dlclose(vdso);
    if (clock_gettime_address == nullptr) {
        WARN("the vDSO has no __vdso_clock_gettime; skipped");
        return;
    }
    ModuleSnapshot snapshot = capture();
    const Module* module = snapshot.find(address_of(clock_gettime_address));
    REQUIRE(module != nullptr);
    CHECK(module->path == "[vdso]");
    SymbolCache symbols;
    FunctionName name;
    REQUIRE(symbols.lookup(*module, address_of(clock_gettime_address) + 1, &name));
    CHECK((name.name == "clock_gettime" || name.name == "__vdso_clock_gettime"));
}

TEST_CASE("symbols: missing, deleted and foreign files give no wrong names", "[writer][symbols]") {
    ModuleSnapshot snapshot = capture();
    const Module* self = snapshot.find(address_of((void*)&symbolize_symbols_test_c_function));
    REQUIRE(self != nullptr);
    const uintptr_t inside = address_of((void*)&symbolize_symbols_test_c_function) + 1;
    SymbolCache symbols;
    FunctionName name;

    Module missing = *self;
    missing.path = "/nonexistent/gprof/missing-binary";
    CHECK_FALSE(symbols.lookup(missing, inside, &name));
    CHECK_FALSE(symbols.lookup(missing, inside, &name));  // cached as empty, still no crash

    // A deleted file: its name is gone, but /proc/self/map_files may still open the mapped file
    // (where the kernel lets this process: root, or CAP_CHECKPOINT_RESTORE). Either the right
    // name or none.
    Module deleted = *self;
    deleted.path = "/nonexistent/gprof/deleted-binary";
    deleted.deleted = true;
    if (symbols.lookup(deleted, inside, &name)) {
        CHECK(name.name == "symbolize_symbols_test_c_function");
    } else {
        WARN("/proc/self/map_files is not readable here");
    }

    // A file that is not the one that was mapped: its build ID differs, its names are not used.
    Module foreign = *self;
    foreign.path = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    CHECK_FALSE(symbols.lookup(foreign, inside, &name));

    Module anonymous = *self;
    anonymous.path = "[anon]";
    anonymous.is_file = false;
    CHECK_FALSE(symbols.lookup(anonymous, inside, &name));
}

TEST_CASE("symbols: truncated and corrupted files give no crash", "[writer][symbols]") {
    // Damaged copies of a small real ELF file, the dynamic loader (glibc >= 2.35 exports
    // _dl_find_object from it; before, libc's getpid will do), read in its place: whatever is
    // found, nothing crashes (the sanitizer builds check every read for bounds).
    ModuleSnapshot snapshot = capture();
    const char* function_name = "_dl_find_object";
    void* function = dlsym(RTLD_DEFAULT, function_name);
    if (function == nullptr) {
        function_name = "getpid";
        function = dlsym(RTLD_DEFAULT, function_name);
    }
    REQUIRE(function != nullptr);
    const Module* loader = snapshot.find(address_of(function));
    REQUIRE(loader != nullptr);
    const uintptr_t inside = address_of(function) + 1;
    const std::string original = read_file(loader->path);
    REQUIRE(original.size() > 8192);

    std::vector<std::string> variants = {original};
    for (size_t cut : {size_t{0}, size_t{3}, size_t{63}, size_t{64}, size_t{200}, size_t{4096},
                       original.size() / 2, original.size() - 1}) {
        variants.push_back(original.substr(0, cut));
    }
    std::mt19937_64 random(7);
    for (int i = 0; i < 60; ++i) {
        std::string damaged = original;
        // Bytes flipped in the headers (front), the section headers and string tables (back),
        // or anywhere.
        for (int k = 0; k < 16; ++k) {
            size_t at = i % 3 == 0   ? random() % 4096
                        : i % 3 == 1 ? damaged.size() - 1 - random() % 4096
                                     : random() % damaged.size();
            damaged[at] = static_cast<char>(random());
        }
        variants.push_back(std::move(damaged));
    }

    const std::string directory = temporary_directory();
    FunctionName name;
    for (size_t index = 0; index < variants.size(); ++index) {
        std::string path = directory + "/variant" + std::to_string(index);
        write_file(path, variants[index]);
        Module copy = *loader;
        copy.path = path;
        copy.build_id = "";  // no build ID to compare: the copy is read whatever it holds
        SymbolCache fresh;
        bool found = fresh.lookup(copy, inside, &name);
        if (index == 0) {
            // The intact copy: the right name, so the damaged ones were really read.
            REQUIRE(found);
            CHECK(name.name == function_name);
        }
        (void)fresh.lookup(copy, loader->start, &name);
        (void)fresh.lookup(copy, loader->limit - 1, &name);
        std::remove(path.c_str());
    }
    rmdir(directory.c_str());
}

TEST_CASE("elf: build ID notes with 4- and 8-byte alignment", "[writer][elf]") {
    // namesz=4 descsz=3 type=3 "GNU\0" then 3 bytes (padded to 4 or 8).
    const uint8_t four[] = {4, 0, 0,   0,   3,   0, 0,    0,    3,    0,
                            0, 0, 'G', 'N', 'U', 0, 0xab, 0xcd, 0xef, 0};
    CHECK(gprof::symbolize::build_id_from_notes(four, sizeof four, 4) == "abcdef");
    // A property note first (type 5), then the build ID, in an 8-aligned block.
    const uint8_t eight[] = {4, 0, 0, 0, 8,   0,   0,   0, 5,    0,    0, 0, 'G', 'N', 'U', 0,
                             1, 2, 3, 4, 5,   6,   7,   8, 4,    0,    0, 0, 2,   0,   0,   0,
                             3, 0, 0, 0, 'G', 'N', 'U', 0, 0x12, 0x34, 0, 0, 0,   0,   0,   0};
    CHECK(gprof::symbolize::build_id_from_notes(eight, sizeof eight, 8) == "1234");
    // Sizes that point past the block.
    const uint8_t broken[] = {4, 0, 0, 0, 0xff, 0xff, 0, 0, 3, 0, 0, 0, 'G', 'N', 'U', 0};
    CHECK(gprof::symbolize::build_id_from_notes(broken, sizeof broken, 4).empty());
    CHECK(gprof::symbolize::build_id_from_notes(four, 5, 4).empty());
}
