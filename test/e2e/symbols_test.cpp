// Symbols end to end: the names, files, lines and inlined frames gprof writes agree with
// llvm-symbolizer (pprof's preferred symbolizer), go tool pprof shows source lines from them, and
// they survive the binaries being gone.
#include <elf.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "test/e2e/e2e.h"
#include "test/e2e/profile_reader.h"

using namespace e2e;
namespace fs = std::filesystem;

namespace {

const std::string kSymbolPrograms = SYMBOL_PROGRAMS_BUILD_DIR;
const std::string kLlvmSymbolizer = LLVM_SYMBOLIZER_PATH;
const std::string kLlvmCxxfilt = LLVM_CXXFILT_PATH;

// ---- A small JSON reader, enough for llvm-symbolizer's --output-style=JSON. ----
struct Json {
    enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
    double number = 0;
    std::string text;
    std::vector<Json> items;
    std::map<std::string, Json> fields;

    const Json& operator[](const std::string& key) const {
        static const Json none;
        auto it = fields.find(key);
        return it == fields.end() ? none : it->second;
    }
};

struct JsonParser {
    std::string_view in;
    size_t at = 0;
    bool ok = true;

    void space() {
        while (at < in.size() && std::isspace(static_cast<unsigned char>(in[at]))) ++at;
    }
    bool eat(char c) {
        space();
        if (at < in.size() && in[at] == c) return ++at, true;
        return false;
    }
    std::string string() {
        std::string out;
        if (!eat('"')) return ok = false, out;
        while (at < in.size() && in[at] != '"') {
            char c = in[at++];
            if (c == '\\' && at < in.size()) {
                char e = in[at++];
                switch (e) {
                    case 'n':
                        out += '\n';
                        break;
                    case 't':
                        out += '\t';
                        break;
                    case 'u':
                        out += '?', at += 4;
                        break;  // not in the names tested here
                    default:
                        out += e;
                }
            } else {
                out += c;
            }
        }
        ++at;
        return out;
    }
    Json value() {
        Json v;
        space();
        if (at >= in.size()) return ok = false, v;
        char c = in[at];
        if (c == '{') {
            ++at;
            v.kind = Json::kObject;
            if (eat('}')) return v;
            do {
                std::string key = string();
                if (!eat(':')) return ok = false, v;
                v.fields[key] = value();
            } while (ok && eat(','));
            if (!eat('}')) ok = false;
        } else if (c == '[') {
            ++at;
            v.kind = Json::kArray;
            if (eat(']')) return v;
            do v.items.push_back(value());
            while (ok && eat(','));
            if (!eat(']')) ok = false;
        } else if (c == '"') {
            v.kind = Json::kString;
            v.text = string();
        } else if (in.substr(at, 4) == "true" || in.substr(at, 5) == "false") {
            v.kind = Json::kBool;
            v.number = c == 't';
            at += c == 't' ? 4 : 5;
        } else if (in.substr(at, 4) == "null") {
            at += 4;
        } else {
            size_t end = at;
            while (end < in.size() && std::strchr("+-.0123456789eE", in[end])) ++end;
            if (end == at) return ok = false, v;
            v.kind = Json::kNumber;
            v.number = std::stod(std::string(in.substr(at, end - at)));
            at = end;
        }
        return v;
    }
};

// ---- Link-time addresses: what llvm-symbolizer takes for a module file. ----
struct LoadSegment {
    uint64_t vaddr, offset, file_size;
};

std::vector<LoadSegment> load_segments(const std::string& path) {
    std::string bytes = read_file(path);
    std::vector<LoadSegment> segments;
    if (bytes.size() < sizeof(Elf64_Ehdr)) return segments;
    Elf64_Ehdr header;
    std::memcpy(&header, bytes.data(), sizeof header);
    for (unsigned i = 0; i < header.e_phnum; ++i) {
        size_t at = header.e_phoff + i * sizeof(Elf64_Phdr);
        if (at + sizeof(Elf64_Phdr) > bytes.size()) break;
        Elf64_Phdr phdr;
        std::memcpy(&phdr, bytes.data() + at, sizeof phdr);
        if (phdr.p_type == PT_LOAD)
            segments.push_back({phdr.p_vaddr, phdr.p_offset, phdr.p_filesz});
    }
    return segments;
}

bool to_link_address(const std::vector<LoadSegment>& segments,
                     const perftools::profiles::Mapping& m, uint64_t address, uint64_t* out) {
    uint64_t offset = address - m.memory_start() + m.file_offset();
    for (const LoadSegment& s : segments) {
        if (offset >= s.offset && offset - s.offset < s.file_size) {
            *out = offset - s.offset + s.vaddr;
            return true;
        }
    }
    return false;
}

struct Frame {
    std::string function, file, system_name;
    int64_t line = 0, start_line = 0;
};

std::string normal_path(const std::string& path) {
    return path.empty() ? path : fs::path(path).lexically_normal().string();
}

// llvm-symbolizer's frames for each link address of one module (innermost first; empty when it
// names no function: "??").
std::vector<std::vector<Frame>> llvm_frames(const std::string& module,
                                            const std::vector<uint64_t>& addresses) {
    std::string input;
    for (uint64_t a : addresses) {
        char line[32];
        snprintf(line, sizeof line, "0x%llx\n", static_cast<unsigned long long>(a));
        input += line;
    }
    std::string input_path = make_dir("llvm-in") + "/addresses";
    write_file(input_path, input);
    RunOptions options;
    options.stdin_path = input_path;
    options.timeout_seconds = 300;
    RunResult r =
        run({kLlvmSymbolizer, "--inlining", "--demangle", "--output-style=JSON", "-e", module},
            options);
    INFO(r.describe());
    REQUIRE(r.status == 0);
    std::vector<std::vector<Frame>> all;
    for (const std::string& line : split_lines(r.out)) {
        if (line.empty()) continue;
        JsonParser parser{line};
        Json v = parser.value();
        REQUIRE(parser.ok);
        std::vector<Frame> frames;
        for (const Json& s : v["Symbol"].items) {
            if (s["FunctionName"].text == "??" || s["FunctionName"].text.empty()) continue;
            frames.push_back({s["FunctionName"].text, normal_path(s["FileName"].text), "",
                              static_cast<int64_t>(s["Line"].number),
                              static_cast<int64_t>(s["StartLine"].number)});
        }
        all.push_back(std::move(frames));
    }
    REQUIRE(all.size() == addresses.size());
    return all;
}

std::vector<Frame> our_frames(const perftools::profiles::Profile& p,
                              const perftools::profiles::Location& location) {
    std::map<uint64_t, const perftools::profiles::Function*> functions;
    for (const auto& f : p.function()) functions[f.id()] = &f;
    std::vector<Frame> frames;
    for (const auto& line : location.line()) {
        const perftools::profiles::Function* f = functions.at(line.function_id());
        frames.push_back({string_at(p, f->name()), normal_path(string_at(p, f->filename())),
                          string_at(p, f->system_name()), line.line(), f->start_line()});
    }
    return frames;
}

std::string describe(const std::vector<Frame>& frames) {
    std::ostringstream out;
    for (const Frame& f : frames)
        out << "    " << f.function << " " << f.file << ":" << f.line << " s=" << f.start_line
            << "\n";
    return out.str();
}

// How LLVM's demangler spells each mangled name (llvm-cxxfilt), to tell a spelling difference
// between demanglers ("{lambda()#1}" and "'lambda'()") from a different function.
std::map<std::string, std::string> llvm_demangled(const std::set<std::string>& names) {
    std::string input;
    std::vector<std::string> order(names.begin(), names.end());
    for (const std::string& name : order) input += name + "\n";
    std::string input_path = make_dir("cxxfilt-in") + "/names";
    write_file(input_path, input);
    RunOptions options;
    options.stdin_path = input_path;
    RunResult r = run({kLlvmCxxfilt}, options);
    INFO(r.describe());
    REQUIRE(r.status == 0);
    std::vector<std::string> lines = split_lines(r.out);
    REQUIRE(lines.size() >= order.size());
    std::map<std::string, std::string> out;
    for (size_t i = 0; i < order.size(); ++i) out[order[i]] = lines[i];
    return out;
}

// The one heap profile a run wrote into dir, checked both ways: libprotobuf (consistent
// references) and go tool pprof -raw (no warning). Its path goes to *path if given.
perftools::profiles::Profile checked_heap_profile(const std::string& dir,
                                                  std::string* path = nullptr) {
    std::vector<std::string> files = list_files(dir, ".heap.pb.gz");
    REQUIRE(files.size() == 1);
    perftools::profiles::Profile p = read_profile(files[0]);
    CHECK(consistency_problems(p).empty());
    std::string raw;
    CHECK(pprof_stderr({"-raw"}, files[0], &raw) == "");
    if (path != nullptr) *path = files[0];
    return p;
}

// A run of test/symbols/inlines at rate 1, its heap profile checked both ways.
perftools::profiles::Profile profile_of_inlines(const std::string& dir,
                                                std::map<std::string, std::string> extra = {}) {
    auto env = preload_env("", extra);
    env["GPROF_MEM_PROFILE_RATE"] = "1";
    env["GPROF_OUTPUT"] = dir + "/gprof";
    RunResult r = run({kSymbolPrograms + "/inlines"}, with_env(env));
    INFO(r.describe());
    REQUIRE(r.status == 0);
    return checked_heap_profile(dir);
}

}  // namespace

