#include "writer/cpu_builder.h"

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "pprof/profile_builder.h"
#include "record/labels.h"

namespace gprof::writer {

bool build_cpu_profile(const record::CpuProfileData& data, const record::StackTable& stacks,
                       const symbolize::ModuleSnapshot* modules, symbolize::SymbolCache* symbols,
                       std::string* out, std::string* error) {
    static constexpr pprof::ValueType kTypes[] = {{"samples", "count"}, {"cpu", "nanoseconds"}};
    pprof::ProfileBuilder builder(kTypes, {"cpu", "nanoseconds"}, data.period_nanos, modules,
                                  symbols);
    builder.set_time_nanos(data.start_nanos);
    builder.set_duration_nanos(data.end_nanos - data.start_nanos);
    int64_t without_stack = 0;
    // The labels the thread had pushed (record/labels.h), looked up once per set, after the
    // thread's name.
    std::map<uint32_t, std::vector<std::pair<std::string, std::string>>> label_texts;
    std::vector<pprof::StringLabel> labels;
    for (const auto& [key, counts] : data.samples) {
        const int64_t values[] = {counts.samples, counts.nanos};
        labels.assign(1, {"thread_name", key.thread_name.data()});
        if (key.labels != 0) {
            auto [texts, added] = label_texts.try_emplace(key.labels);
            if (added) record::label_set_pairs(key.labels, &texts->second);
            for (const auto& [label, value] : texts->second) labels.push_back({label, value});
        }
        const pprof::SampleLabels sample_labels{labels, {}};
        if (key.stack == record::kLostStack) {
            builder.add_named_sample("[gprof: samples lost]", values, 2, sample_labels);
            continue;
        }
        uintptr_t pcs[record::StackTable::kMaxDepth];
        int depth = stacks.frames(key.stack, pcs, record::StackTable::kMaxDepth);
        if (depth == 0) {
            without_stack += counts.samples;
            continue;
        }
        builder.add_sample(pcs, static_cast<size_t>(depth), values, 2, sample_labels);
    }
    char note[256];
    if (data.source != nullptr && data.source[0] != '\0' && data.period_nanos > 0) {
        snprintf(note, sizeof note, "gprof: sampled at %lld Hz by %s",
                 static_cast<long long>(1000000000 / data.period_nanos), data.source);
        builder.add_comment(note);
    }
    static constexpr const char* kSourceNames[record::kCpuSources] = {
        "perf events", "thread timers", "the process-wide timer"};
    for (int i = 0; i < record::kCpuSources; ++i) {
        if (data.by_source[i] == 0) continue;
        snprintf(note, sizeof note, "gprof: %llu samples from %s",
                 static_cast<unsigned long long>(data.by_source[i]), kSourceNames[i]);
        builder.add_comment(note);
    }
    if (data.dropped != 0) {
        snprintf(note, sizeof note,
                 "gprof: %llu samples lost (a thread's buffer full, or no buffer free): their "
                 "time is under [gprof: samples lost]",
                 static_cast<unsigned long long>(data.dropped));
        builder.add_comment(note);
    }
    if (data.short_walks != 0) {
        snprintf(note, sizeof note,
                 "gprof: %llu samples with a short stack (a frame without a known unwind rule, "
                 "or off the thread's stack)",
                 static_cast<unsigned long long>(data.short_walks));
        builder.add_comment(note);
    }
    if (data.cut != 0) {
        snprintf(note, sizeof note, "gprof: %llu samples cut at their innermost frames",
                 static_cast<unsigned long long>(data.cut));
        builder.add_comment(note);
    }
    if (without_stack != 0) {
        snprintf(note, sizeof note, "gprof: %lld samples without a stack",
                 static_cast<long long>(without_stack));
        builder.add_comment(note);
    }
    return builder.build(out, error);
}

}  // namespace gprof::writer
