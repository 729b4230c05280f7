// setuid, setreuid and setresuid. When the real user changes, Linux counts the process's threads
// against the new user's RLIMIT_NPROC and, if they exceed it, marks the process so that its next
// execve fails with EAGAIN (a server that drops to nobody and execs a helper). gprof's own threads
// must not tip that count where the program alone, single-threaded, would pass: they end before
// the change and start again after it (one gprof: line for each that cannot, its feature off).
// glibc's functions apply the change to every thread; they are called, not replaced.
#include <dlfcn.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>

#include "base/reentry_guard.h"
#include "preload/dumper.h"

namespace {

template <typename Fn>
Fn next(const char* name) {
    static_assert(sizeof(Fn) == sizeof(void*));
    return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

// The change of user, with gprof's threads out of the way; errno as the call left it.
template <typename Call>
int around(Call call) {
    gprof::dumper::OwnThreads was = gprof::dumper::pause_own_threads();
    int result = call();
    int saved = errno;
    gprof::dumper::resume_own_threads(was);
    errno = saved;
    return result;
}

}  // namespace

extern "C" {

int setuid(uid_t uid) noexcept {
    static auto real = next<int (*)(uid_t)>("setuid");
    if (real == nullptr) return errno = ENOSYS, -1;
    if (gprof::base::inside_gprof()) return real(uid);
    return around([&] { return real(uid); });
}

int setreuid(uid_t ruid, uid_t euid) noexcept {
    static auto real = next<int (*)(uid_t, uid_t)>("setreuid");
    if (real == nullptr) return errno = ENOSYS, -1;
    if (gprof::base::inside_gprof() || ruid == static_cast<uid_t>(-1)) return real(ruid, euid);
    return around([&] { return real(ruid, euid); });
}

int setresuid(uid_t ruid, uid_t euid, uid_t suid) noexcept {
    static auto real = next<int (*)(uid_t, uid_t, uid_t)>("setresuid");
    if (real == nullptr) return errno = ENOSYS, -1;
    if (gprof::base::inside_gprof() || ruid == static_cast<uid_t>(-1))
        return real(ruid, euid, suid);
    return around([&] { return real(ruid, euid, suid); });
}

}  // extern "C"
