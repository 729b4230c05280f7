// A dump: every enabled profile written to its file (<prefix>.<pid>.<seq>.<profile>.pb.gz), each
// under a temporary name and renamed when complete. Called with the re-entry guard held.
#pragma once

#include <atomic>

#include "base/config.h"
#include "symbolize/symbols.h"

namespace gprof::writer {

// From gprof's constructor: the settings dumps use (the output prefix, the profiles, the dump
// signal, the debug cache), and each enabled profile kind's records switched on.
void start(const Config& c);

// Why a dump is written: the at-exit dump leaves out what describes only the exit itself.
enum class DumpReason { Signal, Exit };

// Returns the sequence number the files have: `seq`, or a later one where a process of the same
// pid (an earlier image of an exec chain) left files under it. A dump given `stop` ends early
// once *stop is nonzero, within one sample of the profile it is building (base/stop_scope.h):
// that profile and the ones after it are not written (those written before stay, complete), and
// *stopped is set.
unsigned write_dump(unsigned seq, DumpReason reason, const std::atomic<int>* stop = nullptr,
                    bool* stopped = nullptr);

// The settings start() was given (null before start-up).
const Config* settings();
// The symbol cache dumps keep from one to the next, for profiles written on request too; used by
// one dump or request at a time.
symbolize::SymbolCache& shared_symbol_cache();

}  // namespace gprof::writer
