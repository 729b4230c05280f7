#include "symbolize/symbols.h"

#include <cxxabi.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "symbolize/debug_cache.h"
#include "symbolize/debug_info.h"
#include "symbolize/elf_file.h"
#include "symbolize/resolved_store.h"

namespace gprof::symbolize {

// The function symbols of one ELF image and the address translation for it.
class SymbolTable {
  public:
    // Reads image (a mapped file or the vDSO in memory). Without a valid image or symbols the
    // table stays empty and every lookup fails.
    void load(const ElfImage& image);
    // Reads only the image's segments (the address translation); its symbols are read from the
    // origin file (set_origin) when a look-up first needs them. For a module whose resolved
    // addresses are stored: a process whose addresses the stored table all answers never reads
    // its symbols.
    void load_segments(const ElfImage& image);

    // Names the function whose code contains address (an address in module, which maps this
    // image); false if no symbol covers it.
    bool lookup(const Module& module, uintptr_t address, FunctionName* out);

    bool empty() {
        read_deferred_symbols();
        return symbols_.empty();
    }

    // Where this table's resolved addresses are stored (the process's debug cache unless a test
    // gives another).
    explicit SymbolTable(DebugCache* store_cache) : store_cache_(store_cache) {}
    // Whether resolved addresses are stored for this table (set_origin found a build ID, and
    // DWARF or none anywhere).
    bool stores_resolved() const { return !store_name_.empty(); }
    // How many addresses the stored table answered in this process.
    size_t stored_answers() const { return stored_answers_; }
    // Where the file was read from (path or /proc/self/map_files/...), its build ID, and the
    // directory of its real name; set when a file was loaded. Used to find its DWARF, unless
    // dwarf_source (DebugInfo::source) is "": then libdw is never asked about it.
    void set_origin(std::string path, std::string build_id, std::string search_dir,
                    const std::string& dwarf_source);

    // The frames of address as this process or a stored table (symbolize/resolved_store.h) already
    // resolved them: false if neither has it. *out may be empty: an address known to have no name.
    bool known(const Module& module, uintptr_t address, std::vector<SourceFrame>* out,
               bool* from_dwarf);
    // SymbolCache::symbolize for this table.
    bool symbolize(const Module& module, uintptr_t address, std::vector<SourceFrame>* out,
                   bool* from_dwarf);
    void release_debug_info() { debug_.reset(); }
    // Writes the stored table again if this process resolved addresses that it lacks.
    void store_resolved();
    // Whether a look-up may still open this module's DWARF (and so needs libdw loaded): false once
    // it is open, or known to be nowhere.
    bool may_open_debug_info() const {
        return debug_ == nullptr && !debug_missing_ && !origin_path_.empty();
    }
    void forget_resolved() {
        resolved_.clear();
        frames_.clear();
        pool_.clear();
        pool_index_.clear();
        resolved_bytes_ = 0;
    }
    size_t resolved_bytes() const { return resolved_bytes_; }

  private:
    // A resolved frame, its strings interned in pool_.
    struct CompactFrame {
        uint32_t name, system_name, filename;
        int32_t line, start_line;
    };
    struct Resolved {
        uint32_t first;  // index into frames_
        uint16_t count;
        bool from_dwarf;
    };
    uint32_t intern(std::string_view text);
    void emit(const Resolved& resolved, std::vector<SourceFrame>* out) const;
    // The same frames as views into pool_ (valid until forget_resolved).
    void emit(const Resolved& resolved, std::vector<StoredFrame>* out) const;
    // Frame: SourceFrame (resolved now) or StoredFrame (read from the stored table).
    template <typename Frame>
    void remember(uint64_t link_address, const std::vector<Frame>& frames, bool from_dwarf);
    // known() for an address already translated; *out and *from_dwarf cleared by the caller.
    bool known_at(uint64_t link_address, std::vector<SourceFrame>* out, bool* from_dwarf);
    const ResolvedStore* stored();
    bool resolve(const Module& module, uintptr_t address, uint64_t link_address,
                 std::vector<SourceFrame>* frames, bool* from_dwarf);

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
    void read_function_symbols(const ElfImage& image);
    void read_deferred_symbols();
    void read_symbols(const ElfImage& image, uint32_t section_type);
    // A stripped module keeps only .dynsym; its separate debug file has the whole .symtab (at the
    // same link addresses).
    void load_separate_symtab(const std::string& path);

