// Files as gprof writes them from inside someone else's program: whole or not at all, never past
// the process's file size limit, never inherited by its children, and every failure a text.
//
// Writing past RLIMIT_FSIZE raises SIGXFSZ, whose default action ends the process (EFBIG comes
// only when the signal is ignored): every file is checked against the limit before it is written.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace gprof::base {

// The text of an errno value; thread-safe, unlike strerror.
std::string errno_text(int error_number);

// A descriptor of gprof's own that stays open a while (a profile being written, a file libdw
// reads), moved up out of the numbers a program uses: the lowest free number is what a program
// sees next to its own while a dump runs (a child that checks it holds only 0-2 and what it was
// passed, a test that lists its descriptors). Moved to the first free number at or above
// RLIMIT_NOFILE's soft limit (at most 1024) less 128, and the old number closed; kept where none
// is free there. Returns the descriptor to use.
int move_out_of_the_way(int fd) noexcept;

// path opened read-only (close-on-exec, retried on EINTR) and moved out of the way at once, even
// for a short read: a program's thread opening or duplicating a descriptor meanwhile meets
// gprof's on a low number only between the two system calls. Returns -1 with errno as open's.
// Async-signal-safe.
int open_read_only(const char* path) noexcept;

// Whether count more bytes written at offset stay within RLIMIT_FSIZE (false, with *error, if
// not).
bool within_file_size_limit(off_t offset, size_t count, std::string* error);

// Creates the missing directories above path (like mkdir -p of its directory part), each with
// exactly `mode` (a chmod follows the mkdir, so the umask does not narrow it). Existing
// directories are left as they are.
bool create_parent_directories(const std::string& path, mode_t mode, std::string* error) noexcept;

// Writes a file so that no reader ever sees a part of it: fill(fd, error) writes at most
// max_size bytes (checked against the file size limit first) into an unnamed file in path's
// directory (O_TMPFILE, `mode` less the umask), which is then linked under a temporary name beside
// path ("<path>.<pid>-<n>.tmp": nothing looking for path's own suffix picks it up) and renamed over
// path: a process killed while it writes leaves nothing. Where the file system has no O_TMPFILE,
// the temporary name is created first (O_EXCL, O_NOFOLLOW). On any failure the temporary file is
// removed, path is left as it was, and *error says what failed ("cannot ..."), unless fill failed
// and set it.
using FillFn = bool (*)(void* context, int fd, std::string* error);
bool write_file_atomically(const std::string& path, uint64_t max_size, mode_t mode, FillFn fill,
                           void* context, std::string* error) noexcept;

template <typename Fill>
bool write_file_atomically(const std::string& path, uint64_t max_size, mode_t mode, Fill&& fill,
                           std::string* error) noexcept {
    using F = std::remove_reference_t<Fill>;
    return write_file_atomically(
        path, max_size, mode,
        [](void* context, int fd, std::string* e) -> bool {
            return (*static_cast<F*>(context))(fd, e);
        },
        const_cast<void*>(static_cast<const void*>(&fill)), error);
}

// Runs body() (which returns bool) and turns an exception, which can only be std::bad_alloc,
// into false with *error = "out of memory while <doing>".
template <typename Body>
bool without_exceptions(std::string* error, const char* doing, Body&& body) noexcept {
    try {
        return body();
    } catch (...) {
        try {
            *error = std::string("out of memory while ") + doing;
        } catch (...) {
        }
        return false;
    }
}

// write(2) until all of bytes are out, retrying EINTR (send(2) with send_flags where it is >= 0,
// for a socket); false with *error_number set on failure.
bool write_fully(int fd, std::string_view bytes, int send_flags, int* error_number);

}  // namespace gprof::base
