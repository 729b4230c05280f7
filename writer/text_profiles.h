// Go's legacy text forms of the profiles (runtime/pprof's WriteTo with debug >= 1), which
// `go tool pprof` reads back: each record's values and return addresses on one line, then its
// frames as `#` comments, which readers skip. Values are the records' own, as Go writes them
// (the heap's sampled counts, which the reader un-samples from the rate in the header). Each ends
// with the process's memory map (`--- Memory map: ---` and /proc/self/maps, as gperftools' and
// Go's CPU profiles do), so readers know the mappings of the addresses and can name them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "record/heap_profile.h"
#include "record/stack_counters.h"
#include "record/stack_table.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"
#include "writer/thread_builders.h"

namespace gprof::writer {

// Appends `--- Memory map: ---` and the lines of /proc/self/maps.
void append_memory_map(std::string* out);

// Names the frames of a text profile's stacks; modules and symbols may be null (no names).
struct TextNames {
    const symbolize::ModuleSnapshot* modules;
    symbolize::SymbolCache* symbols;
};

// Go's writeHeapInternal: `heap profile: inuse_objects: inuse_bytes [alloc_objects: alloc_bytes]
// @ heap/<2*rate>`, one such line per bucket with its stack, then `memstats` (the
// `# runtime.MemStats` block).
void heap_text(record::HeapProfile& heap, const record::StackTable& stacks, int64_t rate,
               std::string_view memstats, const TextNames& names, std::string* out);

// Go's printCountCycleProfile: `--- contention:` (block) or `--- mutex:`, cycles/second (here
// 1e9: the delays are nanoseconds), then `<delay> <count> @ <stack>` per stack. The counts are
// un-sampled already, so no `sampling period` is given.
void contention_text(const record::StackCounters& counters, const record::StackTable& stacks,
                     bool mutex, const TextNames& names, std::string* out);

// Go's printCountProfile: `<name> profile: total N`, then `<count> @ <stack>` per stack, with a
// `# labels: {...}` line where the stack's threads carry labels.
struct CountRecord {
    std::vector<uintptr_t> pcs;
    int64_t count;
    std::vector<std::pair<std::string, std::string>> labels;
};
void count_text(std::string_view name, std::span<const CountRecord> records, const TextNames& names,
                std::string* out);

// Go's goroutine dump (debug=2) for threads: `goroutine <tid> [<state>, "<name>"]:` and every
// frame, innermost first, as `function()` and a tab-indented `file:line` (or module+offset).
void threads_dump_text(int dump_signal, const TextNames& names, std::string* out);

}  // namespace gprof::writer
