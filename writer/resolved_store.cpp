#include "writer/resolved_store.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace gprof::writer {

namespace {

struct AddressRecord {
    uint64_t link_address;
    uint32_t first_frame;
    uint16_t frame_count;
    uint8_t from_dwarf;
    uint8_t reserved;
};
static_assert(sizeof(AddressRecord) == 16);

struct FrameRecord {
    uint32_t name, system_name, filename;
    int32_t line, start_line;
};
static_assert(sizeof(FrameRecord) == 20);

constexpr char kMagic[8] = {'G', 'P', 'R', 'O', 'F', 'S', 'Y', 'M'};
constexpr uint32_t kFormatVersion = 1;

struct Header {
    char magic[8];
    uint32_t version;
    uint32_t build_id_size;
    uint32_t address_count;
    uint32_t frame_count;
    uint32_t string_bytes;
    uint32_t reserved;
    uint64_t source_key;
    uint64_t checksum;
};
static_assert(sizeof(Header) == 48);

uint64_t mix(uint64_t h, uint64_t word) {
    h ^= word;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

}  // namespace

uint64_t resolved_checksum(const uint8_t* data, size_t size) {
    uint64_t h = 0x6a09e667f3bcc908ULL ^ size;
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        std::memcpy(&word, data + i, 8);
        h = mix(h, word);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, data + i, size - i);
    return mix(h, tail);
}

namespace {

uint64_t hash_text(uint64_t h, std::string_view text) {
    h = mix(h, text.size());
    for (unsigned char c : text) h = mix(h, c);
    return h;
}

size_t padded(size_t n) {
    return (n + 7) & ~size_t{7};
}

// Narrows a line number to the stored 32 bits (lines past 2^31 do not occur in real code).
int32_t stored_line(int64_t line) {
    return static_cast<int32_t>(std::clamp<int64_t>(line, INT32_MIN, INT32_MAX));
}

}  // namespace

uint64_t resolved_source_key(std::string_view build_id, uint64_t device, uint64_t inode,
                             uint64_t size, int64_t mtime_ns) {
    uint64_t h = mix(0x243f6a8885a308d3ULL, kResolverVersion);
    h = hash_text(h, build_id);
    h = mix(h, device);
    h = mix(h, inode);
    h = mix(h, size);
    return mix(h, static_cast<uint64_t>(mtime_ns));
}

std::string encode_resolved(std::string_view build_id, uint64_t source_key,
                            const std::vector<StoredAddress>& addresses) {
    std::string strings;
    std::unordered_map<std::string_view, uint32_t> offsets;
    auto intern = [&](const std::string& text) -> uint32_t {
        auto found = offsets.find(text);
        if (found != offsets.end()) return found->second;
        auto offset = static_cast<uint32_t>(strings.size());
        strings.append(text);
        strings.push_back('\0');
        offsets.emplace(text, offset);  // text lives in `addresses`, which outlives the map
        return offset;
    };
    std::vector<FrameRecord> frames;
    std::vector<AddressRecord> records;
    records.reserve(addresses.size());
    for (const StoredAddress& a : addresses) {
        size_t count = std::min<size_t>(a.frames.size(), UINT16_MAX);
        records.push_back({a.link_address, static_cast<uint32_t>(frames.size()),
                           static_cast<uint16_t>(count), static_cast<uint8_t>(a.from_dwarf), 0});
        for (size_t i = 0; i < count; ++i) {
            const SourceFrame& f = a.frames[i];
            frames.push_back({intern(f.function.name), intern(f.function.system_name),
                              intern(f.filename), stored_line(f.line), stored_line(f.start_line)});
        }
    }
    if (strings.empty()) strings.push_back('\0');

    std::string body;
    body.append(build_id);
    body.resize(padded(body.size()), '\0');
    body.append(reinterpret_cast<const char*>(records.data()), records.size() * sizeof records[0]);
    body.append(reinterpret_cast<const char*>(frames.data()), frames.size() * sizeof frames[0]);
    body.resize(padded(body.size()), '\0');  // frames are 20 bytes each: pad to 8 again
    body.append(strings);

    Header header{};
    std::memcpy(header.magic, kMagic, sizeof kMagic);
    header.version = kFormatVersion;
    header.build_id_size = static_cast<uint32_t>(build_id.size());
    header.address_count = static_cast<uint32_t>(records.size());
    header.frame_count = static_cast<uint32_t>(frames.size());
    header.string_bytes = static_cast<uint32_t>(strings.size());
    header.source_key = source_key;
    header.checksum = resolved_checksum(reinterpret_cast<const uint8_t*>(body.data()), body.size());
    std::string file(reinterpret_cast<const char*>(&header), sizeof header);
    file += body;
    return file;
}

