#include "symbolize/resolved_store.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace gprof::symbolize {
namespace {

struct AddressRecord {
    uint64_t link_address;
    uint32_t first_frame;
    uint16_t frame_count;
    uint8_t from_dwarf;
    uint8_t age;     // not under the check: a rewrite changes it alone
    uint64_t check;  // record_check() of this address's frames and their strings
};
static_assert(sizeof(AddressRecord) == 24);

struct FrameRecord {
    uint32_t name, system_name, filename;
    int32_t line, start_line;
};
static_assert(sizeof(FrameRecord) == 20);

constexpr char kMagic[8] = {'G', 'P', 'R', 'O', 'F', 'S', 'Y', 'M'};
constexpr uint32_t kFormatVersion = 3;

struct Header {
    char magic[8];
    uint32_t version;
    uint32_t build_id_size;
    uint32_t address_count;
    uint32_t frame_count;
    uint32_t string_bytes;
    uint32_t reserved;
    uint64_t source_key;
    uint64_t check;  // of the fields above and the build ID
};
static_assert(sizeof(Header) == 48);

uint64_t mix(uint64_t h, uint64_t word) {
    h ^= word;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

uint64_t hash_bytes(uint64_t h, const void* data, size_t size) {
    const auto* bytes = static_cast<const uint8_t*>(data);
    h = mix(h, size);
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        std::memcpy(&word, bytes + i, 8);
        h = mix(h, word);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, bytes + i, size - i);
    return mix(h, tail);
}

uint64_t header_check(const Header& header, std::string_view build_id) {
    Header fields = header;
    fields.check = 0;
    return hash_bytes(hash_bytes(0x243f6a8885a308d3ULL, &fields, sizeof fields), build_id.data(),
                      build_id.size());
}

// An address's check: its own fields, each frame's fields and the text of each frame's strings
// (so a damaged string shared by many addresses fails all of them).
template <typename StringAt>
uint64_t record_check(const AddressRecord& a, const FrameRecord* frames, StringAt string_at) {
    uint64_t h = mix(mix(0x13198a2e03707344ULL, a.link_address), a.frame_count);
    h = mix(h, a.from_dwarf);
    for (size_t i = 0; i < a.frame_count; ++i) {
        const FrameRecord& f = frames[i];
        h = mix(mix(h, static_cast<uint32_t>(f.line)), static_cast<uint32_t>(f.start_line));
        for (uint32_t offset : {f.name, f.system_name, f.filename}) {
            std::string_view text = string_at(offset);
            h = hash_bytes(h, text.data(), text.size());
        }
    }
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
                             uint64_t size, int64_t mtime_ns, bool dwarf) {
    uint64_t h = mix(0x243f6a8885a308d3ULL, kResolverVersion);
    if (!dwarf) h = mix(h, 0x6e6f206477617266ULL);  // "no dwarf": never a DWARF source's key
    h = hash_bytes(h, build_id.data(), build_id.size());
    h = mix(h, device);
    h = mix(h, inode);
    h = mix(h, size);
    return mix(h, static_cast<uint64_t>(mtime_ns));
}

std::string encode_resolved(std::string_view build_id, uint64_t source_key,
                            const std::vector<StoredAddress>& addresses) {
    std::string strings;
    std::unordered_map<std::string_view, uint32_t> offsets;
    auto intern = [&](std::string_view text) -> uint32_t {
        auto found = offsets.find(text);
        if (found != offsets.end()) return found->second;
        auto offset = static_cast<uint32_t>(strings.size());
        strings.append(text);
        strings.push_back('\0');
        offsets.emplace(text, offset);  // text outlives the map (the caller's)
        return offset;
    };
    std::vector<FrameRecord> frames;
    std::vector<AddressRecord> records;
    records.reserve(addresses.size());
    for (const StoredAddress& a : addresses) {
        size_t count = std::min<size_t>(a.frames.size(), UINT16_MAX);
        records.push_back({a.link_address, static_cast<uint32_t>(frames.size()),
                           static_cast<uint16_t>(count), static_cast<uint8_t>(a.from_dwarf), a.age,
                           0});
        for (size_t i = 0; i < count; ++i) {
            const StoredFrame& f = a.frames[i];
            frames.push_back({intern(f.name), intern(f.system_name),
                              intern(f.filename), stored_line(f.line), stored_line(f.start_line)});
        }
    }
    if (strings.empty()) strings.push_back('\0');
    auto string_at = [&](uint32_t offset) { return std::string_view(strings.data() + offset); };
    for (AddressRecord& r : records)
        r.check = record_check(r, frames.data() + r.first_frame, string_at);

    Header header{};
    std::memcpy(header.magic, kMagic, sizeof kMagic);
    header.version = kFormatVersion;
    header.build_id_size = static_cast<uint32_t>(build_id.size());
    header.address_count = static_cast<uint32_t>(records.size());
    header.frame_count = static_cast<uint32_t>(frames.size());
    header.string_bytes = static_cast<uint32_t>(strings.size());
    header.source_key = source_key;
    header.check = header_check(header, build_id);

    std::string file(reinterpret_cast<const char*>(&header), sizeof header);
    file.append(build_id);
    file.resize(sizeof header + padded(build_id.size()), '\0');
    file.append(reinterpret_cast<const char*>(records.data()), records.size() * sizeof records[0]);
    file.append(reinterpret_cast<const char*>(frames.data()), frames.size() * sizeof frames[0]);
    file.resize(padded(file.size()), '\0');  // frames are 20 bytes each: pad to 8 again
    file.append(strings);
    return file;
}

bool ResolvedStore::open(const uint8_t* data, size_t size, std::string_view build_id,
                         uint64_t source_key) {
    *this = ResolvedStore();
    Header header;
    if (data == nullptr || size < sizeof header) return false;
    std::memcpy(&header, data, sizeof header);
    if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0 || header.version != kFormatVersion ||
        header.source_key != source_key || header.build_id_size != build_id.size() ||
        header.check != header_check(header, build_id))
        return false;
    // The sizes are 32-bit, so none of these sums overflows a 64-bit size_t.
    size_t id_bytes = padded(header.build_id_size);
    size_t address_bytes = size_t{header.address_count} * sizeof(AddressRecord);
    size_t frame_bytes = padded(size_t{header.frame_count} * sizeof(FrameRecord));
    size_t expected = sizeof header + id_bytes + address_bytes + frame_bytes + header.string_bytes;
    if (expected != size || header.string_bytes == 0) return false;
    if (std::memcmp(data + sizeof header, build_id.data(), build_id.size()) != 0) return false;
    addresses_ = data + sizeof header + id_bytes;
    frames_ = addresses_ + address_bytes;
    strings_ = reinterpret_cast<const char*>(frames_ + frame_bytes);
    if (strings_[header.string_bytes - 1] != '\0') return false;  // every string then ends
    address_count_ = header.address_count;
    frame_count_ = header.frame_count;
    string_bytes_ = header.string_bytes;
    return true;
}

