#include "symbolize/debug_info.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "base/files.h"
#include "symbolize/debug_cache.h"
#include "symbolize/elf_file.h"

namespace gprof::symbolize {
namespace {

// The entry points of libdw.so.1 gprof uses, found with dlsym. The headers give only their types:
// nothing here refers to libdw's symbols, so linking adds no NEEDED entry.
struct Libdw {
// clang-format off
#define GPROF_LIBDW_FUNCTIONS(X)                                                                   \
    X(dwfl_begin) X(dwfl_end) X(dwfl_report_begin) X(dwfl_report_elf) X(dwfl_report_end)           \
    X(dwfl_module_getdwarf) X(dwfl_module_addrdie) X(dwfl_module_getsrc) X(dwfl_lineinfo)           \
    X(dwarf_tag) X(dwarf_attr) X(dwarf_attr_integrate) X(dwarf_formstring) X(dwarf_formudata)       \
    X(dwarf_getsrcfiles) X(dwarf_filesrc) X(dwarf_dieoffset) X(dwarf_child) X(dwarf_siblingof)      \
    X(dwarf_ranges)
// clang-format on
#define GPROF_LIBDW_MEMBER(name) decltype(&::name) name = nullptr;
    GPROF_LIBDW_FUNCTIONS(GPROF_LIBDW_MEMBER)
#undef GPROF_LIBDW_MEMBER
};

Libdw g_libdw;
bool g_libdw_ok = false;
std::once_flag g_libdw_once;

void load_libdw() {
    void* lib = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return;
    bool complete = true;
#define GPROF_LIBDW_RESOLVE(name)                                          \
    g_libdw.name = reinterpret_cast<decltype(&::name)>(dlsym(lib, #name)); \
    complete = complete && g_libdw.name != nullptr;
    GPROF_LIBDW_FUNCTIONS(GPROF_LIBDW_RESOLVE)
#undef GPROF_LIBDW_RESOLVE
    // The library stays loaded (a dlclose could unmap code a Dwfl still points into).
    g_libdw_ok = complete;
}

// The file libdw is to read for the ELF file at path, which must carry this build ID (an empty
// build_id accepts any ELF file): path itself, or its inflated copy in the debug cache. "" when
// path is not such a file.
std::string file_to_read(const std::string& path, const std::string& build_id,
                         DebugCache::Role role) {
    MappedFile file;
    std::string ignored;
    if (!file.open(path, &ignored)) return "";
    ElfImage image(file.data(), file.size());
    if (!image.valid() || (!build_id.empty() && build_id_of_image(image) != build_id)) return "";
    return debug_cache().file_for(path, image, role);
}

// What the callbacks below need to know about the module being opened. Set for the duration of
// DebugInfo::open, which makes libdw look for the debug file (and a dwz file) right away.
struct OpenContext {
    std::string build_id;
    std::string search_dir;
    std::string found;  // the separate debug file, once found
};
thread_local OpenContext* t_open_context = nullptr;

int no_elf(Dwfl_Module*, void**, const char*, Dwarf_Addr, char**, Elf**) {
    return -1;
}

int candidate(const std::string& path, const std::string& build_id, char** found_name) {
    std::string file = file_to_read(path, build_id, DebugCache::Role::DebugFile);
    if (file.empty()) return -1;
    int fd = base::open_read_only(file.c_str());  // libdw reads it for the whole symbolization
    if (fd != -1) *found_name = strdup(file.c_str());  // libdw frees it
    return fd;
}

// Where a module's separate debug file may be, in the order GDB looks: by build ID under
// /usr/lib/debug/.build-id, then by its .gnu_debuglink name (maybe null) in the module's
// directory, in .debug/ there, and under /usr/lib/debug.
std::vector<std::string> separate_debug_paths(const std::string& build_id, const char* debuglink,
                                              const std::string& dir) {
    std::vector<std::string> paths;
    if (build_id.size() > 2)
        paths.push_back("/usr/lib/debug/.build-id/" + build_id.substr(0, 2) + "/" +
                        build_id.substr(2) + ".debug");
    if (debuglink != nullptr && debuglink[0] != '\0' && std::strchr(debuglink, '/') == nullptr) {
        paths.push_back(dir + "/" + debuglink);
        paths.push_back(dir + "/.debug/" + debuglink);
        paths.push_back("/usr/lib/debug" + dir + "/" + debuglink);
    }
    return paths;
}

// libdwfl's find_debuginfo callback: returns a descriptor of the separate debug file, or -1.
// Called for the module's debug file (debuglink_file is its .gnu_debuglink name, maybe null) and
// for a dwz file (debuglink_file is the .gnu_debugaltlink path, crc 0).
int find_debug_file(Dwfl_Module*, void**, const char*, Dwarf_Addr, const char*,
                    const char* debuglink_file, GElf_Word debuglink_crc, char** found_name) {
    OpenContext* context = t_open_context;
    if (context == nullptr) return -1;
    try {
        if (debuglink_file != nullptr && debuglink_crc == 0 && debuglink_file[0] == '/') {
            // A dwz file: Debian's paths are absolute. Its build ID is checked by libdw.
            return candidate(debuglink_file, "", found_name);
        }
        const std::string& id = context->build_id;
        for (std::string& path : separate_debug_paths(id, debuglink_file, context->search_dir)) {
            // A debuglink file is checked against the module's build ID where it has one; without
            // one it is trusted by name, as GDB does when it skips the CRC.
            int fd = candidate(path, id, found_name);
            if (fd != -1) {
                context->found = std::move(path);
                return fd;
            }
        }
    } catch (...) {
    }
    return -1;
}

const char* die_name(Dwarf_Die* die) {
    Dwarf_Attribute attr;
    // The linkage (mangled) name, following DW_AT_abstract_origin and DW_AT_specification, as
    // llvm-symbolizer does; C functions and some C++ ones (inlined constructors) have only a name.
    for (int name : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name, DW_AT_name}) {
        const char* text = g_libdw.dwarf_formstring(g_libdw.dwarf_attr_integrate(die, name, &attr));
        if (text != nullptr) return text;
    }
    return nullptr;
}

int64_t decl_line(Dwarf_Die* die) {
    Dwarf_Attribute attr;
    Dwarf_Word value = 0;
    if (g_libdw.dwarf_formudata(g_libdw.dwarf_attr_integrate(die, DW_AT_decl_line, &attr),
                                &value) != 0)
        return 0;
    return static_cast<int64_t>(value);
}

// A file name of the line table made absolute, as llvm-symbolizer reports it: a relative one
// (a compiler run on a relative path, as meson and make do) is relative to the unit's
// DW_AT_comp_dir.
std::string absolute_file(const char* file, const char* comp_dir) {
    if (file == nullptr) return "";
    if (file[0] == '/' || comp_dir == nullptr || comp_dir[0] == '\0') return file;
    std::string path = comp_dir;
    if (path.back() != '/') path.push_back('/');
    return path + file;
}

bool is_function(int tag) {
    return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
           tag == DW_TAG_entry_point;
}

}  // namespace

bool debug_info_library_available() {
    std::call_once(g_libdw_once, load_libdw);
    return g_libdw_ok;
}

// The functions of one compilation unit by address: every DW_TAG_subprogram and
// DW_TAG_inlined_subroutine with its address ranges and the function DIE around it, and the unit's
// own ranges. Built by one walk of the unit's DIEs the first time an address falls in it. (libdw's
// dwarf_getscopes walks the unit from its start at every look-up, far slower on big units such as
// libc's.)
struct FunctionIndex {
    struct Function {
        Dwarf_Die die;
        int parent;  // index of the enclosing function, -1 for an outermost one
        int depth;   // 0 for an outermost one
    };
    struct Range {
        uint64_t low, high;  // [low, high)
        int function;
    };
    std::vector<Function> functions;
    std::vector<Range> ranges;  // sorted by low, then by depth (outer first)
    // The unit's DW_AT_ranges or DW_AT_low_pc/DW_AT_high_pc, [low, high); empty if it states none.
    std::vector<std::pair<uint64_t, uint64_t>> unit_ranges;

