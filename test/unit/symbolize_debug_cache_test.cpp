// Inflated copies of compressed debug files (symbolize/debug_cache.h): the ELF rewriting, byte by
// byte, on images built here; and the cache directory's rules (reuse, repair, size bound).
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "test/unit/temp_dir.h"
#include "symbolize/debug_cache.h"
#include "symbolize/elf_file.h"

namespace fs = std::filesystem;
using gprof::symbolize::DebugCache;
using gprof::symbolize::ElfImage;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes random_text(size_t size, unsigned seed) {
    // Compressible but not trivially so: words from a small vocabulary.
    static const char* words[] = {"frame ", "inline ", "line ", "unit ", "die ", "abbrev "};
    std::mt19937 rng(seed);
    Bytes out;
    while (out.size() < size) {
        const char* w = words[rng() % 6];
        out.insert(out.end(), w, w + std::strlen(w));
    }
    out.resize(size);
    return out;
}

Bytes zlib_section(const Bytes& payload, uint64_t declared_size, uint32_t type = ELFCOMPRESS_ZLIB) {
    Elf64_Chdr header{};
    header.ch_type = type;
    header.ch_size = declared_size;
    header.ch_addralign = 8;
    uLongf size = compressBound(payload.size());
    Bytes out(sizeof header + size);
    std::memcpy(out.data(), &header, sizeof header);
    REQUIRE(compress2(out.data() + sizeof header, &size, payload.data(), payload.size(), 6) ==
            Z_OK);
    out.resize(sizeof header + size);
    return out;
}

// A small shared-object-like ELF image: a loaded segment holding a build-ID note and some code,
// then two compressed debug sections with a plain one between them, a NOBITS section, the section
// name table and the section header table.
struct TestElf {
    Bytes image;
    Bytes text = random_text(0x40, 1);
    Bytes debug_a = random_text(10000, 2);
    Bytes debug_b = random_text(300000, 3);  // more than one inflate chunk
    Bytes plain = {'a', 'b', 'c'};
    uint8_t id_byte = 0x5a;
    int64_t a_size_error = 0;  // added to debug_a's declared size
    uint32_t b_type = ELFCOMPRESS_ZLIB;
    bool segment_covers_all = false;

    struct Section {
        std::string name;
        uint32_t type;
        uint64_t flags;
        Bytes data;
        uint64_t align;
        uint64_t offset = 0;
        uint64_t nobits_size = 0;
    };

