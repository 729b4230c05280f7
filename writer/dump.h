// A dump: every enabled profile written to its file (<prefix>.<pid>.<seq>.<profile>.pb.gz), each
// under a temporary name and renamed when complete. Called with the re-entry guard held.
#pragma once

namespace gprof::writer {

void write_dump(unsigned seq);

}  // namespace gprof::writer