    std::vector<LoadSegment> segments_;
    std::vector<Symbol> symbols_;                          // sorted by start, one per start address
    std::string names_;                                    // NUL-terminated names back to back
    std::unordered_map<uint32_t, std::string> demangled_;  // by name offset, filled on demand

    std::string origin_path_, build_id_, search_dir_;
    std::unique_ptr<DebugInfo> debug_;  // this dump's libdw state
    bool debug_missing_ = false;        // no DWARF anywhere: not looked for again
    bool full_symtab_ = false;          // symbols_ came from a .symtab, not only .dynsym
    bool symbols_deferred_ = false;     // load_segments() left the symbols to be read
    bool separate_symtab_tried_ = false;
    std::unordered_map<uint64_t, Resolved> resolved_;  // by link address
    std::vector<CompactFrame> frames_;
    std::deque<std::string> pool_;  // a deque: growing it never moves the strings viewed below
    std::unordered_map<std::string_view, uint32_t> pool_index_;
    size_t resolved_bytes_ = 0;

    // The stored table of resolved addresses: its name ("" when not kept: no build ID), the key
    // of the source it must match (the DWARF, or the module file where there is none), and the
    // file, read at the first miss.
    DebugCache* store_cache_;
    std::string store_name_;
    uint64_t store_key_ = 0;
    size_t stored_answers_ = 0;
    bool store_read_ = false;
    MappedFile store_file_;
    ResolvedStore store_;
    bool dwarf_read_ = false;    // DWARF was opened: what resolve() finds may be stored
    bool store_without_dwarf_ = false;  // no DWARF anywhere: the symbol table's names are stored
    bool store_behind_ = false;  // resolved_ holds addresses that store_ lacks
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

// The most addresses a stored table keeps per module: what this process used comes first, then
// what the old table had, those used most recently first. Adding to a table rewrites it whole,
// reading and encoding every address (about 2 ms per 1000 for libc), so the bound keeps a process
// that resolves one new address from paying more for the table than for libdw itself.
constexpr size_t kMaxStoredAddresses = 8192;

// How many tables to keep before starting over; only a program that loads and unloads very many
// different libraries reaches it.
constexpr size_t kMaxCachedTables = 1024;

bool load_from_file(const std::string& path, const std::string& build_id,
                    const std::string& real_path, SymbolTable* table) {
    MappedFile file;
    std::string ignored;
    if (!file.open(path, &ignored)) return false;
    ElfImage image(file.data(), file.size());
    if (!image.valid()) return false;
    std::string id = build_id_of_image(image);
    // A file that is not the one mapped (rebuilt in place) would give wrong names.
    if (!build_id.empty() && id != build_id) return false;
    size_t slash = real_path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : real_path.substr(0, slash);
    std::string source = DebugInfo::source(image, path, id, dir);
    table->set_origin(path, std::move(id), std::move(dir), source);
    if (table->stores_resolved())
        table->load_segments(image);
    else
        table->load(image);
    return true;
}

}  // namespace

void SymbolTable::set_origin(std::string path, std::string build_id, std::string search_dir,
                             const std::string& dwarf_source) {
    origin_path_ = std::move(path);
    build_id_ = std::move(build_id);
    search_dir_ = std::move(search_dir);
    debug_missing_ = dwarf_source.empty();
    // A module with no DWARF anywhere is named from its symbol table alone: reading that table is
    // most of what such a module costs a dump, so its answers are stored too, keyed on the module
    // file itself. (If libdw is missing, a module that has DWARF stores nothing: its names would
    // then be stored under its DWARF's key.)
    store_without_dwarf_ = debug_missing_;
    const std::string& source = debug_missing_ ? origin_path_ : dwarf_source;
    struct stat status;
    if (!build_id_.empty() && !source.empty() && stat(source.c_str(), &status) == 0) {
        store_name_ = build_id_ + ".sym";
        store_key_ = resolved_source_key(
            build_id_, status.st_dev, status.st_ino, static_cast<uint64_t>(status.st_size),
            int64_t{status.st_mtim.tv_sec} * 1000000000 + status.st_mtim.tv_nsec,
            !debug_missing_);
    }
}

void SymbolTable::load_segments(const ElfImage& image) {
    if (!image.valid()) return;
    for (size_t i = 0; i < image.program_header_count(); ++i) {
        Elf64_Phdr segment;
        if (image.program_header(i, &segment) && segment.p_type == PT_LOAD) {
            segments_.push_back({segment.p_vaddr, segment.p_offset, segment.p_filesz});
        }
    }
    symbols_deferred_ = !segments_.empty();
}

void SymbolTable::load(const ElfImage& image) {
    load_segments(image);
    symbols_deferred_ = false;
    if (!segments_.empty()) read_function_symbols(image);
}

void SymbolTable::read_function_symbols(const ElfImage& image) {
    // .symtab has every function, .dynsym only the exported ones; stripped files keep only
    // .dynsym.
    read_symbols(image, SHT_SYMTAB);
    full_symtab_ = !symbols_.empty();
    if (symbols_.empty()) read_symbols(image, SHT_DYNSYM);
}

void SymbolTable::read_deferred_symbols() {
    if (!symbols_deferred_) return;
    symbols_deferred_ = false;
    // The file is mapped again; if it is gone or is another file now (same checks as at load),
    // the module's addresses keep what the stored table and DWARF give.
    MappedFile file;
    std::string ignored;
    if (!file.open(origin_path_, &ignored)) return;
    ElfImage image(file.data(), file.size());
    if (image.valid() && build_id_of_image(image) == build_id_) read_function_symbols(image);
}

void SymbolTable::load_separate_symtab(const std::string& path) {
    MappedFile file;
    std::string ignored;
    if (!file.open(path, &ignored)) return;
    ElfImage image(file.data(), file.size());
    if (!image.valid()) return;
    SymbolTable other(store_cache_);
    other.read_symbols(image, SHT_SYMTAB);
    if (other.symbols_.empty()) return;
    symbols_ = std::move(other.symbols_);
    names_ = std::move(other.names_);
    demangled_.clear();
    full_symtab_ = true;
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
        // Sized once: growing by doubling would write each candidate up to twice more, into
        // fresh pages (each a page fault) of a dump that may run at exit.
        candidates.reserve(symbol_count);
        for (size_t s = 0; s < symbol_count; ++s) {
            Elf64_Sym symbol;
            if (!image.read(table.sh_offset + s * sizeof(Elf64_Sym), &symbol)) break;
            unsigned char type = ELF64_ST_TYPE(symbol.st_info);
            if ((type != STT_FUNC && type != STT_GNU_IFUNC) || symbol.st_shndx == SHN_UNDEF ||
                symbol.st_value == 0 || symbol.st_name >= string_table.size())
                continue;
            std::string_view name = string_table.substr(symbol.st_name);
            name = name.substr(0, std::min(name.find('\0'), name.size()));
            // A .symtab of a versioned library names "pthread_create@@GLIBC_2.34"; the version is
            // not part of the function's name (llvm-symbolizer drops it too). No mangled C++
            // name contains '@'.
            name = name.substr(0, std::min(name.find('@'), name.size()));
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

        symbols_.reserve(candidates.size());
        size_t name_bytes = 0;
        for (const Candidate& c : candidates) name_bytes += c.name.size() + 1;
        names_.reserve(name_bytes);
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
    read_deferred_symbols();
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

uint32_t SymbolTable::intern(std::string_view text) {
    auto found = pool_index_.find(text);
    if (found != pool_index_.end()) return found->second;
    uint32_t index = static_cast<uint32_t>(pool_.size());
    pool_.emplace_back(text);
    try {
        pool_index_.emplace(pool_.back(), index);
    } catch (...) {
        pool_.pop_back();
        throw;
    }
    // The string, its hash node and its slot in the deque.
    resolved_bytes_ += text.size() + 1 + 64 + sizeof(std::string);
    return index;
}

void SymbolTable::emit(const Resolved& resolved, std::vector<SourceFrame>* out) const {
    out->resize(resolved.count);
    for (uint32_t i = 0; i < resolved.count; ++i) {
        const CompactFrame& frame = frames_[resolved.first + i];
        SourceFrame& to = (*out)[i];
        to.function.name = pool_[frame.name];
        to.function.system_name = pool_[frame.system_name];
        to.filename = pool_[frame.filename];
        to.line = frame.line;
        to.start_line = frame.start_line;
    }
}

void SymbolTable::emit(const Resolved& resolved, std::vector<StoredFrame>* out) const {
    out->resize(resolved.count);
    for (uint32_t i = 0; i < resolved.count; ++i) {
        const CompactFrame& frame = frames_[resolved.first + i];
        (*out)[i] = {pool_[frame.name], pool_[frame.system_name], pool_[frame.filename],
                     frame.line, frame.start_line};
    }
}

bool SymbolTable::resolve(const Module& module, uintptr_t address, uint64_t link_address,
                          std::vector<SourceFrame>* frames, bool* from_dwarf) {
    frames->clear();
    *from_dwarf = false;
    read_deferred_symbols();
    if (may_open_debug_info()) {
        debug_ = DebugInfo::open(origin_path_, build_id_, search_dir_);
        // Without libdw.so.1 nothing is found either; it is not looked for again in this table.
        if (debug_ == nullptr) debug_missing_ = true;
    }
    if (debug_ != nullptr && !full_symtab_ && !separate_symtab_tried_ &&
        !debug_->separate_file().empty()) {
        separate_symtab_tried_ = true;
        load_separate_symtab(debug_->separate_file());
    }
    std::vector<DebugFrame> debug_frames;
    bool dwarf = debug_ != nullptr && debug_->lookup(link_address, &debug_frames);
    FunctionName symbol;
    bool have_symbol = !symbols_.empty() && lookup(module, address, &symbol);
    if (dwarf) {
        *from_dwarf = true;
        for (DebugFrame& d : debug_frames) {
            SourceFrame frame;
            if (d.linkage_name.empty() && have_symbol) {
                frame.function = symbol;
            } else {
                frame.function.name = demangle(d.linkage_name);
                frame.function.system_name = std::move(d.linkage_name);
            }
            frame.filename = std::move(d.filename);
            frame.line = d.line;
            frame.start_line = d.start_line;
            frames->push_back(std::move(frame));
        }
        // The outermost frame, the function really called, is named from the symbol table
        // wherever it has a symbol, as llvm-symbolizer does: the symbol has the full mangled name
        // (DWARF may hold only "site<3>") and tells a function's .cold part by its name.
        if (have_symbol && !frames->empty()) frames->back().function = std::move(symbol);
        return true;
    }
    if (!have_symbol) return false;
    // The symbol table's name, with the line table's file and line when DWARF has a line but no
    // function for the address (assembly, as in parts of libc).
    SourceFrame frame;
    frame.function = std::move(symbol);
    if (debug_frames.size() == 1) {
        frame.filename = std::move(debug_frames[0].filename);
        frame.line = debug_frames[0].line;
    }
    frames->push_back(std::move(frame));
    return true;
}

namespace {
StoredFrame view_of(const SourceFrame& f) {
    return {f.function.name, f.function.system_name, f.filename, f.line, f.start_line};
}
const StoredFrame& view_of(const StoredFrame& f) {
    return f;
}
}  // namespace

template <typename Frame>
void SymbolTable::remember(uint64_t link_address, const std::vector<Frame>& frames,
                           bool from_dwarf) {
    size_t count = std::min<size_t>(frames.size(), UINT16_MAX);
    Resolved resolved{static_cast<uint32_t>(frames_.size()), static_cast<uint16_t>(count),
                      from_dwarf};
    for (size_t i = 0; i < count; ++i) {
        const StoredFrame& f = view_of(frames[i]);
        frames_.push_back({intern(f.name), intern(f.system_name), intern(f.filename),
                           static_cast<int32_t>(f.line), static_cast<int32_t>(f.start_line)});
    }
    resolved_.emplace(link_address, resolved);
    resolved_bytes_ += 48 + count * sizeof(CompactFrame);
}

const ResolvedStore* SymbolTable::stored() {
    if (store_name_.empty()) return nullptr;
    if (!store_read_) {
        store_read_ = true;
        std::string path = store_cache_->path_of(store_name_);
        std::string ignored;
        if (!path.empty() && store_file_.open(path, &ignored) &&
            store_.open(store_file_.data(), store_file_.size(), build_id_, store_key_))
            store_cache_->mark_used(store_name_);
    }
    return &store_;
}

bool SymbolTable::known(const Module& module, uintptr_t address, std::vector<SourceFrame>* out,
                        bool* from_dwarf) {
    uint64_t link_address;
    out->clear();
    *from_dwarf = false;
    if (!to_link_address(module, address, &link_address)) return true;  // nothing names it
    return known_at(link_address, out, from_dwarf);
}

bool SymbolTable::known_at(uint64_t link_address, std::vector<SourceFrame>* out,
                           bool* from_dwarf) {
    auto found = resolved_.find(link_address);
    if (found != resolved_.end()) {
        emit(found->second, out);
        *from_dwarf = found->second.from_dwarf;
        return true;
    }
    StoredAddress from_store;
    const ResolvedStore* store = stored();
    if (store == nullptr || !store->find(link_address, &from_store)) return false;
    remember(link_address, from_store.frames, from_store.from_dwarf);
    ++stored_answers_;
    emit(resolved_.find(link_address)->second, out);
    *from_dwarf = from_store.from_dwarf;
    return true;
}

bool SymbolTable::symbolize(const Module& module, uintptr_t address,
                            std::vector<SourceFrame>* out, bool* from_dwarf) {
    uint64_t link_address;
    out->clear();
    *from_dwarf = false;
    if (!to_link_address(module, address, &link_address)) return false;
    if (known_at(link_address, out, from_dwarf)) return !out->empty();
    std::vector<SourceFrame> frames;
    resolve(module, address, link_address, &frames, from_dwarf);
    if (frames.size() > UINT16_MAX) frames.resize(UINT16_MAX);
    remember(link_address, frames, *from_dwarf);
    if (debug_ != nullptr) dwarf_read_ = true;
    if ((dwarf_read_ || store_without_dwarf_) && !store_name_.empty()) store_behind_ = true;
    *out = std::move(frames);
    return !out->empty();
}

void SymbolTable::store_resolved() {
    if (!store_behind_) return;
    store_behind_ = false;
    const ResolvedStore* store = stored();
    // What this process used first (age 0), then the old table's other addresses, youngest first
    // (a rewrite ages them by one), up to the bound.
    std::vector<StoredAddress> addresses;
    for (const auto& [link_address, resolved] : resolved_) {
        if (addresses.size() >= kMaxStoredAddresses) break;
        StoredAddress& a = addresses.emplace_back();
        a.link_address = link_address;
        a.from_dwarf = resolved.from_dwarf;
        emit(resolved, &a.frames);
    }
    std::vector<StoredAddress> older;
    for (size_t i = 0; store != nullptr && i < store->size(); ++i) {
        StoredAddress a;
        if (!store->get(i, &a) || resolved_.count(a.link_address) != 0) continue;
        if (a.age < UINT8_MAX) ++a.age;
        older.push_back(std::move(a));
    }
    std::stable_sort(older.begin(), older.end(),
                     [](const StoredAddress& a, const StoredAddress& b) { return a.age < b.age; });
    for (StoredAddress& a : older) {
        if (addresses.size() >= kMaxStoredAddresses) break;
        addresses.push_back(std::move(a));
    }
    std::stable_sort(addresses.begin(), addresses.end(),
                     [](const StoredAddress& a, const StoredAddress& b) {
                         return a.link_address < b.link_address;
                     });
    // A table not written by gprof could repeat an address (each record checks out alone): one
    // copy is kept.
    addresses.erase(std::unique(addresses.begin(), addresses.end(),
                                [](const StoredAddress& a, const StoredAddress& b) {
                                    return a.link_address == b.link_address;
                                }),
                    addresses.end());
    store_cache_->write_file(store_name_, encode_resolved(build_id_, store_key_, addresses));
}

SymbolCache::SymbolCache(size_t max_resolved_bytes, DebugCache* store)
    : max_resolved_bytes_(max_resolved_bytes), store_(store != nullptr ? store : &debug_cache()) {}
SymbolCache::~SymbolCache() = default;

SymbolTable* SymbolCache::table_for(const Module& module) {
    std::string key = module.path;
    key.push_back('\0');
    key += module.build_id;
    auto found = tables_.find(key);
    if (found != tables_.end()) return found->second.get();

    if (tables_.size() >= kMaxCachedTables) {
        tables_.clear();
        resolved_total_ = 0;
    }
    auto table = std::make_unique<SymbolTable>(store_);
    if (module.path == "[vdso]") {
        // The kernel maps the whole vDSO image, section headers included.
        table->load(
            ElfImage(reinterpret_cast<const uint8_t*>(module.start), module.limit - module.start));
    } else if (module.is_file) {
        bool loaded = load_from_file(module.path, module.build_id, module.path, table.get());
        if (!loaded && module.deleted) {
            // The name is gone or names another file now, but the kernel still offers the mapped
            // file itself (where this process is allowed to read it).
            char link[96];
            snprintf(link, sizeof link, "/proc/self/map_files/%lx-%lx",
                     static_cast<unsigned long>(module.start),
                     static_cast<unsigned long>(module.limit));
            load_from_file(link, module.build_id, module.path, table.get());
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

bool SymbolCache::symbolize(const Module& module, uintptr_t address, std::vector<SourceFrame>* out,
                            bool* from_dwarf) noexcept {
    *from_dwarf = false;
    try {
        out->clear();
        std::unique_lock<std::mutex> lock(mutex_);
        SymbolTable* table = table_for(module);
        if (table == nullptr) return false;
        size_t before = table->resolved_bytes();
        bool answered = table->known(module, address, out, from_dwarf);
        resolved_total_ += table->resolved_bytes() - before;
        if (!answered) {
            if (!libdw_tried_ && table->may_open_debug_info()) {
                // libdw is opened (dlopen, once) outside the cache's lock: no call into the loader
                // under a lock of gprof's, where another thread holding the loader's lock could
                // wait on it. A process none of whose modules has DWARF never loads it, nor one
                // whose addresses the stored tables all answer.
                lock.unlock();
                debug_info_library_available();
                lock.lock();
                libdw_tried_ = true;
                table = table_for(module);
                if (table == nullptr) return false;
            }
            before = table->resolved_bytes();
            table->symbolize(module, address, out, from_dwarf);
            resolved_total_ += table->resolved_bytes() - before;
        }
        bool found = !out->empty();
        if (resolved_total_ > max_resolved_bytes_) {
            for (const auto& [key, t] : tables_) t->forget_resolved();
            resolved_total_ = 0;
        }
        return found;
    } catch (...) {
        out->clear();
        *from_dwarf = false;
        return false;
    }
}

void SymbolCache::end_dump() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, table] : tables_) {
        table->release_debug_info();
        try {
            table->store_resolved();
        } catch (...) {  // a table not stored now is resolved again by the next process
        }
    }
}

size_t SymbolCache::resolved_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return resolved_total_;
}

size_t SymbolCache::stored_answers() {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t total = 0;
    for (const auto& [key, table] : tables_) total += table->stored_answers();
    return total;
}

size_t SymbolCache::cached_tables() {
    std::lock_guard<std::mutex> lock(mutex_);
    return tables_.size();
}

}  // namespace gprof::symbolize
