#include "api/misuse.h"

#include "base/log.h"

namespace gprof::api {
namespace {

std::atomic<bool> g_said[static_cast<int>(Misuse::Count)];

}  // namespace

int misuse(Misuse kind, int error, const char* text) {
    if (!g_said[static_cast<int>(kind)].exchange(true, std::memory_order_relaxed))
        log::problem("%s", text);
    errno = error;
    return -1;
}

}  // namespace gprof::api
