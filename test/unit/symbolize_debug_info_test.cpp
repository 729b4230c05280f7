// Source lines and inlined frames from DWARF (libdw, loaded lazily) for code of the test program
// itself, and the cache of resolved addresses. Skipped, with a warning, where libdw.so.1 is absent.
#include <execinfo.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "test/unit/temp_dir.h"
#include "symbolize/debug_cache.h"
#include "symbolize/debug_info.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"

using gprof::symbolize::ModuleSnapshot;
using gprof::symbolize::SourceFrame;
using gprof::symbolize::SymbolCache;

namespace {

volatile uintptr_t g_return_address;
int g_helper_call_line, g_outer_call_line;

// Records the address its caller returns to: inside the inlined helper below.
__attribute__((noinline)) void record_return_address() {
    g_return_address = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
    asm volatile("");
}

inline __attribute__((always_inline)) void debug_info_inlined_helper() {
    g_helper_call_line = __LINE__ + 1;
    record_return_address();
}

// A library's text mapping in a fresh snapshot of the process's modules (nullptr if none).
const gprof::symbolize::Module* module_named(ModuleSnapshot* snapshot, const char* name) {
    std::string error;
    if (!snapshot->capture(&error)) return nullptr;
    for (const auto& m : snapshot->modules())
        if (m.path.find(name) != std::string::npos) return &m;
    return nullptr;
}

const gprof::symbolize::Module* libc_module(ModuleSnapshot* snapshot) {
    return module_named(snapshot, "/libc.so.6");
}

}  // namespace

// crt1's entry point, and the functions of test/symbols/start_gap_tail.s: a unit whose line table
// ends a sequence with a row of no length just before _start.
extern "C" char _start[];
extern "C" void start_gap_tail();
extern "C" void start_gap_later();

namespace {

// The call in _start that every stack of the main thread starts from (the outermost frame of this
// one, one byte before its return address); 0 if the walk ends elsewhere.
uintptr_t start_call_address() {
    void* frames[512];
    int n = backtrace(frames, 512);
    if (n <= 0) return 0;
    const uintptr_t call = reinterpret_cast<uintptr_t>(frames[n - 1]) - 1;
    const uintptr_t start = reinterpret_cast<uintptr_t>(_start);
    return call > start && call < start + 64 ? call : 0;
}

}  // namespace

extern "C" __attribute__((noinline)) void debug_info_test_outer() {
    g_outer_call_line = __LINE__ + 1;
    debug_info_inlined_helper();
    asm volatile("");
}

TEST_CASE("debug info: an inlined call in this program, innermost first, and the cache",
          "[writer][symbols][dwarf]") {
    if (!gprof::symbolize::debug_info_library_available()) {
        WARN("libdw.so.1 missing (Debian package libdw1): DWARF look-ups not tested");
        return;
    }
    debug_info_test_outer();
    ModuleSnapshot snapshot;
    std::string error;
    REQUIRE(snapshot.capture(&error));
    // As the profile builder does: the call instruction, one byte before the return address.
    const uintptr_t address = g_return_address - 1;
    const gprof::symbolize::Module* module = snapshot.find(address);
    REQUIRE(module != nullptr);

    SymbolCache cache;
    std::vector<SourceFrame> frames;
    bool from_dwarf = false;
    REQUIRE(cache.symbolize(*module, address, &frames, &from_dwarf));
    CHECK(from_dwarf);
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].function.name.find("debug_info_inlined_helper") != std::string::npos);
    CHECK(frames[0].filename.ends_with("test/unit/symbolize_debug_info_test.cpp"));
    CHECK(frames[0].line == g_helper_call_line);
    CHECK(frames[0].start_line == g_helper_call_line - 2);
    CHECK(frames[1].function.name == "debug_info_test_outer");
    CHECK(frames[1].function.system_name == "debug_info_test_outer");
    CHECK(frames[1].line == g_outer_call_line);
    CHECK(frames[1].start_line == g_outer_call_line - 2);

    // A repeated look-up, after the dump's libdw state is gone, comes from the cache: the same
    // frames, and the cache does not grow.
    const size_t bytes = cache.resolved_bytes();
    CHECK(bytes > 0);
    CHECK(bytes < SymbolCache::kMaxResolvedBytes);
    cache.end_dump();
    std::vector<SourceFrame> again;
    REQUIRE(cache.symbolize(*module, address, &again, &from_dwarf));
    CHECK(from_dwarf);
    CHECK(cache.resolved_bytes() == bytes);
    REQUIRE(again.size() == frames.size());
    for (size_t i = 0; i < again.size(); ++i) {
        CHECK(again[i].function.name == frames[i].function.name);
        CHECK(again[i].filename == frames[i].filename);
        CHECK(again[i].line == frames[i].line);
    }
}

