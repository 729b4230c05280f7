#include "preload/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "preload/config.h"

namespace gprof::log {
namespace {

// Whether fd 2 was open when gprof first looked. A program started with stderr closed may later
// open a file that gets fd 2; gprof must never write into it.
enum : int { kUnknown, kOpen, kClosed };
std::atomic<int> g_stderr{kUnknown};

bool stderr_usable() {
    int state = g_stderr.load(std::memory_order_relaxed);
    if (state == kUnknown) {
        int saved = errno;
        state = fcntl(2, F_GETFD) == -1 ? kClosed : kOpen;
        errno = saved;
        g_stderr.store(state, std::memory_order_relaxed);
    }
    return state == kOpen;
}

void vformat(const char* fmt, va_list ap) {
    char text[1024];
    vsnprintf(text, sizeof text, fmt, ap);
    line(text);
}

}  // namespace

void start() { stderr_usable(); }

void line(const char* text) {
    if (!stderr_usable()) return;
    char buf[1100];
    int n = snprintf(buf, sizeof buf, "gprof: %s\n", text);
    if (n < 0) return;
    if (static_cast<size_t>(n) >= sizeof buf) {
        n = sizeof buf - 1;
        buf[n - 1] = '\n';
    }
    int saved = errno;
    ssize_t ignored = write(2, buf, static_cast<size_t>(n));
    (void)ignored;
    errno = saved;
}

void problem(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vformat(fmt, ap);
    va_end(ap);
}

void info(const char* fmt, ...) {
    if (!config().log) return;
    va_list ap;
    va_start(ap, fmt);
    vformat(fmt, ap);
    va_end(ap);
}

}  // namespace gprof::log
