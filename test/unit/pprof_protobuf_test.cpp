// The hand-written protobuf encoder against the real parser: random profiles described as plain
// values are encoded by pprof/, decoded by libprotobuf's code generated from pprof/profile.proto,
// and compared field by field; the bytes must also equal libprotobuf's own encoding.
#include <catch2/catch.hpp>
#include <cstdint>
#include <deque>
#include <limits>
#include <random>
#include <string>

#include "profile.pb.h"
#include "pprof/profile_message.h"
#include "pprof/protobuf.h"

namespace {

using gprof::pprof::ProfileMessage;
namespace pb = perftools::profiles;

std::string hex(const std::string& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string text;
    for (unsigned char c : bytes) {
        text += digits[c >> 4];
        text += digits[c & 15];
    }
    return text;
}

std::string varint_bytes(uint64_t value) {
    std::string out;
    gprof::pprof::ProtoEncoder(&out).varint(value);
    return out;
}

// Random values that exercise the encoding's edge cases: zero (left out), one-byte and
// multi-byte varints, the 64-bit extremes and negative numbers (10-byte varints).
class RandomProfile {
  public:
    explicit RandomProfile(uint64_t seed) : random_(seed) {}

    ProfileMessage make() {
        ProfileMessage p;
        size_t strings = pick(0, 4) == 0 ? 1 : pick(1, 40);
        for (size_t i = 0; i < strings; ++i) {
            owned_.push_back(i == 0 ? std::string() : text());
            p.string_table.push_back(owned_.back());
        }
        for (size_t i = pick(0, 5); i > 0; --i) p.sample_type.push_back({int64(), int64()});
        for (size_t i = pick(0, 30); i > 0; --i) {
            gprof::pprof::SampleMessage s;
            for (size_t n = pick(0, 3) == 0 ? pick(0, 200) : pick(0, 8); n > 0; --n) {
                s.location_id.push_back(uint64());
            }
            for (size_t n = pick(0, 6); n > 0; --n) s.value.push_back(int64());
            for (size_t n = pick(0, 4); n > 0; --n) {
                s.label.push_back({int64(), int64(), int64(), int64()});
            }
            p.sample.push_back(std::move(s));
        }
        for (size_t i = pick(0, 6); i > 0; --i) {
            p.mapping.push_back({uint64(), uint64(), uint64(), uint64(), int64(), int64(), flag(),
                                 flag(), flag(), flag()});
        }
        for (size_t i = pick(0, 30); i > 0; --i) {
            gprof::pprof::LocationMessage l;
            l.id = uint64();
            l.mapping_id = uint64();
            l.address = uint64();
            for (size_t n = pick(0, 4); n > 0; --n) l.line.push_back({uint64(), int64(), int64()});
            l.is_folded = flag();
            p.location.push_back(std::move(l));
        }
        for (size_t i = pick(0, 20); i > 0; --i) {
            p.function.push_back({uint64(), int64(), int64(), int64(), int64()});
        }
        p.drop_frames = int64();
        p.keep_frames = int64();
        p.time_nanos = int64();
        p.duration_nanos = int64();
        p.period_type = {int64(), int64()};
        p.period = int64();
        for (size_t n = pick(0, 4); n > 0; --n) p.comment.push_back(int64());
        p.default_sample_type = int64();
        return p;
    }

  private:
    size_t pick(size_t low, size_t high) {
        return std::uniform_int_distribution<size_t>(low, high)(random_);
    }
    bool flag() { return pick(0, 1) == 1; }

    uint64_t uint64() {
        switch (pick(0, 7)) {
            case 0:
                return 0;
            case 1:
                return std::numeric_limits<uint64_t>::max();
            case 2:
                return pick(1, 127);
            case 3:
                return pick(128, 1u << 21);
            case 4:
                return uint64_t{1} << pick(0, 63);
            default:
                return random_();
        }
    }

    int64_t int64() {
        switch (pick(0, 7)) {
            case 0:
                return 0;
            case 1:
                return std::numeric_limits<int64_t>::min();
            case 2:
                return std::numeric_limits<int64_t>::max();
            case 3:
                return -1;
            case 4:
                return -static_cast<int64_t>(pick(1, 1000));
            default:
                return static_cast<int64_t>(uint64());
        }
    }