TEST_CASE("every location's inlined frames, files and lines equal llvm-symbolizer's",
          "[symbols][llvm]") {
    REQUIRE_FALSE(kLlvmSymbolizer.empty());
    std::string dir = make_dir("symbols-cross");
    perftools::profiles::Profile p = profile_of_inlines(dir);

    std::map<uint64_t, const perftools::profiles::Mapping*> mappings;
    for (const auto& m : p.mapping()) mappings[m.id()] = &m;
    // Per module file: the locations and their link addresses.
    std::map<std::string, std::vector<std::pair<const perftools::profiles::Location*, uint64_t>>>
        by_module;
    for (const auto& location : p.location()) {
        if (location.mapping_id() == 0) continue;
        const auto& m = *mappings.at(location.mapping_id());
        std::string file = string_at(p, m.filename());
        uint64_t link = 0;
        if (!fs::exists(file) ||
            !to_link_address(load_segments(file), m, location.address(), &link))
            continue;
        by_module[file].emplace_back(&location, link);
    }
    std::set<std::string> mangled;
    for (const auto& f : p.function()) {
        std::string name = string_at(p, f.system_name());
        if (name.rfind("_Z", 0) == 0) mangled.insert(name);
    }
    std::map<std::string, std::string> llvm_spelling = llvm_demangled(mangled);

    size_t compared = 0, inlined = 0, differing = 0, spelled_differently = 0, clone_names = 0;
    std::set<std::string> modules_seen;
    std::string report;
    for (const auto& [module, locations] : by_module) {
        std::vector<uint64_t> addresses;
        for (const auto& [location, link] : locations) addresses.push_back(link);
        std::vector<std::vector<Frame>> want = llvm_frames(module, addresses);
        for (size_t i = 0; i < locations.size(); ++i) {
            std::vector<Frame> got = our_frames(p, *locations[i].first);
            ++compared;
            modules_seen.insert(fs::path(module).filename().string());
            if (got.size() > 1) ++inlined;
            bool same = got.size() == want[i].size();
            for (size_t f = 0; same && f < got.size(); ++f) {
                bool same_function = got[f].function == want[i][f].function;
                if (!same_function && llvm_spelling.count(got[f].system_name) &&
                    llvm_spelling[got[f].system_name] == want[i][f].function) {
                    // The same symbol; GNU's demangler (gprof, like pprof's) and LLVM's spell it
                    // differently. A documented difference.
                    same_function = true;
                    ++spelled_differently;
                }
                if (!same_function && f + 1 == got.size() &&
                    got[f].function.rfind(want[i][f].function + ".", 0) == 0) {
                    // The outermost frame of a GCC clone in a stripped library ("msort_with_tmp
                    // .part.0" in libc): gprof names it from the debug file's symbol table,
                    // llvm-symbolizer from the DWARF function it was cloned from. Documented.
                    same_function = true;
                    ++clone_names;
                }
                same = same_function && got[f].file == want[i][f].file &&
                       got[f].line == want[i][f].line && got[f].start_line == want[i][f].start_line;
            }
            if (!same) {
                ++differing;
                char address[32];
                snprintf(address, sizeof address, "0x%llx",
                         static_cast<unsigned long long>(locations[i].second));
                report += module + " " + address + "\n  gprof:\n" + describe(got) +
                          "  llvm-symbolizer:\n" + describe(want[i]);
            }
        }
    }
    INFO(report);
    INFO(compared << " locations compared, " << inlined << " with inlined frames, " << differing
                  << " differ; " << spelled_differently
                  << " frames named the same symbol with GNU's demangler spelling; " << clone_names
                  << " outermost frames named after their clone's symbol");
    CHECK(compared >= 300);
    CHECK(inlined >= 200);
    CHECK(modules_seen.count("inlines") == 1);
    CHECK(modules_seen.count("libc.so.6") == 1);
    CHECK(modules_seen.count("libstdc++.so.6.0.30") == 1);
    CHECK(differing == 0);
    CHECK(clone_names <= compared / 20);
}

