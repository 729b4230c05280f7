// gprof's only voice: single `gprof: ...` lines on stderr, each one write(2) call, so lines from
// several threads or processes never interleave and nothing is buffered in stdio.
#pragma once

namespace gprof::log {

// A problem: always printed (bad variable, unwritable path, ...).
void problem(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// News the user asked for with GPROF_LOG=1 (the default): one line per file written.
void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Writes an already formatted line (without the prefix and newline).
void line(const char* text);
// Notes whether stderr is open now; called once at start so a later fd 2 is never mistaken for it.
void start();

}  // namespace gprof::log
