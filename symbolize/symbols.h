// Function names, source files and lines for code addresses, from the modules' DWARF (through
// libdw, symbolize/debug_info.h) and, where there is none, from their ELF symbol tables.
//
// Each module file is read once and its function symbols kept in a compact table, cached by path
// and build ID. A file that is missing, unreadable or not what was mapped (another build ID) gives
// no names: the profile keeps the address and the mapping. The vDSO's image is read from memory.
//
// Resolved addresses are cached per module (names interned once per table) and bounded by
// kMaxResolvedBytes (an estimate; past it, every table starts again). libdw's state is kept only
// until end_dump(), which also stores what the addresses resolved to on disk
// (symbolize/resolved_store.h), for later processes to answer without loading libdw.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "symbolize/modules.h"

namespace gprof::symbolize {

class DebugCache;
class SymbolTable;

struct FunctionName {
    std::string name;         // demangled, for people
    std::string system_name;  // as in the symbol table (mangled for C++)
};

// One frame of an address: a function and a line in it (innermost inlined function first).
struct SourceFrame {
    FunctionName function;
    std::string filename;    // "" if unknown
    int64_t line = 0;        // 0 if unknown
    int64_t start_line = 0;  // the line the function is declared on, 0 if unknown
};

class SymbolCache {
  public:
    // max_resolved_bytes: the bound on the cache of resolved addresses (tests make it small).
    // store: where resolved addresses are stored for later processes (symbolize/resolved_store.h);
    // nullptr: the process's debug cache (GPROF_DEBUG_CACHE).
    explicit SymbolCache(size_t max_resolved_bytes = kMaxResolvedBytes,
                         DebugCache* store = nullptr);
    ~SymbolCache();
    SymbolCache(const SymbolCache&) = delete;
    SymbolCache& operator=(const SymbolCache&) = delete;

    // The function containing address, which lies in module. False if none is known. Never
    // throws. Thread-safe (a dump and an HTTP request may symbolize at the same time); loads a
    // table under the cache's lock, which is never held across a call into the loader.
    bool lookup(const Module& module, uintptr_t address, FunctionName* out) noexcept;

    // The frames of address (in module), innermost first: from DWARF where the module has it
    // (*from_dwarf set), else one frame named from the symbol table. False, with *out empty, if
    // nothing names it. Never throws; thread-safe like lookup.
    bool symbolize(const Module& module, uintptr_t address, std::vector<SourceFrame>* out,
                   bool* from_dwarf) noexcept;

    // Ends a dump: drops libdw's state (parsed DWARF, mapped files, descriptors); the resolved
    // addresses stay cached, and are stored for later processes.
    void end_dump() noexcept;

    // Bytes the cached resolved addresses take (an estimate), for tests and the benchmark.
    size_t resolved_bytes();

    static constexpr size_t kMaxResolvedBytes = size_t{64} << 20;

    // How many module tables are cached (tests check that repeated lookups reuse them).
    size_t cached_tables();
    // How many addresses were answered from stored tables, not resolved here (tests).
    size_t stored_answers();

  private:
    SymbolTable* table_for(const Module& module);

    std::mutex mutex_;
    bool libdw_tried_ = false;  // debug_info_library_available() was called
    std::map<std::string, std::unique_ptr<SymbolTable>> tables_;  // key: path, NUL, build ID
    size_t resolved_total_ = 0;  // the sum of the tables' resolved_bytes()
    size_t max_resolved_bytes_;
    DebugCache* store_;
};

}  // namespace gprof::symbolize
