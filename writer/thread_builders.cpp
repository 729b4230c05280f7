#include "writer/thread_builders.h"

#include <cstdio>
#include <map>
#include <tuple>
#include <vector>

#include "record/labels.h"
#include "record/stack_table.h"
#include "record/threads.h"
#include "unwind/thread_stacks.h"
#include "pprof/profile_builder.h"

namespace gprof::writer {
namespace {

bool is_gprof_thread(pid_t tid) { return record::thread_registry().is_own(tid); }

}  // namespace

ThreadGroups group_threads(int dump_signal) {
    ThreadGroups result;
    std::vector<unwind::ThreadSnapshot> threads =
        unwind::capture_all_threads(is_gprof_thread, dump_signal, &result.census);

    // Go's goroutine profile: one sample per distinct (stack, labels), valued by how many share it.
    using Labels = std::vector<std::pair<std::string, std::string>>;
    std::map<std::tuple<std::vector<uintptr_t>, std::string, Labels>, int64_t> groups;
    Labels labels;
    for (const unwind::ThreadSnapshot& t : threads) {
        if (t.depth == 0) {
            ++result.without_stack;
            continue;
        }
        record::label_set_pairs(record::label_set_of_thread(t.tid), &labels);
        ++groups[{std::vector<uintptr_t>(t.pcs, t.pcs + t.depth), std::string(t.name), labels}];
    }
    result.threads = threads.size();
    for (auto& [key, count] : groups)
        result.groups.push_back(
            ThreadGroup{std::get<0>(key), std::get<1>(key), std::get<2>(key), count});
    return result;
}

bool build_threads_profile(int dump_signal, const symbolize::ModuleSnapshot* modules,
                           symbolize::SymbolCache* symbols, std::string* out, std::string* error) {
    const ThreadGroups threads = group_threads(dump_signal);
    const unwind::ThreadCensus& census = threads.census;

    static constexpr pprof::ValueType kTypes[] = {{"goroutine", "count"}};
    pprof::ProfileBuilder builder(kTypes, {"goroutine", "count"}, 1, modules, symbols);
    builder.set_time_now();
    std::vector<pprof::StringLabel> labels;
    for (const ThreadGroup& g : threads.groups) {
        labels.assign(1, {"thread_name", g.name});
        for (const auto& [key, value] : g.labels) labels.push_back({key, value});
        builder.add_sample(g.pcs.data(), g.pcs.size(), &g.count, 1,
                           pprof::SampleLabels{labels, {}});
    }
    const size_t without_stack = threads.without_stack;
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
