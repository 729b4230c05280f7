#include "writer/symbols.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "writer/elf_file.h"

namespace gprof::writer {

// The function symbols of one ELF image and the address translation for it.
class SymbolTable {
  public:
    // Reads image (a mapped file or the vDSO in memory). Without a valid image or symbols the
    // table stays empty and every lookup fails.
    void load(const ElfImage& image);

    // Names the function whose code contains address (an address in module, which maps this
    // image); false if no symbol covers it.
    bool lookup(const Module& module, uintptr_t address, FunctionName* out);

    bool empty() const { return symbols_.empty(); }

  private:
    struct LoadSegment {
        uint64_t vaddr;
        uint64_t offset;
        uint64_t file_size;
    };
    struct Symbol {
        uint64_t start;
        uint64_t end;   // exclusive
        uint32_t name;  // offset into names_
        bool sized;     // st_size was nonzero
    };

    bool to_link_address(const Module& module, uintptr_t address, uint64_t* link_address) const;
    const Symbol* find(uint64_t link_address) const;
    void read_symbols(const ElfImage& image, uint32_t section_type);

    std::vector<LoadSegment> segments_;
    std::vector<Symbol> symbols_;                          // sorted by start, one per start address
    std::string names_;                                    // NUL-terminated names back to back
    std::unordered_map<uint32_t, std::string> demangled_;  // by name offset, filled on demand
};

namespace {

// Among several symbols at one address (aliases such as getpid and __getpid, or malloc and
// __libc_malloc) the one a person expects: fewer leading underscores, then global before weak
// before local, then the shorter, then the alphabetically first (so the choice is stable).
int binding_rank(unsigned char binding) {
    switch (binding) {
        case STB_GLOBAL:
            return 0;
        case STB_WEAK:
            return 1;
        default:
            return 2;
    }
}

size_t leading_underscores(std::string_view name) {
    size_t n = 0;
    while (n < name.size() && name[n] == '_') ++n;
    return n;
}

struct Candidate {
    uint64_t start;
    uint64_t end;
    bool sized;
    unsigned char binding;
    std::string_view name;
};

bool better_name(const Candidate& a, const Candidate& b) {
    size_t ua = leading_underscores(a.name), ub = leading_underscores(b.name);
    if (ua != ub) return ua < ub;
    int ba = binding_rank(a.binding), bb = binding_rank(b.binding);
    if (ba != bb) return ba < bb;
    if (a.name.size() != b.name.size()) return a.name.size() < b.name.size();
    return a.name < b.name;
}

// Demangles an Itanium C++ ABI name ("_Z..."). Other names are returned as they are: asking
// __cxa_demangle about a plain C name could turn "f" into "float".
std::string demangle(std::string_view mangled) {
    if (mangled.size() < 2 || mangled[0] != '_' || mangled[1] != 'Z') return std::string(mangled);
    int status = 0;
    std::string text(mangled);
    char* demangled = abi::__cxa_demangle(text.c_str(), nullptr, nullptr, &status);
    if (status != 0 || demangled == nullptr) {
        std::free(demangled);
        return text;
    }
    std::string result(demangled);
    std::free(demangled);
    return result;
}

// How many tables to keep before starting over; only a program that loads and unloads very many
// different libraries reaches it.
constexpr size_t kMaxCachedTables = 1024;

bool load_from_file(const std::string& path, const std::string& build_id, SymbolTable* table) {
    MappedFile file;
    std::string ignored;
    if (!file.open(path, &ignored)) return false;
    ElfImage image(file.data(), file.size());
    // A file that is not the one mapped (rebuilt in place) would give wrong names.
    if (!image.valid() || (!build_id.empty() && build_id_of_image(image) != build_id)) return false;
    table->load(image);
    return true;
}

}  // namespace

void SymbolTable::load(const ElfImage& image) {
    if (!image.valid()) return;
    for (size_t i = 0; i < image.program_header_count(); ++i) {
        Elf64_Phdr segment;
        if (image.program_header(i, &segment) && segment.p_type == PT_LOAD) {
            segments_.push_back({segment.p_vaddr, segment.p_offset, segment.p_filesz});
        }
    }
    if (segments_.empty()) return;
    // .symtab has every function, .dynsym only the exported ones; stripped files keep only
    // .dynsym.
    read_symbols(image, SHT_SYMTAB);
    if (symbols_.empty()) read_symbols(image, SHT_DYNSYM);
}

void SymbolTable::read_symbols(const ElfImage& image, uint32_t section_type) {
    size_t section_count = image.section_count();
    for (size_t i = 0; i < section_count; ++i) {
        Elf64_Shdr table;
        if (!image.section_header(i, &table) || table.sh_type != section_type) continue;
        Elf64_Shdr strings;
        if (table.sh_entsize != sizeof(Elf64_Sym) || !image.section_header(table.sh_link, &strings))
            continue;
        const uint8_t* string_bytes = image.bytes(strings.sh_offset, strings.sh_size);
        if (string_bytes == nullptr) continue;
        std::string_view string_table(reinterpret_cast<const char*>(string_bytes), strings.sh_size);

        std::vector<Candidate> candidates;
        size_t symbol_count = table.sh_size / sizeof(Elf64_Sym);
        for (size_t s = 0; s < symbol_count; ++s) {
            Elf64_Sym symbol;
            if (!image.read(table.sh_offset + s * sizeof(Elf64_Sym), &symbol)) break;
            unsigned char type = ELF64_ST_TYPE(symbol.st_info);
            if ((type != STT_FUNC && type != STT_GNU_IFUNC) || symbol.st_shndx == SHN_UNDEF ||
                symbol.st_value == 0 || symbol.st_name >= string_table.size())
                continue;
            std::string_view name = string_table.substr(symbol.st_name);
            name = name.substr(0, std::min(name.find('\0'), name.size()));
            if (name.empty()) continue;
            uint64_t end = symbol.st_value + symbol.st_size;
            if (symbol.st_size == 0) {
                // No size: the symbol reaches at most to the end of its section (and, below, to
                // the next symbol), so "nearest preceding" never crosses into another section.
                Elf64_Shdr section;
                end = symbol.st_shndx < SHN_LORESERVE &&
                              image.section_header(symbol.st_shndx, &section) &&
                              section.sh_addr + section.sh_size > symbol.st_value
                          ? section.sh_addr + section.sh_size
                          : UINT64_MAX;
            }
            candidates.push_back(
                {symbol.st_value, end, symbol.st_size != 0, ELF64_ST_BIND(symbol.st_info), name});
        }
        std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
            if (a.start != b.start) return a.start < b.start;
            return better_name(a, b);
        });

