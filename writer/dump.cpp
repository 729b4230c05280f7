#include "writer/dump.h"

#include <unistd.h>

#include <new>
#include <string>

#include "base/config.h"
#include "base/log.h"
#include "record/contention.h"
#include "record/heap_profile.h"
#include "record/threads.h"
#include "writer/contention_profiles.h"
#include "writer/gzip.h"
#include "writer/heap_profile.h"
#include "writer/modules.h"
#include "writer/sink.h"
#include "writer/symbols.h"
#include "writer/thread_profiles.h"

namespace gprof::writer {
namespace {

// Symbol tables read for one dump serve the next ones too (a long-running process dumps often).
// Never destroyed: a dump at exit may run after static destructors.
SymbolCache& symbol_cache() {
    static SymbolCache* cache = new SymbolCache;
    return *cache;
}

// Writes one profile's file. A problem is reported unless *reported: an unwritable output
// directory gives one line per dump, not one per profile.
void write_profile(const char* name, const std::string& raw, unsigned seq, bool* reported) {
    const Config& c = config();
    std::string path = profile_file_path(c.output, getpid(), seq, name);
    std::string compressed, error;
    if (!gzip_compress(raw, &compressed, &error) ||
        !write_file_atomically(path, compressed, &error)) {
        if (!*reported) log::problem("cannot write %s: %s", path.c_str(), error.c_str());
        *reported = true;
        return;
    }
    log::info("wrote %s", path.c_str());
}

bool has_samples(const record::StackCounters& counters) {
    return counters.size() > 0 || counters.dropped() > 0;
}

bool heap_has_samples() {
    record::HeapProfile& heap = record::heap_profile();
    return heap.bucket_count() > 0 || heap.dropped() > 0;
}
bool always() { return true; }
bool threadcreate_has_samples() { return has_samples(record::thread_creations()); }
bool block_has_samples() { return has_samples(record::block_counters()); }
bool mutex_has_samples() { return has_samples(record::mutex_counters()); }

// Every profile kind a dump can write, in the order they are written. A profile with nothing in it
// is not written: a process that sampled no allocation, created no thread and waited on no lock
// leaves no file. The threads profile at exit would show only the exiting thread: only dumps on
// request write it, and last, so that its file tells that such a dump is complete.
using BuildFn = bool (*)(const ModuleSnapshot*, SymbolCache*, std::string*, std::string*);
struct ProfileKindEntry {
    uint32_t bit;
    const char* name;
    BuildFn build;
    bool (*has_samples)();
    bool at_exit;
};
constexpr ProfileKindEntry kProfileKinds[] = {
    {kProfileHeap, "heap", build_heap_profile, heap_has_samples, true},
    {kProfileThreadCreate, "threadcreate", build_threadcreate_profile, threadcreate_has_samples,
     true},
    {kProfileBlock, "block", build_block_profile, block_has_samples, true},
    {kProfileMutex, "mutex", build_mutex_profile, mutex_has_samples, true},
    {kProfileThreads, "threads", build_threads_profile, always, false},
};

}  // namespace

void write_dump(unsigned seq, DumpReason reason) {
    try {
        const Config& c = config();
        uint32_t wanted = 0;
        for (const ProfileKindEntry& kind : kProfileKinds) {
            if ((c.profiles & kind.bit) && (reason != DumpReason::Exit || kind.at_exit) &&
                kind.has_samples())
                wanted |= kind.bit;
        }
        if (wanted == 0) return;  // nothing to say: no module list read, no symbol looked up
        ModuleSnapshot modules;
        std::string error;
        if (!modules.capture(&error))
            log::problem("cannot read the module list (%s); profiles have no mappings",
                         error.c_str());
        bool reported = false;
        for (const ProfileKindEntry& kind : kProfileKinds) {
            if (!(wanted & kind.bit)) continue;
            std::string raw;
            if (kind.build(&modules, &symbol_cache(), &raw, &error))
                write_profile(kind.name, raw, seq, &reported);
            else
                log::problem("cannot build the %s profile: %s", kind.name, error.c_str());
        }
        symbol_cache().end_dump();
    } catch (const std::bad_alloc&) {
        log::problem("out of memory while writing profiles; dump %u skipped", seq);
    }
}

}  // namespace gprof::writer
