#include "pprof/protobuf.h"

namespace gprof::pprof {
namespace {

// Seven bits per byte, least significant group first; the high bit says "more follows".
// Returns the number of bytes written to buf (at most 10).
size_t encode_varint(uint64_t value, char* buf) {
    size_t n = 0;
    while (value >= 0x80) {
        buf[n++] = static_cast<char>((value & 0x7f) | 0x80);
        value >>= 7;
    }
    buf[n++] = static_cast<char>(value);
    return n;
}

}  // namespace

size_t ProtoEncoder::varint_size(uint64_t value) {
    size_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        ++size;
    }
    return size;
}

void ProtoEncoder::varint(uint64_t value) {
    char bytes[10];
    out_->append(bytes, encode_varint(value, bytes));
}

void ProtoEncoder::uint64_field(uint32_t field, uint64_t value) {
    tag(field, kWireVarint);
    varint(value);
}

void ProtoEncoder::string_field(uint32_t field, std::string_view value) {
    tag(field, kWireLengthDelimited);
    varint(value.size());
    out_->append(value.data(), value.size());
}

void ProtoEncoder::packed_uint64_field(uint32_t field, const uint64_t* values, size_t count) {
    if (count == 0) return;
    size_t length = 0;
    for (size_t i = 0; i < count; ++i) length += varint_size(values[i]);
    tag(field, kWireLengthDelimited);
    varint(length);
    for (size_t i = 0; i < count; ++i) varint(values[i]);
}

void ProtoEncoder::packed_int64_field(uint32_t field, const int64_t* values, size_t count) {
    if (count == 0) return;
    size_t length = 0;
    for (size_t i = 0; i < count; ++i) length += varint_size(static_cast<uint64_t>(values[i]));
    tag(field, kWireLengthDelimited);
    varint(length);
    for (size_t i = 0; i < count; ++i) varint(static_cast<uint64_t>(values[i]));
}

size_t ProtoEncoder::begin_message(uint32_t field) {
    tag(field, kWireLengthDelimited);
    return out_->size();
}

void ProtoEncoder::end_message(size_t mark) {
    char prefix[10];
    out_->insert(mark, prefix, encode_varint(out_->size() - mark, prefix));
}

}  // namespace gprof::pprof
