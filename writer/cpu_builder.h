// The cpu profile (Go's CPU profile): sample types samples/count and cpu/nanoseconds, period type
// cpu/nanoseconds with the sampling period, time_nanos and duration_nanos the span sampled, each
// sample labelled with its thread's name. The comments say what delivered the samples and what
// was lost.
#pragma once

#include <string>

#include "record/cpu_samples.h"
#include "record/stack_table.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"

namespace gprof::writer {

bool build_cpu_profile(const record::CpuProfileData& data, const record::StackTable& stacks,
                       const symbolize::ModuleSnapshot* modules, symbolize::SymbolCache* symbols,
                       std::string* out, std::string* error);

}  // namespace gprof::writer