namespace {

// The line of test/symbols/<file> that carries the marker "LINE:<tag>".
int64_t marked_line(const std::string& file, const std::string& tag) {
    std::vector<std::string> lines = split_lines(read_file(SOURCE_ROOT "/test/symbols/" + file));
    for (size_t i = 0; i < lines.size(); ++i) {
        std::string marker = "LINE:" + tag;
        size_t at = lines[i].find(marker);
        if (at != std::string::npos &&
            (at + marker.size() == lines[i].size() || lines[i][at + marker.size()] == ' '))
            return static_cast<int64_t>(i + 1);
    }
    FAIL("no LINE:" << tag << " in " << file);
    return 0;
}

// A program run under gprof at rate 1 in a directory of its own; the one heap profile it wrote,
// checked with libprotobuf and go tool pprof (no warnings).
std::string run_for_profile(const std::vector<std::string>& argv, const std::string& dir,
                            std::string* out = nullptr,
                            const std::map<std::string, std::string>& extra_env = {}) {
    auto env = preload_env("", extra_env);
    env["GPROF_MEM_PROFILE_RATE"] = "1";
    env["GPROF_OUTPUT"] = dir + "/gprof";
    RunResult r = run(argv, with_env(env));
    INFO(r.describe());
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    if (out != nullptr) *out = r.out;
    std::string path;
    checked_heap_profile(dir, &path);
    return path;
}

// Does some location of p have a frame of function `name` (a substring of the name) at file:line?
bool has_frame(const perftools::profiles::Profile& p, const std::string& name,
               const std::string& file_suffix, int64_t line) {
    std::map<uint64_t, const perftools::profiles::Function*> functions;
    for (const auto& f : p.function()) functions[f.id()] = &f;
    for (const auto& location : p.location()) {
        for (const auto& l : location.line()) {
            const auto* f = functions.at(l.function_id());
            if (contains(string_at(p, f->name()), name) &&
                string_at(p, f->filename()).ends_with(file_suffix) && l.line() == line)
                return true;
        }
    }
    return false;
}

// The loader's calls into test/symbols/plugin.cpp, each at its marked line.
void check_plugin_frames(const perftools::profiles::Profile& p) {
    for (const char* name : {"plugin_grab", "plugin_internal", "plugin_allocate"}) {
        INFO(name);
        CHECK(has_frame(p, name, "test/symbols/plugin.cpp", marked_line("plugin.cpp", name)));
    }
}

const perftools::profiles::Mapping* mapping_named(const perftools::profiles::Profile& p,
                                                  const std::string& suffix) {
    for (const auto& m : p.mapping())
        if (string_at(p, m.filename()).ends_with(suffix)) return &m;
    return nullptr;
}

}  // namespace

TEST_CASE("go tool pprof -list and -lines show the sampled source lines", "[symbols][pprof]") {
    std::string dir = make_dir("symbols-pprof");
    std::string file = run_for_profile({kSymbolPrograms + "/inlines"}, dir);
    const int64_t big = marked_line("inlines.cpp", "big_site");
    const int64_t fill = marked_line("inlines.cpp", "nested_fill");
    const int64_t grab = marked_line("inlines.cpp", "grab");

    std::string out;
    CHECK(pprof_stderr({"-sample_index=alloc_space", "-list", "big_site"}, file, &out) == "");
    INFO(out);
    // "  flat  cum  <line>: <source>": the 40 x 256 KiB are on the marked line, and only there.
    std::regex big_line("\\s(\\S+)\\s+(\\S+)\\s+" + std::to_string(big) + ":.*LINE:big_site");
    std::smatch m;
    REQUIRE(std::regex_search(out, m, big_line));
    CHECK(m[1].str() == "10MB");
    CHECK(m[2].str() == "10MB");

    CHECK(pprof_stderr({"-sample_index=alloc_space", "-list", "nested"}, file, &out) == "");
    INFO(out);
    std::regex fill_line("\\s(\\S+)\\s+(\\S+)\\s+" + std::to_string(fill) + ":.*LINE:nested_fill");
    REQUIRE(std::regex_search(out, m, fill_line));
    CHECK(m[1].str() == ".");  // nothing allocated by nested itself on that line
    CHECK(m[2].str() != ".");  // but through the inlined fill and grab

    CHECK(pprof_stderr({"-sample_index=alloc_space", "-lines", "-top", "-nodecount=100"}, file,
                       &out) == "");
    INFO(out);
    CHECK(contains(out, "inlines.cpp:" + std::to_string(big)));
    CHECK(std::regex_search(
        out, std::regex("grab .*inlines.cpp:" + std::to_string(grab) + " \\(inline\\)")));

    CHECK(pprof_stderr({"-symbolize=none", "-top"}, file, &out) == "");
    INFO(out);
    CHECK(contains(out, "big_site"));
    CHECK(contains(out, "compare_and_allocate"));
}

