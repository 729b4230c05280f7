// The threads and threadcreate profiles (Go's goroutine and threadcreate, printCountProfile): one
// sample type `<name>/count`, period type `<name>/count` with period 1, one sample per distinct
// stack (and, for threads, thread name) whose value is how many threads share it.
#pragma once

#include <string>

#include "writer/modules.h"
#include "writer/symbols.h"

namespace gprof::writer {

// Every live thread of the program (not gprof's own) by its current stack, with a string label
// thread_name. Threads whose stack could not be captured are named in a comment.
bool build_threads_profile(const ModuleSnapshot* modules, SymbolCache* symbols, std::string* out,
                           std::string* error);

// Every pthread_create since start, by the creator's stack.
bool build_threadcreate_profile(const ModuleSnapshot* modules, SymbolCache* symbols,
                                std::string* out, std::string* error);

}  // namespace gprof::writer
