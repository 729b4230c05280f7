// A snapshot of the code mapped into this process: the profile's Mapping messages.
//
// pprof wants, for each executable mapping, the exact start, limit and file offset of
// /proc/self/maps (it derives the load bias from them: start - offset + segment offset - vaddr),
// the path and the GNU build ID, with the main executable first. The snapshot is taken per dump, in
// the dumper thread, outside every lock of gprof's: it walks the loader's list with
// dl_iterate_phdr, which takes the loader's own lock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gprof::symbolize {

struct Module {
    uintptr_t start = 0;  // first byte of the mapping
    uintptr_t limit = 0;  // one past its last byte
    uint64_t file_offset = 0;
    // A filesystem path, or a bracketed name for what is not a file: "[vdso]", "[anon]" (anonymous
    // executable memory, e.g. a JIT), "[anon:name]".
    std::string path;
    std::string build_id;  // lowercase hex; "" if unknown
    bool is_main = false;  // part of the main executable
    bool is_file = false;  // path names a file on disk
    bool deleted = false;  // the file was deleted or replaced after it was mapped
};

// The executable mappings described by the text of /proc/<pid>/maps, in file order, with path,
// is_file and deleted filled in (not build_id or is_main). Exposed for the tests.
std::vector<Module> parse_executable_mappings(std::string_view maps_text);

// Remembers the mappings of a library the program is about to dlclose, so that the samples it left
// keep their mapping (and so their names, from the file that is still on disk) in later dumps.
// Called by gprof's dlclose (preload/dlclose_shim.cpp) before the real one, outside every lock
// of gprof's, with the handle dlopen returned. At most kMaxRetiredModules are kept (the oldest are
// forgotten first). Never throws.
void retire_library(void* handle) noexcept;
constexpr size_t kMaxRetiredModules = 512;

class ModuleSnapshot {
  public:
    // Reads /proc/self/maps and the loader's list of objects, and adds the retired mappings of
    // dlclose'd libraries where no current mapping overlaps them (a library loaded since at the
    // same addresses wins: its code is what runs there now). On failure returns false, sets *error,
    // and leaves the snapshot empty (addresses then belong to no mapping). Never throws.
    bool capture(std::string* error) noexcept;

    // For tests and for callers that know their modules: replaces the list.
    void assign(std::vector<Module> modules);

    // The module containing address, or nullptr.
    const Module* find(uintptr_t address) const;

    // Sorted by start address. Index into this vector is a module's identity in a ProfileBuilder.
    const std::vector<Module>& modules() const { return modules_; }

  private:
    std::vector<Module> modules_;
};

}  // namespace gprof::symbolize
