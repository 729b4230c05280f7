#include "base/files.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace gprof::base {
namespace {

// A unique temporary name per attempt, even for several threads of one process.
std::atomic<unsigned> g_temporary_counter{0};

std::string directory_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace

int move_out_of_the_way(int fd) noexcept {
    struct rlimit limit;
    if (fd < 0 || getrlimit(RLIMIT_NOFILE, &limit) != 0) return fd;
    rlim_t top = limit.rlim_cur < 1024 ? limit.rlim_cur : 1024;
    int floor = top > 256 ? static_cast<int>(top - 128) : static_cast<int>(top / 2);
    if (fd >= floor) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, floor);
    if (moved < 0) return fd;
    close(fd);
    return moved;
}

int open_read_only(const char* path) noexcept {
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd == -1 && errno == EINTR);
    return move_out_of_the_way(fd);
}

namespace {

std::string temporary_name(const std::string& path) {
    return path + "." + std::to_string(getpid()) + "-" +
           std::to_string(g_temporary_counter.fetch_add(1)) + ".tmp";
}

// An unnamed file in dir (O_TMPFILE), given a name only once it is whole: a process killed while
// writing it (a test's SIGKILL during a dump) leaves nothing behind. -1 where the file system
// cannot make one, or where /proc (to name it) is missing.
int open_unnamed(const std::string& dir, mode_t mode) {
    static const bool proc_fds = access("/proc/thread-self/fd", X_OK) == 0;
    if (!proc_fds) return -1;
    int fd;
    do {
        fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, mode);  // read by copy_unnamed
    } while (fd == -1 && errno == EINTR);
    return fd;
}

// A new file under a fresh temporary name beside path (O_EXCL, O_NOFOLLOW: a link planted in a
// shared directory is not followed), its name in *temporary. -1 with errno if none can be made.
int create_temporary(const std::string& path, mode_t mode, std::string* temporary) {
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd == -1; ++attempt) {
        *temporary = temporary_name(path);
        fd = open(temporary->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd == -1 && errno != EEXIST && errno != EINTR) break;
    }
    return fd;
}

// Copies the unnamed file fd into a new file named `temporary` beside path. Returns 0, or errno.
int copy_unnamed(int fd, const std::string& path, mode_t mode, std::string* temporary) {
    int out = create_temporary(path, mode, temporary);
    if (out == -1) return errno;
    int err = 0;
    for (off_t in_offset = 0;;) {
        ssize_t n = copy_file_range(fd, &in_offset, out, nullptr, 1 << 20, 0);
        if (n == 0) break;
        if (n < 0 && errno != EINTR) {
            err = errno;
            break;
        }
    }
    if (close(out) != 0 && errno != EINTR && err == 0) err = errno;
    if (err != 0) unlink(temporary->c_str());
    return err;
}

// linkat's errors that mean "linking is not possible here" (no /proc, a file system or security
// module that refuses it), where a copy is the way left.
bool link_refused(int error_number) {
    return error_number == ENOENT || error_number == EPERM || error_number == EACCES ||
           error_number == ENOTDIR;
}

