// Source lines and inlined frames for code addresses, from DWARF, through elfutils' libdw.
//
// How libdw gets into the process: it is opened with dlopen("libdw.so.1", RTLD_LOCAL) the first
// time a dump needs it, never linked. Linking would add NEEDED entries (libdw, libelf, libz,
// liblzma, libbz2) that a host program could clash with, and would load them into every profiled
// program even when no profile is ever written; RTLD_LOCAL keeps their names out of the program's
// global scope. A helper process would isolate libdw's crashes but cost a fork and exec at every
// dump of a program that may be large, and would read the files of a process whose deleted
// executable only it can see (/proc/self/map_files). The dumper thread holds the re-entry guard, so
// libdw's own allocations go through gprof's malloc unsampled. Without libdw.so.1 (Debian package
// libdw1) the profile keeps the ELF symbol-table names of symbolize/symbols.h.
//
// libdw's state for a module (the parsed DWARF, the mapped debug file, its descriptors) is kept for
// one dump only: SymbolCache::end_dump destroys the DebugInfo. What was resolved is cached by the
// caller (SymbolCache), so a repeated dump of the same addresses never opens libdw's files again,
// and no descriptor of ours stays open between dumps where a program's closefrom() could close it
// under us.
//
// Separate debug files are found as GDB does (and with no network look-up: debuginfod is never
// asked, even when DEBUGINFOD_URLS is set): the module's own .debug_* sections; then by build ID,
// /usr/lib/debug/.build-id/xx/yyyy.debug (Debian's -dbgsym and -dbg packages); then by
// .gnu_debuglink in the module's directory, its .debug/ subdirectory and under /usr/lib/debug. A
// candidate whose build ID differs from the module's is refused.
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
    // information never loads libdw (loading it and asking it about each module cost about 2 ms of
    // each at-exit dump of /bin/true here, a third of it). Never throws.
    static std::string source(const ElfImage& image, const std::string& path,
                              const std::string& build_id, const std::string& search_dir) noexcept;

    // The frames of link_address (an address as the linker assigned it: file virtual address),
    // innermost first. False when the DWARF does not cover it. frames may then still hold a line
    // from the line table with an empty function name (code without a DW_TAG_subprogram).
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
