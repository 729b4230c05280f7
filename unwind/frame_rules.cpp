#include "unwind/frame_rules.h"

#include <elf.h>
#include <link.h>

#include <atomic>
#include <cstring>

#include "base/os_memory.h"
#include "base/spin_lock.h"

namespace gprof::unwind {
namespace {

// DWARF register numbers of the x86-64 psABI.
constexpr uint64_t kRbp = 6;
constexpr uint64_t kRsp = 7;
constexpr uint64_t kReturnAddress = 16;

// Pointer encodings (DW_EH_PE_*), as .eh_frame_hdr and the CIE augmentation name them.
constexpr uint8_t kOmit = 0xff;
constexpr uint8_t kFormatMask = 0x0f;
constexpr uint8_t kApplicationMask = 0x70;
constexpr uint8_t kPcRelative = 0x10;
constexpr uint8_t kDataRelative = 0x30;
constexpr uint8_t kDataRelativeSigned4 = 0x3b;

// A cursor over CFI bytes that stops (ok = false) instead of reading past `end`.
struct Reader {
    const uint8_t* p;
    const uint8_t* end;
    bool ok = true;

    bool has(size_t n) {
        if (!ok || static_cast<size_t>(end - p) < n) ok = false;
        return ok;
    }
    template <typename T>
    T fixed() {
        T v{};
        if (!has(sizeof(T))) return v;
        memcpy(&v, p, sizeof(T));
        p += sizeof(T);
        return v;
    }
    uint64_t uleb() {
        uint64_t v = 0;
        for (int shift = 0; has(1); shift += 7) {
            uint8_t b = *p++;
            if (shift < 64) v |= uint64_t{b & 0x7fu} << shift;
            if (!(b & 0x80)) return v;
        }
        return 0;
    }
    int64_t sleb() {
        uint64_t v = 0;
        int shift = 0;
        for (; has(1);) {
            uint8_t b = *p++;
            if (shift < 64) v |= uint64_t{b & 0x7fu} << shift;
            shift += 7;
            if (!(b & 0x80)) {
                if (shift < 64 && (b & 0x40)) v |= ~uint64_t{0} << shift;
                return static_cast<int64_t>(v);
            }
        }
        return 0;
    }
    void skip(uint64_t n) {
        if (has(n)) p += n;
    }
    // A pointer in `encoding`, relative to the field's own address or to `data_base`. Indirect
    // pointers (0x80) are read as their address: only the personality routine uses them, and it
    // is skipped.
    uintptr_t pointer(uint8_t encoding, uintptr_t data_base) {
        const uint8_t* field = p;
        uint64_t v = 0;
        switch (encoding & kFormatMask) {
            case 0x00:
                v = fixed<uint64_t>();
                break;
            case 0x01:
                v = uleb();
                break;
            case 0x02:
                v = fixed<uint16_t>();
                break;
            case 0x03:
                v = fixed<uint32_t>();
                break;
            case 0x04:
                v = fixed<uint64_t>();
                break;
            case 0x09:
                v = static_cast<uint64_t>(sleb());
                break;
            case 0x0a:
                v = static_cast<uint64_t>(int64_t{fixed<int16_t>()});
                break;
            case 0x0b:
                v = static_cast<uint64_t>(int64_t{fixed<int32_t>()});
                break;
            case 0x0c:
                v = fixed<uint64_t>();
                break;
            default:
                ok = false;
                return 0;
        }
        switch (encoding & kApplicationMask) {
            case 0x00:
                break;
            case kPcRelative:
                v += reinterpret_cast<uintptr_t>(field);
                break;
            case kDataRelative:
                v += data_base;
                break;
            default:
                ok = false;
                return 0;
        }
        return v;
    }
};

// What the CFA program says about the three locations a walk needs.
struct RegisterRule {
    enum Kind : uint8_t { kUnchanged, kAtOffset, kUndefined, kOther } kind = kUnchanged;
    int64_t offset = 0;  // kAtOffset: saved at CFA + offset
};
struct CfiState {
    uint64_t cfa_register = kRsp;
    int64_t cfa_offset = 8;
    bool cfa_by_expression = false;
    RegisterRule rbp, return_address;
};

struct Cie {
    uint64_t code_align = 1;
    int64_t data_align = -8;
    uint8_t fde_encoding = 0;
    bool augmented = false;  // 'z': FDEs carry an augmentation length
    bool signal_frame = false;
    const uint8_t* instructions = nullptr;
    const uint8_t* end = nullptr;
};

bool parse_cie(const uint8_t* cie, Cie* out) {
    Reader r{cie, cie + 8};
    uint32_t length = r.fixed<uint32_t>();
    if (length == 0 || length == 0xffffffffu) return false;  // 64-bit DWARF: not on x86-64 Linux
    r.end = cie + 4 + length;
    if (r.fixed<uint32_t>() != 0) return false;  // not a CIE
    uint8_t version = r.fixed<uint8_t>();
    if (version != 1 && version != 3) return false;
    const char* augmentation = reinterpret_cast<const char*>(r.p);
    size_t augmentation_length = strnlen(augmentation, static_cast<size_t>(r.end - r.p));
    r.skip(augmentation_length + 1);
    out->code_align = r.uleb();
    out->data_align = r.sleb();
    uint64_t ra_register = version == 1 ? r.fixed<uint8_t>() : r.uleb();
    if (!r.ok || ra_register != kReturnAddress) return false;
    if (augmentation[0] == 'z') {
        out->augmented = true;
        uint64_t data_length = r.uleb();
        if (!r.has(data_length)) return false;
        Reader data{r.p, r.p + data_length};
        for (size_t i = 1; i < augmentation_length && data.ok; ++i) {
            switch (augmentation[i]) {
                case 'R':
                    out->fde_encoding = data.fixed<uint8_t>();
                    break;
                case 'L':
                    data.fixed<uint8_t>();
                    break;
                case 'P':
                    data.pointer(data.fixed<uint8_t>(), 0);
                    break;
                case 'S':
                    out->signal_frame = true;
                    break;
                default:
                    return false;  // unknown: its data cannot be skipped safely
            }
        }
        if (!data.ok) return false;
        r.skip(data_length);
    } else if (augmentation_length != 0) {
        return false;  // "eh" and other pre-'z' forms
    }
    out->instructions = r.p;
    out->end = r.end;
    return r.ok;
}

// Runs CFA instructions from `r` until the location passes `address`. False on an instruction it
// does not know (its operands could not be skipped).
bool execute(Reader r, const Cie& cie, uintptr_t address, uintptr_t* location, CfiState* state,
             const CfiState& initial) {
    constexpr int kMaxRemembered = 8;  // compilers nest remember_state one or two deep
    CfiState remembered[kMaxRemembered];
    int depth = 0;
    auto rule_of = [&](uint64_t reg) -> RegisterRule* {
        if (reg == kRbp) return &state->rbp;
        if (reg == kReturnAddress) return &state->return_address;
        return nullptr;
    };
    auto set_offset = [&](uint64_t reg, int64_t offset) {
        if (RegisterRule* rule = rule_of(reg)) *rule = {RegisterRule::kAtOffset, offset};
    };
    auto set_kind = [&](uint64_t reg, RegisterRule::Kind kind) {
        if (RegisterRule* rule = rule_of(reg)) *rule = {kind, 0};
    };
    auto restore = [&](uint64_t reg) {
        if (reg == kRbp) state->rbp = initial.rbp;
        if (reg == kReturnAddress) state->return_address = initial.return_address;
    };
    auto advance = [&](uint64_t delta) {
        *location += delta * cie.code_align;
        return *location <= address;
    };
    const int64_t data_align = cie.data_align;
    while (r.p < r.end && r.ok) {
        uint8_t op = *r.p++;
        uint8_t low = op & 0x3f;
        switch (op & 0xc0) {
            case 0x40:
                if (!advance(low)) return true;
                continue;
            case 0x80:
                set_offset(low, static_cast<int64_t>(r.uleb()) * data_align);
                continue;
            case 0xc0:
                restore(low);
                continue;
            default:
                break;
        }
        switch (op) {
            case 0x00:
                break;    // nop
            case 0x01: {  // set_loc
                uintptr_t to = r.pointer(cie.fde_encoding, 0);
                if (!r.ok) return false;
                *location = to;
                if (to > address) return true;
                break;
            }
            case 0x02:
                if (!advance(r.fixed<uint8_t>())) return r.ok;
                break;
            case 0x03:
                if (!advance(r.fixed<uint16_t>())) return r.ok;
                break;
            case 0x04:
                if (!advance(r.fixed<uint32_t>())) return r.ok;
                break;
            case 0x05: {  // offset_extended
                uint64_t reg = r.uleb();
                set_offset(reg, static_cast<int64_t>(r.uleb()) * data_align);
                break;
            }
            case 0x06:
                restore(r.uleb());
                break;  // restore_extended
            case 0x07:
                set_kind(r.uleb(), RegisterRule::kUndefined);
                break;  // undefined
            case 0x08:
                set_kind(r.uleb(), RegisterRule::kUnchanged);
                break;    // same_value
            case 0x09: {  // register
                uint64_t reg = r.uleb();
                r.uleb();
                set_kind(reg, RegisterRule::kOther);
                break;
            }
            case 0x0a:  // remember_state: the CFA with the registers, as GCC and libunwind do
                if (depth == kMaxRemembered) return false;
                remembered[depth++] = *state;
                break;
            case 0x0b:
                if (depth == 0) return false;
                *state = remembered[--depth];
                break;
            case 0x0c:  // def_cfa
                state->cfa_register = r.uleb();
                state->cfa_offset = static_cast<int64_t>(r.uleb());
                state->cfa_by_expression = false;
                break;
            case 0x0d:
                state->cfa_register = r.uleb();
                state->cfa_by_expression = false;
                break;
            case 0x0e:
                state->cfa_offset = static_cast<int64_t>(r.uleb());
                break;
            case 0x0f:  // def_cfa_expression
                r.skip(r.uleb());
                state->cfa_by_expression = true;
                break;
            case 0x10:    // expression
            case 0x16: {  // val_expression
                uint64_t reg = r.uleb();
                r.skip(r.uleb());
                set_kind(reg, RegisterRule::kOther);
                break;
            }
            case 0x11: {  // offset_extended_sf
                uint64_t reg = r.uleb();
                set_offset(reg, r.sleb() * data_align);
                break;
            }
            case 0x12:  // def_cfa_sf
                state->cfa_register = r.uleb();
                state->cfa_offset = r.sleb() * data_align;
                state->cfa_by_expression = false;
                break;
            case 0x13:
                state->cfa_offset = r.sleb() * data_align;
                break;
            case 0x14: {  // val_offset
                uint64_t reg = r.uleb();
                r.uleb();
                set_kind(reg, RegisterRule::kOther);
                break;
            }
            case 0x15: {  // val_offset_sf
                uint64_t reg = r.uleb();
                r.sleb();
                set_kind(reg, RegisterRule::kOther);
                break;
            }
            case 0x2e:
                r.uleb();
                break;    // GNU_args_size: no bearing on the CFA
            case 0x2f: {  // GNU_negative_offset_extended
                uint64_t reg = r.uleb();
                set_offset(reg, -static_cast<int64_t>(r.uleb()) * data_align);
                break;
            }
            default:
                return false;
        }
    }
    return r.ok;
}

bool fits_int32(int64_t v) {
    return v >= INT32_MIN && v <= INT32_MAX;
}

}  // namespace

bool parse_frame_rule(const uint8_t* hdr, uintptr_t address, FrameRule* rule) {
    // .eh_frame_hdr: version 1, three encodings, the .eh_frame pointer, the FDE count, then the
    // sorted (start, FDE) table that the linker writes as 4-byte offsets from the header.
    if (hdr == nullptr || hdr[0] != 1 || hdr[3] != kDataRelativeSigned4) return false;
    const auto base = reinterpret_cast<uintptr_t>(hdr);
    Reader r{hdr + 4, hdr + 4 + 16};
    r.pointer(hdr[1], base);
    if (hdr[2] == kOmit) return false;
    uint64_t count = r.pointer(hdr[2], base);
    if (!r.ok || count == 0) return false;
    const auto* table = reinterpret_cast<const int32_t*>(r.p);
    // The last entry whose start is at or below `address`.
    uint64_t lo = 0, hi = count;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (base + static_cast<uintptr_t>(static_cast<intptr_t>(table[2 * mid])) <= address)
            lo = mid;
        else
            hi = mid;
    }
    if (base + static_cast<uintptr_t>(static_cast<intptr_t>(table[2 * lo])) > address) return false;
    const uint8_t* fde = hdr + table[2 * lo + 1];

