// Inflated copies of compressed debug files, kept on disk so that only the first process pays for
// inflating them (docs/design.md, "Symbols"): libdw inflates a compressed file's .debug_* sections
// whole when it opens it, but reads a plain one through its mapping as a look-up needs it.
//
// The first dump that meets such a file writes its inflated copy into GPROF_DEBUG_CACHE, named by
// build ID, whole under a temporary name then renamed. A copy is used only if its build ID is the
// original's and its sections lie inside it; anything else is deleted and written again. The
// directory (which also holds resolved_store.h's <build-id>.sym tables) is kept under kMaxBytes by
// removing the files used longest ago (using a copy updates its modification time).
//
// Only the dumper uses this (one dump at a time; a mutex guards it anyway). Never throws.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace gprof::symbolize {

class ElfImage;

// Does the image have a section compressed with SHF_COMPRESSED?
bool has_compressed_sections(const ElfImage& image);

// The size of the image with its compressed sections inflated (an upper bound of the copy's).
uint64_t inflated_size(const ElfImage& image);

// Writes to fd the ELF image with every SHF_COMPRESSED (zlib) section inflated: the same header,
// program headers and sections in the same order, laid out afresh. False, with *error, when the
// image is malformed, uses a compression other than zlib, or a stream does not inflate to the
// size its header declares.
bool write_inflated(const ElfImage& image, int fd, std::string* error);

class DebugCache {
  public:
    // The largest total size of the files in the directory (copies and resolved tables).
    static constexpr uint64_t kMaxBytes = 512ull << 20;

    // dir: the cache directory ("" turns the cache off). explicit_dir: the user named it, so a
    // directory that cannot be used is reported (once); the default one fails silently.
    DebugCache(std::string dir, bool explicit_dir, uint64_t max_bytes = kMaxBytes);

    // What the file holds: a module (its own DWARF) or a separate debug file. The two share a build
    // ID, so their copies are named apart: <build-id>.elf and <build-id>.debug.
    enum class Role { Module, DebugFile };

    // The file libdw should read instead of path, an ELF file mapped at image. Returns path itself
    // unless the image has compressed sections, a build ID and an inflated size of at most half
    // the bound, and the cache is usable; otherwise the path of its inflated copy, written now if
    // there is none yet.
    std::string file_for(const std::string& path, const ElfImage& image, Role role) noexcept;

    // Other files kept here, by name (the resolved address tables of symbolize/resolved_store.h):
    // the path of name in the directory, or "" when the cache is off or cannot be used.
    std::string path_of(const std::string& name) noexcept;
    // Records that the file name was just used (it is then the last to be trimmed).
    void mark_used(const std::string& name) noexcept;
    // Writes bytes as the file name, whole (a temporary file renamed into place), and trims the
    // directory. False if the cache cannot be used or the write failed (reported, when the
    // directory was named explicitly, as for copies).
    bool write_file(const std::string& name, std::string_view bytes) noexcept;

  private:
    bool directory_ready();
    void mark_used_locked(const std::string& path);
    // Writes the file name through write(fd, error), at most max_size bytes (checked against
    // RLIMIT_FSIZE first: past it the kernel would end the program with SIGXFSZ), under a
    // temporary name renamed into place.
    template <typename Write>
    bool write_atomically(const std::string& name, uint64_t max_size, Write write);
    std::string write_copy(const ElfImage& image, const std::string& name);
    void trim(const std::string& keep);
    void report(const std::string& what);

    std::mutex mutex_;
    std::string dir_;
    bool explicit_;
    uint64_t max_bytes_;
    int state_ = 0;  // 0: directory not checked yet, 1: usable, -1: not usable
    bool reported_ = false;
};

// The process's cache, in the directory handed down at start-up (GPROF_DEBUG_CACHE; "" until
// then: no cache). configure_debug_cache keeps the pointer: `dir` must outlive the process.
void configure_debug_cache(const char* dir, bool explicit_dir);
DebugCache& debug_cache();

}  // namespace gprof::symbolize