    void build(Dwarf_Die* cu) {
        Dwarf_Addr base = 0, low = 0, high = 0;
        ptrdiff_t offset = 0;
        while ((offset = g_libdw.dwarf_ranges(cu, offset, &base, &low, &high)) > 0)
            if (high > low) unit_ranges.emplace_back(low, high);
        Dwarf_Die child;
        if (g_libdw.dwarf_child(cu, &child) == 0) walk(&child, -1, 0);
        std::stable_sort(ranges.begin(), ranges.end(), [this](const Range& a, const Range& b) {
            if (a.low != b.low) return a.low < b.low;
            return functions[a.function].depth < functions[b.function].depth;
        });
    }

    // The DIEs from *die on and their siblings, with their children. Bounded depth: DWARF from a
    // hostile file must not overflow the stack.
    void walk(Dwarf_Die* die, int parent, int nesting) {
        if (nesting > 256) return;
        Dwarf_Die current = *die;
        do {
            int tag = g_libdw.dwarf_tag(&current);
            int inner_parent = parent;
            if (is_function(tag)) {
                int index = static_cast<int>(functions.size());
                int depth = parent < 0 ? 0 : functions[parent].depth + 1;
                bool has_range = false;
                Dwarf_Addr base = 0, low = 0, high = 0;
                ptrdiff_t offset = 0;
                while ((offset = g_libdw.dwarf_ranges(&current, offset, &base, &low, &high)) > 0) {
                    if (high > low) {
                        ranges.push_back({low, high, index});
                        has_range = true;
                    }
                }
                if (has_range) {
                    functions.push_back({current, parent, depth});
                    inner_parent = index;
                }
            }
            Dwarf_Die child;
            if (g_libdw.dwarf_child(&current, &child) == 0) walk(&child, inner_parent, nesting + 1);
        } while (g_libdw.dwarf_siblingof(&current, &current) == 0);
    }

