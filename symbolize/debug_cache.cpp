#include "symbolize/debug_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <vector>

#include "base/files.h"
#include "base/log.h"
#include "symbolize/elf_file.h"

namespace gprof::symbolize {
namespace {

constexpr size_t kChunk = 256 * 1024;
// A temporary file this old was left by a process that died while writing it.
constexpr time_t kStaleTempSeconds = 3600;
// How finely the last use of a file is recorded (see mark_used_locked).
constexpr time_t kUseGranularity = 600;

uint64_t round_up(uint64_t value, uint64_t alignment) {
    if (alignment <= 1) return value;
    return (value + alignment - 1) / alignment * alignment;
}

// Buffered, EINTR-safe writes to a descriptor, counting the bytes written.
class Output {
  public:
    explicit Output(int fd) : fd_(fd) { buffer_.reserve(kChunk); }
    uint64_t position() const { return written_ + buffer_.size(); }
    bool put(const void* data, size_t size) {
        const auto* bytes = static_cast<const uint8_t*>(data);
        while (size > 0) {
            size_t n = std::min(size, kChunk - buffer_.size());
            buffer_.insert(buffer_.end(), bytes, bytes + n);
            bytes += n;
            size -= n;
            if (buffer_.size() == kChunk && !flush()) return false;
        }
        return true;
    }
    bool pad_to(uint64_t offset) {
        static const uint8_t zeros[64] = {};
        while (position() < offset) {
            if (!put(zeros,
                     static_cast<size_t>(std::min<uint64_t>(sizeof zeros, offset - position()))))
                return false;
        }
        return true;
    }
    bool flush() {
        size_t done = 0;
        while (done < buffer_.size()) {
            ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            done += static_cast<size_t>(n);
        }
        written_ += buffer_.size();
        buffer_.clear();
        return true;
    }

