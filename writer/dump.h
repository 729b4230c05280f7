// A dump: every enabled profile written to its file (<prefix>.<pid>.<seq>.<profile>.pb.gz), each
// under a temporary name and renamed when complete. Called with the re-entry guard held.
#pragma once

namespace gprof::writer {

// Why a dump is written: the at-exit dump leaves out what describes only the exit itself.
enum class DumpReason { Signal, Exit };

void write_dump(unsigned seq, DumpReason reason);

}  // namespace gprof::writer
