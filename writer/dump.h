// A dump: every enabled profile written to its file (<prefix>.<pid>.<seq>.<profile>.pb.gz), each
// under a temporary name and renamed when complete. Called with the re-entry guard held.
#pragma once

#include "base/config.h"

namespace gprof::writer {

// From gprof's constructor: the settings dumps use (the output prefix, the profiles, the dump
// signal, the debug cache), and each enabled profile kind's records switched on.
void start(const Config& c);

// Why a dump is written: the at-exit dump leaves out what describes only the exit itself.
enum class DumpReason { Signal, Exit };

void write_dump(unsigned seq, DumpReason reason);

}  // namespace gprof::writer