bool ResolvedStore::get(size_t i, StoredAddress* out) const {
    AddressRecord a;
    std::memcpy(&a, addresses_ + i * sizeof a, sizeof a);
    // Nothing but the header was checked at open: each record is checked where it is used, so
    // opening a large table costs nothing, and a damaged record is a miss, never a wrong frame.
    if (size_t{a.first_frame} + a.frame_count > frame_count_) return false;
    std::vector<FrameRecord> frames(a.frame_count);
    if (a.frame_count > 0)
        std::memcpy(frames.data(), frames_ + size_t{a.first_frame} * sizeof(FrameRecord),
                    a.frame_count * sizeof(FrameRecord));
    for (const FrameRecord& f : frames) {
        if (f.name >= string_bytes_ || f.system_name >= string_bytes_ ||
            f.filename >= string_bytes_)
            return false;
    }
    auto string_at = [this](uint32_t offset) { return std::string_view(strings_ + offset); };
    if (record_check(a, frames.data(), string_at) != a.check) return false;
    out->link_address = a.link_address;
    out->from_dwarf = a.from_dwarf != 0;
    out->age = a.age;
    out->frames.resize(a.frame_count);
    for (size_t k = 0; k < a.frame_count; ++k) {
        const FrameRecord& f = frames[k];
        StoredFrame& to = out->frames[k];
        to.name = string_at(f.name);
        to.system_name = string_at(f.system_name);
        to.filename = string_at(f.filename);
        to.line = f.line;
        to.start_line = f.start_line;
    }
    return true;
}

bool ResolvedStore::find(uint64_t link_address, StoredAddress* out) const {
    // A binary search: on a damaged table that is out of order it may miss, never read outside.
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
            return get(mid, out) && out->link_address == link_address;
        }
    }
    return false;
}

}  // namespace gprof::symbolize
