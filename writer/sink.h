// Where finished profiles go: files (written whole or not at all) and file descriptors.
//
// The code runs inside someone else's program, so a failure must never hurt it: every function
// reports problems as a text in *error and returns false. Two POSIX defaults that kill a process
// are avoided on purpose: writing past RLIMIT_FSIZE raises SIGXFSZ (checked before writing), and
// writing to a pipe or socket whose reader is gone raises SIGPIPE (blocked or suppressed around
// the write). gprof cannot change the program's signal dispositions, only avoid the signals.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace gprof::writer {

// "<prefix>.<pid>.<sequence>.<profile>.pb.gz", the sequence as at least 4 digits (CONTRACT.md,
// "Files"): profile_file_path("/tmp/gprof", 42, 1, "heap") is "/tmp/gprof.42.0001.heap.pb.gz".
std::string profile_file_path(std::string_view prefix, pid_t pid, unsigned sequence,
                              std::string_view profile);

// Whether count more bytes written at offset stay within RLIMIT_FSIZE (false, with *error, if
// not). Past it the kernel raises SIGXFSZ, whose default action ends the process (EFBIG comes only
// when the signal is ignored): every file gprof writes is checked before it is written.
bool within_file_size_limit(off_t offset, size_t count, std::string* error);

// Creates the missing directories above path (like mkdir -p of its directory part), with mode
// 0777 less the umask, as mkdir(1) does.
bool create_parent_directories(const std::string& path, std::string* error) noexcept;

// Writes bytes to path so that no reader ever sees a partial file: missing parent directories are
// created, the bytes go to a new temporary file in the same directory (O_EXCL | O_NOFOLLOW |
// O_CLOEXEC, mode 0644 less the umask), which is then renamed over path. On any failure the
// temporary file is removed and path is left as it was.
bool write_file_atomically(const std::string& path, std::string_view bytes,
                           std::string* error) noexcept;

// Writes all of bytes to an open descriptor (for the C API), retrying short writes and EINTR.
bool write_to_fd(int fd, std::string_view bytes, std::string* error) noexcept;

}  // namespace gprof::writer