  private:
    int fd_;
    uint64_t written_ = 0;
    std::vector<uint8_t> buffer_;
};

// Inflates one zlib stream of exactly `expected` bytes into out.
bool inflate_into(const uint8_t* data, size_t size, uint64_t expected, Output* out,
                  std::string* error) {
    z_stream stream{};
    if (inflateInit(&stream) != Z_OK) {
        *error = "zlib cannot start";
        return false;
    }
    struct End {
        z_stream* s;
        ~End() { inflateEnd(s); }
    } end{&stream};
    std::vector<uint8_t> chunk(kChunk);
    uint64_t produced = 0;
    const uint8_t* next = data;
    size_t left = size;
    int status = Z_OK;
    while (status != Z_STREAM_END) {
        if (stream.avail_in == 0 && left > 0) {
            size_t n = std::min<size_t>(left, UINT_MAX);
            stream.next_in = const_cast<Bytef*>(next);
            stream.avail_in = static_cast<uInt>(n);
            next += n;
            left -= n;
        }
        stream.next_out = chunk.data();
        stream.avail_out = static_cast<uInt>(chunk.size());
        status = inflate(&stream, Z_NO_FLUSH);
        if (status != Z_OK && status != Z_STREAM_END) {
            *error = "a compressed section does not inflate";
            return false;
        }
        size_t got = chunk.size() - stream.avail_out;
        produced += got;
        if (produced > expected) break;
        if (!out->put(chunk.data(), got)) {
            *error = "cannot write: " + base::errno_text(errno);
            return false;
        }
        if (got == 0 && stream.avail_in == 0 && left == 0 && status != Z_STREAM_END) break;
    }
    if (status != Z_STREAM_END || produced != expected) {
        *error = "a compressed section does not inflate to its declared size";
        return false;
    }
    return true;
}

// Is every section of the image (but the NOBITS ones) inside it?
bool sections_inside(const ElfImage& image) {
    size_t count = image.section_count();
    if (count == 0) return false;
    for (size_t i = 0; i < count; ++i) {
        Elf64_Shdr section;
        if (!image.section_header(i, &section)) return false;
        if (section.sh_type != SHT_NOBITS && section.sh_type != SHT_NULL &&
            image.bytes(section.sh_offset, section.sh_size) == nullptr)
            return false;
    }
    return true;
}

bool make_directories(const std::string& dir) {
    if (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return true;
    if (errno != ENOENT) return false;
    size_t slash = dir.find_last_of('/');
    if (slash == std::string::npos || slash == 0) return false;
    if (!make_directories(dir.substr(0, slash))) return false;
    return mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST;
}

}  // namespace

bool has_compressed_sections(const ElfImage& image) {
    size_t count = image.section_count();
    for (size_t i = 0; i < count; ++i) {
        Elf64_Shdr section;
        if (!image.section_header(i, &section)) return false;
        if ((section.sh_flags & SHF_COMPRESSED) != 0 && section.sh_type != SHT_NOBITS) return true;
    }
    return false;
}

uint64_t inflated_size(const ElfImage& image) {
    uint64_t size = image.size();
    size_t count = image.section_count();
    for (size_t i = 0; i < count; ++i) {
        Elf64_Shdr section;
        Elf64_Chdr compression;
        if (!image.section_header(i, &section)) break;
        if ((section.sh_flags & SHF_COMPRESSED) == 0 || section.sh_type == SHT_NOBITS ||
            !image.read(section.sh_offset, &compression))
            continue;
        if (compression.ch_size > UINT64_MAX - size) return UINT64_MAX;
        size += compression.ch_size;
    }
    return size;
}

bool write_inflated(const ElfImage& image, int fd, std::string* error) {
    if (!image.valid()) {
        *error = "not a 64-bit ELF file";
        return false;
    }
    Elf64_Ehdr header = image.header();
    // Extended numbering (65280 sections or more) is not rewritten.
    if (header.e_shnum == 0 || header.e_shstrndx >= SHN_LORESERVE || !sections_inside(image)) {
        *error = "malformed or unusual section table";
        return false;
    }
    std::vector<Elf64_Shdr> sections(header.e_shnum);
    for (size_t i = 0; i < sections.size(); ++i) image.section_header(i, &sections[i]);
    const std::vector<Elf64_Shdr> original = sections;

    // The sections with data, in file order. Everything before the first compressed one (the
    // headers, and in a module all the loaded code and data) is copied byte for byte, so the copy
    // keeps its program headers true; from there on each section follows the previous one at its
    // alignment, and the section header table comes last.
    std::vector<size_t> order;
    for (size_t i = 1; i < sections.size(); ++i)
        if (sections[i].sh_type != SHT_NULL && sections[i].sh_type != SHT_NOBITS)
            order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return sections[a].sh_offset < sections[b].sh_offset;
    });
    uint64_t prefix =
        image.size();  // the bytes kept as they are: up to the first compressed section
    for (size_t i : order) {
        if ((sections[i].sh_flags & SHF_COMPRESSED) != 0) {
            prefix = sections[i].sh_offset;
            break;
        }
    }
    uint64_t headers_end = sizeof(Elf64_Ehdr);
    for (size_t i = 0; i < image.program_header_count(); ++i) {
        Elf64_Phdr segment;
        if (!image.program_header(i, &segment)) {
            *error = "malformed program headers";
            return false;
        }
        if (segment.p_filesz > 0 && segment.p_offset + segment.p_filesz > prefix) {
            *error = "a compressed section lies inside a segment";
            return false;
        }
    }
    if (header.e_phnum > 0)
        headers_end =
            std::max<uint64_t>(headers_end, header.e_phoff + header.e_phnum * sizeof(Elf64_Phdr));
    if (headers_end > prefix) {
        *error = "a compressed section overlaps the headers";
        return false;
    }
    std::vector<Elf64_Chdr> compression(sections.size());
    uint64_t position = prefix;
    for (size_t i : order) {
        Elf64_Shdr& s = sections[i];
        if (s.sh_offset < prefix) continue;  // kept where it is
        if ((s.sh_flags & SHF_COMPRESSED) != 0) {
            Elf64_Chdr& c = compression[i];
            if (s.sh_size < sizeof(Elf64_Chdr) || !image.read(s.sh_offset, &c) ||
                c.ch_type != ELFCOMPRESS_ZLIB) {
                *error = "a section is compressed with something other than zlib";
                return false;
            }
            s.sh_flags &= ~static_cast<uint64_t>(SHF_COMPRESSED);
            s.sh_size = c.ch_size;
            s.sh_addralign = c.ch_addralign;
        }
        position = round_up(position, s.sh_addralign);
        s.sh_offset = position;
        position += s.sh_size;
    }
    // NOBITS sections take no room; their offsets only need to stay in the file's range.
    for (Elf64_Shdr& s : sections)
        if (s.sh_type == SHT_NOBITS && s.sh_offset > position) s.sh_offset = position;
    bool table_in_prefix = header.e_shoff + sections.size() * sizeof(Elf64_Shdr) <= prefix;
    if (!table_in_prefix) header.e_shoff = round_up(position, 8);