TEST_CASE(
    "a deleted or replaced executable keeps its names and lines, and the profile reads "
    "well where the binary is gone",
    "[symbols][moving]") {
    for (const char* how : {"--delete-self", "--replace-self"}) {
        INFO(how);
        std::string dir = make_dir("symbols-deleted");
        std::string copy = dir + "/inlines-copy";
        fs::copy_file(kSymbolPrograms + "/inlines", copy);
        fs::permissions(copy, fs::perms::owner_all);
        std::string file = run_for_profile({copy, how}, dir);
        if (std::string(how) == "--delete-self") CHECK_FALSE(fs::exists(copy));
        perftools::profiles::Profile p = read_profile(file);
        const int64_t big = marked_line("inlines.cpp", "big_site");
        CHECK(has_frame(p, "big_site", "test/symbols/inlines.cpp", big));
        CHECK(has_frame(p, "grab", "test/symbols/inlines.cpp", marked_line("inlines.cpp", "grab")));
        const auto* main_mapping = mapping_named(p, "inlines-copy");
        REQUIRE(main_mapping != nullptr);
        CHECK(main_mapping->has_functions());
        CHECK(main_mapping->has_filenames());
        CHECK(main_mapping->has_line_numbers());
        CHECK(main_mapping->has_inline_frames());
        // The profile moved to a directory of its own: go tool pprof still shows names and lines.
        std::string elsewhere = make_dir("symbols-elsewhere") + "/heap.pb.gz";
        fs::copy_file(file, elsewhere);
        std::string out;
        CHECK(pprof_stderr({"-lines", "-top"}, elsewhere, &out) == "");
        INFO(out);
        CHECK(contains(out, "inlines.cpp:" + std::to_string(big)));
    }
}

TEST_CASE("a dlclose'd library's samples keep their names, files and lines", "[symbols][moving]") {
    for (bool close_it : {false, true}) {
        INFO("dlclose: " << close_it);
        std::string dir = make_dir("symbols-dlclose");
        std::vector<std::string> argv = {kSymbolPrograms + "/loader",
                                         kSymbolPrograms + "/libsymplugin.so"};
        if (close_it) argv.push_back("--dlclose");
        std::string out;
        perftools::profiles::Profile p = read_profile(run_for_profile(argv, dir, &out));
        // The library was really unmapped before the dump at exit.
        CHECK(contains(out, "unloaded") == close_it);
        const auto* plugin = mapping_named(p, "libsymplugin.so");
        REQUIRE(plugin != nullptr);
        CHECK(plugin->has_functions());
        CHECK(plugin->has_line_numbers());
        check_plugin_frames(p);
    }
}

TEST_CASE("a library whose DWARF is in a separate file named by .gnu_debuglink gets its lines",
          "[symbols]") {
    // The library itself has no .debug_* section; its debug file lies next to it under the name
    // its .gnu_debuglink gives (no /usr/lib/debug/.build-id entry exists for a test build).
    RunResult sections = run({kReadelf, "-SW", kSymbolPrograms + "/libsymplugin_debuglink.so"});
    REQUIRE(contains(sections.out, ".gnu_debuglink"));
    REQUIRE_FALSE(contains(sections.out, ".debug_info"));
    std::string dir = make_dir("symbols-debuglink");
    perftools::profiles::Profile p = read_profile(run_for_profile(
        {kSymbolPrograms + "/loader", kSymbolPrograms + "/libsymplugin_debuglink.so"}, dir));
    const auto* plugin = mapping_named(p, "libsymplugin_debuglink.so");
    REQUIRE(plugin != nullptr);
    CHECK(plugin->has_functions());
    CHECK(plugin->has_filenames());
    CHECK(plugin->has_line_numbers());
    check_plugin_frames(p);
}

// The sections of an ELF file (readelf -SW) whose flags include C (SHF_COMPRESSED).
int compressed_section_count(const std::string& path) {
    RunResult r = run({kReadelf, "-SW", path});
    REQUIRE(r.status == 0);
    static const std::regex section(
        "\\]\\s+(\\S+)\\s+\\S+\\s+[0-9a-f]+\\s+[0-9a-f]+\\s+[0-9a-f]+\\s+[0-9a-f]+\\s+([A-Z]*)\\s+"
        "\\d+");
    int count = 0, sections = 0;
    for (const std::string& line : split_lines(r.out)) {
        std::smatch m;
        if (!std::regex_search(line, m, section)) continue;
        ++sections;
        if (m[2].str().find('C') != std::string::npos) ++count;
    }
    REQUIRE(sections > 10);
    return count;
}

ino_t inode_of(const std::string& path) {
    struct stat status;
    REQUIRE(stat(path.c_str(), &status) == 0);
    return status.st_ino;
}

