// Gzip compression of finished profiles (pprof requires profiles on disk to be gzipped).
//
// zlib is linked statically into libgprof.so and its names are kept private (the library links
// with --exclude-libs,ALL and an export map), so the host program may use any zlib of its own,
// or none, and gprof does not depend on the host having libz installed.
#pragma once

#include <string>
#include <string_view>

namespace gprof::pprof {

// Appends the gzip member holding input to *out. On failure returns false and sets *error;
// never throws.
bool gzip_compress(std::string_view input, std::string* out, std::string* error) noexcept;

}  // namespace gprof::pprof
