#include "base/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "base/config.h"

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

sigset_t sigpipe_only() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    return set;
}

}  // namespace

void start() { stderr_usable(); }

SigpipeShield::SigpipeShield() {
    const sigset_t pipe_only = sigpipe_only();
    sigset_t pending;
    pthread_sigmask(SIG_BLOCK, &pipe_only, &previous_);
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

SigpipeShield::~SigpipeShield() {
    int saved = errno;
    sigset_t pending;
    if (!was_pending_ && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        const sigset_t pipe_only = sigpipe_only();
        struct timespec no_wait = {0, 0};
        while (sigtimedwait(&pipe_only, nullptr, &no_wait) == -1 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    errno = saved;
}

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
    {
        SigpipeShield shield;
        ssize_t ignored = write(2, buf, static_cast<size_t>(n));
        (void)ignored;
    }
    errno = saved;
}

void problem(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vformat(fmt, ap);
    va_end(ap);
}

void info(const char* fmt, ...) {
    switch (config().log) {
        case LogFiles::Never:
            return;
        case LogFiles::WhenTerminal: {
            int saved = errno;
            bool terminal = stderr_usable() && isatty(2) == 1;
            errno = saved;
            if (!terminal) return;
            break;
        }
        case LogFiles::Always:
            break;
    }
    va_list ap;
    va_start(ap, fmt);
    vformat(fmt, ap);
    va_end(ap);
}

}  // namespace gprof::log