    Output out(fd);
    auto failed_write = [&] {
        *error = "cannot write: " + base::errno_text(errno);
        return false;
    };
    // The kept bytes, with the header's new e_shoff (and, when the table lies among them, the
    // new section headers) laid over them.
    std::vector<uint8_t> head(image.bytes(0, prefix), image.bytes(0, prefix) + prefix);
    std::memcpy(head.data(), &header, sizeof header);
    if (table_in_prefix)
        std::memcpy(head.data() + header.e_shoff, sections.data(),
                    sections.size() * sizeof(Elf64_Shdr));
    if (!out.put(head.data(), head.size())) return failed_write();
    for (size_t i : order) {
        const Elf64_Shdr& s = sections[i];
        if (original[i].sh_offset < prefix) continue;
        if (!out.pad_to(s.sh_offset)) return failed_write();
        const uint8_t* data = image.bytes(original[i].sh_offset, original[i].sh_size);
        if ((original[i].sh_flags & SHF_COMPRESSED) != 0) {
            if (!inflate_into(data + sizeof(Elf64_Chdr), original[i].sh_size - sizeof(Elf64_Chdr),
                              compression[i].ch_size, &out, error))
                return false;
        } else if (!out.put(data, original[i].sh_size)) {
            return failed_write();
        }
    }
    if (!table_in_prefix) {
        if (!out.pad_to(header.e_shoff)) return failed_write();
        if (!out.put(sections.data(), sections.size() * sizeof(Elf64_Shdr))) return failed_write();
    }
    if (!out.flush()) return failed_write();
    return true;
}

