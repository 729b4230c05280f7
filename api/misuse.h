// The C API's answer to bad input: errno set, and one `gprof:` line per kind of misuse for the
// life of the process (a program that repeats a mistake in a loop is told once).
#pragma once

#include <atomic>
#include <cerrno>

namespace gprof::api {

enum class Misuse {
    LabelText,
    LabelPop,
    LabelDepth,
    LabelTable,
    ProfileName,
    ProfileHandle,
    ProfileDuplicateKey,
    ProfileAbsentKey,
    ProfileNoMemory,
    WriteName,
    WriteDebug,
    WriteDescriptor,
    MemstatsArgument,
    CpuDescriptor,
    CpuNotStarted,
    CpuWriteDescriptor,
    Count,
};

// Sets errno to `error` and says `text` on stderr, the first time for `kind`; returns -1.
int misuse(Misuse kind, int error, const char* text);

}  // namespace gprof::api
