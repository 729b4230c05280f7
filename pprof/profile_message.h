// The pprof messages (pprof/profile.proto) as plain C++ values, and their encoding.
//
// The builder fills a ProfileMessage; encode_profile turns it into protobuf bytes. Keeping the
// values apart from the encoding lets the unit tests describe a message independently, encode it,
// decode it with libprotobuf and compare field by field. Field names match profile.proto; string
// fields are indexes into string_table.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gprof::pprof {

struct ValueTypeMessage {
    int64_t type = 0;
    int64_t unit = 0;
};

struct LabelMessage {
    int64_t key = 0;
    int64_t str = 0;
    int64_t num = 0;
    int64_t num_unit = 0;
};

struct SampleMessage {
    std::vector<uint64_t> location_id;  // leaf first
    std::vector<int64_t> value;
    std::vector<LabelMessage> label;
};

// A sample's fields where they already lie, for encode_sample.
struct SampleView {
    const uint64_t* location_id = nullptr;
    size_t location_count = 0;
    const int64_t* value = nullptr;
    size_t value_count = 0;
    const LabelMessage* label = nullptr;
    size_t label_count = 0;
};

struct MappingMessage {
    uint64_t id = 0;
    uint64_t memory_start = 0;
    uint64_t memory_limit = 0;
    uint64_t file_offset = 0;
    int64_t filename = 0;
    int64_t build_id = 0;
    bool has_functions = false;
    bool has_filenames = false;
    bool has_line_numbers = false;
    bool has_inline_frames = false;
};

struct LineMessage {
    uint64_t function_id = 0;
    int64_t line = 0;
    int64_t column = 0;
};

struct LocationMessage {
    uint64_t id = 0;
    uint64_t mapping_id = 0;
    uint64_t address = 0;
    std::vector<LineMessage> line;  // innermost inlined function first
    bool is_folded = false;
};

struct FunctionMessage {
    uint64_t id = 0;
    int64_t name = 0;
    int64_t system_name = 0;
    int64_t filename = 0;
    int64_t start_line = 0;
};

struct ProfileMessage {
    std::vector<ValueTypeMessage> sample_type;
    std::vector<SampleMessage> sample;
    // More samples, each already encoded by encode_sample, written after `sample`. A builder of a
    // large profile encodes each sample as it comes instead of keeping three vectors per sample
    // until the end, which would take several times the memory, in fresh pages of the program
    // it runs inside.
    std::string_view encoded_samples;
    std::vector<MappingMessage> mapping;
    std::vector<LocationMessage> location;
    std::vector<FunctionMessage> function;
    // Views into strings owned by whoever built the message; they must outlive encode_profile.
    std::vector<std::string_view> string_table;
    int64_t drop_frames = 0;
    int64_t keep_frames = 0;
    int64_t time_nanos = 0;
    int64_t duration_nanos = 0;
    ValueTypeMessage period_type;
    int64_t period = 0;
    std::vector<int64_t> comment;
    int64_t default_sample_type = 0;
};

// Appends one `sample` field of Profile (tag, length, the sample) to *out: the bytes
// encode_profile writes for a SampleMessage with the same fields. May throw std::bad_alloc.
void encode_sample(const SampleView& sample, std::string* out);

// Appends the protobuf encoding of profile to *out. Scalars equal to their proto3 default (0,
// false) are left out, as proto3 does; repeated entries and period_type are always written.
// May throw std::bad_alloc (callers inside the host process catch it).
void encode_profile(const ProfileMessage& profile, std::string* out);

}  // namespace gprof::pprof