    std::string text() {
        static const char* const pieces[] = {
            "",
            "a",
            "alloc_space",
            "bytes",
            "héllo",
            "函数名",
            "🔥flame",
            "operator new(unsigned long)",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "std::vector<int, std::allocator<int> >::push_back",
        };
        std::string s;
        for (size_t n = pick(0, 3); n > 0; --n) s += pieces[pick(0, std::size(pieces) - 1)];
        if (pick(0, 10) == 0) s.append(pick(100, 20000), static_cast<char>('a' + pick(0, 25)));
        return s;
    }

    std::mt19937_64 random_;
    std::deque<std::string> owned_;  // the message's string_table views these
};

// libprotobuf's message built from the plain description, independently of pprof/.
pb::Profile reference_message(const ProfileMessage& p) {
    pb::Profile out;
    for (const auto& t : p.sample_type) {
        auto* v = out.add_sample_type();
        v->set_type(t.type);
        v->set_unit(t.unit);
    }
    for (const auto& s : p.sample) {
        auto* o = out.add_sample();
        for (uint64_t id : s.location_id) o->add_location_id(id);
        for (int64_t v : s.value) o->add_value(v);
        for (const auto& l : s.label) {
            auto* ol = o->add_label();
            ol->set_key(l.key);
            ol->set_str(l.str);
            ol->set_num(l.num);
            ol->set_num_unit(l.num_unit);
        }
    }
    for (const auto& m : p.mapping) {
        auto* o = out.add_mapping();
        o->set_id(m.id);
        o->set_memory_start(m.memory_start);
        o->set_memory_limit(m.memory_limit);
        o->set_file_offset(m.file_offset);
        o->set_filename(m.filename);
        o->set_build_id(m.build_id);
        o->set_has_functions(m.has_functions);
        o->set_has_filenames(m.has_filenames);
        o->set_has_line_numbers(m.has_line_numbers);
        o->set_has_inline_frames(m.has_inline_frames);
    }
    for (const auto& l : p.location) {
        auto* o = out.add_location();
        o->set_id(l.id);
        o->set_mapping_id(l.mapping_id);
        o->set_address(l.address);
        for (const auto& line : l.line) {
            auto* ol = o->add_line();
            ol->set_function_id(line.function_id);
            ol->set_line(line.line);
            ol->set_column(line.column);
        }
        o->set_is_folded(l.is_folded);
    }
    for (const auto& f : p.function) {
        auto* o = out.add_function();
        o->set_id(f.id);
        o->set_name(f.name);
        o->set_system_name(f.system_name);
        o->set_filename(f.filename);
        o->set_start_line(f.start_line);
    }
    for (std::string_view s : p.string_table) out.add_string_table(std::string(s));
    out.set_drop_frames(p.drop_frames);
    out.set_keep_frames(p.keep_frames);
    out.set_time_nanos(p.time_nanos);
    out.set_duration_nanos(p.duration_nanos);
    out.mutable_period_type()->set_type(p.period_type.type);
    out.mutable_period_type()->set_unit(p.period_type.unit);
    out.set_period(p.period);
    for (int64_t c : p.comment) out.add_comment(c);
    out.set_default_sample_type(p.default_sample_type);
    return out;
}

// Field by field: what was meant (p) against what libprotobuf read (d).
void check_decoded(const ProfileMessage& p, const pb::Profile& d) {
    REQUIRE(d.sample_type_size() == static_cast<int>(p.sample_type.size()));
    for (size_t i = 0; i < p.sample_type.size(); ++i) {
        CHECK(d.sample_type(i).type() == p.sample_type[i].type);
        CHECK(d.sample_type(i).unit() == p.sample_type[i].unit);
    }
    REQUIRE(d.sample_size() == static_cast<int>(p.sample.size()));
    for (size_t i = 0; i < p.sample.size(); ++i) {
        const auto& want = p.sample[i];
        const auto& got = d.sample(i);
        REQUIRE(got.location_id_size() == static_cast<int>(want.location_id.size()));
        for (size_t k = 0; k < want.location_id.size(); ++k) {
            CHECK(got.location_id(k) == want.location_id[k]);
        }
        REQUIRE(got.value_size() == static_cast<int>(want.value.size()));
        for (size_t k = 0; k < want.value.size(); ++k) CHECK(got.value(k) == want.value[k]);
        REQUIRE(got.label_size() == static_cast<int>(want.label.size()));
        for (size_t k = 0; k < want.label.size(); ++k) {
            CHECK(got.label(k).key() == want.label[k].key);
            CHECK(got.label(k).str() == want.label[k].str);
            CHECK(got.label(k).num() == want.label[k].num);
            CHECK(got.label(k).num_unit() == want.label[k].num_unit);
        }
    }
    REQUIRE(d.mapping_size() == static_cast<int>(p.mapping.size()));
    for (size_t i = 0; i < p.mapping.size(); ++i) {
        const auto& want = p.mapping[i];
        const auto& got = d.mapping(i);
        CHECK(got.id() == want.id);
        CHECK(got.memory_start() == want.memory_start);
        CHECK(got.memory_limit() == want.memory_limit);
        CHECK(got.file_offset() == want.file_offset);
        CHECK(got.filename() == want.filename);
        CHECK(got.build_id() == want.build_id);
        CHECK(got.has_functions() == want.has_functions);
        CHECK(got.has_filenames() == want.has_filenames);
        CHECK(got.has_line_numbers() == want.has_line_numbers);
        CHECK(got.has_inline_frames() == want.has_inline_frames);
    }
    REQUIRE(d.location_size() == static_cast<int>(p.location.size()));
    for (size_t i = 0; i < p.location.size(); ++i) {
        const auto& want = p.location[i];
        const auto& got = d.location(i);
        CHECK(got.id() == want.id);
        CHECK(got.mapping_id() == want.mapping_id);
        CHECK(got.address() == want.address);
        CHECK(got.is_folded() == want.is_folded);
        REQUIRE(got.line_size() == static_cast<int>(want.line.size()));
        for (size_t k = 0; k < want.line.size(); ++k) {
            CHECK(got.line(k).function_id() == want.line[k].function_id);
            CHECK(got.line(k).line() == want.line[k].line);
            CHECK(got.line(k).column() == want.line[k].column);
        }
    }
    REQUIRE(d.function_size() == static_cast<int>(p.function.size()));
    for (size_t i = 0; i < p.function.size(); ++i) {
        CHECK(d.function(i).id() == p.function[i].id);
        CHECK(d.function(i).name() == p.function[i].name);
        CHECK(d.function(i).system_name() == p.function[i].system_name);
        CHECK(d.function(i).filename() == p.function[i].filename);
        CHECK(d.function(i).start_line() == p.function[i].start_line);
    }
    REQUIRE(d.string_table_size() == static_cast<int>(p.string_table.size()));
    for (size_t i = 0; i < p.string_table.size(); ++i) {
        CHECK(d.string_table(i) == p.string_table[i]);
    }
    CHECK(d.drop_frames() == p.drop_frames);
    CHECK(d.keep_frames() == p.keep_frames);
    CHECK(d.time_nanos() == p.time_nanos);
    CHECK(d.duration_nanos() == p.duration_nanos);
    CHECK(d.has_period_type());
    CHECK(d.period_type().type() == p.period_type.type);
    CHECK(d.period_type().unit() == p.period_type.unit);
    CHECK(d.period() == p.period);
    REQUIRE(d.comment_size() == static_cast<int>(p.comment.size()));
    for (size_t i = 0; i < p.comment.size(); ++i) CHECK(d.comment(i) == p.comment[i]);
    CHECK(d.default_sample_type() == p.default_sample_type);
}

}  // namespace

