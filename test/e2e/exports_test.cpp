// What libgprof.so shows the process: exactly the interposed heap surface and gprof's own API,
// and no shared library that would bring a second allocator or a protobuf runtime along.
#include <catch2/catch.hpp>
#include <set>
#include <sstream>

#include "test/e2e/e2e.h"

using namespace e2e;

namespace {

// clang-format off
const std::set<std::string> kInterposed = {
    // the malloc family
    "malloc", "free", "cfree", "calloc", "realloc", "reallocarray", "posix_memalign",
    "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size",
    // jemalloc's non-standard API
    "mallocx", "rallocx", "xallocx", "sallocx", "dallocx", "sdallocx", "nallocx",
    // the 20 replaceable operator new/delete
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
    "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
    // threads and locks
    "pthread_create",
    "pthread_mutex_lock", "pthread_mutex_timedlock", "pthread_mutex_clocklock",
    "pthread_mutex_unlock", "pthread_rwlock_rdlock", "pthread_rwlock_wrlock",
    "pthread_rwlock_timedrdlock", "pthread_rwlock_timedwrlock", "pthread_rwlock_clockrdlock",
    "pthread_rwlock_clockwrlock", "pthread_rwlock_unlock", "pthread_cond_wait",
    "pthread_cond_timedwait", "pthread_cond_clockwait", "sem_wait", "sem_timedwait",
    "sem_clockwait",
    // the dump signal's disposition as the program sees it
    "sigaction", "signal", "bsd_signal", "sysv_signal",
    // a change of user or groups: gprof's threads end around it (glibc's all-thread change,
    // RLIMIT_NPROC)
    "setuid", "seteuid", "setreuid", "setresuid", "setgid", "setegid", "setregid", "setresgid",
    "setgroups",
    // an address-space limit: gprof's jemalloc makes its first arenas before it applies
    "setrlimit", "setrlimit64", "prlimit", "prlimit64",
    // fork from a signal handler that interrupted an allocation: glibc's _Fork, no handlers
    "fork",
};
// clang-format on

// dlclose: a closed library's samples keep their names (preload/dlclose_shim.cpp). dlopen: a
// library opened with RTLD_DEEPBIND keeps to gprof's malloc (preload/dlopen_shim.cpp).
const std::set<std::string> kInterposedForSymbols = {"dlclose", "dlopen"};

}  // namespace

TEST_CASE("libgprof.so exports exactly the heap, thread, lock and signal surface and gprof_* names",
          "[exports]") {
    REQUIRE(kInterposed.size() == 12 + 7 + 20 + 1 + 17 + 4 + 9 + 4 + 1);
    REQUIRE_FALSE(kNm.empty());
    RunResult r = run({kNm, "-D", "--defined-only", kGprofLib});
    INFO(r.describe());
    REQUIRE(r.status == 0);

    std::set<std::string> exported;
    for (const std::string& line : split_lines(r.out)) {
        std::istringstream fields(line);
        std::string field, name;
        while (fields >> field) name = field;  // the last field is the name
        if (name.empty()) continue;
        name = name.substr(0, name.find('@'));  // a version suffix, if any
        exported.insert(name);
    }
    std::string unexpected, missing;
    for (const std::string& name : exported)
        if (!kInterposed.count(name) && !kInterposedForSymbols.count(name) &&
            name.rfind("gprof_", 0) != 0)
            unexpected += name + " ";
    for (const std::string& name : kInterposed)
        if (!exported.count(name)) missing += name + " ";
    for (const std::string& name : kInterposedForSymbols)
        if (!exported.count(name)) missing += name + " ";
    INFO("unexpected exports: " << unexpected);
    INFO("missing exports: " << missing);
    CHECK(unexpected.empty());
    CHECK(missing.empty());
    CHECK(exported.count("gprof_read_memstats") == 1);
}

TEST_CASE("libgprof.so needs no libprotobuf, no libjemalloc and no libstdc++", "[exports]") {
    REQUIRE_FALSE(kReadelf.empty());
    RunResult r = run({kReadelf, "-d", kGprofLib});
    INFO(r.describe());
    REQUIRE(r.status == 0);
    std::string needed;
    for (const std::string& line : split_lines(r.out))
        if (contains(line, "(NEEDED)")) needed += line + "\n";
    INFO("NEEDED entries:\n" << needed);
    CHECK_FALSE(needed.empty());
    CHECK_FALSE(contains(needed, "libprotobuf"));
    CHECK_FALSE(contains(needed, "libjemalloc"));
    CHECK_FALSE(contains(needed, "libtcmalloc"));
    // libstdc++ is linked in, its names private: a C program does not map and relocate it for
    // gprof.
    CHECK_FALSE(contains(needed, "libstdc++"));
}