TEST_CASE("debug info: a file without DWARF gives nothing, and no crash", "[writer][dwarf]") {
    if (!gprof::symbolize::debug_info_library_available()) {
        WARN("libdw.so.1 missing (Debian package libdw1): not tested");
        return;
    }
    CHECK(gprof::symbolize::DebugInfo::open("/nonexistent/file", "", "/nonexistent") == nullptr);
    CHECK(gprof::symbolize::DebugInfo::open("/proc/self/status", "", "/proc/self") == nullptr);
    // /bin/true is stripped and Debian ships no debug file for it on this system unless
    // coreutils-dbgsym is installed; either way, a look-up must not crash.
    auto info = gprof::symbolize::DebugInfo::open("/bin/true", "", "/bin");
    if (info != nullptr) {
        std::vector<gprof::symbolize::DebugFrame> frames;
        info->lookup(0x1, &frames);
        info->lookup(~uint64_t{0}, &frames);
    }
}

TEST_CASE("symbols: the cache of resolved addresses stays within its bound", "[writer][symbols]") {
    ModuleSnapshot snapshot;
    const gprof::symbolize::Module* libc = libc_module(&snapshot);
    REQUIRE(libc != nullptr);
    constexpr size_t kBound = 64 * 1024;
    SymbolCache bounded(kBound), unbounded;
    std::vector<SourceFrame> a, b;
    bool dwarf_a = false, dwarf_b = false;
    size_t named = 0, peak = 0;
    const uintptr_t span = libc->limit - libc->start;
    for (size_t i = 0; i < 3000; ++i) {
        uintptr_t address = libc->start + span * i / 3000;
        bool found = bounded.symbolize(*libc, address, &a, &dwarf_a);
        CHECK(found == unbounded.symbolize(*libc, address, &b, &dwarf_b));
        peak = std::max(peak, bounded.resolved_bytes());
        if (!found) continue;
        ++named;
        // Forgetting never changes an answer.
        REQUIRE(a.size() == b.size());
        CHECK(a.front().function.name == b.front().function.name);
        CHECK(a.front().line == b.front().line);
    }
    CHECK(named > 1000);
    CHECK(unbounded.resolved_bytes() > kBound);  // the bound was really reached
    CHECK(peak <= kBound);
}

