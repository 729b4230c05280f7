// gprof_write_profile, gprof_dump and the custom profiles (Go's pprof.NewProfile).
#include <pthread.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "api/gprof.h"
#include "api/misuse.h"
#include "api/output.h"
#include "base/reentry_guard.h"
#include "preload/dumper.h"
#include "record/custom_profiles.h"
#include "record/labels.h"
#include "record/stack_table.h"
#include "unwind/stack.h"
#include "writer/named_profile.h"

namespace a = gprof::api;
namespace r = gprof::record;

namespace {

// How long a call waits for a dump, a fork or another call in progress (the slowest first dump
// seen takes 0.1 s; a dump of a huge process, seconds).
constexpr int kWaitMs = 60 * 1000;

// fork(): the custom profiles' and the label sets' locks, taken after the dump's exclusion and
// gprof's tables' (registered before preload/lifecycle.cpp's handler, whose prepare runs first:
// pthread_atfork runs prepare handlers in reverse order of registration) and before the
// allocator's. Nothing that holds these locks allocates or waits for another lock of gprof's.
void prepare_fork() {
    r::lock_custom_profiles();
    r::lock_labels();
}

void after_fork() {
    r::unlock_labels();
    r::unlock_custom_profiles();
}

__attribute__((constructor(101))) void register_fork_handlers() {
    pthread_atfork(prepare_fork, after_fork, after_fork);
}

struct WriteRequest {
    const char* name;
    int debug;
    std::string out, error;
    gprof::writer::NamedResult result;
};

void write_named(void* raw) {
    auto* request = static_cast<WriteRequest*>(raw);
    request->result = gprof::writer::write_named_profile(request->name, request->debug,
                                                         &request->out, &request->error);
}

// A custom profile's name becomes part of a file's name.
bool valid_profile_name(const char* name, size_t length) {
    if (length == 0 || length > r::CustomProfile::kMaxName || name[0] == '.') return false;
    for (size_t i = 0; i < length; ++i) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

// The handle a program holds is the profile itself, under the opaque name.
r::CustomProfile* profile_of(gprof_profile* handle) {
    auto* profile = reinterpret_cast<r::CustomProfile*>(handle);
    return profile != nullptr && profile->valid() ? profile : nullptr;
}

}  // namespace

extern "C" int gprof_write_profile(const char* name, int fd, int debug) {
    if (name == nullptr || strnlen(name, 256) > 255)
        return a::misuse(a::Misuse::WriteName, EINVAL,
                         "gprof_write_profile: a NULL or over-long profile name");
    WriteRequest request{name, debug, {}, {}, gprof::writer::NamedResult::Failed};
    {
        gprof::base::ReentryGuard guard;
        if (!gprof::dumper::run_exclusive(kWaitMs, write_named, &request)) {
            errno = EBUSY;
            return -1;
        }
    }
    switch (request.result) {
        case gprof::writer::NamedResult::Written:
            break;
        case gprof::writer::NamedResult::UnknownName:
            return a::misuse(a::Misuse::WriteName, EINVAL,
                             "gprof_write_profile: no profile of that name (heap, allocs, "
                             "goroutine, threads, threadcreate, block, mutex, or a custom one)");
        case gprof::writer::NamedResult::UnknownDebug:
            return a::misuse(a::Misuse::WriteDebug, EINVAL,
                             "gprof_write_profile: debug is 0, 1 or 2");
        case gprof::writer::NamedResult::Failed:
            errno = ENOMEM;
            return -1;
    }
    return a::write_out(fd, &request.out, a::Misuse::WriteDescriptor,
                        "gprof_write_profile: cannot write to the descriptor given");
}

extern "C" int gprof_dump(void) {
    int saved = errno;
    unsigned seq = gprof::dumper::dump_now(kWaitMs);
    if (seq == 0) {
        errno = EBUSY;
        return -1;
    }
    errno = saved;
    return static_cast<int>(seq);
}

extern "C" gprof_profile* gprof_profile_new(const char* name) {
    size_t length = name != nullptr ? strnlen(name, r::CustomProfile::kMaxName + 1) : 0;
    if (name == nullptr || !valid_profile_name(name, length) ||
        gprof::writer::is_builtin_profile_name({name, length})) {
        a::misuse(a::Misuse::ProfileName, EINVAL,
                  "gprof_profile_new: a profile name is 1-64 of [A-Za-z0-9._-], not starting "
                  "with '.', and no built-in profile's");
        return nullptr;
    }
    bool exists = false;
    r::CustomProfile* profile = r::new_custom_profile({name, length}, &exists);
    if (profile == nullptr) {
        if (exists)
            a::misuse(a::Misuse::ProfileName, EEXIST,
                      "gprof_profile_new: a profile of that name exists already");
        else
            a::misuse(a::Misuse::ProfileNoMemory, ENOSPC,
                      "gprof_profile_new: at most 64 custom profiles");
        return nullptr;
    }
    return reinterpret_cast<gprof_profile*>(profile);
}

extern "C" int gprof_profile_add(gprof_profile* handle, uintptr_t key) {
    r::CustomProfile* profile = profile_of(handle);
    if (profile == nullptr)
        return a::misuse(a::Misuse::ProfileHandle, EINVAL,
                         "gprof_profile_add: not a profile of gprof_profile_new");
    int saved = errno;
    r::CustomProfile::Result result;
    {
        gprof::base::ReentryGuard guard;
        uintptr_t pcs[gprof::unwind::kCaptureRoom];
        int depth = gprof::unwind::capture(pcs, gprof::unwind::kMaxFrames);
        uint32_t stack = depth > 0 ? r::stack_table().intern(pcs, depth) : 0;
        result = profile->add(key, stack);
    }
    switch (result) {
        case r::CustomProfile::Result::Done:
            errno = saved;
            return 0;
        case r::CustomProfile::Result::Duplicate:
            return a::misuse(a::Misuse::ProfileDuplicateKey, EEXIST,
                             "gprof_profile_add: the key is in the profile already (Go: "
                             "Profile.Add of duplicate value)");
        default:
            return a::misuse(a::Misuse::ProfileNoMemory, ENOMEM,
                             "gprof_profile_add: out of memory for the profile's keys");
    }
}

extern "C" int gprof_profile_remove(gprof_profile* handle, uintptr_t key) {
    r::CustomProfile* profile = profile_of(handle);
    if (profile == nullptr)
        return a::misuse(a::Misuse::ProfileHandle, EINVAL,
                         "gprof_profile_remove: not a profile of gprof_profile_new");
    if (profile->remove(key) == r::CustomProfile::Result::Absent)
        return a::misuse(a::Misuse::ProfileAbsentKey, ENOENT,
                         "gprof_profile_remove: the key is not in the profile");
    return 0;
}

extern "C" int64_t gprof_profile_count(gprof_profile* handle) {
    r::CustomProfile* profile = profile_of(handle);
    if (profile == nullptr)
        return a::misuse(a::Misuse::ProfileHandle, EINVAL,
                         "gprof_profile_count: not a profile of gprof_profile_new");
    return static_cast<int64_t>(profile->size());
}