    void build() {
        Bytes note(16 + 20);
        uint32_t namesz = 4, descsz = 20, type = NT_GNU_BUILD_ID;
        std::memcpy(&note[0], &namesz, 4);
        std::memcpy(&note[4], &descsz, 4);
        std::memcpy(&note[8], &type, 4);
        std::memcpy(&note[12], "GNU", 4);
        for (int i = 0; i < 20; ++i) note[16 + i] = static_cast<uint8_t>(id_byte + i);
        std::vector<Section> sections = {
            {"", SHT_NULL, 0, {}, 0},
            {".note.gnu.build-id", SHT_NOTE, SHF_ALLOC, note, 4},
            {".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text, 16},
            {".debug_a", SHT_PROGBITS, SHF_COMPRESSED,
             zlib_section(debug_a, debug_a.size() + a_size_error), 8},
            {".plain", SHT_PROGBITS, 0, plain, 1},
            {".debug_b", SHT_PROGBITS, SHF_COMPRESSED,
             zlib_section(debug_b, debug_b.size(), b_type), 8},
            {".bss", SHT_NOBITS, SHF_ALLOC | SHF_WRITE, {}, 32, 0, 4096},
            {".shstrtab", SHT_STRTAB, 0, {}, 1},
        };
        Bytes names = {0};
        std::vector<uint32_t> name_at;
        for (Section& s : sections) {
            name_at.push_back(s.name.empty() ? 0 : static_cast<uint32_t>(names.size()));
            if (!s.name.empty()) {
                names.insert(names.end(), s.name.begin(), s.name.end());
                names.push_back(0);
            }
        }
        sections.back().data = names;
        image.assign(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), 0);
        for (Section& s : sections) {
            if (s.type == SHT_NULL) continue;
            while (s.align > 1 && image.size() % s.align != 0) image.push_back(0);
            s.offset = image.size();
            image.insert(image.end(), s.data.begin(), s.data.end());
        }
        while (image.size() % 8 != 0) image.push_back(0);
        uint64_t shoff = image.size();
        for (size_t i = 0; i < sections.size(); ++i) {
            const Section& s = sections[i];
            Elf64_Shdr h{};
            h.sh_name = name_at[i];
            h.sh_type = s.type;
            h.sh_flags = s.flags;
            h.sh_offset = s.offset;
            h.sh_size = s.type == SHT_NOBITS ? s.nobits_size : s.data.size();
            h.sh_addralign = s.align;
            const auto* p = reinterpret_cast<const uint8_t*>(&h);
            image.insert(image.end(), p, p + sizeof h);
        }
        Elf64_Ehdr e{};
        std::memcpy(e.e_ident, ELFMAG, SELFMAG);
        e.e_ident[EI_CLASS] = ELFCLASS64;
        e.e_ident[EI_DATA] = ELFDATA2LSB;
        e.e_ident[EI_VERSION] = EV_CURRENT;
        e.e_type = ET_DYN;
        e.e_machine = EM_X86_64;
        e.e_version = EV_CURRENT;
        e.e_phoff = sizeof(Elf64_Ehdr);
        e.e_shoff = shoff;
        e.e_ehsize = sizeof(Elf64_Ehdr);
        e.e_phentsize = sizeof(Elf64_Phdr);
        e.e_phnum = 1;
        e.e_shentsize = sizeof(Elf64_Shdr);
        e.e_shnum = static_cast<uint16_t>(sections.size());
        e.e_shstrndx = static_cast<uint16_t>(sections.size() - 1);
        std::memcpy(image.data(), &e, sizeof e);
        Elf64_Phdr ph{};
        ph.p_type = PT_LOAD;
        ph.p_flags = PF_R | PF_X;
        ph.p_offset = 0;
        ph.p_filesz = segment_covers_all ? image.size() : sections[2].offset + text.size();
        ph.p_memsz = ph.p_filesz;
        ph.p_align = 16;
        std::memcpy(image.data() + sizeof e, &ph, sizeof ph);
    }
};

struct Rewritten {
    bool ok = false;
    std::string error;
    Bytes bytes;
};

