#include "base/stop_scope.h"

namespace gprof::base {
namespace {
constinit thread_local const std::atomic<int>* t_stop_flag [[gnu::tls_model("initial-exec")]] =
    nullptr;
}  // namespace

StopScope::StopScope(const std::atomic<int>* flag) noexcept : previous_(t_stop_flag) {
    t_stop_flag = flag;
}

StopScope::~StopScope() {
    t_stop_flag = previous_;
}

bool StopScope::stopped() noexcept {
    return t_stop_flag != nullptr && t_stop_flag->load(std::memory_order_acquire) != 0;
}

}  // namespace gprof::base
