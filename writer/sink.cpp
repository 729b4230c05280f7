#include "writer/sink.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

#include "preload/log.h"
#include "writer/elf_file.h"

namespace gprof::writer {
namespace {

// A unique temporary name per attempt, even for several threads of one process.
std::atomic<unsigned> g_temporary_counter{0};

// write(2) until everything is out. send_flags >= 0 means fd is a socket: use send(2) with those
// flags (MSG_NOSIGNAL) instead.
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

std::string directory_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

bool write_file(const std::string& path, std::string_view bytes, std::string* error) {
    if (!create_parent_directories(path, error)) return false;
    if (!within_file_size_limit(0, bytes.size(), error)) return false;

    std::string temporary;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd == -1; ++attempt) {
        // Ends in ".tmp" so that nothing looking for "*.pb.gz" picks up a file still being written.
        temporary = path + "." + std::to_string(getpid()) + "-" +
                    std::to_string(g_temporary_counter.fetch_add(1)) + ".tmp";
        fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd == -1 && errno != EEXIST && errno != EINTR) break;
    }
    if (fd == -1) {
        *error = "cannot create " + temporary + ": " + errno_text(errno);
        return false;
    }

    int error_number = 0;
    bool written = write_fully(fd, bytes, -1, &error_number);
    // close can report a deferred write error (NFS); it still releases the descriptor.
    if (close(fd) != 0 && written && errno != EINTR) {
        written = false;
        error_number = errno;
    }
    // Unlink before composing the message: building it allocates, and may fail.
    if (!written) {
        unlink(temporary.c_str());
        *error = "cannot write " + temporary + ": " + errno_text(error_number);
        return false;
    }
    if (rename(temporary.c_str(), path.c_str()) != 0) {
        error_number = errno;
        unlink(temporary.c_str());
        *error = "cannot rename " + temporary + " to " + path + ": " + errno_text(error_number);
        return false;
    }
    return true;
}

bool write_descriptor(int fd, std::string_view bytes, std::string* error) {
    struct stat status;
    if (fstat(fd, &status) != 0) {
        *error = "cannot write to file descriptor " + std::to_string(fd) + ": " + errno_text(errno);
        return false;
    }
    int error_number = 0;
    bool ok;
    if (S_ISSOCK(status.st_mode)) {
        ok = write_fully(fd, bytes, MSG_NOSIGNAL, &error_number);
    } else if (S_ISFIFO(status.st_mode)) {
        log::SigpipeShield shield;
        ok = write_fully(fd, bytes, -1, &error_number);
    } else {
        if (S_ISREG(status.st_mode)) {
            int flags = fcntl(fd, F_GETFL);
            off_t offset =
                flags != -1 && (flags & O_APPEND) ? status.st_size : lseek(fd, 0, SEEK_CUR);
            if (!within_file_size_limit(offset, bytes.size(), error)) return false;
        }
        ok = write_fully(fd, bytes, -1, &error_number);
    }
    if (!ok) {
        *error = "cannot write to file descriptor " + std::to_string(fd) + ": " +
                 errno_text(error_number);
    }
    return ok;
}

// Runs body and turns an exception (only std::bad_alloc is possible) into a failure.
template <typename Body>
bool without_exceptions(std::string* error, Body body) noexcept {
    try {
        return body();
    } catch (...) {
        try {
            *error = "out of memory while writing a profile";
        } catch (...) {
        }
        return false;
    }
}

}  // namespace

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

std::string profile_file_path(std::string_view prefix, pid_t pid, unsigned sequence,
                              std::string_view profile) {
    char numbers[48];
    snprintf(numbers, sizeof numbers, ".%ld.%04u.", static_cast<long>(pid), sequence);
    std::string path;
    path.reserve(prefix.size() + sizeof numbers + profile.size() + 6);
    path.append(prefix);
    path.append(numbers);
    path.append(profile);
    path.append(".pb.gz");
    return path;
}

bool create_parent_directories(const std::string& path, std::string* error) noexcept {
    return without_exceptions(error, [&] {
        std::string directory = directory_of(path);
        struct stat status;
        if (stat(directory.c_str(), &status) == 0 && S_ISDIR(status.st_mode)) return true;
        // Create each component in turn, from the top; existing ones are fine if they are
        // directories (or symbolic links to directories, as with mkdir -p).
        for (size_t end = 1; end <= directory.size(); ++end) {
            if (end != directory.size() && directory[end] != '/') continue;
            if (directory[end - 1] == '/') continue;  // "//" or a trailing slash
            std::string component = directory.substr(0, end);
            if (mkdir(component.c_str(), 0777) == 0) continue;
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

bool write_file_atomically(const std::string& path, std::string_view bytes,
                           std::string* error) noexcept {
    return without_exceptions(error, [&] { return write_file(path, bytes, error); });
}

bool write_to_fd(int fd, std::string_view bytes, std::string* error) noexcept {
    return without_exceptions(error, [&] { return write_descriptor(fd, bytes, error); });
}

}  // namespace gprof::writer
