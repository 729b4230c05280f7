// setrlimit and prlimit. jemalloc makes a thread's arena at the thread's first allocation and
// faults where it cannot; once the program limits its address space (RLIMIT_AS), gprof's jemalloc
// makes its first arenas while memory is there (backing::make_arenas). glibc's functions are
// called, not replaced.
#include <dlfcn.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/reentry_guard.h"
#include "preload/backing.h"

namespace {

template <typename Fn>
Fn next(const char* name) {
    static_assert(sizeof(Fn) == sizeof(void*));
    return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

// `finite`: the new soft limit, if any, is not RLIM_INFINITY.
void before(int resource, bool finite) {
    if (resource != RLIMIT_AS || !finite) return;
    gprof::base::ReentryGuard guard;
    gprof::backing::make_arenas(true);
}

template <typename Limit>
bool finite(const Limit* limit) {
    return limit != nullptr && limit->rlim_cur != static_cast<decltype(limit->rlim_cur)>(-1);
}

}  // namespace

// glibc's headers may name these functions after their 64-bit twins (_FILE_OFFSET_BITS=64): the
// symbols are given by name. On x86-64, struct rlimit and struct rlimit64 are the same.
static_assert(sizeof(struct rlimit) == sizeof(struct rlimit64));
extern "C" {
int gprof_setrlimit(int, const struct rlimit64*) __asm__("setrlimit");
int gprof_setrlimit64(int, const struct rlimit64*) __asm__("setrlimit64");
int gprof_prlimit(pid_t, int, const struct rlimit64*, struct rlimit64*) __asm__("prlimit");
int gprof_prlimit64(pid_t, int, const struct rlimit64*, struct rlimit64*) __asm__("prlimit64");
}

namespace {

using SetLimit = int (*)(int, const struct rlimit64*);
using PrLimit = int (*)(pid_t, int, const struct rlimit64*, struct rlimit64*);

int set_limit(const char* name, SetLimit* real, int resource, const struct rlimit64* limit) {
    if (*real == nullptr) *real = next<SetLimit>(name);
    before(resource, finite(limit));
    return (*real)(resource, limit);
}

int pr_limit(const char* name, PrLimit* real, pid_t pid, int resource,
             const struct rlimit64* limit, struct rlimit64* old) {
    if (*real == nullptr) *real = next<PrLimit>(name);
    if (pid == 0 || pid == getpid()) before(resource, finite(limit));
    return (*real)(pid, resource, limit, old);
}

SetLimit g_setrlimit, g_setrlimit64;
PrLimit g_prlimit, g_prlimit64;

}  // namespace

int gprof_setrlimit(int resource, const struct rlimit64* limit) {
    return set_limit("setrlimit", &g_setrlimit, resource, limit);
}
int gprof_setrlimit64(int resource, const struct rlimit64* limit) {
    return set_limit("setrlimit64", &g_setrlimit64, resource, limit);
}
int gprof_prlimit(pid_t pid, int resource, const struct rlimit64* limit, struct rlimit64* old) {
    return pr_limit("prlimit", &g_prlimit, pid, resource, limit, old);
}
int gprof_prlimit64(pid_t pid, int resource, const struct rlimit64* limit, struct rlimit64* old) {
    return pr_limit("prlimit64", &g_prlimit64, pid, resource, limit, old);
}
