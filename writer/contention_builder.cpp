#include "writer/contention_builder.h"

#include <cstdio>
#include <vector>

#include "record/stack_table.h"
#include "pprof/profile_builder.h"

namespace gprof::writer {

bool build_contention_profile(const record::StackCounters& counters,
                              const record::StackTable& stacks, const char* what,
                              const symbolize::ModuleSnapshot* modules,
                              symbolize::SymbolCache* symbols, std::string* out,
                              std::string* error) {
    const std::vector<record::StackCounts> counts = counters.snapshot();

    static constexpr pprof::ValueType kTypes[] = {{"contentions", "count"},
                                                  {"delay", "nanoseconds"}};
    pprof::ProfileBuilder builder(kTypes, {"contentions", "count"}, 1, modules, symbols);
    builder.set_time_now();
    for (const record::StackCounts& c : counts) {
        uintptr_t pcs[record::StackTable::kMaxDepth];
        int depth = stacks.frames(c.stack_id, pcs, record::StackTable::kMaxDepth);
        if (depth == 0) continue;
        // Un-biased counts are fractional; like Go's BlockProfile, a kept event counts at least 1.
        int64_t count = (c.count + record::StackCounters::kCountUnit / 2) /
                        record::StackCounters::kCountUnit;
        const int64_t values[] = {count > 0 ? count : 1, c.value};
        builder.add_sample(pcs, static_cast<size_t>(depth), values, 2);
    }
    if (counters.dropped() != 0) {
        char note[160];
        snprintf(note, sizeof note, "gprof: %llu %s events without a stack",
                 static_cast<unsigned long long>(counters.dropped()), what);
        builder.add_comment(note);
    }
    return builder.build(out, error);
}

}  // namespace gprof::writer