TEST_CASE("writer: varints have the protobuf byte layout", "[writer][protobuf]") {
    CHECK(hex(varint_bytes(0)) == "00");
    CHECK(hex(varint_bytes(1)) == "01");
    CHECK(hex(varint_bytes(127)) == "7f");
    CHECK(hex(varint_bytes(128)) == "8001");
    CHECK(hex(varint_bytes(300)) == "ac02");
    CHECK(hex(varint_bytes(UINT64_MAX)) == "ffffffffffffffffff01");
    for (int bits = 0; bits < 64; ++bits) {
        uint64_t value = uint64_t{1} << bits;
        CHECK(varint_bytes(value).size() == gprof::pprof::ProtoEncoder::varint_size(value));
        CHECK(varint_bytes(value).size() == static_cast<size_t>(bits / 7 + 1));
    }
}

TEST_CASE("writer: scalar fields, strings and nested messages", "[writer][protobuf]") {
    std::string out;
    gprof::pprof::ProtoEncoder e(&out);
    e.int64_field(12, -1);  // int64 is two's complement in a 10-byte varint, no zigzag
    CHECK(hex(out) == "60ffffffffffffffffff01");

    out.clear();
    e.bool_field(7, true);
    e.string_field(6, "");
    e.string_field(6, "ab");
    CHECK(hex(out) ==
          "3801"
          "3200"
          "32026162");

    out.clear();
    size_t outer = e.begin_message(4);
    e.uint64_field(1, 5);
    size_t inner = e.begin_message(4);
    e.uint64_field(1, 9);
    e.end_message(inner);
    e.end_message(outer);
    CHECK(hex(out) ==
          "2206"
          "0805"
          "22020809");

    // A nested message longer than 127 bytes needs a two-byte length.
    out.clear();
    size_t big = e.begin_message(2);
    e.string_field(1, std::string(200, 'x'));
    e.end_message(big);
    CHECK(hex(out.substr(0, 6)) == "12cb010ac801");
    CHECK(out.size() == 3 + 3 + 200);

    out.clear();
    const int64_t values[] = {1, -1, 300};
    e.packed_int64_field(2, values, 3);
    CHECK(hex(out) ==
          "120d"
          "01"
          "ffffffffffffffffff01"
          "ac02");
    out.clear();
    e.packed_int64_field(2, values, 0);
    CHECK(out.empty());
}

