// Function names for code addresses, from the ELF symbol tables of the process's modules.
//
// Each module file is read once (mapped, parsed, unmapped) and its function symbols kept in a
// compact table, cached by path and build ID so repeated dumps do not read it again; a file that is
// replaced gets a new build ID and so a new table. A file that is missing, unreadable or not what
// was mapped (its build ID differs) gives no names: the profile keeps the address and the mapping.
// The vDSO has no file; its image is read from memory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "writer/modules.h"

namespace gprof::writer {

class SymbolTable;

struct FunctionName {
    std::string name;         // demangled, for people
    std::string system_name;  // as in the symbol table (mangled for C++)
};

class SymbolCache {
  public:
    SymbolCache();
    ~SymbolCache();
    SymbolCache(const SymbolCache&) = delete;
    SymbolCache& operator=(const SymbolCache&) = delete;

    // The function containing address, which lies in module. False if none is known. Never
    // throws. Thread-safe (a dump and an HTTP request may symbolize at the same time); loads a
    // table under the cache's lock, which is never held across a call into the loader.
    bool lookup(const Module& module, uintptr_t address, FunctionName* out) noexcept;

    // How many module tables are cached (tests check that repeated lookups reuse them).
    size_t cached_tables();

  private:
    SymbolTable* table_for(const Module& module);

    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<SymbolTable>> tables_;  // key: path, NUL, build ID
};

}  // namespace gprof::writer
