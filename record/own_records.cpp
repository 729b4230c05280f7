#include "record/own_records.h"

namespace gprof::record {

constinit std::atomic<bool> g_forked{false};
constinit std::atomic<bool> g_recorded_since_fork{false};

}  // namespace gprof::record
