#include "writer/named_profile.h"

#include <atomic>
#include <cerrno>
#include <new>
#include <vector>

#include "pprof/gzip.h"
#include "pprof/profile_builder.h"
#include "record/contention.h"
#include "record/heap_profile.h"
#include "record/heap_sampler.h"
#include "record/stack_table.h"
#include "record/threads.h"
#include "writer/cpu_builder.h"
#include "writer/dump.h"
#include "writer/heap_builder.h"
#include "writer/text_profiles.h"
#include "writer/thread_builders.h"

namespace gprof::writer {
namespace {

constexpr std::string_view kBuiltinNames[] = {"heap",         "allocs", "goroutine", "threads",
                                              "threadcreate", "block",  "mutex",     "cpu"};

std::atomic<void (*)(std::string*)> g_memstats_text{nullptr};

const ProfileKind* kind_named(std::string_view name) {
    for (const ProfileKind& kind : profile_kinds())
        if (name == kind.name) return &kind;
    return nullptr;
}

// A stack-counter profile's records, for its text form.
std::vector<CountRecord> count_records(const std::vector<record::StackCounts>& counts) {
    std::vector<CountRecord> records;
    uintptr_t pcs[record::StackTable::kMaxDepth];
    for (const record::StackCounts& c : counts) {
        int depth = record::stack_table().frames(c.stack_id, pcs, record::StackTable::kMaxDepth);
        int64_t count = c.count / record::StackCounters::kCountUnit;
        if (depth > 0 && count > 0)
            records.push_back(CountRecord{std::vector<uintptr_t>(pcs, pcs + depth), count, {}});
    }
    return records;
}

bool text_form(std::string_view name, int debug, const record::CustomProfile* custom,
               const BuildContext& context, std::string* out) {
    const TextNames names{context.modules, context.symbols};
    if (custom != nullptr) {
        count_text(custom->name(), count_records(custom->counts()), names, out);
    } else if (name == "heap" || name == "allocs") {
        std::string memstats;
        if (auto append_memstats = g_memstats_text.load(std::memory_order_acquire))
            append_memstats(&memstats);
        heap_text(record::heap_profile(), record::stack_table(), record::mem_profile_rate(),
                  memstats, names, out);
    } else if (name == "goroutine" || name == "threads") {
        if (debug >= 2) {
            threads_dump_text(context.dump_signal, names, out);
        } else {
            ThreadGroups threads = group_threads(context.dump_signal);
            std::vector<CountRecord> records;
            for (ThreadGroup& g : threads.groups)
                records.push_back(CountRecord{std::move(g.pcs), g.count, std::move(g.labels)});
            count_text("goroutine", records, names, out);
        }
    } else if (name == "threadcreate") {
        count_text("threadcreate", count_records(record::thread_creations().snapshot()), names,
                   out);
    } else if (name == "block") {
        contention_text(record::block_counters(), record::stack_table(), false, names, out);
    } else if (name == "mutex") {
        contention_text(record::mutex_counters(), record::stack_table(), true, names, out);
    } else {
        return false;
    }
    if (!(debug >= 2 && (name == "goroutine" || name == "threads"))) append_memory_map(out);
    return true;
}

bool binary_form(std::string_view name, const record::CustomProfile* custom,
                 const BuildContext& context, std::string* out, std::string* error) {
    std::string raw;
    bool built;
    if (custom != nullptr) {
        built = build_custom_profile(*custom, context, &raw, error);
    } else if (name == "allocs") {
        built = build_heap_profile(record::heap_profile(), record::stack_table(),
                                   record::mem_profile_rate(), context.modules, context.symbols,
                                   &raw, error, "alloc_space");
    } else {
        const ProfileKind* kind = kind_named(name == "goroutine" ? "threads" : name);
        if (kind == nullptr) {
            *error = "no such profile";
            return false;
        }
        built = kind->build(context, &raw, error);
    }
    return built && pprof::gzip_compress(raw, out, error);
}

}  // namespace

bool is_builtin_profile_name(std::string_view name) {
    for (std::string_view builtin : kBuiltinNames)
        if (name == builtin) return true;
    return false;
}

void set_memstats_text(void (*append_memstats)(std::string* out)) {
    g_memstats_text.store(append_memstats, std::memory_order_release);
}

bool build_custom_profile(const record::CustomProfile& profile, const BuildContext& context,
                          std::string* out, std::string* error) {
    const std::vector<record::StackCounts> counts = profile.counts();
    const pprof::ValueType types[] = {{profile.name(), "count"}};
    pprof::ProfileBuilder builder(types, types[0], 1, context.modules, context.symbols);
    builder.set_time_now();
    uintptr_t pcs[record::StackTable::kMaxDepth];
    int64_t without_stack = 0;
    for (const record::StackCounts& c : counts) {
        int depth = record::stack_table().frames(c.stack_id, pcs, record::StackTable::kMaxDepth);
        int64_t count = c.count / record::StackCounters::kCountUnit;
        if (depth > 0)
            builder.add_sample(pcs, static_cast<size_t>(depth), &count, 1);
        else
            without_stack += count;
    }
    if (without_stack != 0) {
        char note[160];
        snprintf(note, sizeof note, "gprof: %lld keys without a stack",
                 static_cast<long long>(without_stack));
        builder.add_comment(note);
    }
    return builder.build(out, error);
}

bool write_cpu_profile(const record::CpuProfileData& data, std::string* out, std::string* error) {
    try {
        symbolize::ModuleSnapshot modules;
        std::string ignored;
        modules.capture(&ignored);
        std::string raw;
        bool ok = build_cpu_profile(data, record::stack_table(), &modules, &shared_symbol_cache(),
                                    &raw, error) &&
                  pprof::gzip_compress(raw, out, error);
        shared_symbol_cache().end_dump();
        return ok;
    } catch (const std::bad_alloc&) {
        *error = "out of memory";
        return false;
    }
}

NamedResult write_named_profile(std::string_view name, int debug, std::string* out,
                                std::string* error) {
    const record::CustomProfile* custom = record::find_custom_profile(name);
    if (custom == nullptr && (!is_builtin_profile_name(name) || name == "cpu"))
        return NamedResult::UnknownName;
    if (debug < 0 || debug > 2) return NamedResult::UnknownDebug;
    const Config* c = settings();
    try {
        symbolize::ModuleSnapshot modules;
        std::string ignored;
        modules.capture(&ignored);  // without it, the profile has no mappings (as in a dump)
        BuildContext context{};
        context.modules = &modules;
        context.symbols = &shared_symbol_cache();
        context.dump_signal = c != nullptr ? c->dump_signal : 0;
        bool ok = debug == 0 ? binary_form(name, custom, context, out, error)
                             : text_form(name, debug, custom, context, out);
        shared_symbol_cache().end_dump();
        return ok ? NamedResult::Written : NamedResult::Failed;
    } catch (const std::bad_alloc&) {
        *error = "out of memory";
        return NamedResult::Failed;
    }
}

}  // namespace gprof::writer
