// The heap profile (Go's runtime/pprof writeHeapProto, protomem.go): four sample types in Go's
// order, period type space/bytes with the sample rate as period, values un-sampled, a numeric
// label `bytes` with the object size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "record/heap_profile.h"
#include "record/stack_table.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"

namespace gprof::writer {

struct ScaledPair {
    int64_t count;
    int64_t bytes;
};

// Go's scaleHeapSample: a sampled object of average size avg = bytes/count stood for
// 1 / (1 - exp(-avg/rate)) objects, since that is the probability the sampler picked it
// (record/heap_sampler.h). Each (objects, bytes) pair is scaled by its own average. Where the
// sampler counted other sizes than the ones reported (jemalloc counts size classes: a 24-byte
// object is sampled as a 32-byte one), sampled_avg is the average it counted, and the probability
// is that of this size.
ScaledPair scale_heap_sample(int64_t count, int64_t bytes, int64_t rate, double sampled_avg = 0);

// Encodes the process's heap profile (uncompressed) into *out. False with *error on failure.
// Go's writeHeapProto(w, records, rate): the heap profile of `heap`'s buckets, un-sampled at
// `rate` (record::scale_heap_sample), stacks from `stacks`; each bucket's label set as string
// labels. default_sample_type: the type readers show first (Go's allocs profile: alloc_space).
bool build_heap_profile(record::HeapProfile& heap, const record::StackTable& stacks, int64_t rate,
                        const symbolize::ModuleSnapshot* modules, symbolize::SymbolCache* symbols,
                        std::string* out, std::string* error,
                        std::string_view default_sample_type = {});

}  // namespace gprof::writer
