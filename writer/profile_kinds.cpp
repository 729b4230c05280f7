#include "writer/profile_kinds.h"

#include "record/contention.h"
#include "record/cpu_samples.h"
#include "record/heap_profile.h"
#include "record/heap_sampler.h"
#include "record/stack_table.h"
#include "record/threads.h"
#include "writer/contention_builder.h"
#include "writer/cpu_builder.h"
#include "writer/heap_builder.h"
#include "writer/thread_builders.h"

namespace gprof::writer {
namespace {

bool has_samples(const record::StackCounters& counters) {
    return counters.size() > 0 || counters.dropped() > 0;
}

constexpr ProfileKind kProfileKinds[] = {
    {kProfileHeap, "heap", nullptr,
     [] {
         record::HeapProfile& heap = record::heap_profile();
         return heap.bucket_count() > 0 || heap.dropped() > 0;
     },
     true,
     [](const BuildContext& c, std::string* out, std::string* error) {
         return build_heap_profile(record::heap_profile(), record::stack_table(),
                                   record::mem_profile_rate(), c.modules, c.symbols, out, error);
     },
     false},
    // Its records are started by the CPU sampler (preload/cpu_sampler.h), which owns the clock.
    {kProfileCpu, "cpu", nullptr,
     [] { return record::cpu_session_has_samples(record::CpuSession::Dump); }, true,
     [](const BuildContext& c, std::string* out, std::string* error) {
         record::CpuProfileData data;
         record::take_cpu_session(record::CpuSession::Dump, &data);
         return build_cpu_profile(data, record::stack_table(), c.modules, c.symbols, out, error);
     },
     true},
    {kProfileThreadCreate, "threadcreate",
     [](const Config&, bool on) { record::set_thread_creations_on(on); },
     [] { return has_samples(record::thread_creations()); }, true,
     [](const BuildContext& c, std::string* out, std::string* error) {
         return build_threadcreate_profile(record::thread_creations(), record::stack_table(),
                                           c.modules, c.symbols, out, error);
     },
     false},
    {kProfileBlock, "block",
     [](const Config& config, bool on) {
         record::set_block_profile_rate(on ? config.block_profile_rate : 0);
     },
     [] { return has_samples(record::block_counters()); }, true,
     [](const BuildContext& c, std::string* out, std::string* error) {
         return build_contention_profile(record::block_counters(), record::stack_table(), "block",
                                         c.modules, c.symbols, out, error);
     },
     false},
    {kProfileMutex, "mutex",
     [](const Config& config, bool on) {
         record::set_mutex_profile_fraction(on ? config.mutex_profile_fraction : 0);
     },
     [] { return has_samples(record::mutex_counters()); }, true,
     [](const BuildContext& c, std::string* out, std::string* error) {
         return build_contention_profile(record::mutex_counters(), record::stack_table(), "mutex",
                                         c.modules, c.symbols, out, error);
     },
     false},
    {kProfileThreads, "threads", nullptr, [] { return true; }, false,
     [](const BuildContext& c, std::string* out, std::string* error) {
         return build_threads_profile(c.dump_signal, c.modules, c.symbols, out, error);
     },
     false},
};

}  // namespace

std::span<const ProfileKind> profile_kinds() { return kProfileKinds; }

}  // namespace gprof::writer