TEST_CASE("compressed DWARF is read from an inflated copy that later processes reuse",
          "[symbols][debug-cache]") {
    struct Case {
        const char* library;
        const char* suffix;  // of the copy: a separate debug file, or the module itself
    };
    for (Case c :
         {Case{"libsymplugin_zdebuglink.so", ".debug"}, Case{"libsymplugin_zdebug.so", ".elf"}}) {
        INFO(c.library);
        const std::string library = kSymbolPrograms + "/" + c.library;
        const std::string compressed =
            std::string(c.suffix) == ".debug" ? library + ".debug" : library;
        REQUIRE(compressed_section_count(compressed) > 3);
        std::string cache = make_dir("debug-cache") + "/nested/cache";
        std::map<std::string, std::string> env = {{"GPROF_DEBUG_CACHE", cache}};

        // First run: lines come, and the copy is written.
        perftools::profiles::Profile p = read_profile(run_for_profile(
            {kSymbolPrograms + "/loader", library}, make_dir("zdebug"), nullptr, env));
        const auto* plugin = mapping_named(p, c.library);
        REQUIRE(plugin != nullptr);
        CHECK(plugin->has_line_numbers());
        check_plugin_frames(p);
        const std::string build_id = string_at(p, plugin->build_id());
        REQUIRE(build_id.size() == 40);
        const std::string copy = cache + "/" + build_id + c.suffix;
        REQUIRE(fs::exists(copy));
        CHECK(compressed_section_count(copy) == 0);
        CHECK(contains(run({kReadelf, "-n", copy}).out, build_id));
        CHECK((fs::status(cache).permissions() & fs::perms::all) == fs::perms::owner_all);
        for (const auto& entry : fs::directory_iterator(cache))  // no temporary file left
            CHECK_FALSE(entry.path().filename().string().starts_with(".tmp"));

        // Second run: the same lines, from the same copy (not written again).
        ino_t inode = inode_of(copy);
        p = read_profile(run_for_profile({kSymbolPrograms + "/loader", library}, make_dir("zdebug"),
                                         nullptr, env));
        check_plugin_frames(p);
        CHECK(inode_of(copy) == inode);

        // A damaged copy (cut short) is not trusted: it is written again, and lines still come.
        // (The stored table of resolved addresses goes too, or no DWARF would be read at all.)
        fs::remove(cache + "/" + build_id + ".sym");
        fs::resize_file(copy, fs::file_size(copy) / 2);
        p = read_profile(run_for_profile({kSymbolPrograms + "/loader", library}, make_dir("zdebug"),
                                         nullptr, env));
        check_plugin_frames(p);
        CHECK(compressed_section_count(copy) == 0);
        CHECK(fs::file_size(copy) > fs::file_size(compressed));
    }
}

namespace {

// Every frame the profile's locations name, as "function file:line" (one entry per location line,
// inlined frames included): equal for two runs of one program that resolved the same addresses.
std::multiset<std::string> named_frames(const perftools::profiles::Profile& p) {
    std::map<uint64_t, const perftools::profiles::Function*> functions;
    for (const auto& f : p.function()) functions[f.id()] = &f;
    std::multiset<std::string> frames;
    for (const auto& location : p.location()) {
        for (const auto& line : location.line()) {
            const auto* f = functions[line.function_id()];
            REQUIRE(f != nullptr);
            frames.insert(string_at(p, f->name()) + " " + string_at(p, f->filename()) + ":" +
                          std::to_string(line.line()));
        }
    }
    return frames;
}

struct StoreRun {
    perftools::profiles::Profile profile;
    bool loaded_libdw = false;
};

// Runs the loader on a library at rate 1 with the debug cache at cache; LD_DEBUG=files tells
// whether the process loaded libdw (the dynamic loader reports every library it opens).
StoreRun run_with_store(const std::string& library, const std::string& cache) {
    std::string dir = make_dir("resolved-store");
    auto env = preload_env("", {{"GPROF_DEBUG_CACHE", cache},
                                {"GPROF_MEM_PROFILE_RATE", "1"},
                                {"GPROF_OUTPUT", dir + "/gprof"},
                                {"LD_DEBUG", "files"}});
    RunResult r = run({kSymbolPrograms + "/loader", library}, with_env(env));
    INFO(r.describe());
    REQUIRE(r.status == 0);
    for (const std::string& line : split_lines(r.err)) CHECK_FALSE(line.starts_with("gprof:"));
    return StoreRun{checked_heap_profile(dir), contains(r.err, "file=libdw.so.1")};
}

}  // namespace

TEST_CASE("resolved addresses are stored: a later process names them without reading DWARF",
          "[symbols][debug-cache]") {
    const std::string library = kSymbolPrograms + "/libsymplugin.so";
    std::string cache = make_dir("debug-cache") + "/cache";

    // First run: DWARF is read (libdw loaded) and the resolved addresses are stored by build ID.
    StoreRun first = run_with_store(library, cache);
    CHECK(first.loaded_libdw);
    check_plugin_frames(first.profile);
    const auto* plugin = mapping_named(first.profile, "libsymplugin.so");
    REQUIRE(plugin != nullptr);
    const std::string stored = cache + "/" + string_at(first.profile, plugin->build_id()) + ".sym";
    REQUIRE(fs::exists(stored));
    for (const auto& entry : fs::directory_iterator(cache))  // no temporary file left
        CHECK_FALSE(entry.path().filename().string().starts_with(".tmp"));

    // Second run: every address is answered from the stored tables; libdw is never loaded, and
    // the profile names exactly the same frames, files and lines.
    StoreRun second = run_with_store(library, cache);
    CHECK_FALSE(second.loaded_libdw);
    check_plugin_frames(second.profile);
    CHECK(named_frames(second.profile) == named_frames(first.profile));
    const auto* again = mapping_named(second.profile, "libsymplugin.so");
    REQUIRE(again != nullptr);
    CHECK(again->has_filenames());
    CHECK(again->has_line_numbers());
    CHECK(again->has_inline_frames());

    // The same build ID with its DWARF elsewhere (a .gnu_debuglink file): the stored table was
    // resolved from another file, so it is not used; DWARF is read again, and lines come.
    StoreRun debuglink = run_with_store(kSymbolPrograms + "/libsymplugin_debuglink.so", cache);
    CHECK(debuglink.loaded_libdw);
    check_plugin_frames(debuglink.profile);

    // The same build ID with no DWARF at all (stripped): names from .dynsym only, never the
    // stored files and lines.
    StoreRun stripped = run_with_store(kSymbolPrograms + "/libsymplugin_stripped.so", cache);
    const auto* bare = mapping_named(stripped.profile, "libsymplugin_stripped.so");
    REQUIRE(bare != nullptr);
    CHECK(bare->has_functions());
    CHECK_FALSE(bare->has_filenames());
    CHECK_FALSE(bare->has_line_numbers());

    // A damaged table (cut short) is not used: DWARF is read, lines come, and the table is
    // written again, whole, for the next process.
    // The debuglink run replaced the table with one for its own DWARF: this library's frames are
    // resolved again, and stored again.
    StoreRun back = run_with_store(library, cache);
    CHECK(back.loaded_libdw);
    CHECK(named_frames(back.profile) == named_frames(first.profile));
    uintmax_t whole = fs::file_size(stored);
    fs::resize_file(stored, whole / 2);
    StoreRun damaged = run_with_store(library, cache);
    CHECK(damaged.loaded_libdw);
    check_plugin_frames(damaged.profile);
    CHECK(fs::file_size(stored) == whole);
    StoreRun repaired = run_with_store(library, cache);
    CHECK_FALSE(repaired.loaded_libdw);
    CHECK(named_frames(repaired.profile) == named_frames(first.profile));
}

