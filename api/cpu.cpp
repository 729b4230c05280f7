// gprof_start_cpu_profile and gprof_stop_cpu_profile: Go's pprof.StartCPUProfile and
// StopCPUProfile, on the CPU sampler's on-demand session (preload/cpu_sampler.h), which runs
// beside the dumps' own cpu profile without disturbing it.
#include <fcntl.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "api/gprof.h"
#include "api/misuse.h"
#include "api/output.h"
#include "base/reentry_guard.h"
#include "preload/cpu_sampler.h"
#include "preload/dumper.h"
#include "writer/named_profile.h"

namespace a = gprof::api;
namespace r = gprof::record;

namespace {

constexpr int kWaitMs = 60 * 1000;
// The descriptor the profile goes to; -1 while none runs through the API.
std::atomic<int> g_fd{-1};

struct CpuRequest {
    const r::CpuProfileData* data;
    std::string out, error;
    bool ok = false;
};

void write_cpu(void* raw) {
    auto* request = static_cast<CpuRequest*>(raw);
    request->ok = gprof::writer::write_cpu_profile(*request->data, &request->out, &request->error);
}

}  // namespace

extern "C" int gprof_start_cpu_profile(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags == -1 || (flags & O_ACCMODE) == O_RDONLY)
        return a::misuse(a::Misuse::CpuDescriptor, EBADF,
                         "gprof_start_cpu_profile: the descriptor is not open for writing");
    int expected = -1;
    if (!g_fd.compare_exchange_strong(expected, fd)) {
        errno = EBUSY;  // Go: "cpu profiling already in use"
        return -1;
    }
    int error;
    {
        gprof::base::ReentryGuard guard;
        error = gprof::cpu_sampler::begin(r::CpuSession::OnDemand);
    }
    if (error != 0) {
        g_fd.store(-1);
        errno = error;
        return -1;
    }
    return 0;
}

extern "C" int gprof_stop_cpu_profile(void) {
    int fd = g_fd.load();
    if (fd < 0)
        return a::misuse(a::Misuse::CpuNotStarted, EINVAL,
                         "gprof_stop_cpu_profile: no CPU profile was started");
    r::CpuProfileData data;
    CpuRequest request{&data, {}, {}, false};
    bool ran;
    {
        gprof::base::ReentryGuard guard;
        r::take_cpu_session(r::CpuSession::OnDemand, &data);
        gprof::cpu_sampler::end_on_demand();
        ran = gprof::dumper::run_exclusive(kWaitMs, write_cpu, &request);
    }
    g_fd.store(-1);
    if (!ran) {
        errno = EBUSY;
        return -1;
    }
    if (!request.ok) {
        errno = ENOMEM;
        return -1;
    }
    return a::write_out(fd, &request.out, a::Misuse::CpuWriteDescriptor,
                        "gprof_stop_cpu_profile: cannot write to the descriptor given");
}