// Gives the unnamed file fd its name, linked through /proc/thread-self (/proc/self/fd is gone
// once the main thread has ended; AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH): path itself where
// nothing is there yet, *temporary left empty (one system call: a process killed at any moment
// leaves nothing or the whole file); else a new temporary name beside path, in *temporary, for
// the caller to rename over what is there; or a copy where it cannot be linked. Returns 0, or
// errno.
int name_unnamed(int fd, const std::string& path, mode_t mode, std::string* temporary) {
    char proc_path[48];
    snprintf(proc_path, sizeof proc_path, "/proc/thread-self/fd/%d", fd);
    temporary->clear();
    if (linkat(AT_FDCWD, proc_path, AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) return 0;
    if (link_refused(errno)) return copy_unnamed(fd, path, mode, temporary);
    for (int attempt = 0; attempt < 100; ++attempt) {
        *temporary = temporary_name(path);
        if (linkat(AT_FDCWD, proc_path, AT_FDCWD, temporary->c_str(), AT_SYMLINK_FOLLOW) == 0)
            return 0;
        if (errno == EEXIST || errno == EINTR) continue;
        if (link_refused(errno)) return copy_unnamed(fd, path, mode, temporary);
        return errno;
    }
    return EEXIST;
}

bool write_file(const std::string& path, uint64_t max_size, mode_t mode, FillFn fill,
                void* context, std::string* error) {
    if (!within_file_size_limit(0, max_size, error)) return false;
    std::string temporary;
    int fd = open_unnamed(directory_of(path), mode);
    const bool unnamed = fd != -1;
    if (!unnamed) fd = create_temporary(path, mode, &temporary);
    fd = move_out_of_the_way(fd);
    if (fd == -1) {
        *error = "cannot create " + temporary + ": " + errno_text(errno);
        return false;
    }
    std::string fill_error;
    bool written = fill(context, fd, &fill_error);
    if (written && unnamed) {
        if (int err = name_unnamed(fd, path, mode, &temporary); err != 0) {
            close(fd);
            *error = "cannot create " + (temporary.empty() ? path : temporary) + ": " +
                     errno_text(err);
            return false;
        }
    }
    // close can report a deferred write error (NFS); it still releases the descriptor.
    int close_errno = close(fd) != 0 && errno != EINTR ? errno : 0;
    if (written && close_errno != 0) {
        written = false;
        fill_error = "cannot write " + temporary + ": " + errno_text(close_errno);
    }
    // Unlink before composing a message: building it allocates, and may fail.
    if (!written) {
        if (!temporary.empty())
            unlink(temporary.c_str());
        else if (unnamed)
            unlink(path.c_str());  // linked as path itself, then its close failed
        *error = fill_error.empty() ? "cannot write " + (unnamed ? path : temporary) : fill_error;
        return false;
    }
    if (unnamed && temporary.empty()) return true;  // linked as path itself
    if (rename(temporary.c_str(), path.c_str()) != 0) {
        int rename_errno = errno;
        unlink(temporary.c_str());
        *error = "cannot rename " + temporary + " to " + path + ": " + errno_text(rename_errno);
        return false;
    }
    return true;
}

}  // namespace

std::string errno_text(int error_number) {
    char buffer[128];
    // GNU strerror_r: returns a pointer to the text, which may or may not be buffer.
    return strerror_r(error_number, buffer, sizeof buffer);
}

bool within_file_size_limit(off_t offset, size_t count, std::string* error) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_FSIZE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return true;
    if (offset >= 0 && static_cast<unsigned long long>(offset) + count <= limit.rlim_cur) {
        return true;
    }
    *error = "writing " + std::to_string(count) +
             " bytes would exceed the file size limit (RLIMIT_FSIZE, ulimit -f) of " +
             std::to_string(static_cast<unsigned long long>(limit.rlim_cur)) + " bytes";
    return false;
}

bool create_parent_directories(const std::string& path, mode_t mode, std::string* error) noexcept {
    return without_exceptions(error, "creating directories", [&] {
        std::string directory = directory_of(path);
        struct stat status;
        if (stat(directory.c_str(), &status) == 0 && S_ISDIR(status.st_mode)) return true;
        // Create each component in turn, from the top; existing ones are fine if they are
        // directories (or symbolic links to directories, as with mkdir -p).
        for (size_t end = 1; end <= directory.size(); ++end) {
            if (end != directory.size() && directory[end] != '/') continue;
            if (directory[end - 1] == '/') continue;  // "//" or a trailing slash
            std::string component = directory.substr(0, end);
            if (mkdir(component.c_str(), mode & 0777) == 0) {
                // Our own new directory: chmod fails only where modes are not kept (some network
                // file systems), and then the directory still serves its creator.
                (void)chmod(component.c_str(), mode);
                continue;
            }
            int mkdir_errno = errno;
            // An existing directory is fine whatever mkdir said about it (EEXIST, or EACCES or
            // EROFS on some file systems).
            if (stat(component.c_str(), &status) == 0 && S_ISDIR(status.st_mode)) continue;
            *error = "cannot create directory " + component + ": " +
                     (mkdir_errno == EEXIST ? std::string("exists and is not a directory")
                                            : errno_text(mkdir_errno));
            return false;
        }
        return true;
    });
}

bool write_file_atomically(const std::string& path, uint64_t max_size, mode_t mode, FillFn fill,
                           void* context, std::string* error) noexcept {
    return without_exceptions(error, "writing a file", [&] {
        return write_file(path, max_size, mode, fill, context, error);
    });
}

bool write_fully(int fd, std::string_view bytes, int send_flags, int* error_number) {
    while (!bytes.empty()) {
        ssize_t n = send_flags >= 0 ? send(fd, bytes.data(), bytes.size(), send_flags)
                                    : write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            *error_number = errno;
            return false;
        }
        if (n == 0) {  // not expected from a regular file; don't spin
            *error_number = ENOSPC;
            return false;
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

}  // namespace gprof::base