    Reader f{fde, fde + 8};
    uint32_t length = f.fixed<uint32_t>();
    if (length == 0 || length == 0xffffffffu) return false;
    f.end = fde + 4 + length;
    const uint8_t* cie_field = f.p;
    uint32_t cie_offset = f.fixed<uint32_t>();
    if (cie_offset == 0) return false;  // a CIE, not an FDE
    Cie cie;
    if (!parse_cie(cie_field - cie_offset, &cie) || cie.signal_frame) return false;
    uintptr_t start = f.pointer(cie.fde_encoding, 0);
    uintptr_t range = f.pointer(cie.fde_encoding & kFormatMask, 0);
    if (!f.ok || address < start || address - start >= range) return false;
    if (cie.augmented) f.skip(f.uleb());
    if (!f.ok) return false;

    CfiState state;
    uintptr_t location = start;
    if (!execute(Reader{cie.instructions, cie.end}, cie, address, &location, &state, state))
        return false;
    const CfiState initial = state;
    location = start;
    if (!execute(f, cie, address, &location, &state, initial)) return false;

    if (state.cfa_by_expression || (state.cfa_register != kRsp && state.cfa_register != kRbp) ||
        !fits_int32(state.cfa_offset))
        return false;
    FrameRule out;
    out.cfa_is_rbp = state.cfa_register == kRbp;
    out.cfa_offset = static_cast<int32_t>(state.cfa_offset);
    if (state.return_address.kind == RegisterRule::kUndefined) {
        out.outermost = true;
    } else if (state.return_address.kind != RegisterRule::kAtOffset ||
               state.return_address.offset != -8) {
        return false;
    }
    switch (state.rbp.kind) {
        case RegisterRule::kUnchanged:
            break;
        case RegisterRule::kAtOffset:
            if (!fits_int32(state.rbp.offset)) return false;
            out.rbp_saved = true;
            out.rbp_offset = static_cast<int32_t>(state.rbp.offset);
            break;
        default:
            return false;
    }
    *rule = out;
    return true;
}

