#include "pprof/profile_message.h"

#include "pprof/protobuf.h"

namespace gprof::pprof {
namespace {

// Field numbers of pprof/profile.proto.
namespace profile_field {
constexpr uint32_t kSampleType = 1, kSample = 2, kMapping = 3, kLocation = 4, kFunction = 5,
                   kStringTable = 6, kDropFrames = 7, kKeepFrames = 8, kTimeNanos = 9,
                   kDurationNanos = 10, kPeriodType = 11, kPeriod = 12, kComment = 13,
                   kDefaultSampleType = 14;
}
namespace value_type_field {
constexpr uint32_t kType = 1, kUnit = 2;
}
namespace sample_field {
constexpr uint32_t kLocationId = 1, kValue = 2, kLabel = 3;
}
namespace label_field {
constexpr uint32_t kKey = 1, kStr = 2, kNum = 3, kNumUnit = 4;
}
namespace mapping_field {
constexpr uint32_t kId = 1, kMemoryStart = 2, kMemoryLimit = 3, kFileOffset = 4, kFilename = 5,
                   kBuildId = 6, kHasFunctions = 7, kHasFilenames = 8, kHasLineNumbers = 9,
                   kHasInlineFrames = 10;
}
namespace location_field {
constexpr uint32_t kId = 1, kMappingId = 2, kAddress = 3, kLine = 4, kIsFolded = 5;
}
namespace line_field {
constexpr uint32_t kFunctionId = 1, kLine = 2, kColumn = 3;
}
namespace function_field {
constexpr uint32_t kId = 1, kName = 2, kSystemName = 3, kFilename = 4, kStartLine = 5;
}

// Proto3 has no presence for scalars: a zero is the same as an absent field, so it is not written.
class MessageWriter {
  public:
    explicit MessageWriter(std::string* out) : encoder_(out) {}

    void uint64(uint32_t field, uint64_t value) {
        if (value != 0) encoder_.uint64_field(field, value);
    }
    void int64(uint32_t field, int64_t value) {
        if (value != 0) encoder_.int64_field(field, value);
    }
    void boolean(uint32_t field, bool value) {
        if (value) encoder_.bool_field(field, value);
    }

    void value_type(uint32_t field, const ValueTypeMessage& value_type) {
        size_t mark = encoder_.begin_message(field);
        int64(value_type_field::kType, value_type.type);
        int64(value_type_field::kUnit, value_type.unit);
        encoder_.end_message(mark);
    }

    void sample(const SampleView& sample) {
        size_t mark = encoder_.begin_message(profile_field::kSample);
        encoder_.packed_uint64_field(sample_field::kLocationId, sample.location_id,
                                     sample.location_count);
        encoder_.packed_int64_field(sample_field::kValue, sample.value, sample.value_count);
        for (size_t i = 0; i < sample.label_count; ++i) {
            const LabelMessage& label = sample.label[i];
            size_t label_mark = encoder_.begin_message(sample_field::kLabel);
            int64(label_field::kKey, label.key);
            int64(label_field::kStr, label.str);
            int64(label_field::kNum, label.num);
            int64(label_field::kNumUnit, label.num_unit);
            encoder_.end_message(label_mark);
        }
        encoder_.end_message(mark);
    }

    void mapping(const MappingMessage& mapping) {
        size_t mark = encoder_.begin_message(profile_field::kMapping);
        uint64(mapping_field::kId, mapping.id);
        uint64(mapping_field::kMemoryStart, mapping.memory_start);
        uint64(mapping_field::kMemoryLimit, mapping.memory_limit);
        uint64(mapping_field::kFileOffset, mapping.file_offset);
        int64(mapping_field::kFilename, mapping.filename);
        int64(mapping_field::kBuildId, mapping.build_id);
        boolean(mapping_field::kHasFunctions, mapping.has_functions);
        boolean(mapping_field::kHasFilenames, mapping.has_filenames);
        boolean(mapping_field::kHasLineNumbers, mapping.has_line_numbers);
        boolean(mapping_field::kHasInlineFrames, mapping.has_inline_frames);
        encoder_.end_message(mark);
    }

    void location(const LocationMessage& location) {
        size_t mark = encoder_.begin_message(profile_field::kLocation);
        uint64(location_field::kId, location.id);
        uint64(location_field::kMappingId, location.mapping_id);
        uint64(location_field::kAddress, location.address);
        for (const LineMessage& line : location.line) {
            size_t line_mark = encoder_.begin_message(location_field::kLine);
            uint64(line_field::kFunctionId, line.function_id);
            int64(line_field::kLine, line.line);
            int64(line_field::kColumn, line.column);
            encoder_.end_message(line_mark);
        }
        boolean(location_field::kIsFolded, location.is_folded);
        encoder_.end_message(mark);
    }

    void function(const FunctionMessage& function) {
        size_t mark = encoder_.begin_message(profile_field::kFunction);
        uint64(function_field::kId, function.id);
        int64(function_field::kName, function.name);
        int64(function_field::kSystemName, function.system_name);
        int64(function_field::kFilename, function.filename);
        int64(function_field::kStartLine, function.start_line);
        encoder_.end_message(mark);
    }

    ProtoEncoder& encoder() { return encoder_; }

  private:
    ProtoEncoder encoder_;
};

}  // namespace

void encode_sample(const SampleView& sample, std::string* out) {
    MessageWriter(out).sample(sample);
}

void encode_profile(const ProfileMessage& profile, std::string* out) {
    MessageWriter writer(out);
    // Fields in field-number order, as protobuf's own serializers write them.
    for (const ValueTypeMessage& type : profile.sample_type) {
        writer.value_type(profile_field::kSampleType, type);
    }
    for (const SampleMessage& sample : profile.sample) {
        writer.sample({sample.location_id.data(), sample.location_id.size(), sample.value.data(),
                       sample.value.size(), sample.label.data(), sample.label.size()});
    }
    out->append(profile.encoded_samples);
    for (const MappingMessage& mapping : profile.mapping) writer.mapping(mapping);
    for (const LocationMessage& location : profile.location) writer.location(location);
    for (const FunctionMessage& function : profile.function) writer.function(function);
    for (std::string_view text : profile.string_table) {
        writer.encoder().string_field(profile_field::kStringTable, text);
    }
    writer.int64(profile_field::kDropFrames, profile.drop_frames);
    writer.int64(profile_field::kKeepFrames, profile.keep_frames);
    writer.int64(profile_field::kTimeNanos, profile.time_nanos);
    writer.int64(profile_field::kDurationNanos, profile.duration_nanos);
    writer.value_type(profile_field::kPeriodType, profile.period_type);
    writer.int64(profile_field::kPeriod, profile.period);
    writer.encoder().packed_int64_field(profile_field::kComment, profile.comment.data(),
                                        profile.comment.size());
    writer.int64(profile_field::kDefaultSampleType, profile.default_sample_type);
}

}  // namespace gprof::pprof
