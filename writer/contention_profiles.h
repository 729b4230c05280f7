// The block and mutex profiles (Go's printCountCycleProfile): sample types contentions/count and
// delay/nanoseconds, period type contentions/count with period 1. The values are already
// un-sampled when recorded (record/contention.h), as Go does since 1.20.
#pragma once

#include <string>

#include "writer/modules.h"
#include "writer/symbols.h"

namespace gprof::writer {

// Time spent waiting, by the waiter's stack.
bool build_block_profile(const ModuleSnapshot* modules, SymbolCache* symbols, std::string* out,
                         std::string* error);

// Time others waited, by the stack that released the contended lock.
bool build_mutex_profile(const ModuleSnapshot* modules, SymbolCache* symbols, std::string* out,
                         std::string* error);

}  // namespace gprof::writer
