#include "writer/sink.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/files.h"
#include "base/log.h"

namespace gprof::writer {
namespace {

bool write_descriptor(int fd, std::string_view bytes, std::string* error, int* error_out) {
    struct stat status;
    if (fstat(fd, &status) != 0) {
        *error_out = errno;
        *error = "cannot write to file descriptor " + std::to_string(fd) + ": " +
                 base::errno_text(errno);
        return false;
    }
    int error_number = 0;
    bool ok;
    if (S_ISSOCK(status.st_mode)) {
        ok = base::write_fully(fd, bytes, MSG_NOSIGNAL, &error_number);
    } else if (S_ISFIFO(status.st_mode)) {
        log::SigpipeShield shield;
        ok = base::write_fully(fd, bytes, -1, &error_number);
    } else {
        if (S_ISREG(status.st_mode)) {
            int flags = fcntl(fd, F_GETFL);
            off_t offset =
                flags != -1 && (flags & O_APPEND) ? status.st_size : lseek(fd, 0, SEEK_CUR);
            if (!base::within_file_size_limit(offset, bytes.size(), error)) {
                *error_out = EFBIG;
                return false;
            }
        }
        ok = base::write_fully(fd, bytes, -1, &error_number);
    }
    if (!ok) {
        *error_out = error_number;
        *error = "cannot write to file descriptor " + std::to_string(fd) + ": " +
                 base::errno_text(error_number);
    }
    return ok;
}

}  // namespace

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

bool write_file_atomically(const std::string& path, std::string_view bytes,
                           std::string* error) noexcept {
    if (!base::create_parent_directories(path, 01777, error)) return false;
    return base::write_file_atomically(path, bytes.size(), 0600,
                                       [&](int fd, std::string* e) {
                                           int error_number = 0;
                                           if (base::write_fully(fd, bytes, -1, &error_number))
                                               return true;
                                           *e = "cannot write " + path + ": " +
                                                base::errno_text(error_number);
                                           return false;
                                       },
                                       error);
}

bool write_to_fd(int fd, std::string_view bytes, std::string* error, int* error_number) noexcept {
    int ignored = 0;
    int* error_out = error_number != nullptr ? error_number : &ignored;
    *error_out = ENOMEM;  // if it throws
    return base::without_exceptions(error, "writing a profile",
                                    [&] { return write_descriptor(fd, bytes, error, error_out); });
}

}  // namespace gprof::writer