namespace {

struct ModuleSearch {
    uintptr_t address;
    const uint8_t* eh_frame_hdr = nullptr;
};

int find_module(struct dl_phdr_info* info, size_t, void* data) {
    auto* search = static_cast<ModuleSearch*>(data);
    bool inside = false;
    const uint8_t* hdr = nullptr;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph.p_vaddr;
        if (ph.p_type == PT_LOAD && search->address >= start &&
            search->address - start < ph.p_memsz)
            inside = true;
        if (ph.p_type == PT_GNU_EH_FRAME) hdr = reinterpret_cast<const uint8_t*>(start);
    }
    if (!inside) return 0;
    search->eh_frame_hdr = hdr;
    return 1;
}

}  // namespace

bool find_frame_rule(uintptr_t address, FrameRule* rule) {
    ModuleSearch search{address};
    dl_iterate_phdr(find_module, &search);
    return search.eh_frame_hdr != nullptr && parse_frame_rule(search.eh_frame_hdr, address, rule);
}

namespace {

struct Slot {
    std::atomic<uint64_t> key;    // the address; 0: empty
    std::atomic<uint64_t> value;  // a PackedRule
};
struct Table {
    size_t mask;  // slots - 1
    Slot slots[];
};

constexpr int kMaxProbes = 32;
constexpr size_t kMaxRuleSlots = size_t{1} << 20;  // 16 MiB
constinit base::SpinLock g_cache_lock;
// Replaced by one twice the size when half full. A replaced table stays mapped (a look-up may still
// be reading it; together they are smaller than the last).
constinit std::atomic<Table*> g_table{nullptr};
constinit size_t g_used = 0;  // under g_cache_lock
// Odd while forget_frame_rules() empties the table (a sequence lock: a look-up that sees it change
// does not trust what it read).
constinit std::atomic<uint64_t> g_generation{0};

size_t home_of(uintptr_t address, size_t mask) {
    return static_cast<size_t>((address * 0x9E3779B97F4A7C15ULL) >> 40) & mask;
}

// The table's answer, or false when it has none for `address` (or changed while it was read).
bool read_cache(uintptr_t address, PackedRule* out) {
    const Table* table = g_table.load(std::memory_order_acquire);
    if (table == nullptr) return false;
    uint64_t generation = g_generation.load(std::memory_order_acquire);
    if (generation & 1) return false;
    size_t home = home_of(address, table->mask);
    for (int i = 0; i < kMaxProbes; ++i) {
        const Slot& s = table->slots[(home + static_cast<size_t>(i)) & table->mask];
        uint64_t key = s.key.load(std::memory_order_acquire);
        if (key == 0) return false;
        if (key != address) continue;
        // Acquire: the generation is read again after the value. Every store to a slot is a
        // release, so a value written by an emptying (or after one) brings its generation with it.
        uint64_t v = s.value.load(std::memory_order_acquire);
        if (g_generation.load(std::memory_order_relaxed) != generation) return false;
        *out = PackedRule(v);
        return true;
    }
    return false;
}

Table* new_table(size_t slots) {
    auto* table = static_cast<Table*>(base::os_reserve(sizeof(Table) + sizeof(Slot) * slots));
    if (table == nullptr) return nullptr;
    base::os_prefault(table, sizeof(Table) + sizeof(Slot) * slots);
    table->mask = slots - 1;
    return table;
}

// Under g_cache_lock. False when the entry has no room (the table could not grow).
bool insert_locked(Table* table, uintptr_t address, uint64_t value) {
    size_t home = home_of(address, table->mask);
    for (int i = 0; i < kMaxProbes; ++i) {
        Slot& s = table->slots[(home + static_cast<size_t>(i)) & table->mask];
        uint64_t key = s.key.load(std::memory_order_relaxed);
        if (key == address) return true;  // another thread's answer, the same
        if (key != 0) continue;
        s.value.store(value, std::memory_order_release);
        s.key.store(address, std::memory_order_release);  // publishes the value
        ++g_used;
        return true;
    }
    return false;
}

// Under g_cache_lock: the table, grown first if half full; null when there is none to write to.
Table* table_with_room_locked() {
    Table* table = g_table.load(std::memory_order_relaxed);
    if (table == nullptr) {
        table = new_table(kRuleSlots);
        g_table.store(table, std::memory_order_release);
        return table;
    }
    if (g_used < (table->mask + 1) / 2) return table;
    size_t slots = (table->mask + 1) * 2;
    Table* bigger = slots <= kMaxRuleSlots ? new_table(slots) : nullptr;
    if (bigger == nullptr) return nullptr;
    g_used = 0;
    for (size_t i = 0; i <= table->mask; ++i) {
        uint64_t key = table->slots[i].key.load(std::memory_order_relaxed);
        if (key != 0)
            insert_locked(bigger, key, table->slots[i].value.load(std::memory_order_relaxed));
    }
    g_table.store(bigger, std::memory_order_release);
    return bigger;
}

}  // namespace

