// What a module's code addresses resolved to, kept on disk (`<build-id>.sym` in the debug cache
// directory, symbolize/debug_cache.h) so that later processes skip libdw: a later process answers
// the stored addresses from the file and opens the DWARF only for one it does not hold. Modules
// without DWARF are stored too, sparing a read of their whole symbol table. Why: docs/design.md,
// "Symbols".
//
// A table is valid for one build ID and one source (resolved_source_key), so a debug file
// installed, replaced or removed since, or a stripped copy with the same build ID, never reads
// frames resolved from another. Opening checks only the header and sizes; each address is checked
// where it is looked up, and one that fails is a miss. A table that does not match is not used,
// and the next dump that resolves an address of the module writes it again.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>


namespace gprof::symbolize {

// One frame of a stored address, as SymbolCache::symbolize returns it. The strings are views:
// into the table's bytes (ResolvedStore::get, find) or into the writer's own strings
// (encode_resolved), so that rewriting a table copies no string.
struct StoredFrame {
    std::string_view name;         // demangled
    std::string_view system_name;  // as in the symbol table
    std::string_view filename;
    int64_t line = 0;
    int64_t start_line = 0;
};

// One resolved address: its frames, innermost first.
struct StoredAddress {
    uint64_t link_address = 0;
    bool from_dwarf = false;
    // How many times the table was rewritten since a process last used this address (0: the
    // writing process used it); a full table drops the oldest first.
    uint8_t age = 0;
    std::vector<StoredFrame> frames;
};

// Bump when the frames gprof resolves for an address change (naming rules, inlining, lines).
constexpr uint32_t kResolverVersion = 2;

// The key of a source: hashes the build ID, kResolverVersion and the identity of the file read
// (device, inode, size, modification time in ns): the DWARF, or (`dwarf` false) the module file
// of a module without DWARF, named from its symbol table.
uint64_t resolved_source_key(std::string_view build_id, uint64_t device, uint64_t inode,
                             uint64_t size, int64_t mtime_ns, bool dwarf = true);

// The file's bytes for addresses (sorted by link address, distinct). Layout (little-endian, every
// integer aligned to its size):
//   header   magic "GPROFSYM", version u32, build ID size u32, address count u32, frame count u32,
//            string bytes u32, reserved u32, source key u64, check u64 (of the header's other
//            fields and the build ID)
//   build ID as lowercase hex, padded with NULs to a multiple of 8
//   addresses, sorted, distinct: link address u64, first frame u32, frame count u16,
//            from_dwarf u8, age u8, check u64 (of the address's fields but age, frames and strings)
//   frames:  name u32, system name u32, filename u32 (offsets into the strings), line i32,
//            start line i32; padded with NULs to a multiple of 8
//   strings, each NUL-terminated; the last byte is a NUL
std::string encode_resolved(std::string_view build_id, uint64_t source_key,
                            const std::vector<StoredAddress>& addresses);

// A stored table, read in place.
class ResolvedStore {
  public:
    // Uses bytes (which must outlive this object) if they are a valid table for build_id and
    // source_key; otherwise the store stays empty and open returns false.
    bool open(const uint8_t* data, size_t size, std::string_view build_id, uint64_t source_key);

    size_t size() const { return address_count_; }

    // The frames stored for link_address; false if the table has none (or a damaged record). The
    // frames' strings are views into the table's bytes.
    bool find(uint64_t link_address, StoredAddress* out) const;
    // The i-th address in link address order (i < size()); false if its record is damaged.
    bool get(size_t i, StoredAddress* out) const;

  private:
    const uint8_t* addresses_ = nullptr;
    const uint8_t* frames_ = nullptr;
    const char* strings_ = nullptr;
    size_t address_count_ = 0;
    size_t frame_count_ = 0;
    size_t string_bytes_ = 0;
};

}  // namespace gprof::symbolize