TEST_CASE(
    "stored tables: a later cache answers from them; a full one keeps the addresses used last",
    "[writer][symbols][dwarf]") {
    if (!gprof::symbolize::debug_info_library_available()) {
        WARN("libdw.so.1 missing (Debian package libdw1): stored tables not tested");
        return;
    }
    ModuleSnapshot snapshot;
    const gprof::symbolize::Module* libc = libc_module(&snapshot);
    REQUIRE(libc != nullptr);
    // Distinct addresses spread over libc's text, in disjoint sets: set k holds every 4th address
    // from offset k, so all sets interleave over the whole library. (The mapping's last page runs
    // past the file's segment, where addresses have no link address: the last 1% is left out.)
    const uintptr_t span = (libc->limit - libc->start) / 100 * 99;
    auto set = [&](size_t k, size_t n) {
        std::vector<uintptr_t> out;
        for (size_t i = 0; i < n; ++i) out.push_back(libc->start + span * (4 * i + k) / (4 * n));
        return out;
    };
    std::string dir = temp_dir("stored");
    gprof::symbolize::DebugCache store(dir, true);
    const std::string table = dir + "/" + libc->build_id + ".sym";
    std::vector<SourceFrame> frames;
    bool from_dwarf = false;
    auto use = [&](SymbolCache& cache, const std::vector<uintptr_t>& addresses) {
        size_t dwarf = 0;
        for (uintptr_t a : addresses)
            if (cache.symbolize(*libc, a, &frames, &from_dwarf) && from_dwarf) ++dwarf;
        cache.end_dump();
        return dwarf;
    };
    const std::vector<uintptr_t> a = set(0, 5000), b = set(1, 3000), c = set(2, 1000);

    // A first process resolves `a` with DWARF and stores it; a later one answers it all from the
    // table, with the same frames, and does not rewrite it.
    SymbolCache first(SymbolCache::kMaxResolvedBytes, &store);
    size_t dwarf = use(first, a);
    if (dwarf == 0) {
        WARN("no DWARF for libc (Debian package libc6-dbg): stored tables not tested");
        return;
    }
    REQUIRE(std::filesystem::exists(table));
    struct stat written;
    REQUIRE(stat(table.c_str(), &written) == 0);
    SymbolCache second(SymbolCache::kMaxResolvedBytes, &store);
    for (uintptr_t address : a) {
        std::vector<SourceFrame> again, direct;
        bool d1 = false, d2 = false;
        bool found = second.symbolize(*libc, address, &again, &d1);
        CHECK(found == first.symbolize(*libc, address, &direct, &d2));
        CHECK(d1 == d2);
        REQUIRE(again.size() == direct.size());
        for (size_t i = 0; i < again.size(); ++i) {
            CHECK(again[i].function.system_name == direct[i].function.system_name);
            CHECK(again[i].filename == direct[i].filename);
            CHECK(again[i].line == direct[i].line);
        }
    }
    CHECK(second.stored_answers() == a.size());
    second.end_dump();
    struct stat unchanged;
    REQUIRE(stat(table.c_str(), &unchanged) == 0);
    CHECK(unchanged.st_ino == written.st_ino);

    // A process that adds `b` fills the table to its bound: 3000 + 5000 > 8192, so 192 of `a`
    // (now one rewrite old) go.
    SymbolCache third(SymbolCache::kMaxResolvedBytes, &store);
    use(third, b);
    // One that uses 1000 of `a` again and adds `c`: what goes now is 1000 of `a`'s others, never
    // `b`, which is younger, though `b`'s and `a`'s addresses interleave.
    SymbolCache fourth(SymbolCache::kMaxResolvedBytes, &store);
    use(fourth, std::vector<uintptr_t>(a.begin(), a.begin() + 1000));
    use(fourth, c);
    SymbolCache fifth(SymbolCache::kMaxResolvedBytes, &store);
    use(fifth, b);
    CHECK(fifth.stored_answers() == b.size());
    use(fifth, c);
    CHECK(fifth.stored_answers() == b.size() + c.size());
    use(fifth, std::vector<uintptr_t>(a.begin(), a.begin() + 1000));
    CHECK(fifth.stored_answers() == b.size() + c.size() + 1000);
    SymbolCache sixth(SymbolCache::kMaxResolvedBytes, &store);
    use(sixth, a);
    // 8192 - 3000 (b) - 1000 (c) - 1000 (a's first 1000): 3192 of a's other 4000 remain.
    CHECK(sixth.stored_answers() == 1000 + 3192);
    std::filesystem::remove_all(dir);
}