PackedRule cached_frame_rule(uintptr_t address) {
    PackedRule packed;
    if (read_cache(address, &packed)) return packed;
    FrameRule rule;
    if (find_frame_rule(address, &rule)) {
        // A rule that does not fit the packed form counts as none: libunwind walks its stacks.
        if (!PackedRule::fits(rule)) return PackedRule();
        packed = PackedRule::of(rule);
    }
    base::SpinGuard guard(g_cache_lock);
    Table* table = table_with_room_locked();
    // No room to remember it (16 MiB of rules, or no memory): none, so that the walker hands such
    // stacks to libunwind rather than parse call frame information at every frame.
    if (table == nullptr || !insert_locked(table, address, packed.bits())) return PackedRule();
    return packed;
}

void forget_frame_rules() {
    base::SpinGuard guard(g_cache_lock);
    Table* table = g_table.load(std::memory_order_relaxed);
    g_generation.fetch_add(1, std::memory_order_acq_rel);
    if (table != nullptr) {
        for (size_t i = 0; i <= table->mask; ++i) {
            table->slots[i].key.store(0, std::memory_order_release);
            table->slots[i].value.store(0, std::memory_order_release);
        }
    }
    g_used = 0;
    g_generation.fetch_add(1, std::memory_order_release);
}

void lock_frame_rules() {
    g_cache_lock.lock();
}
void unlock_frame_rules() {
    g_cache_lock.unlock();
}

