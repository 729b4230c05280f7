// Source lines and inlined frames for code addresses, from DWARF, through elfutils' libdw.
//
// libdw is opened with dlopen("libdw.so.1", RTLD_LOCAL) the first time a dump needs it, never
// linked (why: docs/design.md, "Notes moved from the code"). The dumper thread holds the re-entry
// guard, so libdw's allocations go through gprof's malloc unsampled. Without libdw.so.1 the
// profile keeps the ELF symbol-table names of symbolize/symbols.h.
//
// libdw's state for a module is kept for one dump only (SymbolCache::end_dump destroys the
// DebugInfo): no descriptor of ours stays open between dumps, where a program's closefrom() could
// close it. Separate debug files are found as GDB finds them, never through debuginfod
// (docs/design.md, "Symbols"); a candidate whose build ID differs from the module's is refused.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gprof::symbolize {

class ElfImage;

// One frame of a code address: a function and a line in it. For an inlined call, the frames of one
// address run from the innermost inlined function to the function that was really called.
struct DebugFrame {
    std::string linkage_name;  // DW_AT_linkage_name (mangled) where present, else DW_AT_name
    std::string filename;      // the source file of line, "" if unknown
    int64_t line = 0;          // 0 if unknown
    int64_t start_line = 0;    // the function's DW_AT_decl_line, 0 if unknown
};

// Is libdw.so.1 usable? Opens it on the first call (thread-safe); false if it is missing or lacks
// an entry point gprof uses.
bool debug_info_library_available();

// The DWARF of one ELF file.
class DebugInfo {
  public:
    ~DebugInfo();
    DebugInfo(const DebugInfo&) = delete;
    DebugInfo& operator=(const DebugInfo&) = delete;

    // Opens path, an ELF file whose build ID is build_id ("" if it has none), and finds its DWARF.
    // search_dir is where its .gnu_debuglink is looked for (the directory of the file's real name,
    // which path may not be: /proc/self/map_files/...). Returns nullptr when libdw is missing or
    // the file has no DWARF anywhere. Never throws.
    static std::unique_ptr<DebugInfo> open(const std::string& path, const std::string& build_id,
                                           const std::string& search_dir) noexcept;

    // Where the DWARF of the ELF file in image (read from path) would come from: path itself when
    // it has .debug_* sections of its own, else the first separate debug file that exists where
    // open() would look (build_id and search_dir as for open()), else "" (surely no DWARF). Reads
    // only section headers and checks paths exist, so a dump of a program without debug
    // information never loads libdw (loading it and asking it about each module would be most of
    // a small program's at-exit dump). Never throws.
    static std::string source(const ElfImage& image, const std::string& path,
                              const std::string& build_id, const std::string& search_dir) noexcept;

    // The frames of link_address (an address as the linker assigned it: file virtual address),
    // innermost first. False when the DWARF does not cover it. frames may then still hold a line
    // from the line table with an empty function name (code without a DW_TAG_subprogram), but
    // never for an address outside the ranges of the compilation unit libdw finds for it.
    bool lookup(uint64_t link_address, std::vector<DebugFrame>* frames) noexcept;

    // The separate debug file the DWARF came from ("" when the module had its own). Its .symtab
    // names what a stripped module's .dynsym does not (static functions, assembly entry points).
    const std::string& separate_file() const { return separate_file_; }

  private:
    struct State;
    explicit DebugInfo(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
    std::string separate_file_;
};

}  // namespace gprof::symbolize