bool ResolvedStore::open(const uint8_t* data, size_t size, std::string_view build_id,
                         uint64_t source_key) {
    *this = ResolvedStore();
    Header header;
    if (data == nullptr || size < sizeof header) return false;
    std::memcpy(&header, data, sizeof header);
    if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0 || header.version != kFormatVersion ||
        header.source_key != source_key || header.build_id_size != build_id.size())
        return false;
    const uint8_t* body = data + sizeof header;
    size_t body_size = size - sizeof header;
    // The sizes are 32-bit, so none of these sums overflows a 64-bit size_t.
    size_t id_bytes = padded(header.build_id_size);
    size_t address_bytes = size_t{header.address_count} * sizeof(AddressRecord);
    size_t frame_bytes = padded(size_t{header.frame_count} * sizeof(FrameRecord));
    size_t expected = id_bytes + address_bytes + frame_bytes + header.string_bytes;
    if (expected != body_size || header.string_bytes == 0) return false;
    if (std::memcmp(body, build_id.data(), build_id.size()) != 0) return false;
    if (resolved_checksum(body, body_size) != header.checksum) return false;

    const uint8_t* addresses = body + id_bytes;
    const uint8_t* frames = addresses + address_bytes;
    const char* strings = reinterpret_cast<const char*>(frames + frame_bytes);
    if (strings[header.string_bytes - 1] != '\0') return false;
    // Every reference in bounds and the addresses in order, so look-ups need no checks.
    uint64_t previous = 0;
    for (size_t i = 0; i < header.address_count; ++i) {
        AddressRecord a;
        std::memcpy(&a, addresses + i * sizeof a, sizeof a);
        if ((i > 0 && a.link_address <= previous) ||
            size_t{a.first_frame} + a.frame_count > header.frame_count)
            return false;
        previous = a.link_address;
    }
    for (size_t i = 0; i < header.frame_count; ++i) {
        FrameRecord f;
        std::memcpy(&f, frames + i * sizeof f, sizeof f);
        if (f.name >= header.string_bytes || f.system_name >= header.string_bytes ||
            f.filename >= header.string_bytes)
            return false;
    }
    addresses_ = addresses;
    frames_ = frames;
    strings_ = strings;
    address_count_ = header.address_count;
    return true;
}

std::string_view ResolvedStore::string_at(uint32_t offset) const {
    return std::string_view(strings_ + offset);  // open() checked the table ends in a NUL
}

void ResolvedStore::get(size_t i, StoredAddress* out) const {
    AddressRecord a;
    std::memcpy(&a, addresses_ + i * sizeof a, sizeof a);
    out->link_address = a.link_address;
    out->from_dwarf = a.from_dwarf != 0;
    out->frames.resize(a.frame_count);
    for (size_t k = 0; k < a.frame_count; ++k) {
        FrameRecord f;
        std::memcpy(&f, frames_ + (a.first_frame + k) * sizeof f, sizeof f);
        SourceFrame& to = out->frames[k];
        to.function.name = string_at(f.name);
        to.function.system_name = string_at(f.system_name);
        to.filename = string_at(f.filename);
        to.line = f.line;
        to.start_line = f.start_line;
    }
}

bool ResolvedStore::find(uint64_t link_address, StoredAddress* out) const {
    size_t lo = 0, hi = address_count_;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t at;
        std::memcpy(&at, addresses_ + mid * sizeof(AddressRecord), sizeof at);
        if (at < link_address) {
            lo = mid + 1;
        } else if (at > link_address) {
            hi = mid;
        } else {
            get(mid, out);
            return true;
        }
    }
    return false;
}

}  // namespace gprof::writer