DebugCache::DebugCache(std::string dir, bool explicit_dir, uint64_t max_bytes)
    : dir_(std::move(dir)), explicit_(explicit_dir), max_bytes_(max_bytes) {
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

void DebugCache::report(const std::string& what) {
    if (!explicit_ || reported_) return;
    reported_ = true;
    log::problem("GPROF_DEBUG_CACHE=%s: %s; debug information is read without the cache",
                 dir_.c_str(), what.c_str());
}

bool DebugCache::directory_ready() {
    if (state_ != 0) return state_ > 0;
    state_ = -1;
    if (dir_.empty() || dir_[0] != '/') return false;
    if (!make_directories(dir_)) {
        report("cannot create the directory: " + base::errno_text(errno));
        return false;
    }
    struct stat status;
    if (stat(dir_.c_str(), &status) != 0 || !S_ISDIR(status.st_mode)) {
        report("not a directory");
        return false;
    }
    // Copies are read as trusted debug information: nobody else may be able to plant one.
    if (status.st_uid != geteuid() || (status.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        report("the directory must belong to this user and be writable by no one else");
        return false;
    }
    if (access(dir_.c_str(), W_OK | X_OK) != 0) {
        report("the directory is not writable: " + base::errno_text(errno));
        return false;
    }
    state_ = 1;
    return true;
}

std::string DebugCache::file_for(const std::string& path, const ElfImage& image,
                                 Role role) noexcept {
    try {
        // A copy larger than half the directory's bound would push out everything else at each
        // use: such a file is inflated in memory by libdw, as without the cache.
        if (!has_compressed_sections(image) || inflated_size(image) > max_bytes_ / 2) return path;
        std::string build_id = build_id_of_image(image);
        if (build_id.empty()) return path;
        std::lock_guard<std::mutex> lock(mutex_);
        if (!directory_ready()) return path;
        std::string name = build_id + (role == Role::DebugFile ? ".debug" : ".elf");
        std::string copy = dir_ + "/" + name;
        {
            MappedFile existing;
            std::string ignored;
            if (existing.open(copy, &ignored)) {
                ElfImage cached(existing.data(), existing.size());
                if (cached.valid() && sections_inside(cached) && !has_compressed_sections(cached) &&
                    build_id_of_image(cached) == build_id) {
                    mark_used_locked(copy);
                    return copy;
                }
                unlink(copy.c_str());  // damaged or foreign: write it again
            }
        }
        std::string written = write_copy(image, name);
        if (written.empty()) return path;
        trim(name);
        return written;
    } catch (...) {
        return path;
    }
}

template <typename Write>
bool DebugCache::write_atomically(const std::string& name, uint64_t max_size, Write write) {
    std::string error;
    if (base::write_file_atomically(dir_ + "/" + name, max_size, 0600, write, &error)) return true;
    // A malformed file is the file's problem, not the directory's: only I/O is reported.
    if (error.starts_with("cannot") || error.starts_with("writing")) report(error);
    return false;
}

std::string DebugCache::write_copy(const ElfImage& image, const std::string& name) {
    bool written = write_atomically(name, inflated_size(image), [&](int fd, std::string* error) {
        return write_inflated(image, fd, error);
    });
    return written ? dir_ + "/" + name : "";
}

// The trim goes by modification time: a file used now gets the current time, unless it was
// marked within the last kUseGranularity seconds already (every process reads libc's table at its
// first dump: one stat, not one inode write per process).
void DebugCache::mark_used_locked(const std::string& path) {
    struct stat status;
    if (stat(path.c_str(), &status) == 0 && time(nullptr) - status.st_mtime < kUseGranularity)
        return;
    utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
}

std::string DebugCache::path_of(const std::string& name) noexcept {
    try {
        std::lock_guard<std::mutex> lock(mutex_);
        return directory_ready() ? dir_ + "/" + name : "";
    } catch (...) {
        return "";
    }
}

void DebugCache::mark_used(const std::string& name) noexcept {
    try {
        std::lock_guard<std::mutex> lock(mutex_);
        if (directory_ready()) mark_used_locked(dir_ + "/" + name);
    } catch (...) {
    }
}

bool DebugCache::write_file(const std::string& name, std::string_view bytes) noexcept {
    try {
        std::lock_guard<std::mutex> lock(mutex_);
        if (bytes.size() > max_bytes_ / 2 || !directory_ready()) return false;
        bool written = write_atomically(name, bytes.size(), [&](int fd, std::string* error) {
            Output out(fd);
            if (out.put(bytes.data(), bytes.size()) && out.flush()) return true;
            *error = "cannot write: " + base::errno_text(errno);
            return false;
        });
        if (written) trim(name);
        return written;
    } catch (...) {
        return false;
    }
}

void DebugCache::trim(const std::string& keep) {
    struct Entry {
        std::string path;
        uint64_t bytes;
        struct timespec used;
    };
    std::vector<Entry> entries;
    uint64_t total = 0;
    DIR* dir = opendir(dir_.c_str());
    if (dir == nullptr) return;
    time_t now = time(nullptr);
    while (struct dirent* e = readdir(dir)) {
        std::string name = e->d_name;
        if (name == "." || name == ".." || name == keep) continue;
        std::string path = dir_ + "/" + name;
        struct stat status;
        if (lstat(path.c_str(), &status) != 0 || !S_ISREG(status.st_mode)) continue;
        if (name.ends_with(".tmp")) {  // base::write_file_atomically's, left by a crash
            if (now - status.st_mtime > kStaleTempSeconds) unlink(path.c_str());
            continue;
        }
        if (!name.ends_with(".debug") && !name.ends_with(".elf") && !name.ends_with(".sym"))
            continue;
        entries.push_back({path, static_cast<uint64_t>(status.st_size), status.st_mtim});
        total += static_cast<uint64_t>(status.st_size);
    }
    closedir(dir);
    struct stat kept;
    if (stat((dir_ + "/" + keep).c_str(), &kept) == 0) total += static_cast<uint64_t>(kept.st_size);
    if (total <= max_bytes_) return;
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        if (a.used.tv_sec != b.used.tv_sec) return a.used.tv_sec < b.used.tv_sec;
        return a.used.tv_nsec < b.used.tv_nsec;
    });
    for (const Entry& entry : entries) {
        if (total <= max_bytes_) break;
        if (unlink(entry.path.c_str()) == 0) total -= entry.bytes;
    }
}

namespace {
const char* g_cache_dir = "";
bool g_cache_dir_explicit = false;
}  // namespace

void configure_debug_cache(const char* dir, bool explicit_dir) {
    g_cache_dir = dir;
    g_cache_dir_explicit = explicit_dir;
}

DebugCache& debug_cache() {
    // Never destroyed, like the symbol cache (writer/dump.cpp): a function-local static would be
    // destroyed at exit before gprof's at-exit handler runs if a signal dump used it first, and
    // the at-exit dump would then build its paths (and rename files) from freed memory.
    static DebugCache* cache = new DebugCache(g_cache_dir, g_cache_dir_explicit);
    return *cache;
}

}  // namespace gprof::symbolize
