// Where finished profiles go: files (written whole or not at all) and file descriptors.
//
// The code runs inside someone else's program, so a failure must never hurt it: every function
// reports problems as a text in *error and returns false. Two POSIX defaults that kill a process
// are avoided on purpose: writing past RLIMIT_FSIZE raises SIGXFSZ (checked before writing), and
// writing to a pipe or socket whose reader is gone raises SIGPIPE (suppressed around the write).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace gprof::writer {

// "<prefix>.<pid>.<sequence>.<profile>.pb.gz", the sequence as at least 4 digits (the README's
// "Files"): profile_file_path("/tmp/gprof", 42, 1, "heap") is "/tmp/gprof.42.0001.heap.pb.gz".
std::string profile_file_path(std::string_view prefix, pid_t pid, unsigned sequence,
                              std::string_view profile);

// A profile's file: missing parent directories created with mode 1777 (sticky and writable by
// all, as /tmp: a process that later drops privileges, an nginx worker running as nobody, still
// writes its own files there, and no one can remove or replace another's), then written whole or
// not at all with mode 0600 (base::write_file_atomically): readable by its writer only, since a
// profile shows the program's code and data layout to whoever reads it.
bool write_file_atomically(const std::string& path, std::string_view bytes,
                           std::string* error) noexcept;

// Writes all of bytes to an open descriptor (for the C API), retrying short writes and EINTR. On
// failure *error_number (if given) is the errno that made it fail.
bool write_to_fd(int fd, std::string_view bytes, std::string* error,
                 int* error_number = nullptr) noexcept;

}  // namespace gprof::writer
