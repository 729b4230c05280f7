// The smallest protobuf encoder gprof needs to write pprof profiles: gprof runs inside other
// programs, so it carries no protobuf library (https://protobuf.dev/programming-guides/encoding/).
// The unit tests decode its bytes with libprotobuf (test/unit/pprof_protobuf_test.cpp).
//
// Every field starts with a varint tag (field_number << 3 | wire_type). Wire type 0 (varint)
// carries uint64, int64 (two's complement bits: a negative one takes 10 bytes; pprof has no
// zigzag sint64) and bool; wire type 2 (a varint byte length, then the bytes) carries strings,
// nested messages and packed repeated scalars. The encoder writes whatever it is asked to;
// leaving out proto3 defaults (zero, false) is the caller's choice (pprof/profile_message.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gprof::pprof {

class ProtoEncoder {
  public:
    // Appends to *out, which must outlive the encoder.
    explicit ProtoEncoder(std::string* out) : out_(out) {}

    void uint64_field(uint32_t field, uint64_t value);
    void int64_field(uint32_t field, int64_t value) {
        uint64_field(field, static_cast<uint64_t>(value));
    }
    void bool_field(uint32_t field, bool value) { uint64_field(field, value ? 1 : 0); }
    // A string or bytes field. Written even when empty: repeated strings need their empty entries.
    void string_field(uint32_t field, std::string_view value);

    // Packed repeated scalars: one length-delimited field holding the varints back to back.
    // Nothing is written for an empty list (absent and empty are the same in proto3).
    void packed_uint64_field(uint32_t field, const uint64_t* values, size_t count);
    void packed_int64_field(uint32_t field, const int64_t* values, size_t count);

    // A nested message: begin_message writes the tag and returns a mark; the caller then writes the
    // message's fields; end_message puts the byte length in front of them. The length is not known
    // until the fields are written, and its varint size depends on it, so it is inserted
    // afterwards; that moves only the nested message's own bytes, which are small for every pprof
    // message nested under Profile.
    size_t begin_message(uint32_t field);
    void end_message(size_t mark);

    // Low-level pieces, public for the tests.
    static size_t varint_size(uint64_t value);
    void varint(uint64_t value);
    void tag(uint32_t field, uint32_t wire_type) {
        varint(static_cast<uint64_t>(field) << 3 | wire_type);
    }

    static constexpr uint32_t kWireVarint = 0;
    static constexpr uint32_t kWireLengthDelimited = 2;

  private:
    std::string* out_;
};

}  // namespace gprof::pprof
