// The threads and threadcreate profiles (Go's goroutine and threadcreate, printCountProfile): one
// sample type `<name>/count`, period type `<name>/count` with period 1, one sample per distinct
// stack (and, for threads, thread name) whose value is how many threads share it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "record/stack_counters.h"
#include "record/stack_table.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"
#include "unwind/thread_stacks.h"

namespace gprof::writer {

// The program's live threads (not gprof's own), their stacks taken now with a signal other than
// `dump_signal`, grouped by stack, thread name and label set (record/labels.h).
struct ThreadGroup {
    std::vector<uintptr_t> pcs;  // leaf first
    std::string name;
    std::vector<std::pair<std::string, std::string>> labels;
    int64_t count;
};
struct ThreadGroups {
    std::vector<ThreadGroup> groups;
    size_t threads = 0;
    size_t without_stack = 0;  // counted in `threads`, in no group
    unwind::ThreadCensus census;
};
ThreadGroups group_threads(int dump_signal);

// Go's goroutine profile for threads: every live thread of the program (not gprof's own), its
// stack taken now with a signal other than `dump_signal`, grouped by stack and by the string
// label thread_name and the thread's labels. Threads whose stack could not be captured are named
// in a comment.
bool build_threads_profile(int dump_signal, const symbolize::ModuleSnapshot* modules,
                           symbolize::SymbolCache* symbols, std::string* out, std::string* error);

// Every pthread_create counted in `creations`, by the creator's stack.
bool build_threadcreate_profile(const record::StackCounters& creations,
                                const record::StackTable& stacks,
                                const symbolize::ModuleSnapshot* modules,
                                symbolize::SymbolCache* symbols, std::string* out,
                                std::string* error);

}  // namespace gprof::writer