        for (size_t c = 0; c < candidates.size();) {
            // One entry per address: the best name, the widest extent of its aliases.
            const Candidate& best = candidates[c];
            uint64_t sized_end = 0, unsized_end = 0;
            bool sized = false;
            size_t next = c;
            for (; next < candidates.size() && candidates[next].start == best.start; ++next) {
                if (candidates[next].sized) {
                    sized = true;
                    sized_end = std::max(sized_end, candidates[next].end);
                } else {
                    unsized_end = std::max(unsized_end, candidates[next].end);
                }
            }
            symbols_.push_back({best.start, sized ? sized_end : unsized_end,
                                static_cast<uint32_t>(names_.size()), sized});
            names_.append(best.name);
            names_.push_back('\0');
            c = next;
        }
        if (names_.size() > UINT32_MAX) {  // offsets would not fit; give up on names
            symbols_.clear();
            names_.clear();
        }
        break;  // an image has one table of each type
    }
    for (size_t i = 0; i + 1 < symbols_.size(); ++i) {
        if (!symbols_[i].sized) symbols_[i].end = std::min(symbols_[i].end, symbols_[i + 1].start);
    }
}

bool SymbolTable::to_link_address(const Module& module, uintptr_t address,
                                  uint64_t* link_address) const {
    // The mapping shows file bytes [file_offset, file_offset + length) at [start, limit); the
    // PT_LOAD segment that holds the address's file offset says which link-time address it has.
    // This is the same for executables (ET_EXEC) and for PIE and shared objects at any base.
    uint64_t file_offset = address - module.start + module.file_offset;
    for (const LoadSegment& segment : segments_) {
        if (file_offset >= segment.offset && file_offset - segment.offset < segment.file_size) {
            *link_address = file_offset - segment.offset + segment.vaddr;
            return true;
        }
    }
    return false;
}

const SymbolTable::Symbol* SymbolTable::find(uint64_t link_address) const {
    auto after = std::upper_bound(symbols_.begin(), symbols_.end(), link_address,
                                  [](uint64_t a, const Symbol& s) { return a < s.start; });
    // The nearest symbol at or below the address usually covers it. A few steps back handle a
    // small symbol nested in a larger one (the address past the small one's end).
    for (int steps = 0; after != symbols_.begin() && steps < 8; ++steps) {
        --after;
        if (link_address < after->end) return &*after;
    }
    return nullptr;
}

bool SymbolTable::lookup(const Module& module, uintptr_t address, FunctionName* out) {
    uint64_t link_address;
    if (!to_link_address(module, address, &link_address)) return false;
    const Symbol* symbol = find(link_address);
    if (symbol == nullptr) return false;
    std::string_view mangled(names_.data() + symbol->name);
    auto cached = demangled_.find(symbol->name);
    if (cached == demangled_.end()) {
        cached = demangled_.emplace(symbol->name, demangle(mangled)).first;
    }
    out->system_name.assign(mangled);
    out->name = cached->second;
    return true;
}

SymbolCache::SymbolCache() = default;
SymbolCache::~SymbolCache() = default;

SymbolTable* SymbolCache::table_for(const Module& module) {
    std::string key = module.path;
    key.push_back('\0');
    key += module.build_id;
    auto found = tables_.find(key);
    if (found != tables_.end()) return found->second.get();

    if (tables_.size() >= kMaxCachedTables) tables_.clear();
    auto table = std::make_unique<SymbolTable>();
    if (module.path == "[vdso]") {
        // The kernel maps the whole vDSO image, section headers included.
        table->load(
            ElfImage(reinterpret_cast<const uint8_t*>(module.start), module.limit - module.start));
    } else if (module.is_file) {
        bool loaded = load_from_file(module.path, module.build_id, table.get());
        if (!loaded && module.deleted) {
            // The name is gone or names another file now, but the kernel still offers the mapped
            // file itself (where this process is allowed to read it).
            char link[96];
            snprintf(link, sizeof link, "/proc/self/map_files/%lx-%lx",
                     static_cast<unsigned long>(module.start),
                     static_cast<unsigned long>(module.limit));
            load_from_file(link, module.build_id, table.get());
        }
    }
    // An empty table is cached too: a missing file is not looked for again at every address.
    return tables_.emplace(std::move(key), std::move(table)).first->second.get();
}

bool SymbolCache::lookup(const Module& module, uintptr_t address, FunctionName* out) noexcept {
    try {
        std::lock_guard<std::mutex> lock(mutex_);
        SymbolTable* table = table_for(module);
        return table != nullptr && !table->empty() && table->lookup(module, address, out);
    } catch (...) {
        return false;
    }
}

size_t SymbolCache::cached_tables() {
    std::lock_guard<std::mutex> lock(mutex_);
    return tables_.size();
}

}  // namespace gprof::writer
