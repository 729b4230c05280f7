// What gprof cannot see in this process (the program's allocator is not gprof's, the program took
// the dump signal, the CPU profile's timer could not be set): each said once in a `gprof:` line by
// whoever finds it, and kept here for the comments of every profile written afterwards.
#pragma once

namespace gprof::base {

constexpr int kMaxNotes = 8;

// Keeps `text` (static storage, starting "gprof: ") for the profiles' comments. The same text
// twice is kept once; past kMaxNotes, dropped. Async-signal-safe.
void note(const char* text);

// The notes kept so far, at most kMaxNotes, into out; returns how many.
int notes(const char** out);

// fork(): the child keeps what its parent could not see (nothing to do); exec starts afresh.

}  // namespace gprof::base