uint64_t frame_rules_generation() {
    return g_generation.load(std::memory_order_acquire);
}

size_t cached_frame_rules() {
    base::SpinGuard guard(g_cache_lock);
    return g_used;
}

namespace {

struct SignalModule {
    uintptr_t lo, hi;  // an executable segment
    const uint8_t* eh_frame_hdr;
};
struct SignalModules {
    size_t bytes;  // of this mapping
    size_t count;
    SignalModule modules[];
};

// The published list, and how many handlers are reading it. A list is replaced or withdrawn by
// storing the new pointer first and then waiting for the readers to leave, so the old one can be
// unmapped.
constinit std::atomic<SignalModules*> g_signal_modules{nullptr};
constinit std::atomic<int> g_signal_readers{0};
constinit base::SpinLock g_publish_lock;  // one publisher at a time

void wait_for_signal_readers() {
    while (g_signal_readers.load(std::memory_order_seq_cst) != 0) sched_yield();
}

void replace_signal_modules(SignalModules* next) {
    SignalModules* old = g_signal_modules.exchange(next, std::memory_order_seq_cst);
    if (old == nullptr) return;
    wait_for_signal_readers();
    base::os_release(old, old->bytes);
}

}  // namespace

bool signal_frame_rule(uintptr_t address, PackedRule* out, bool* unknown_module) {
    *unknown_module = false;
    if (read_cache(address, out)) return out->has_rule();
    g_signal_readers.fetch_add(1, std::memory_order_seq_cst);
    const SignalModules* list = g_signal_modules.load(std::memory_order_seq_cst);
    bool found = false;
    if (list == nullptr) {
        *unknown_module = true;
    } else {
        const SignalModule* module = nullptr;
        for (size_t i = 0; i < list->count; ++i) {
            if (address >= list->modules[i].lo && address < list->modules[i].hi) {
                module = &list->modules[i];
                break;
            }
        }
        FrameRule rule;
        if (module == nullptr) {
            *unknown_module = true;
        } else if (module->eh_frame_hdr != nullptr &&
                   parse_frame_rule(module->eh_frame_hdr, address, &rule) &&
                   PackedRule::fits(rule)) {
            *out = PackedRule::of(rule);
            found = true;
        }
    }
    g_signal_readers.fetch_sub(1, std::memory_order_seq_cst);
    return found;
}

