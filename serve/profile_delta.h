// Differences of two profiles of the same kind (net/http/pprof's delta profiles and godeltaprof's
// paths), computed on the encoded profiles as Go does: both are decoded, the earlier one's values
// are subtracted from the later one's sample by sample, and the result is encoded again.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "pprof/profile_message.h"

namespace gprof::serve {

// A profile decoded from its protobuf: the message's strings are views into `bytes`.
struct DecodedProfile {
    std::string bytes;  // the inflated protobuf
    pprof::ProfileMessage message;
};

// Inflates (when gzipped) and decodes a Profile. False, with *error set, on malformed input.
// Never throws.
bool decode_profile(std::string_view encoded, DecodedProfile* out, std::string* error) noexcept;

// later - earlier, gzipped into *out. Samples are the same when their stacks (addresses and the
// functions and lines at them) and labels are; a sample only in `earlier` comes out negated. The
// columns whose sample type starts with `inuse_` (the heap's) keep the later profile's values,
// as godeltaprof does: live memory at the end, not a difference. Samples whose values all come
// out zero are dropped. time_nanos and duration_nanos are set as given. `earlier` may be empty:
// then the result is `later` with its times set. False, with *error set, when a profile cannot be
// decoded or the two have different sample types. Never throws.
bool profile_delta(std::string_view earlier, std::string_view later, int64_t time_nanos,
                   int64_t duration_nanos, std::string* out, std::string* error) noexcept;

// What net/http/pprof's index shows as a profile's count: the number of samples, or (for count
// profiles, whose one value is a count) the sum of their values. -1 when it cannot be decoded.
int64_t profile_count(std::string_view encoded, bool sum_values) noexcept;

}  // namespace gprof::serve