TEST_CASE("writer: random profiles decode with libprotobuf exactly as described",
          "[writer][protobuf]") {
    for (uint64_t seed = 1; seed <= 300; ++seed) {
        INFO("seed " << seed);
        RandomProfile random(seed);
        ProfileMessage described = random.make();

        std::string encoded;
        gprof::pprof::encode_profile(described, &encoded);

        pb::Profile decoded;
        REQUIRE(decoded.ParseFromString(encoded));
        check_decoded(described, decoded);

        // The same bytes libprotobuf writes for the same message: field order, packing, and
        // which defaults are left out all match.
        std::string reference;
        REQUIRE(reference_message(described).SerializeToString(&reference));
        CHECK(encoded == reference);
    }
}

TEST_CASE("writer: samples encoded one by one give the same bytes as the message's samples",
          "[writer][protobuf]") {
    for (uint64_t seed = 1; seed <= 100; ++seed) {
        INFO("seed " << seed);
        RandomProfile random(seed);
        ProfileMessage described = random.make();
        std::string whole;
        gprof::pprof::encode_profile(described, &whole);

        // Samples [from, size) encoded one by one, as the builder encodes each as it comes.
        auto encode_from = [&](size_t from) {
            std::string bytes;
            for (size_t i = from; i < described.sample.size(); ++i) {
                const auto& s = described.sample[i];
                gprof::pprof::encode_sample({s.location_id.data(), s.location_id.size(),
                                              s.value.data(), s.value.size(), s.label.data(),
                                              s.label.size()},
                                             &bytes);
            }
            return bytes;
        };
        std::string samples = encode_from(0);
        ProfileMessage pre_encoded = described;
        pre_encoded.sample.clear();
        pre_encoded.encoded_samples = samples;
        std::string encoded;
        gprof::pprof::encode_profile(pre_encoded, &encoded);
        CHECK(encoded == whole);

        // Both ways at once: the message's samples, then the encoded ones.
        ProfileMessage both = described;
        both.sample.resize(described.sample.size() / 2);
        std::string rest = encode_from(both.sample.size());
        both.encoded_samples = rest;
        std::string mixed;
        gprof::pprof::encode_profile(both, &mixed);
        CHECK(mixed == whole);
    }
}

TEST_CASE("writer: an empty profile is a valid message", "[writer][protobuf]") {
    ProfileMessage empty;
    empty.string_table.push_back("");
    std::string encoded;
    gprof::pprof::encode_profile(empty, &encoded);
    pb::Profile decoded;
    REQUIRE(decoded.ParseFromString(encoded));
    REQUIRE(decoded.string_table_size() == 1);
    CHECK(decoded.string_table(0).empty());
    CHECK(decoded.sample_size() == 0);
}
