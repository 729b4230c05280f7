// Builds one pprof profile from stacks and values.
//
// Like Go's runtime/pprof profileBuilder: strings, locations (by address), functions (by name,
// system name, file and start line) and mappings are each emitted once and referred to by index
// or id. Locations get their function names, files, lines and inlined frames from a SymbolCache
// and their mapping from a ModuleSnapshot taken for this dump; either may be absent (then no
// names, or no mappings).
//
// Runs inside the host program (gprof's dumper thread, HTTP server): no method throws. A failure
// (out of memory) is remembered; build() then reports it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "symbolize/modules.h"
#include "pprof/profile_message.h"
#include "symbolize/symbols.h"

namespace gprof::pprof {

struct ValueType {
    std::string_view type;  // e.g. "alloc_space"
    std::string_view unit;  // e.g. "bytes"
};

struct StringLabel {
    std::string_view key;
    std::string_view value;
};

struct NumericLabel {
    std::string_view key;
    int64_t value = 0;
    std::string_view unit;  // "" for none (pprof then takes the key as the unit, e.g. "bytes")
};

struct SampleLabels {
    std::span<const StringLabel> strings;
    std::span<const NumericLabel> numbers;
};

class ProfileBuilder {
  public:
    // sample_types: what each value of a sample means, in order. modules and symbols may be null;
    // both must outlive the builder, and modules must not change while it lives.
    ProfileBuilder(std::span<const ValueType> sample_types, ValueType period_type, int64_t period,
                   const symbolize::ModuleSnapshot* modules,
                   symbolize::SymbolCache* symbols) noexcept;

    void set_time_nanos(int64_t nanos) { profile_.time_nanos = nanos; }
    void set_time_now();  // time_nanos = the wall clock now
    void set_duration_nanos(int64_t nanos) { profile_.duration_nanos = nanos; }
    // The type (e.g. "alloc_space") readers show by default; unset means the last sample type.
    void set_default_sample_type(std::string_view type) noexcept;
    void add_comment(std::string_view text) noexcept;

    // Adds one sample. stack holds depth return addresses, leaf first, as an unwinder captures them
    // (the caller passes the interrupted instruction's address + 1 for a signal-interrupted leaf,
    // so every frame is a return address). Each is stored as address - 1, inside the call
    // instruction, so it resolves to the call's line and inline scope, as pprof expects of a
    // caller frame. Zero entries are skipped. values must hold one value per sample type;
    // otherwise the sample is dropped and false returned.
    bool add_sample(const uintptr_t* stack, size_t depth, const int64_t* values, size_t value_count,
                    const SampleLabels& labels = {}) noexcept;

    // Adds one sample whose stack is a single pseudo-frame, a function named `function` with no
    // address or mapping (Go's runtime._LostSIGPROFDuringAtomic64): samples known to exist whose
    // stack was lost.
    bool add_named_sample(std::string_view function, const int64_t* values, size_t value_count,
                          const SampleLabels& labels = {}) noexcept;

    // Makes room for `samples` more samples of `frames` frames in all, each with value_count
    // values and label_count labels, so that adding them writes each byte once (an estimate
    // from above: room not used is never written, so it costs no memory).
    void reserve_samples(size_t samples, size_t frames, size_t value_count,
                         size_t label_count) noexcept;

    // Appends the encoded (uncompressed) profile to *out. False, with error(), if the builder or
    // the encoding ran out of memory. May be called again after more samples are added.
    bool build(std::string* out) noexcept;
    // The same, copying error() into *error on failure.
    bool build(std::string* out, std::string* error) noexcept;

    const std::string& error() const { return error_; }
    size_t dropped_samples() const { return dropped_samples_; }

  private:
    struct FunctionKey {
        int64_t name, system_name, filename, start_line;
        bool operator==(const FunctionKey&) const = default;
    };
    struct FunctionKeyHash {
        size_t operator()(const FunctionKey& key) const;
    };
    static constexpr uint32_t kNoModule = UINT32_MAX;

    int64_t intern(std::string_view text);
    uint64_t location_for(uintptr_t return_address);
    uint64_t named_location(std::string_view function);
    void add_encoded_sample(const int64_t* values, size_t value_count, const SampleLabels& labels);
    uint64_t function_for(const symbolize::SourceFrame& frame);
    void emit_mappings();
    void fail(const char* what) noexcept;
    // Fails the builder, error() "stopped", if its thread's work was asked to stop
    // (base/stop_scope.h).
    bool stop_asked() noexcept;

    const symbolize::ModuleSnapshot* modules_;
    symbolize::SymbolCache* symbols_;
    ProfileMessage profile_;
    size_t sample_type_count_ = 0;

    // string -> index in profile_.string_table, whose entries view these keys (node-based, so
    // they never move).
    std::unordered_map<std::string, int64_t> string_index_;
    std::unordered_map<uint64_t, uint64_t> location_by_address_;  // address -> location id
    std::unordered_map<std::string, uint64_t> named_locations_;    // add_named_sample's
    std::vector<uint32_t> location_module_;  // per location: module index, or kNoModule
    std::unordered_map<FunctionKey, uint64_t, FunctionKeyHash> function_by_key_;
    std::vector<uint8_t> module_used_;        // per module index
    // Per module index: what its locations got (kHas* bits), for the mapping's has_* flags.
    std::vector<uint8_t> module_has_;
    static constexpr uint8_t kHasFunctions = 1, kHasFilenames = 2, kHasLineNumbers = 4,
                             kHasInlineFrames = 8;
    std::vector<symbolize::SourceFrame> frames_;  // scratch for location_for
    // The samples, each encoded when added (ProfileMessage::encoded_samples), and the scratch
    // add_sample fills for each.
    std::string encoded_samples_;
    std::vector<uint64_t> sample_locations_;
    std::vector<LabelMessage> sample_labels_;
    std::vector<uint32_t> module_first_use_;  // module indexes in order of first use

    bool failed_ = false;
    std::string error_;
    size_t dropped_samples_ = 0;
};

}  // namespace gprof::pprof
