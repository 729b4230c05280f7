// The C API calls a program may make often: gprof_label_push + gprof_label_pop around a request,
// and gprof_profile_add + gprof_profile_remove around a resource's life. Prints its result line
// on stdout (the same with or without gprof) and the nanoseconds per pair on stderr.
// Usage: bench_api_calls [scale=1.0]
#include <time.h>

#include <cstdint>
#include <cstdio>

#include "gprof.h"
#include "scale_arg.h"

namespace {

double now_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

[[gnu::noinline]] void open_resource(gprof_profile* profile, uintptr_t key) {
    gprof_profile_add(profile, key);
}

}  // namespace

int main(int argc, char** argv) {
    const double scale = scale_arg(argc, argv);
    const long labels = static_cast<long>(10000000 * scale);
    const long resources = static_cast<long>(2000000 * scale);
    double label_ns = 0, profile_ns = 0;
    if (gprof_label_push != nullptr && gprof_label_pop != nullptr) {
        const char* values[] = {"checkout", "search", "login", "cart"};
        double start = now_ns();
        for (long i = 0; i < labels; ++i) {
            gprof_label_push("request", values[i & 3]);
            gprof_label_pop();
        }
        label_ns = (now_ns() - start) / static_cast<double>(labels);
    }
    if (gprof_profile_new != nullptr) {
        gprof_profile* profile = gprof_profile_new("bench_resources");
        double start = now_ns();
        // 64 resources open at a time, as a server holds a few connections.
        for (long i = 0; i < resources; ++i) {
            open_resource(profile, static_cast<uintptr_t>(i));
            if (i >= 64) gprof_profile_remove(profile, static_cast<uintptr_t>(i - 64));
        }
        profile_ns = (now_ns() - start) / static_cast<double>(resources);
    }
    std::printf("api %ld %ld\n", labels, resources);
    std::fprintf(stderr, "label push+pop: %.1f ns; profile add+remove: %.1f ns\n", label_ns,
                 profile_ns);
    return 0;
}