void publish_signal_modules() {
    struct Collect {
        SignalModule found[512];
        size_t count = 0;
    };
    auto* collect = static_cast<Collect*>(base::os_reserve(sizeof(Collect)));
    if (collect == nullptr) return;
    dl_iterate_phdr(
        [](struct dl_phdr_info* info, size_t, void* data) {
            auto* c = static_cast<Collect*>(data);
            const uint8_t* hdr = nullptr;
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr)& ph = info->dlpi_phdr[i];
                if (ph.p_type == PT_GNU_EH_FRAME)
                    hdr = reinterpret_cast<const uint8_t*>(info->dlpi_addr + ph.p_vaddr);
            }
            for (int i = 0; i < info->dlpi_phnum && c->count < 512; ++i) {
                const ElfW(Phdr)& ph = info->dlpi_phdr[i];
                if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
                    c->found[c->count++] = {info->dlpi_addr + ph.p_vaddr,
                                            info->dlpi_addr + ph.p_vaddr + ph.p_memsz, hdr};
            }
            return 0;
        },
        collect);
    size_t bytes = sizeof(SignalModules) + sizeof(SignalModule) * collect->count;
    auto* list = static_cast<SignalModules*>(base::os_reserve(bytes));
    if (list != nullptr) {
        list->bytes = bytes;
        list->count = collect->count;
        memcpy(list->modules, collect->found, sizeof(SignalModule) * collect->count);
        base::SpinGuard guard(g_publish_lock);
        replace_signal_modules(list);
    }
    base::os_release(collect, sizeof(Collect));
}

void retire_signal_modules() {
    if (g_signal_modules.load(std::memory_order_acquire) == nullptr) return;
    base::SpinGuard guard(g_publish_lock);
    replace_signal_modules(nullptr);
}

void reset_signal_modules_after_fork() {
    g_signal_readers.store(0, std::memory_order_relaxed);
    g_publish_lock.unlock();  // a publisher in another thread of the parent is gone
}

}  // namespace gprof::unwind