TEST_CASE("a module without DWARF is stored too: later processes skip its symbol table",
          "[symbols][debug-cache]") {
    // The stripped copy has only .dynsym (plugin_allocate is its one export, and names every
    // sampled frame of the library).
    const std::string library = kSymbolPrograms + "/libsymplugin_stripped.so";
    std::string cache = make_dir("debug-cache-nodwarf") + "/cache";
    auto names_in = [](const perftools::profiles::Profile& p, const std::string& suffix) {
        std::set<std::string> names;
        const auto* m = mapping_named(p, suffix);
        REQUIRE(m != nullptr);
        std::map<uint64_t, std::string> functions;
        for (const auto& f : p.function()) functions[f.id()] = string_at(p, f.name());
        for (const auto& location : p.location())
            if (location.mapping_id() == m->id())
                for (const auto& line : location.line()) names.insert(functions[line.function_id()]);
        return names;
    };

    StoreRun first = run_with_store(library, cache);
    CHECK(names_in(first.profile, "libsymplugin_stripped.so") ==
          std::set<std::string>{"plugin_allocate"});
    const auto* bare = mapping_named(first.profile, "libsymplugin_stripped.so");
    const std::string stored = cache + "/" + string_at(first.profile, bare->build_id()) + ".sym";
    REQUIRE(fs::exists(stored));
    struct stat written;
    REQUIRE(stat(stored.c_str(), &written) == 0);

    // A later process names the frames the same from the table (the unit test
    // "a module without DWARF is stored" shows the answers come from it), and leaves it as it is.
    StoreRun second = run_with_store(library, cache);
    CHECK(names_in(second.profile, "libsymplugin_stripped.so") ==
          std::set<std::string>{"plugin_allocate"});
    CHECK_FALSE(second.profile.mapping().empty());
    struct stat unchanged;
    REQUIRE(stat(stored.c_str(), &unchanged) == 0);
    CHECK(unchanged.st_ino == written.st_ino);

    // Another file with the same build ID (a copy: another inode) does not match the stored
    // table's key: its names come from its own .dynsym, and the table is written again for it.
    std::string copy = make_dir("nodwarf-copy") + "/libsymplugin_stripped.so";
    fs::copy_file(library, copy);
    StoreRun other = run_with_store(copy, cache);
    CHECK(names_in(other.profile, "libsymplugin_stripped.so") ==
          std::set<std::string>{"plugin_allocate"});
    struct stat rewritten;
    REQUIRE(stat(stored.c_str(), &rewritten) == 0);
    CHECK(rewritten.st_ino != written.st_ino);
}

TEST_CASE("the debug cache: the default directory, none, and a directory that cannot be made",
          "[symbols][debug-cache]") {
    const std::string library = kSymbolPrograms + "/libsymplugin_zdebuglink.so";
    const std::vector<std::string> argv = {kSymbolPrograms + "/loader", library};
    SECTION("$HOME/.cache/gprof by default, $XDG_CACHE_HOME/gprof where that is set") {
        std::string home = make_dir("home");
        perftools::profiles::Profile p =
            read_profile(run_for_profile(argv, make_dir("zdebug"), nullptr, {{"HOME", home}}));
        const auto* plugin = mapping_named(p, "libsymplugin_zdebuglink.so");
        REQUIRE(plugin != nullptr);
        const std::string name = string_at(p, plugin->build_id()) + ".debug";
        CHECK(fs::exists(home + "/.cache/gprof/" + name));
        CHECK(fs::exists(home + "/.cache/gprof/" + string_at(p, plugin->build_id()) + ".sym"));
        std::string xdg = make_dir("xdg");
        read_profile(run_for_profile(argv, make_dir("zdebug"), nullptr,
                                     {{"HOME", home}, {"XDG_CACHE_HOME", xdg}}));
        CHECK(fs::exists(xdg + "/gprof/" + name));
    }
    SECTION("none: lines still come, nothing is written") {
        std::string home = make_dir("home");
        perftools::profiles::Profile p = read_profile(run_for_profile(
            argv, make_dir("zdebug"), nullptr, {{"HOME", home}, {"GPROF_DEBUG_CACHE", "none"}}));
        check_plugin_frames(p);
        CHECK_FALSE(fs::exists(home + "/.cache"));
    }
    SECTION("a directory that cannot be made: one gprof: line, lines still come") {
        std::string dir = make_dir("zdebug");
        std::string blocker = dir + "/a-file";
        write_file(blocker, "not a directory\n");
        auto env = preload_env("", {{"GPROF_DEBUG_CACHE", blocker + "/cache"},
                                    {"GPROF_MEM_PROFILE_RATE", "1"},
                                    {"GPROF_OUTPUT", dir + "/gprof"}});
        RunResult r = run(argv, with_env(env));
        INFO(r.describe());
        REQUIRE(r.status == 0);
        std::vector<std::string> lines = split_lines(r.err);
        REQUIRE(lines.size() == 1);
        CHECK(
            lines[0].starts_with("gprof: GPROF_DEBUG_CACHE=" + blocker + "/cache: cannot create"));
        check_plugin_frames(checked_heap_profile(dir));
    }
}

