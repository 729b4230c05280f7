#include "base/reentry_guard.h"

namespace gprof::base {

constinit thread_local int t_reentry_depth [[gnu::tls_model("initial-exec")]] = 0;

}  // namespace gprof::base