Rewritten rewrite(const Bytes& image) {
    Rewritten r;
    int fd = memfd_create("inflated", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    ElfImage elf(image.data(), image.size());
    r.ok = gprof::symbolize::write_inflated(elf, fd, &r.error);
    off_t size = lseek(fd, 0, SEEK_END);
    r.bytes.resize(static_cast<size_t>(size));
    REQUIRE(pread(fd, r.bytes.data(), r.bytes.size(), 0) == size);
    close(fd);
    return r;
}

// The data of the section called name in an image, or empty.
bool section_named(const ElfImage& elf, const std::string& name, Elf64_Shdr* out) {
    for (size_t i = 0; i < elf.section_count(); ++i) {
        REQUIRE(elf.section_header(i, out));
        if (elf.section_name(*out) == name) return true;
    }
    return false;
}

Bytes data_of(const ElfImage& elf, const std::string& name) {
    Elf64_Shdr s;
    REQUIRE(section_named(elf, name, &s));
    const uint8_t* p = elf.bytes(s.sh_offset, s.sh_size);
    REQUIRE(p != nullptr);
    return Bytes(p, p + s.sh_size);
}

void write_bytes(const std::string& path, const Bytes& bytes) {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("write_inflated: every compressed section inflated, everything else as it was",
          "[debug-cache]") {
    TestElf t;
    t.build();
    ElfImage in(t.image.data(), t.image.size());
    REQUIRE(in.valid());
    CHECK(gprof::symbolize::has_compressed_sections(in));
    Rewritten r = rewrite(t.image);
    INFO(r.error);
    REQUIRE(r.ok);
    ElfImage out(r.bytes.data(), r.bytes.size());
    REQUIRE(out.valid());
    CHECK_FALSE(gprof::symbolize::has_compressed_sections(out));
    REQUIRE(out.section_count() == in.section_count());
    CHECK(data_of(out, ".debug_a") == t.debug_a);
    CHECK(data_of(out, ".debug_b") == t.debug_b);
    CHECK(data_of(out, ".plain") == t.plain);
    CHECK(data_of(out, ".text") == t.text);
    CHECK(gprof::symbolize::build_id_of_image(out) == gprof::symbolize::build_id_of_image(in));
    CHECK(gprof::symbolize::build_id_of_image(out).size() == 40);
    // The bytes before the first compressed section are the original's, but for e_shoff: the
    // headers, the note and the code stay where the program headers say they are.
    Elf64_Shdr a;
    REQUIRE(section_named(in, ".debug_a", &a));
    for (size_t i = offsetof(Elf64_Ehdr, e_shoff) + 8; i < a.sh_offset; ++i) {
        INFO("byte " << i);
        REQUIRE(r.bytes[i] == t.image[i]);
    }
    for (size_t i = 0; i < out.section_count(); ++i) {
        Elf64_Shdr s, o;
        REQUIRE(out.section_header(i, &s));
        REQUIRE(in.section_header(i, &o));
        INFO(out.section_name(s));
        CHECK(out.section_name(s) == in.section_name(o));
        CHECK(s.sh_type == o.sh_type);
        CHECK((s.sh_flags & SHF_COMPRESSED) == 0);
        if (s.sh_addralign > 1) CHECK(s.sh_offset % s.sh_addralign == 0);
        if (s.sh_type == SHT_NOBITS) CHECK(s.sh_size == o.sh_size);
        if (s.sh_type != SHT_NOBITS && s.sh_type != SHT_NULL)
            CHECK(out.bytes(s.sh_offset, s.sh_size) != nullptr);
    }
}

TEST_CASE("write_inflated refuses what it cannot copy faithfully", "[debug-cache]") {
    SECTION("a stream shorter than its declared size") {
        TestElf t;
        t.a_size_error = 1;
        t.build();
        Rewritten r = rewrite(t.image);
        CHECK_FALSE(r.ok);
        CHECK(r.error.find("declared size") != std::string::npos);
    }
    SECTION("a stream longer than its declared size") {
        TestElf t;
        t.a_size_error = -1;
        t.build();
        CHECK_FALSE(rewrite(t.image).ok);
    }
    SECTION("a compression other than zlib (zstd)") {
        TestElf t;
        t.b_type = 2;  // ELFCOMPRESS_ZSTD
        t.build();
        Rewritten r = rewrite(t.image);
        CHECK_FALSE(r.ok);
        CHECK(r.error.find("other than zlib") != std::string::npos);
    }
    SECTION("a damaged stream") {
        TestElf t;
        t.build();
        ElfImage in(t.image.data(), t.image.size());
        Elf64_Shdr b;
        REQUIRE(section_named(in, ".debug_b", &b));
        for (size_t i = 100; i < 200; ++i) t.image[b.sh_offset + sizeof(Elf64_Chdr) + i] ^= 0x55;
        CHECK_FALSE(rewrite(t.image).ok);
    }
    SECTION("a loaded segment over a compressed section") {
        TestElf t;
        t.segment_covers_all = true;
        t.build();
        CHECK_FALSE(rewrite(t.image).ok);
    }
    SECTION("an image cut short") {
        TestElf t;
        t.build();
        t.image.resize(t.image.size() - 100);
        CHECK_FALSE(rewrite(t.image).ok);
    }
}

TEST_CASE("the debug cache writes a copy once, repairs a damaged one, and stays under its bound",
          "[debug-cache]") {
    std::string dir = temp_dir("debug-cache");
    TestElf t;
    t.build();
    ElfImage in(t.image.data(), t.image.size());
    const std::string id = gprof::symbolize::build_id_of_image(in);

    DebugCache off("", false);
    CHECK(off.file_for("/some/file", in, DebugCache::Role::DebugFile) == "/some/file");

    DebugCache cache(dir + "/made/here", true);
    std::string copy = cache.file_for("/some/file", in, DebugCache::Role::DebugFile);
    CHECK(copy == dir + "/made/here/" + id + ".debug");
    CHECK(cache.file_for("/some/file", in, DebugCache::Role::Module) ==
          dir + "/made/here/" + id + ".elf");
    CHECK((fs::status(dir + "/made/here").permissions() & fs::perms::all) == fs::perms::owner_all);
    struct stat first;
    REQUIRE(stat(copy.c_str(), &first) == 0);
    CHECK(cache.file_for("/some/file", in, DebugCache::Role::DebugFile) == copy);
    struct stat again;
    REQUIRE(stat(copy.c_str(), &again) == 0);
    CHECK(again.st_ino == first.st_ino);  // reused, not written again

    // Damaged: cut short, or another file's content under this name.
    fs::resize_file(copy, 1000);
    CHECK(cache.file_for("/some/file", in, DebugCache::Role::DebugFile) == copy);
    CHECK(fs::file_size(copy) > 300000);
    TestElf other;
    other.id_byte = 0x11;
    other.build();
    write_bytes(copy, other.image);
    CHECK(cache.file_for("/some/file", in, DebugCache::Role::DebugFile) == copy);
    {
        gprof::symbolize::MappedFile file;
        std::string error;
        REQUIRE(file.open(copy, &error));
        ElfImage written(file.data(), file.size());
        CHECK(gprof::symbolize::build_id_of_image(written) == id);
        CHECK_FALSE(gprof::symbolize::has_compressed_sections(written));
    }

    // An image without compressed sections is read as it is.
    Rewritten plain = rewrite(t.image);
    ElfImage plain_image(plain.bytes.data(), plain.bytes.size());
    CHECK(cache.file_for("/plain", plain_image, DebugCache::Role::DebugFile) == "/plain");

    // The bound: with room for two copies, a third pushes out the one used longest ago.
    std::string bounded_dir = dir + "/bounded";
    uint64_t one = fs::file_size(copy);
    DebugCache bounded(bounded_dir, true, 2 * one + one / 2);
    std::vector<TestElf> images(3);
    std::vector<std::string> copies;
    for (size_t i = 0; i < images.size(); ++i) {
        images[i].id_byte = static_cast<uint8_t>(0x20 * (i + 1));
        images[i].build();
        ElfImage image(images[i].image.data(), images[i].image.size());
        copies.push_back(bounded.file_for("/x", image, DebugCache::Role::DebugFile));
        REQUIRE(copies.back() != "/x");
        // Distinct, increasing times of use.
        struct timespec times[2] = {{1000000 + static_cast<time_t>(i) * 10, 0},
                                    {1000000 + static_cast<time_t>(i) * 10, 0}};
        REQUIRE(utimensat(AT_FDCWD, copies.back().c_str(), times, 0) == 0);
        if (i == 1) {
            // Using the first copy again makes the second the oldest.
            ElfImage first_image(images[0].image.data(), images[0].image.size());
            CHECK(bounded.file_for("/x", first_image, DebugCache::Role::DebugFile) == copies[0]);
        }
    }
    CHECK(fs::exists(copies[0]));
    CHECK_FALSE(fs::exists(copies[1]));
    CHECK(fs::exists(copies[2]));

    // A file whose copy would take more than half the bound is not copied at all.
    uint64_t bound = gprof::symbolize::inflated_size(in);
    CHECK(bound >= one);
    CHECK(bound <= one + t.image.size());
    DebugCache small(dir + "/small", true, 2 * bound - 1);
    CHECK(small.file_for("/big", in, DebugCache::Role::DebugFile) == "/big");
    CHECK_FALSE(fs::exists(dir + "/small/" + id + ".debug"));
    fs::remove_all(dir);
}

TEST_CASE("the debug cache keeps named files whole, private, and under the same bound",
          "[debug-cache]") {
    std::string dir = temp_dir("debug-cache-named");
    DebugCache off("", false);
    CHECK(off.path_of("a.sym") == "");
    CHECK_FALSE(off.write_file("a.sym", "bytes"));

    DebugCache cache(dir + "/c", true, 3000);
    CHECK(cache.path_of("a.sym") == dir + "/c/a.sym");
    const std::string a(1000, 'a');
    REQUIRE(cache.write_file("a.sym", a));
    std::ifstream in(dir + "/c/a.sym", std::ios::binary);
    std::string read((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(read == a);
    CHECK((fs::status(dir + "/c/a.sym").permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    // Written again whole (a new file renamed over the old, so a reader's mapping stays intact).
    struct stat before, after;
    REQUIRE(stat((dir + "/c/a.sym").c_str(), &before) == 0);
    REQUIRE(cache.write_file("a.sym", std::string(900, 'b')));
    REQUIRE(stat((dir + "/c/a.sym").c_str(), &after) == 0);
    CHECK(after.st_ino != before.st_ino);
    CHECK(fs::file_size(dir + "/c/a.sym") == 900);

    // More than half the bound: not written.
    CHECK_FALSE(cache.write_file("big.sym", std::string(1501, 'x')));
    CHECK_FALSE(fs::exists(dir + "/c/big.sym"));

    // Named files count toward the bound and leave in order of last use, like copies.
    struct timespec old_times[2] = {{1000000, 0}, {1000000, 0}};
    REQUIRE(utimensat(AT_FDCWD, (dir + "/c/a.sym").c_str(), old_times, 0) == 0);
    REQUIRE(cache.write_file("b.sym", std::string(1000, 'b')));
    REQUIRE(utimensat(AT_FDCWD, (dir + "/c/b.sym").c_str(), old_times, 0) == 0);
    cache.mark_used("a.sym");  // now a.sym is the more recently used
    REQUIRE(cache.write_file("c.sym", std::string(1400, 'c')));  // 900 + 1000 + 1400 > 3000
    CHECK(fs::exists(dir + "/c/a.sym"));
    CHECK_FALSE(fs::exists(dir + "/c/b.sym"));
    CHECK(fs::exists(dir + "/c/c.sym"));
    for (const auto& entry : fs::directory_iterator(dir + "/c"))  // no temporary file left
        CHECK_FALSE(entry.path().filename().string().ends_with(".tmp"));
    fs::remove_all(dir);
}

TEST_CASE("the debug cache under a file size limit: no SIGXFSZ, nothing written, the original used",
          "[debug-cache]") {
    std::string dir = temp_dir("debug-cache-fsize");
    TestElf t;
    t.build();
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The default action of SIGXFSZ ends the process: the cache must check before writing.
        signal(SIGXFSZ, SIG_DFL);
        struct rlimit limit = {100000, RLIM_INFINITY};  // the copy is about 310 000 bytes
        setrlimit(RLIMIT_FSIZE, &limit);
        DebugCache cache(dir, false);
        ElfImage in(t.image.data(), t.image.size());
        bool copy_refused = cache.file_for("/some/file", in, DebugCache::Role::DebugFile) ==
                            "/some/file";
        bool table_refused = !cache.write_file("big.sym", std::string(200000, 'x'));
        bool small_written = cache.write_file("small.sym", std::string(1000, 'x'));
        _exit(copy_refused && table_refused && small_written ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));  // not killed by SIGXFSZ
    CHECK(WEXITSTATUS(status) == 0);
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir))
        names.push_back(entry.path().filename().string());
    CHECK(names == std::vector<std::string>{"small.sym"});  // no copy, no temporary file
    fs::remove_all(dir);
}