TEST_CASE("a stripped library is named from .dynsym; code without a file keeps its address",
          "[symbols][moving]") {
    std::string dir = make_dir("symbols-stripped");
    perftools::profiles::Profile p = read_profile(run_for_profile(
        {kSymbolPrograms + "/loader", kSymbolPrograms + "/libsymplugin_stripped.so", "--jit"},
        dir));
    const auto* plugin = mapping_named(p, "libsymplugin_stripped.so");
    REQUIRE(plugin != nullptr);
    CHECK(plugin->has_functions());
    CHECK_FALSE(plugin->has_filenames());
    CHECK_FALSE(plugin->has_line_numbers());
    CHECK_FALSE(plugin->has_inline_frames());
    std::vector<FlatSample> samples = flatten(p);
    bool exported_named = false, jit_seen = false;
    for (const FlatSample& s : samples) {
        for (size_t i = 0; i < s.functions.size(); ++i)
            if (s.functions[i] == "plugin_allocate") exported_named = true;
        // loader_called_from_jit's caller is the anonymous executable page: an address with a
        // mapping of its own and no name.
        if (!s.functions.empty() && s.functions[0] == "loader_called_from_jit" &&
            s.mappings.size() > 1 && s.mappings[1] == "[anon]")
            jit_seen = true;
    }
    CHECK(exported_named);
#if defined(__x86_64__)
    CHECK(jit_seen);
#endif
}

namespace {

// The values of the function symbols of an ELF file (.symtab and .dynsym, versions dropped), by
// name, from readelf: to tell two names of one function (aliases) from two functions.
std::map<std::string, std::set<uint64_t>> function_symbols(const std::string& file) {
    std::map<std::string, std::set<uint64_t>> symbols;
    RunResult r = run({kReadelf, "-sW", file});
    for (const std::string& line : split_lines(r.out)) {
        std::istringstream in(line);
        std::string num, value, size, type, bind, vis, ndx, name;
        if (!(in >> num >> value >> size >> type >> bind >> vis >> ndx >> name)) continue;
        if (type != "FUNC" && type != "IFUNC") continue;
        name = name.substr(0, name.find('@'));
        symbols[name].insert(std::stoull(value, nullptr, 16));
    }
    return symbols;
}

bool aliases(const std::map<std::string, std::set<uint64_t>>& symbols, const std::string& a,
             const std::string& b) {
    auto x = symbols.find(a), y = symbols.find(b);
    if (x == symbols.end() || y == symbols.end()) return false;
    for (uint64_t v : x->second)
        if (y->second.count(v)) return true;
    return false;
}

}  // namespace

TEST_CASE("libc and libstdc++ addresses: gprof's symbols equal llvm-symbolizer's",
          "[symbols][llvm]") {
    REQUIRE_FALSE(kLlvmSymbolizer.empty());
    for (const char* library : {"libc.so.6", "libstdc++.so.6"}) {
        INFO(library);
        // 400 addresses spread over the library's code, symbolized by gprof's SymbolCache.
        RunResult r = run({kSymbolPrograms + "/symbolize_tool", library, "400"});
        INFO(r.describe());
        REQUIRE(r.status == 0);
        std::string module, build_id;
        std::vector<uint64_t> addresses;
        std::vector<std::vector<Frame>> ours;
        std::set<std::string> mangled;
        for (const std::string& line : split_lines(r.out)) {
            if (line.rfind("module ", 0) == 0) {
                module = line.substr(7);
            } else if (line.rfind("build_id ", 0) == 0) {
                build_id = line.substr(9);
            } else if (line.rfind("address ", 0) == 0) {
                addresses.push_back(std::stoull(line.substr(8), nullptr, 16));
                ours.emplace_back();
            } else if (line.rfind("frame ", 0) == 0) {
                std::vector<std::string> fields;
                std::istringstream in(line.substr(6));
                for (std::string field; std::getline(in, field, '\t');) fields.push_back(field);
                REQUIRE(fields.size() == 5);
                ours.back().push_back({fields[0], normal_path(fields[2]), fields[1],
                                       std::stoll(fields[3]), std::stoll(fields[4])});
                if (fields[1].rfind("_Z", 0) == 0) mangled.insert(fields[1]);
            }
        }
        REQUIRE(addresses.size() >= 390);
        std::vector<std::vector<Frame>> want = llvm_frames(module, addresses);
        std::map<std::string, std::string> llvm_spelling = llvm_demangled(mangled);
        // The symbols of the module and of its separate debug file (Debian's, by build ID).
        std::map<std::string, std::set<uint64_t>> symbols = function_symbols(module);
        if (build_id.size() > 2) {
            std::string debug_file = "/usr/lib/debug/.build-id/" + build_id.substr(0, 2) + "/" +
                                     build_id.substr(2) + ".debug";
            if (fs::exists(debug_file)) {
                for (auto& [name, values] : function_symbols(debug_file))
                    symbols[name].insert(values.begin(), values.end());
            }
        }
        size_t named = 0, with_lines = 0, differing = 0, spelled_differently = 0, clone_names = 0,
               alias_names = 0, named_only_by_gprof = 0;
        std::string report;
        for (size_t i = 0; i < addresses.size(); ++i) {
            const std::vector<Frame>& got = ours[i];
            if (!got.empty()) ++named;
            if (!got.empty() && got[0].line != 0) ++with_lines;
            bool same = got.size() == want[i].size();
            for (size_t f = 0; same && f < got.size(); ++f) {
                bool same_function = got[f].function == want[i][f].function;
                if (!same_function && llvm_spelling.count(got[f].system_name) &&
                    llvm_spelling[got[f].system_name] == want[i][f].function) {
                    same_function = true;  // GNU's and LLVM's demangler spellings
                    ++spelled_differently;
                }
                if (!same_function && f + 1 == got.size() &&
                    got[f].function.rfind(want[i][f].function + ".", 0) == 0) {
                    same_function = true;  // a GCC clone's symbol (documented)
                    ++clone_names;
                }
                if (!same_function && f + 1 == got.size() &&
                    aliases(symbols, got[f].system_name, want[i][f].function)) {
                    // Two names of one function ("newlocale", "__newlocale"): gprof prefers the
                    // public one, llvm-symbolizer the first by name (documented).
                    same_function = true;
                    ++alias_names;
                }
                // Without DWARF llvm-symbolizer reports no file and line 0, as gprof does.
                same = same_function && got[f].file == want[i][f].file &&
                       got[f].line == want[i][f].line &&
                       (got[f].line == 0 || got[f].start_line == want[i][f].start_line);
            }
            if (!same && want[i].empty() && got.size() == 1 && got[0].line == 0 &&
                symbols.count(got[0].system_name)) {
                // A function with a symbol but no DWARF (libgcc's soft-float helpers inside libc)
                // that llvm-symbolizer leaves unnamed (documented).
                same = true;
                ++named_only_by_gprof;
            }
            if (!same) {
                ++differing;
                char address[32];
                snprintf(address, sizeof address, "0x%llx",
                         static_cast<unsigned long long>(addresses[i]));
                report += std::string(address) + "\n  gprof:\n" + describe(got) +
                          "  llvm-symbolizer:\n" + describe(want[i]);
            }
        }
        INFO(report);
        INFO(addresses.size() << " addresses, " << named << " named, " << with_lines
                              << " with lines, " << differing << " differ; " << spelled_differently
                              << " demangler spellings; " << clone_names << " clone names; "
                              << alias_names << " aliases; " << named_only_by_gprof
                              << " named only by gprof");
        CHECK(named >= addresses.size() / 2);
        CHECK(alias_names <= addresses.size() / 10);
        CHECK(named_only_by_gprof <= addresses.size() / 20);
        if (std::string(library) == "libc.so.6") CHECK(with_lines >= addresses.size() / 2);
        CHECK(differing == 0);
        CHECK(clone_names <= addresses.size() / 20);
    }
}

