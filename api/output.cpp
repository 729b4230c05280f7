#include "api/output.h"

#include <cerrno>

#include "base/reentry_guard.h"
#include "writer/sink.h"

namespace gprof::api {

int write_out(int fd, std::string* bytes, Misuse kind, const char* text) {
    std::string error;
    int error_number = 0;
    bool written;
    {
        base::ReentryGuard guard;  // the write's memory is gprof's, not a program's allocation
        written = writer::write_to_fd(fd, *bytes, &error, &error_number);
        bytes->clear();
        bytes->shrink_to_fit();
    }
    if (!written) return misuse(kind, error_number, text);
    return 0;
}

}  // namespace gprof::api
