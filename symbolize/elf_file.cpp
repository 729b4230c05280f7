#include "symbolize/elf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/files.h"

namespace gprof::symbolize {

MappedFile::~MappedFile() {
    if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
}

bool MappedFile::open(const std::string& path, std::string* error) {
    int fd = base::open_read_only(path.c_str());
    if (fd == -1) {
        *error = "cannot open " + path + ": " + base::errno_text(errno);
        return false;
    }
    struct stat status;
    if (fstat(fd, &status) != 0) {
        *error = "cannot stat " + path + ": " + base::errno_text(errno);
        close(fd);
        return false;
    }
    if (!S_ISREG(status.st_mode) || status.st_size <= 0) {
        *error = path + " is not a regular non-empty file";
        close(fd);
        return false;
    }
    size_t size = static_cast<size_t>(status.st_size);
    void* mapped = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (mapped == MAP_FAILED) {
        *error = "cannot map " + path + ": " + base::errno_text(map_errno);
        return false;
    }
    data_ = static_cast<const uint8_t*>(mapped);
    size_ = size;
    return true;
}

ElfImage::ElfImage(const uint8_t* data, size_t size) : data_(data), size_(size) {
    if (!read(0, &header_)) return;
    valid_ = std::memcmp(header_.e_ident, ELFMAG, SELFMAG) == 0 &&
             header_.e_ident[EI_CLASS] == ELFCLASS64 && header_.e_ident[EI_DATA] == ELFDATA2LSB &&
             (header_.e_phnum == 0 || header_.e_phentsize == sizeof(Elf64_Phdr)) &&
             (header_.e_shnum == 0 || header_.e_shentsize == sizeof(Elf64_Shdr));
}

size_t ElfImage::program_header_count() const {
    return valid_ ? header_.e_phnum : 0;
}

bool ElfImage::program_header(size_t index, Elf64_Phdr* out) const {
    if (index >= program_header_count()) return false;
    return read(header_.e_phoff + index * sizeof(Elf64_Phdr), out);
}

size_t ElfImage::section_count() const {
    if (!valid_ || header_.e_shoff == 0) return 0;
    if (header_.e_shnum != 0) return header_.e_shnum;
    // Extended numbering: with 0xff00 sections or more, the count is in section 0's sh_size.
    Elf64_Shdr first;
    if (!read(header_.e_shoff, &first)) return 0;
    return static_cast<size_t>(first.sh_size);
}

bool ElfImage::section_header(size_t index, Elf64_Shdr* out) const {
    if (index >= section_count()) return false;
    return read(header_.e_shoff + index * sizeof(Elf64_Shdr), out);
}

std::string_view ElfImage::section_name(const Elf64_Shdr& section) const {
    size_t index = header_.e_shstrndx;
    if (index == SHN_XINDEX) {  // too many sections: the index is in section 0's sh_link
        Elf64_Shdr first;
        if (!section_header(0, &first)) return {};
        index = first.sh_link;
    }
    Elf64_Shdr names;
    if (!section_header(index, &names) || section.sh_name >= names.sh_size) return {};
    const uint8_t* start =
        bytes(names.sh_offset + section.sh_name, names.sh_size - section.sh_name);
    if (start == nullptr) return {};
    const void* end = std::memchr(start, '\0', names.sh_size - section.sh_name);
    if (end == nullptr) return {};
    return {reinterpret_cast<const char*>(start),
            static_cast<size_t>(static_cast<const uint8_t*>(end) - start)};
}

std::string build_id_from_notes(const uint8_t* notes, size_t size, uint64_t alignment) {
    // The descriptor and the next note start at the block's alignment, counted from the start
    // of the block (so an 8-aligned "GNU\0" name, ending at byte 16 of its note, needs no padding).
    const uint64_t pad = alignment == 8 ? 8 : 4;
    auto align_up = [pad](uint64_t value) { return (value + pad - 1) & ~(pad - 1); };
    uint64_t offset = 0;
    while (offset + sizeof(Elf64_Nhdr) <= size) {
        Elf64_Nhdr note;
        std::memcpy(&note, notes + offset, sizeof note);
        uint64_t name_at = offset + sizeof note;
        uint64_t desc_at = align_up(name_at + note.n_namesz);
        uint64_t next = align_up(desc_at + note.n_descsz);
        if (desc_at > size || note.n_descsz > size - desc_at) return "";
        if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
            std::memcmp(notes + name_at, "GNU", 4) == 0 && note.n_descsz > 0) {
            return hex_string(notes + desc_at, note.n_descsz);
        }
        offset = next;
    }
    return "";
}

std::string build_id_of_image(const ElfImage& image) {
    for (size_t i = 0; i < image.program_header_count(); ++i) {
        Elf64_Phdr segment;
        if (!image.program_header(i, &segment) || segment.p_type != PT_NOTE) continue;
        const uint8_t* notes = image.bytes(segment.p_offset, segment.p_filesz);
        if (notes == nullptr) continue;
        std::string id = build_id_from_notes(notes, segment.p_filesz, segment.p_align);
        if (!id.empty()) return id;
    }
    // Files without program headers for their notes (rare: some linkers, debug files).
    for (size_t i = 0; i < image.section_count(); ++i) {
        Elf64_Shdr section;
        if (!image.section_header(i, &section) || section.sh_type != SHT_NOTE) continue;
        const uint8_t* notes = image.bytes(section.sh_offset, section.sh_size);
        if (notes == nullptr) continue;
        std::string id = build_id_from_notes(notes, section.sh_size, section.sh_addralign);
        if (!id.empty()) return id;
    }
    return "";
}

std::string hex_string(const uint8_t* bytes, size_t size) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string text;
    text.reserve(size * 2);
    for (size_t i = 0; i < size; ++i) {
        text += kDigits[bytes[i] >> 4];
        text += kDigits[bytes[i] & 0xf];
    }
    return text;
}

}  // namespace gprof::symbolize
