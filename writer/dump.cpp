#include "writer/dump.h"

#include <unistd.h>

#include <new>
#include <string>

#include "preload/config.h"
#include "preload/log.h"
#include "writer/gzip.h"
#include "writer/heap_profile.h"
#include "writer/modules.h"
#include "writer/sink.h"
#include "writer/symbols.h"

namespace gprof::writer {
namespace {

// Symbol tables read for one dump serve the next ones too (a long-running process dumps often).
// Never destroyed: a dump at exit may run after static destructors.
SymbolCache& symbol_cache() {
    static SymbolCache* cache = new SymbolCache;
    return *cache;
}

void write_profile(const char* name, const std::string& raw, unsigned seq) {
    const Config& c = config();
    std::string path = profile_file_path(c.output, getpid(), seq, name);
    std::string compressed, error;
    if (!gzip_compress(raw, &compressed, &error) ||
        !write_file_atomically(path, compressed, &error)) {
        log::problem("cannot write %s: %s", path.c_str(), error.c_str());
        return;
    }
    log::info("wrote %s", path.c_str());
}

}  // namespace

void write_dump(unsigned seq) {
    try {
        const Config& c = config();
        ModuleSnapshot modules;
        std::string error;
        if (!modules.capture(&error))
            log::problem("cannot read the module list (%s); profiles have no mappings",
                         error.c_str());
        if (c.profiles & kProfileHeap) {
            std::string raw;
            if (build_heap_profile(&modules, &symbol_cache(), &raw, &error))
                write_profile("heap", raw, seq);
            else
                log::problem("cannot build the heap profile: %s", error.c_str());
        }
        symbol_cache().end_dump();
    } catch (const std::bad_alloc&) {
        log::problem("out of memory while writing profiles; dump %u skipped", seq);
    }
}

}  // namespace gprof::writer