namespace {

// The locations of program (test/symbols/inlines) in _start and in main, in profile p: each equal
// to llvm-symbolizer's frames; _start's with no file or line, and main's call of big_site at its
// marked line. start: _start's link address.
void check_start_and_main(const perftools::profiles::Profile& p, const std::string& program,
                          uint64_t start) {
    const perftools::profiles::Mapping* mapping = mapping_named(p, "/inlines");
    REQUIRE(mapping != nullptr);
    const std::vector<LoadSegment> segments = load_segments(program);
    std::vector<std::vector<Frame>> got;
    std::vector<uint64_t> addresses;
    size_t in_start = 0;
    for (const auto& location : p.location()) {
        if (location.mapping_id() != mapping->id()) continue;
        std::vector<Frame> frames = our_frames(p, location);
        if (frames.empty() ||
            (frames.back().function != "_start" && frames.back().function != "main"))
            continue;
        uint64_t link = 0;
        REQUIRE(to_link_address(segments, *mapping, location.address(), &link));
        if (frames.back().function == "_start") {
            ++in_start;
            CHECK(link >= start);
            CHECK(link < start + 64);
        }
        got.push_back(std::move(frames));
        addresses.push_back(link);
    }
    CHECK(in_start >= 1);  // the main thread's outermost frame
    std::vector<std::vector<Frame>> want = llvm_frames(program, addresses);
    const int64_t call = marked_line("inlines.cpp", "main_big_site");
    bool main_call_seen = false;
    for (size_t i = 0; i < got.size(); ++i) {
        INFO("0x" << std::hex << addresses[i] << std::dec << "\n  gprof:\n"
                  << describe(got[i]) << "  llvm-symbolizer:\n"
                  << describe(want[i]));
        REQUIRE(got[i].size() == want[i].size());
        for (size_t f = 0; f < got[i].size(); ++f) {
            CHECK(got[i][f].function == want[i][f].function);
            CHECK(got[i][f].file == want[i][f].file);
            CHECK(got[i][f].line == want[i][f].line);
        }
        const Frame& outer = got[i].back();
        if (outer.function == "_start") {
            CHECK(got[i].size() == 1);
            CHECK(outer.file == "");
            CHECK(outer.line == 0);
        } else if (outer.line == call) {
            CHECK(outer.file.ends_with("test/symbols/inlines.cpp"));
            main_call_seen = true;
        }
    }
    CHECK(main_call_seen);
}

}  // namespace

TEST_CASE("crt1's _start, in no unit's ranges or line sequences, has no file or line",
          "[symbols][llvm]") {
    REQUIRE_FALSE(kLlvmSymbolizer.empty());
    REQUIRE_FALSE(kNm.empty());
    const std::string program = kSymbolPrograms + "/inlines";
    // The premise: test/symbols/start_gap_tail.s's unit ends a sequence with a row of no length
    // just before _start, which libdw's line look-up would lend _start.
    RunResult nm = run({kNm, "--defined-only", program});
    REQUIRE(nm.status == 0);
    std::map<std::string, uint64_t> symbols;
    for (const std::string& line : split_lines(nm.out)) {
        std::istringstream fields(line);
        std::string address, type, name;
        if (fields >> address >> type >> name) symbols[name] = std::stoull(address, nullptr, 16);
    }
    REQUIRE(symbols.count("_start") == 1);
    REQUIRE(symbols.count("start_gap_tail") == 1);
    REQUIRE(symbols["start_gap_tail"] < symbols["_start"]);
    REQUIRE(symbols["_start"] - symbols["start_gap_tail"] <= 64);

    // Twice with one debug cache: resolved with libdw, then answered from the stored table.
    const std::string cache = make_dir("symbols-start-cache");
    for (int round = 0; round < 2; ++round) {
        INFO("round " << round);
        check_start_and_main(
            profile_of_inlines(make_dir("symbols-start"), {{"GPROF_DEBUG_CACHE", cache}}), program,
            symbols["_start"]);
        CHECK_FALSE(list_files(cache, ".sym").empty());
    }
}
