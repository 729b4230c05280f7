// What the C API's writing calls end with: a profile's bytes written to the program's descriptor.
#pragma once

#include <string>

#include "api/misuse.h"

namespace gprof::api {

// Writes `bytes` to fd (all of them, across short writes and EINTR) and frees them. Returns 0, or
// -1 with errno set to the write's error and `text` said once for `kind`.
int write_out(int fd, std::string* bytes, Misuse kind, const char* text);

}  // namespace gprof::api
