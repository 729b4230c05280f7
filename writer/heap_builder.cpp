#include "writer/heap_builder.h"

#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "base/stop_scope.h"
#include "record/heap_profile.h"
#include "record/heap_sampler.h"
#include "record/labels.h"
#include "record/stack_table.h"
#include "unwind/stack.h"
#include "pprof/profile_builder.h"

namespace gprof::writer {

bool build_heap_profile(record::HeapProfile& heap, const record::StackTable& stacks, int64_t rate,
                        const symbolize::ModuleSnapshot* modules, symbolize::SymbolCache* symbols,
                        std::string* out, std::string* error,
                        std::string_view default_sample_type) {
    // The counts of every bucket first, in one quick pass, so the profile is one moment's; the
    // buckets' keys (stack, sizes) never change, so the second pass reads only them, in place,
    // rather than a copy of whole buckets in fresh pages.
    struct Counts {
        uint64_t allocs, frees;
    };
    std::vector<Counts> counts;
    counts.reserve(heap.bucket_count() + 1024);
    size_t frames = 0;
    heap.for_each_bucket([&](const record::HeapBucket& b) {
        if (counts.size() == counts.capacity()) return;  // added since: the next dump has them
        if (base::StopScope::stopped()) return;          // the builder fails below
        counts.push_back({b.allocs, b.frees});
        frames += static_cast<size_t>(stacks.depth(b.stack_id));
    });

    static constexpr pprof::ValueType kTypes[] = {{"alloc_objects", "count"},
                                           {"alloc_space", "bytes"},
                                           {"inuse_objects", "count"},
                                           {"inuse_space", "bytes"}};
    pprof::ProfileBuilder builder(kTypes, {"space", "bytes"}, rate, modules, symbols);
    builder.set_time_now();
    if (!default_sample_type.empty()) builder.set_default_sample_type(default_sample_type);

    builder.reserve_samples(counts.size(), frames, 4, 1);
    // Label sets as string labels (record/labels.h), looked up once per set.
    std::map<uint32_t, std::vector<pprof::StringLabel>> label_sets;
    std::vector<std::unique_ptr<std::vector<std::pair<std::string, std::string>>>> label_texts;
    auto labels_of = [&](uint32_t set) -> std::span<const pprof::StringLabel> {
        if (set == 0) return {};
        auto [it, added] = label_sets.try_emplace(set);
        if (added) {
            auto texts = std::make_unique<std::vector<std::pair<std::string, std::string>>>();
            record::label_set_pairs(set, texts.get());
            for (const auto& [key, value] : *texts) it->second.push_back({key, value});
            label_texts.push_back(std::move(texts));
        }
        return it->second;
    };
    uint64_t without_stack = 0;
    heap.for_each_bucket_key(counts.size(), [&](size_t i, uint32_t stack_id, uint64_t bytes,
                                                uint64_t sampled_bytes, uint32_t labels) {
        if (base::StopScope::stopped()) return;  // add_sample would fail: no walk for it
        const Counts c = counts[i];
        uintptr_t pcs[record::StackTable::kMaxDepth];
        int depth = stacks.frames(stack_id, pcs, record::StackTable::kMaxDepth);
        if (depth == 0) {
            without_stack += c.allocs;
            return;
        }
        // Every object of a bucket has the same size, and the same sampled size: both pairs
        // scale by it.
        const double sampled = static_cast<double>(sampled_bytes);
        const uint64_t live = c.allocs - c.frees;
        record::ScaledPair alloc = record::scale_heap_sample(static_cast<int64_t>(c.allocs),
                                             static_cast<int64_t>(c.allocs * bytes), rate, sampled);
        record::ScaledPair inuse = record::scale_heap_sample(static_cast<int64_t>(live),
                                             static_cast<int64_t>(live * bytes), rate, sampled);
        const int64_t values[] = {alloc.count, alloc.bytes, inuse.count, inuse.bytes};
        const pprof::NumericLabel size[] = {{"bytes", static_cast<int64_t>(bytes), ""}};
        builder.add_sample(pcs, static_cast<size_t>(depth), values, 4,
                           pprof::SampleLabels{labels_of(labels), size});
    });
    uint64_t dropped = heap.dropped() + stacks.dropped();
    if (without_stack || dropped) {
        char note[200];
        snprintf(note, sizeof note,
                 "gprof: %llu sampled allocations without a stack, %llu dropped (tables full)",
                 static_cast<unsigned long long>(without_stack),
                 static_cast<unsigned long long>(dropped));
        builder.add_comment(note);
    }
    if (uint64_t truncated = heap.truncated()) {
        char note[200];
        snprintf(note, sizeof note,
                 "gprof: %llu sampled allocations had stacks deeper than %d frames, cut to the "
                 "innermost %d",
                 static_cast<unsigned long long>(truncated), unwind::kMaxFrames,
                 unwind::kMaxFrames);
        builder.add_comment(note);
    }
    return builder.build(out, error);
}

}  // namespace gprof::writer
