// The threads and threadcreate profiles (Go's goroutine and threadcreate, printCountProfile): one
// sample type `<name>/count`, period type `<name>/count` with period 1, one sample per distinct
// stack (and, for threads, thread name) whose value is how many threads share it.
#pragma once

#include <string>

#include "record/stack_counters.h"
#include "record/stack_table.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"

namespace gprof::writer {

// Go's goroutine profile for threads: every live thread of the program (not gprof's own), its
// stack taken now with a signal other than `dump_signal`, grouped by stack and by the string
// label thread_name. Threads whose stack could not be captured are named in a comment.
bool build_threads_profile(int dump_signal, const symbolize::ModuleSnapshot* modules,
                           symbolize::SymbolCache* symbols, std::string* out, std::string* error);

// Every pthread_create counted in `creations`, by the creator's stack.
bool build_threadcreate_profile(const record::StackCounters& creations,
                                const record::StackTable& stacks,
                                const symbolize::ModuleSnapshot* modules,
                                symbolize::SymbolCache* symbols, std::string* out,
                                std::string* error);

}  // namespace gprof::writer
