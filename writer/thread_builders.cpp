#include "writer/thread_builders.h"

#include <cstdio>
#include <map>
#include <vector>

#include "record/stack_table.h"
#include "record/threads.h"
#include "unwind/thread_stacks.h"
#include "pprof/profile_builder.h"

namespace gprof::writer {
namespace {

bool is_gprof_thread(pid_t tid) { return record::thread_registry().is_own(tid); }

}  // namespace

bool build_threads_profile(int dump_signal, const symbolize::ModuleSnapshot* modules,
                           symbolize::SymbolCache* symbols, std::string* out, std::string* error) {
    unwind::ThreadCensus census;
    std::vector<unwind::ThreadSnapshot> threads =
        unwind::capture_all_threads(is_gprof_thread, dump_signal, &census);

    // Go's goroutine profile: one sample per distinct (stack, labels), valued by how many share it.
    std::map<std::pair<std::vector<uintptr_t>, std::string>, int64_t> groups;
    size_t without_stack = 0;
    for (const unwind::ThreadSnapshot& t : threads) {
        if (t.depth == 0) {
            ++without_stack;
            continue;
        }
        ++groups[{std::vector<uintptr_t>(t.pcs, t.pcs + t.depth), std::string(t.name)}];
    }

    static constexpr pprof::ValueType kTypes[] = {{"goroutine", "count"}};
    pprof::ProfileBuilder builder(kTypes, {"goroutine", "count"}, 1, modules, symbols);
    builder.set_time_now();
    for (const auto& [key, count] : groups) {
        const pprof::StringLabel name[] = {{"thread_name", key.second}};
        builder.add_sample(key.first.data(), key.first.size(), &count, 1,
                           pprof::SampleLabels{name, {}});
    }
    if (without_stack != 0) {
        char note[256];
        snprintf(note, sizeof note,
                 "gprof: %zu of %zu threads have no stack here (%zu run with signal %d blocked, "
                 "%zu did not answer in time, %zu could not be walked)",
                 without_stack, census.threads, census.signal_blocked, census.signal,
                 census.no_answer,
                 without_stack - census.signal_blocked - census.no_answer);
        builder.add_comment(note);
    }
    return builder.build(out, error);
}

bool build_threadcreate_profile(const record::StackCounters& creations,
                                const record::StackTable& stacks,
                                const symbolize::ModuleSnapshot* modules,
                                symbolize::SymbolCache* symbols, std::string* out,
                                std::string* error) {
    const std::vector<record::StackCounts> counts = creations.snapshot();

    static constexpr pprof::ValueType kTypes[] = {{"threadcreate", "count"}};
    pprof::ProfileBuilder builder(kTypes, {"threadcreate", "count"}, 1, modules, symbols);
    builder.set_time_now();
    for (const record::StackCounts& c : counts) {
        uintptr_t pcs[record::StackTable::kMaxDepth];
        int depth = stacks.frames(c.stack_id, pcs, record::StackTable::kMaxDepth);
        int64_t count = c.count / record::StackCounters::kCountUnit;
        if (depth > 0 && count > 0) builder.add_sample(pcs, static_cast<size_t>(depth), &count, 1);
    }
    if (creations.dropped() != 0) {
        char note[160];
        snprintf(note, sizeof note, "gprof: %llu thread creations without a stack",
                 static_cast<unsigned long long>(creations.dropped()));
        builder.add_comment(note);
    }
    return builder.build(out, error);
}

}  // namespace gprof::writer
