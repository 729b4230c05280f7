// The calls that change a process's user or groups (setuid and setgid, their e-, re- and res-
// forms, setgroups). glibc applies each to every thread (a signal to each, which makes the same
// system call there) and aborts the process when the threads' results differ, as they do when a
// thread lacks a capability the caller has: capabilities are per thread, and a program that
// adjusted its own (setpriv: PR_SET_KEEPCAPS, setresuid, capset, then setresgid) would abort
// where, single-threaded, it passes. And when the real user changes, Linux counts the process's
// threads against the new user's RLIMIT_NPROC and, if they exceed it, marks the process so that
// its next execve fails with EAGAIN. So gprof's own threads end before the change and start again
// after it, from the caller and with its credentials (one gprof: line for each that cannot, its
// feature off). glibc's functions are called, not replaced.
#include <dlfcn.h>
#include <grp.h>
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

// The change, with gprof's threads out of the way; errno as the call left it.
template <typename Fn, typename... Args>
int around(Fn real, Args... args) {
    if (real == nullptr) return errno = ENOSYS, -1;
    if (gprof::base::inside_gprof()) return real(args...);
    gprof::dumper::OwnThreads was = gprof::dumper::pause_own_threads();
    int result = real(args...);
    int saved = errno;
    gprof::dumper::resume_own_threads(was);
    errno = saved;
    return result;
}

}  // namespace

extern "C" {

int setuid(uid_t uid) noexcept {
    static auto real = next<int (*)(uid_t)>("setuid");
    return around(real, uid);
}

int seteuid(uid_t euid) noexcept {
    static auto real = next<int (*)(uid_t)>("seteuid");
    return around(real, euid);
}

int setreuid(uid_t ruid, uid_t euid) noexcept {
    static auto real = next<int (*)(uid_t, uid_t)>("setreuid");
    return around(real, ruid, euid);
}

int setresuid(uid_t ruid, uid_t euid, uid_t suid) noexcept {
    static auto real = next<int (*)(uid_t, uid_t, uid_t)>("setresuid");
    return around(real, ruid, euid, suid);
}

int setgid(gid_t gid) noexcept {
    static auto real = next<int (*)(gid_t)>("setgid");
    return around(real, gid);
}

int setegid(gid_t egid) noexcept {
    static auto real = next<int (*)(gid_t)>("setegid");
    return around(real, egid);
}

int setregid(gid_t rgid, gid_t egid) noexcept {
    static auto real = next<int (*)(gid_t, gid_t)>("setregid");
    return around(real, rgid, egid);
}

int setresgid(gid_t rgid, gid_t egid, gid_t sgid) noexcept {
    static auto real = next<int (*)(gid_t, gid_t, gid_t)>("setresgid");
    return around(real, rgid, egid, sgid);
}

int setgroups(size_t size, const gid_t* list) noexcept {
    static auto real = next<int (*)(size_t, const gid_t*)>("setgroups");
    return around(real, size, list);
}

}  // extern "C"