    // Whether the unit's own ranges hold address (true when it states none: nothing to go by).
    bool in_unit(uint64_t address) const {
        if (unit_ranges.empty()) return true;
        return std::any_of(unit_ranges.begin(), unit_ranges.end(), [address](const auto& r) {
            return address >= r.first && address < r.second;
        });
    }

    // The innermost function whose ranges hold address, or -1.
    int innermost(uint64_t address) const {
        auto after = std::upper_bound(ranges.begin(), ranges.end(), address,
                                      [](uint64_t a, const Range& r) { return a < r.low; });
        // Ranges of inlined calls lie inside a range of their outermost function, which starts at
        // or before them: look back until an outermost function's range.
        int best = -1;
        while (after != ranges.begin()) {
            --after;
            const Function& function = functions[after->function];
            if (address < after->high && (best < 0 || function.depth > functions[best].depth))
                best = after->function;
            if (function.depth == 0) break;
        }
        return best;
    }
};

struct DebugInfo::State {
    Dwfl* dwfl = nullptr;
    Dwfl_Module* module = nullptr;
    std::map<Dwarf_Off, FunctionIndex> units;  // by the unit DIE's offset
    ~State() {
        if (dwfl != nullptr) g_libdw.dwfl_end(dwfl);
    }
};

DebugInfo::DebugInfo(std::unique_ptr<State> state) : state_(std::move(state)) {}
DebugInfo::~DebugInfo() = default;

std::string DebugInfo::source(const ElfImage& image, const std::string& path,
                              const std::string& build_id, const std::string& search_dir) noexcept {
    try {
        std::string debuglink;
        for (size_t i = 0; i < image.section_count(); ++i) {
            Elf64_Shdr section;
            if (!image.section_header(i, &section)) break;
            std::string_view name = image.section_name(section);
            if (name.starts_with(".debug_") || name.starts_with(".zdebug_")) return path;
            if (name == ".gnu_debuglink" && section.sh_type != SHT_NOBITS) {
                const uint8_t* text = image.bytes(section.sh_offset, section.sh_size);
                const void* end = text ? std::memchr(text, '\0', section.sh_size) : nullptr;
                if (end != nullptr)
                    debuglink.assign(reinterpret_cast<const char*>(text),
                                     static_cast<const uint8_t*>(end) - text);
            }
        }
        for (const std::string& candidate : separate_debug_paths(
                 build_id, debuglink.empty() ? nullptr : debuglink.c_str(), search_dir)) {
            if (access(candidate.c_str(), R_OK) == 0) return candidate;
        }
        return "";
    } catch (...) {
        return path;  // cannot tell: libdw may look
    }
}

std::unique_ptr<DebugInfo> DebugInfo::open(const std::string& path, const std::string& build_id,
                                           const std::string& search_dir) noexcept {
    if (!debug_info_library_available()) return nullptr;
    try {
        static const Dwfl_Callbacks callbacks = {no_elf, find_debug_file, nullptr, nullptr};
        auto state = std::make_unique<State>();
        state->dwfl = g_libdw.dwfl_begin(&callbacks);
        if (state->dwfl == nullptr) return nullptr;
        // A module whose own DWARF is compressed is read from its inflated copy: the same ELF
        // file, at the same link-time addresses.
        std::string file = file_to_read(path, "", DebugCache::Role::Module);
        if (file.empty()) return nullptr;
        int fd = base::open_read_only(file.c_str());  // libdw reads it for the whole symbolization
        if (fd == -1) return nullptr;
        OpenContext context{build_id, search_dir, {}};
        t_open_context = &context;
        struct Reset {
            ~Reset() { t_open_context = nullptr; }
        } reset;
        g_libdw.dwfl_report_begin(state->dwfl);
        // Base 0: libdw's addresses are then the file's link-time addresses, for executables and
        // for position-independent code alike. libdw owns fd from here on.
        state->module = g_libdw.dwfl_report_elf(state->dwfl, "module", file.c_str(), fd, 0, false);
        if (state->module == nullptr) {
            close(fd);
            return nullptr;
        }
        g_libdw.dwfl_report_end(state->dwfl, nullptr, nullptr);
        Dwarf_Addr bias = 0;
        // Finds the DWARF now, while the callbacks know the module.
        if (g_libdw.dwfl_module_getdwarf(state->module, &bias) == nullptr) return nullptr;
        std::unique_ptr<DebugInfo> info(new DebugInfo(std::move(state)));
        info->separate_file_ = std::move(context.found);
        return info;
    } catch (...) {
        return nullptr;
    }
}

bool DebugInfo::lookup(uint64_t link_address, std::vector<DebugFrame>* frames) noexcept {
    frames->clear();
    try {
        Dwfl_Module* module = state_->module;
        Dwarf_Addr bias = 0;
        // libdwfl gives an address between units to the unit before it, and its line look-up can
        // then lend it that unit's last row: a row of no length that ends a sequence (GCC writes
        // them) sorts after the end_sequence at its address. An address outside the unit's own
        // ranges (crt1's _start after main) has no line here, as for llvm-symbolizer.
        Dwarf_Die* cu = g_libdw.dwfl_module_addrdie(module, link_address, &bias);
        if (cu == nullptr) return false;
        auto [entry, inserted] = state_->units.try_emplace(g_libdw.dwarf_dieoffset(cu));
        if (inserted) entry->second.build(cu);
        FunctionIndex* index = &entry->second;
        if (!index->in_unit(link_address - bias)) return false;
        Dwarf_Attribute comp_dir_attr;
        const char* comp_dir =
            g_libdw.dwarf_formstring(g_libdw.dwarf_attr(cu, DW_AT_comp_dir, &comp_dir_attr));
        DebugFrame innermost;
        if (Dwfl_Line* line = g_libdw.dwfl_module_getsrc(module, link_address)) {
            int line_number = 0;
            const char* file =
                g_libdw.dwfl_lineinfo(line, nullptr, &line_number, nullptr, nullptr, nullptr);
            innermost.filename = absolute_file(file, comp_dir);
            innermost.line = line_number;
        }
        int function = index->innermost(link_address - bias);
        if (function < 0) {
            if (innermost.line == 0 && innermost.filename.empty()) return false;
            frames->push_back(std::move(innermost));  // a line, but no function
            return false;
        }
        Dwarf_Files* files = nullptr;
        if (g_libdw.dwarf_getsrcfiles(cu, &files, nullptr) != 0) files = nullptr;

        DebugFrame frame = std::move(innermost);
        bool have_function = false;
        for (int i = function; i >= 0; i = index->functions[i].parent) {
            Dwarf_Die* die = &index->functions[i].die;
            int tag = g_libdw.dwarf_tag(die);
            const char* name = die_name(die);
            frame.linkage_name = name != nullptr ? name : "";
            frame.start_line = decl_line(die);
            frames->push_back(frame);
            have_function = true;
            if (tag != DW_TAG_inlined_subroutine) break;
            // The next frame out is the caller of this inlined function, at the line of the call.
            DebugFrame caller;
            Dwarf_Attribute attr;
            Dwarf_Word value = 0;
            if (files != nullptr &&
                g_libdw.dwarf_formudata(g_libdw.dwarf_attr(die, DW_AT_call_file, &attr), &value) ==
                    0) {
                caller.filename =
                    absolute_file(g_libdw.dwarf_filesrc(files, value, nullptr, nullptr), comp_dir);
            }
            if (g_libdw.dwarf_formudata(g_libdw.dwarf_attr(die, DW_AT_call_line, &attr), &value) ==
                0)
                caller.line = static_cast<int64_t>(value);
            frame = std::move(caller);
        }
        if (!have_function) {
            frames->push_back(std::move(frame));
            return false;
        }
        return true;
    } catch (...) {
        frames->clear();
        return false;
    }
}

}  // namespace gprof::symbolize
