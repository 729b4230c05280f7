#include "preload/originals.h"

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace gprof::originals {
namespace {

Functions g_functions;
std::atomic<bool> g_resolved{false};

template <typename Fn>
void resolve(Fn* slot, const char* name, const char* version, const char* fallback = nullptr) {
    void* p = dlvsym(RTLD_NEXT, name, version);
    if (p == nullptr && fallback != nullptr) p = dlvsym(RTLD_NEXT, name, fallback);
    if (p == nullptr) p = dlsym(RTLD_NEXT, name);
    if (p == nullptr) {
        // No log:: here: this may run before anything else of gprof's.
        static const char msg[] = "gprof: glibc lacks a thread function gprof interposes; abort\n";
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
        abort();
    }
    *slot = reinterpret_cast<Fn>(p);
}

void resolve_all() {
    Functions f;
    resolve(&f.pthread_create, "pthread_create", "GLIBC_2.34", "GLIBC_2.2.5");
    resolve(&f.mutex_timedlock, "pthread_mutex_timedlock", "GLIBC_2.34", "GLIBC_2.2.5");
    resolve(&f.mutex_clocklock, "pthread_mutex_clocklock", "GLIBC_2.34", "GLIBC_2.30");
    resolve(&f.rwlock_timedrdlock, "pthread_rwlock_timedrdlock", "GLIBC_2.34", "GLIBC_2.2.5");
    resolve(&f.rwlock_timedwrlock, "pthread_rwlock_timedwrlock", "GLIBC_2.34", "GLIBC_2.2.5");
    resolve(&f.rwlock_clockrdlock, "pthread_rwlock_clockrdlock", "GLIBC_2.34", "GLIBC_2.30");
    resolve(&f.rwlock_clockwrlock, "pthread_rwlock_clockwrlock", "GLIBC_2.34", "GLIBC_2.30");
    resolve(&f.cond_wait, "pthread_cond_wait", "GLIBC_2.3.2");
    resolve(&f.cond_timedwait, "pthread_cond_timedwait", "GLIBC_2.3.2");
    resolve(&f.cond_clockwait, "pthread_cond_clockwait", "GLIBC_2.34", "GLIBC_2.30");
    resolve(&f.sem_wait, "sem_wait", "GLIBC_2.34", "GLIBC_2.2.5");
    resolve(&f.sem_timedwait, "sem_timedwait", "GLIBC_2.34", "GLIBC_2.2.5");
    resolve(&f.sem_clockwait, "sem_clockwait", "GLIBC_2.34", "GLIBC_2.30");
    // Racing first callers resolve the same values; the copy is published once complete.
    g_functions = f;
    g_resolved.store(true, std::memory_order_release);
}

}  // namespace

const Functions& functions() {
    if (!g_resolved.load(std::memory_order_acquire)) [[unlikely]]
        resolve_all();
    return g_functions;
}

}  // namespace gprof::originals