TEST_CASE("stored tables: a module without DWARF is stored, named from its symbol table",
          "[writer][symbols]") {
    // libstdc++ (this program's own dependency) has no DWARF on a plain Debian system: its names
    // come from .dynsym, and reading that whole table is what a later process is spared.
    ModuleSnapshot snapshot;
    const gprof::symbolize::Module* library = module_named(&snapshot, "/libstdc++.so.6");
    REQUIRE(library != nullptr);
    REQUIRE_FALSE(library->build_id.empty());
    std::string dir = temp_dir("nodwarf");
    gprof::symbolize::DebugCache store(dir, true);
    const std::string table = dir + "/" + library->build_id + ".sym";
    std::vector<uintptr_t> addresses;
    const uintptr_t span = (library->limit - library->start) / 100 * 99;
    for (size_t i = 0; i < 300; ++i) addresses.push_back(library->start + span * i / 300);

    SymbolCache first(SymbolCache::kMaxResolvedBytes, &store);
    std::vector<std::vector<SourceFrame>> direct(addresses.size());
    size_t named = 0;
    for (size_t i = 0; i < addresses.size(); ++i) {
        bool from_dwarf = false;
        if (first.symbolize(*library, addresses[i], &direct[i], &from_dwarf)) ++named;
        if (from_dwarf) {
            WARN("libstdc++ has DWARF here (a -dbgsym package?): its table is DWARF's");
            std::filesystem::remove_all(dir);
            return;
        }
    }
    CHECK(named > addresses.size() / 2);  // .dynsym names most of the text
    CHECK(first.stored_answers() == 0);
    first.end_dump();
    REQUIRE(std::filesystem::exists(table));

    // A later process answers every address from the table (named or known to have no name),
    // with the names the symbol table gave.
    SymbolCache second(SymbolCache::kMaxResolvedBytes, &store);
    for (size_t i = 0; i < addresses.size(); ++i) {
        std::vector<SourceFrame> again;
        bool from_dwarf = true;
        CHECK(second.symbolize(*library, addresses[i], &again, &from_dwarf) == !direct[i].empty());
        CHECK_FALSE(from_dwarf);
        REQUIRE(again.size() == direct[i].size());
        for (size_t f = 0; f < again.size(); ++f) {
            CHECK(again[f].function.name == direct[i][f].function.name);
            CHECK(again[f].function.system_name == direct[i][f].function.system_name);
            CHECK(again[f].filename.empty());
        }
    }
    CHECK(second.stored_answers() == addresses.size());
    std::filesystem::remove_all(dir);
}

TEST_CASE("debug info: crt1's _start, in no unit's ranges or line sequences, has no file or line",
          "[writer][symbols][dwarf]") {
    if (!gprof::symbolize::debug_info_library_available()) {
        WARN("libdw.so.1 missing (Debian package libdw1): DWARF look-ups not tested");
        return;
    }
    // The premise: start_gap_tail's row of no length is the last row before _start.
    const uintptr_t start = reinterpret_cast<uintptr_t>(_start);
    const uintptr_t tail = reinterpret_cast<uintptr_t>(&start_gap_tail);
    REQUIRE(tail < start);
    REQUIRE(start - tail <= 64);
    const uintptr_t call = start_call_address();
    REQUIRE(call != 0);
    ModuleSnapshot snapshot;
    std::string error;
    REQUIRE(snapshot.capture(&error));
    const gprof::symbolize::Module* module = snapshot.find(call);
    REQUIRE(module != nullptr);
    REQUIRE(module->is_main);

    // Each twice: resolved, then (after the dump's libdw state is gone) from the cache.
    SymbolCache cache;
    std::vector<SourceFrame> frames;
    bool from_dwarf = true;
    for (int round = 0; round < 2; ++round) {
        INFO("round " << round);
        // The caller frame in _start and its first byte: the symbol table's name, nothing else.
        for (uintptr_t address : {call, start}) {
            REQUIRE(cache.symbolize(*module, address, &frames, &from_dwarf));
            CHECK_FALSE(from_dwarf);
            REQUIRE(frames.size() == 1);
            CHECK(frames[0].function.name == "_start");
            CHECK(frames[0].filename == "");
            CHECK(frames[0].line == 0);
        }
        // Just past start_gap_tail (padding, or _start): the row of no length lends it nothing.
        cache.symbolize(*module, tail + 1, &frames, &from_dwarf);
        CHECK_FALSE(from_dwarf);
        for (const SourceFrame& frame : frames) {
            CHECK(frame.filename == "");
            CHECK(frame.line == 0);
        }
        // Inside the unit's functions, their lines (test/symbols/start_gap_tail.s's own).
        REQUIRE(cache.symbolize(*module, tail, &frames, &from_dwarf));
        CHECK(from_dwarf);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].function.name == "start_gap_tail");
        CHECK(frames[0].filename.ends_with("start_gap_tail.s"));
        CHECK(frames[0].line == 16);
        const uintptr_t later = reinterpret_cast<uintptr_t>(&start_gap_later);
        REQUIRE(cache.symbolize(*module, later, &frames, &from_dwarf));
        CHECK(from_dwarf);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].function.name == "start_gap_later");
        CHECK(frames[0].line == 28);
        cache.end_dump();
    }
}
