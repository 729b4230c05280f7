// How to step from an x86-64 frame to its caller's, read from the loaded modules' DWARF call frame
// information (.eh_frame through .eh_frame_hdr, what every Debian binary has, frame pointers or
// not), for the walker in unwind/fast_walk.h.
//
// Only the rules of ordinary code are kept, the ones libunwind's own fast trace keeps too: the
// canonical frame address (CFA) is rsp or rbp plus a constant, the return address is at CFA - 8,
// and rbp is either unchanged or saved at a constant offset from the CFA. Anything else (a signal
// trampoline, a CFA computed by a DWARF expression as in PLT stubs, a return address in a
// register) has no rule here, and the walker hands the whole stack to libunwind.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gprof::unwind {

struct FrameRule {
    int32_t cfa_offset = 0;  // CFA = (cfa_is_rbp ? rbp : rsp) + cfa_offset
    int32_t rbp_offset = 0;  // if rbp_saved: the caller's rbp is at CFA + rbp_offset
    bool cfa_is_rbp = false;
    bool rbp_saved = false;
    bool outermost = false;  // the return address is undefined: the stack ends here (_start,
                             // clone3): no caller
};

// A FrameRule in one word, as the caches keep it (a whole struct copied through memory had its
// fields read back before the copy landed: a store-forwarding stall in every frame walked). 0 is
// "no rule".
class PackedRule {
  public:
    PackedRule() = default;
    explicit PackedRule(uint64_t bits) : bits_(bits) {}
    static PackedRule of(const FrameRule& r) {
        return PackedRule(kHasRule | (r.cfa_is_rbp ? kCfaIsRbp : 0) |
                          (r.rbp_saved ? kRbpSaved : 0) | (r.outermost ? kOutermost : 0) |
                          (uint64_t{static_cast<uint16_t>(r.rbp_offset)} << 32) |
                          static_cast<uint32_t>(r.cfa_offset));
    }
    // Whether `r` survives packing: its rbp offset fits 16 bits (all seen in practice do).
    static bool fits(const FrameRule& r) {
        return static_cast<int16_t>(r.rbp_offset) == r.rbp_offset;
    }

    uint64_t bits() const { return bits_; }
    bool has_rule() const { return bits_ & kHasRule; }
    bool cfa_is_rbp() const { return bits_ & kCfaIsRbp; }
    bool rbp_saved() const { return bits_ & kRbpSaved; }
    bool outermost() const { return bits_ & kOutermost; }
    int32_t cfa_offset() const { return static_cast<int32_t>(static_cast<uint32_t>(bits_)); }
    int32_t rbp_offset() const { return static_cast<int16_t>(static_cast<uint16_t>(bits_ >> 32)); }

  private:
    static constexpr uint64_t kHasRule = uint64_t{1} << 62;
    static constexpr uint64_t kCfaIsRbp = uint64_t{1} << 61;
    static constexpr uint64_t kRbpSaved = uint64_t{1} << 60;
    static constexpr uint64_t kOutermost = uint64_t{1} << 59;
    uint64_t bits_ = 0;
};

// The rule for the instruction at `address` (a return address minus one, or an interrupted
// instruction) inside a module whose .eh_frame_hdr is loaded at `eh_frame_hdr`. False when there
// is no rule for it, or not one of the kinds above. Pure: reads only the module's mapped sections.
bool parse_frame_rule(const uint8_t* eh_frame_hdr, uintptr_t address, FrameRule* rule);

// The rule for `address` in whatever module of the process holds it: parse_frame_rule over the
// module that dl_iterate_phdr finds. Slow (microseconds): FrameRuleCache keeps the answers.
bool find_frame_rule(uintptr_t address, FrameRule* rule);

// The answers of find_frame_rule, kept for every thread: an open-addressing table of address ->
// rule (kRuleSlots entries, 256 KiB, mapped at the first; twice the size whenever half full, up
// to 16 MiB), read without a lock (an entry is published whole, by a release store of its key, and
// never changes until the table is emptied), written under a spin lock. The rule, or one without
// has_rule() when `address` has none (remembered too) or the table is full (the walker then gives
// the stack to libunwind).
constexpr size_t kRuleSlots = size_t{1} << 14;
PackedRule cached_frame_rule(uintptr_t address);

// Empties the table: called after a library is unloaded, as its addresses may later hold another
// library's code. Each emptying advances the generation (a look-up that overlaps one finds
// nothing and asks find_frame_rule), so what was learnt before it can be told apart.
void forget_frame_rules();
uint64_t frame_rules_generation();
// fork(): the table's lock, taken before and released after it in both processes.
void lock_frame_rules();
void unlock_frame_rules();
size_t cached_frame_rules();

// Rules inside a signal handler that may have interrupted anything, the loader's lock or this
// table's included: the table's answer when it has one, else the rule read from the call frame
// information of the module that holds `address`, found in a list of modules published
// beforehand (publish_signal_modules) rather than with dl_iterate_phdr. Learns nothing: the
// caller has cached_frame_rule() learn the addresses later, outside the handler. False when
// neither knows a rule; *unknown_module then says the module list lacks the address (a library
// loaded since it was published).
bool signal_frame_rule(uintptr_t address, PackedRule* out, bool* unknown_module);
// The loaded modules' executable ranges and call frame information, for signal_frame_rule. Not
// async-signal-safe.
void publish_signal_modules();
// Before a library is unloaded: the list is withdrawn, and in-flight readers are waited for, so
// that no handler reads an unmapped module. publish_signal_modules() brings it back.
void retire_signal_modules();
// In a child after fork: no reader can be in flight there.
void reset_signal_modules_after_fork();

}  // namespace gprof::unwind
