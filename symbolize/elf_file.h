// Reading ELF images (executables, shared libraries, the vDSO) without trusting them.
//
// A dump reads the modules of the process it runs in: build IDs for the profile's mappings and
// symbol tables for function names. A file may be truncated, replaced, or not ELF at all, so every
// read here is bounds-checked and copies through memcpy (no unaligned or out-of-range access);
// a malformed image gives "nothing found", never a crash. Only 64-bit little-endian ELF (x86-64,
// AArch64) is understood.
#pragma once

#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace gprof::symbolize {

// A whole file mapped read-only and private. The descriptor is closed once the mapping exists.
class MappedFile {
  public:
    MappedFile() = default;
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    // Opens path (O_RDONLY | O_CLOEXEC) and maps it. On failure returns false and sets *error.
    bool open(const std::string& path, std::string* error);

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

  private:
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

// Bounds-checked view of an ELF image held in memory (a mapped file or the mapped vDSO).
class ElfImage {
  public:
    ElfImage(const uint8_t* data, size_t size);

    // A 64-bit little-endian ELF header with the table entry sizes this code expects.
    bool valid() const { return valid_; }
    size_t size() const { return size_; }
    const Elf64_Ehdr& header() const { return header_; }

    size_t program_header_count() const;
    bool program_header(size_t index, Elf64_Phdr* out) const;
    size_t section_count() const;
    bool section_header(size_t index, Elf64_Shdr* out) const;
    // A section's name from the section header string table ("" if it cannot be read).
    std::string_view section_name(const Elf64_Shdr& section) const;

    // [offset, offset + length) of the image, or nullptr if any of it lies outside.
    const uint8_t* bytes(uint64_t offset, uint64_t length) const {
        if (offset > size_ || length > size_ - offset) return nullptr;
        return data_ + offset;
    }
    // Copies the object at offset into *out; false if it does not fit in the image.
    template <typename T>
    bool read(uint64_t offset, T* out) const {
        const uint8_t* at = bytes(offset, sizeof(T));
        if (at == nullptr) return false;
        std::memcpy(out, at, sizeof(T));
        return true;
    }

  private:
    const uint8_t* data_;
    size_t size_;
    Elf64_Ehdr header_{};
    bool valid_ = false;
};

// The GNU build ID in a block of ELF notes (a PT_NOTE segment or SHT_NOTE section) as lowercase
// hex, or "" if there is none. alignment is the block's alignment: 8-aligned note blocks pad names
// and descriptors to 8 bytes, all others to 4.
std::string build_id_from_notes(const uint8_t* notes, size_t size, uint64_t alignment);

// The GNU build ID of an ELF file image (PT_NOTE segments, then SHT_NOTE sections), or "".
std::string build_id_of_image(const ElfImage& image);

std::string hex_string(const uint8_t* bytes, size_t size);

}  // namespace gprof::symbolize
