// The block and mutex profiles (Go's printCountCycleProfile): sample types contentions/count and
// delay/nanoseconds, period type contentions/count with period 1. The values are already
// un-sampled when recorded (record/contention.h), as Go does since 1.20.
#pragma once

#include <string>

#include "record/stack_counters.h"
#include "record/stack_table.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"

namespace gprof::writer {

// The block and mutex profiles' layout (Go's contentions/count, delay/nanoseconds) over
// `counters`' stacks: `what` names the events in the comment on those without a stack.
bool build_contention_profile(const record::StackCounters& counters,
                              const record::StackTable& stacks, const char* what,
                              const symbolize::ModuleSnapshot* modules,
                              symbolize::SymbolCache* symbols, std::string* out,
                              std::string* error);

}  // namespace gprof::writer
