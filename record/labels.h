// Profiler labels, Go's pprof.Do for native threads: a thread pushes (key, value) pairs, which nest
// and are popped in reverse order; the innermost value of a key wins. What a thread has pushed is
// its label set, named by a 32-bit id that samples keep (heap allocation samples, the threads
// profile, CPU samples).
//
// A label set is a node of a tree: a (key, value) pair and the set it was pushed onto. Nodes and
// their copied texts are interned for the life of the process (never freed, so an id taken by a
// sample stays valid for every profile built later), in memory gprof maps itself, found without a
// lock and added under one. The table is bounded (kMaxLabelSets nodes, kMaxLabelTextBytes of
// text); a push past it keeps the thread's current set and fails.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gprof::record {

constexpr size_t kMaxLabelText = 1024;   // bytes of a key or a value
constexpr uint32_t kMaxLabelDepth = 64;  // pushes a thread keeps; deeper ones fail
constexpr uint32_t kMaxLabelSets = 1u << 20;
constexpr size_t kMaxLabelTextBytes = size_t{64} << 20;

struct ThreadLabels {
    uint32_t current;                // the set of the innermost push kept; 0: none
    uint32_t depth;                  // pushes not yet popped (kept or not)
    uint32_t stack[kMaxLabelDepth];  // the set before each kept push
    bool registered;                 // in the table of threads' sets (label_set_of_thread)
};
extern constinit thread_local ThreadLabels t_labels [[gnu::tls_model("initial-exec")]];

// The calling thread's current label set: 0 when it has none. Async-signal-safe (a TLS load).
inline uint32_t current_label_set() {
    return t_labels.current;
}

// A label set's (key, value) pairs, the innermost value of each key, for builders; sorted by key.
void label_set_pairs(uint32_t id, std::vector<std::pair<std::string, std::string>>* out);

// Why a push failed (it still counts as a push: the matching pop undoes it).
enum class LabelPushResult { Pushed, TooDeep, TableFull };

// Pushes (key, value) onto the calling thread's labels (texts of at most kMaxLabelText bytes,
// which the caller checks). Not for signal handlers (it may take the table's lock).
LabelPushResult push_label(std::string_view key, std::string_view value);
// A push that changes nothing (the C API's answer to bad input), undone by its pop like any other.
void push_unchanged();
// Pops the innermost push; false when there is none.
bool pop_label();

// The label set of a live thread that pushed labels (0: none), for the threads profile.
uint32_t label_set_of_thread(pid_t tid);

// fork(): the table's lock, taken before fork and released after it in both.
void lock_labels();
void unlock_labels();

// Bytes of gprof's memory the label sets hold (for BuckHashSys).
size_t label_bytes_used();

}  // namespace gprof::record
