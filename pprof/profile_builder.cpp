#include "pprof/profile_builder.h"

#include <time.h>

#include <new>

#include "base/notes.h"
#include "base/stop_scope.h"

namespace gprof::pprof {

size_t ProfileBuilder::FunctionKeyHash::operator()(const FunctionKey& key) const {
    // The fields are small string indexes and line numbers; mixing them with odd multipliers
    // spreads them well enough for a hash table.
    uint64_t h = static_cast<uint64_t>(key.name) * 0x9e3779b97f4a7c15ull;
    h ^= static_cast<uint64_t>(key.system_name) * 0xc2b2ae3d27d4eb4full + (h >> 29);
    h ^= static_cast<uint64_t>(key.filename) * 0x165667b19e3779f9ull + (h >> 31);
    h ^= static_cast<uint64_t>(key.start_line) * 0x27d4eb2f165667c5ull + (h >> 27);
    return static_cast<size_t>(h);
}

ProfileBuilder::ProfileBuilder(std::span<const ValueType> sample_types, ValueType period_type,
                               int64_t period, const symbolize::ModuleSnapshot* modules,
                               symbolize::SymbolCache* symbols) noexcept
    : modules_(modules), symbols_(symbols), sample_type_count_(sample_types.size()) {
    try {
        intern("");  // pprof requires string_table[0] == ""
        for (const ValueType& type : sample_types) {
            profile_.sample_type.push_back({intern(type.type), intern(type.unit)});
        }
        profile_.period_type = {intern(period_type.type), intern(period_type.unit)};
        profile_.period = period;
        if (modules_ != nullptr) {
            size_t count = modules_->modules().size();
            module_used_.assign(count, 0);
            module_has_.assign(count, 0);
        }
    } catch (...) {
        fail("out of memory while starting a profile");
    }
}

void ProfileBuilder::set_time_now() {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    profile_.time_nanos = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

bool ProfileBuilder::stop_asked() noexcept {
    if (!failed_ && base::StopScope::stopped()) fail("stopped");
    return failed_;
}

void ProfileBuilder::fail(const char* what) noexcept {
    failed_ = true;
    try {
        error_ = what;
    } catch (...) {
    }
}

int64_t ProfileBuilder::intern(std::string_view text) {
    auto [entry, inserted] =
        string_index_.try_emplace(std::string(text), static_cast<int64_t>(string_index_.size()));
    if (inserted) {
        try {
            profile_.string_table.push_back(entry->first);
        } catch (...) {
            string_index_.erase(entry);  // keep the table and the index in step
            throw;
        }
    }
    return entry->second;
}

void ProfileBuilder::set_default_sample_type(std::string_view type) noexcept {
    if (failed_) return;
    try {
        profile_.default_sample_type = intern(type);
    } catch (...) {
        fail("out of memory while building a profile");
    }
}

void ProfileBuilder::add_comment(std::string_view text) noexcept {
    if (failed_) return;
    try {
        profile_.comment.push_back(intern(text));
    } catch (...) {
        fail("out of memory while building a profile");
    }
}

uint64_t ProfileBuilder::function_for(const symbolize::SourceFrame& frame) {
    // As pprof's own symbolizer does, a function is its name, file and start line together.
    FunctionKey key{intern(frame.function.name), intern(frame.function.system_name),
                    intern(frame.filename), frame.start_line};
    auto found = function_by_key_.find(key);
    if (found != function_by_key_.end()) return found->second;
    FunctionMessage function;
    function.id = profile_.function.size() + 1;
    function.name = key.name;
    function.system_name = key.system_name;
    function.filename = key.filename;
    function.start_line = key.start_line;
    profile_.function.push_back(function);
    function_by_key_.emplace(key, function.id);
    return function.id;
}

uint64_t ProfileBuilder::location_for(uintptr_t return_address) {
    const uint64_t address = return_address - 1;
    auto found = location_by_address_.find(address);
    if (found != location_by_address_.end()) return found->second;

    LocationMessage location;
    location.id = profile_.location.size() + 1;
    location.address = address;
    uint32_t module_index = kNoModule;
    const symbolize::Module* module = modules_ != nullptr ? modules_->find(address) : nullptr;
    if (module != nullptr) {
        module_index = static_cast<uint32_t>(module - modules_->modules().data());
        bool from_dwarf = false;
        if (symbols_ != nullptr && symbols_->symbolize(*module, address, &frames_, &from_dwarf)) {
            // One Line per frame, innermost inlined function first (pprof's order).
            uint8_t has = kHasFunctions;
            for (const symbolize::SourceFrame& frame : frames_) {
                location.line.push_back({function_for(frame), frame.line, 0});
                if (!frame.filename.empty()) has |= kHasFilenames;
                if (frame.line != 0) has |= kHasLineNumbers;
            }
            if (from_dwarf) has |= kHasInlineFrames;
            module_has_[module_index] |= has;
        }
        if (!module_used_[module_index]) {
            module_used_[module_index] = 1;
            module_first_use_.push_back(module_index);
        }
    }
    // mapping_id is set in emit_mappings, once the order of the mappings is known.
    location_module_.push_back(module_index);
    profile_.location.push_back(std::move(location));
    location_by_address_.emplace(address, profile_.location.back().id);
    return profile_.location.back().id;
}

bool ProfileBuilder::add_sample(const uintptr_t* stack, size_t depth, const int64_t* values,
                                size_t value_count, const SampleLabels& labels) noexcept {
    if (stop_asked()) return false;
    if (value_count != sample_type_count_) {
        // pprof rejects a whole profile with one sample of the wrong width.
        ++dropped_samples_;
        return false;
    }
    try {
        sample_locations_.clear();
        for (size_t i = 0; i < depth; ++i) {
            if (stack[i] != 0) sample_locations_.push_back(location_for(stack[i]));
        }
        add_encoded_sample(values, value_count, labels);
        return true;
    } catch (...) {
        fail("out of memory while building a profile");
        return false;
    }
}

bool ProfileBuilder::add_named_sample(std::string_view function, const int64_t* values,
                                      size_t value_count, const SampleLabels& labels) noexcept {
    if (stop_asked()) return false;
    if (value_count != sample_type_count_) {
        ++dropped_samples_;
        return false;
    }
    try {
        sample_locations_.clear();
        sample_locations_.push_back(named_location(function));
        add_encoded_sample(values, value_count, labels);
        return true;
    } catch (...) {
        fail("out of memory while building a profile");
        return false;
    }
}

uint64_t ProfileBuilder::named_location(std::string_view function) {
    auto found = named_locations_.find(std::string(function));
    if (found != named_locations_.end()) return found->second;
    symbolize::SourceFrame frame;
    frame.function.name = frame.function.system_name = std::string(function);
    LocationMessage location;
    location.id = profile_.location.size() + 1;
    location.line.push_back({function_for(frame), 0, 0});
    location_module_.push_back(kNoModule);
    profile_.location.push_back(std::move(location));
    named_locations_.emplace(std::string(function), profile_.location.back().id);
    return profile_.location.back().id;
}

// The sample of sample_locations_ with these values and labels, encoded.
void ProfileBuilder::add_encoded_sample(const int64_t* values, size_t value_count,
                                        const SampleLabels& labels) {
    sample_labels_.clear();
    for (const StringLabel& label : labels.strings) {
        sample_labels_.push_back({intern(label.key), intern(label.value), 0, 0});
    }
    for (const NumericLabel& label : labels.numbers) {
        sample_labels_.push_back(
            {intern(label.key), 0, label.value, label.unit.empty() ? 0 : intern(label.unit)});
    }
    encode_sample({sample_locations_.data(), sample_locations_.size(), values, value_count,
                   sample_labels_.data(), sample_labels_.size()},
                  &encoded_samples_);
}

void ProfileBuilder::reserve_samples(size_t samples, size_t frames, size_t value_count,
                                     size_t label_count) noexcept {
    // Per sample: its tag and length (up to 6 bytes), the two packed fields' tags and lengths
    // (12), ten bytes per value, a label's four fields (44) each; per frame, a location ID's
    // varint (3 bytes up to 2 million locations).
    size_t bytes = samples * (18 + 10 * value_count + 44 * label_count) + 3 * frames;
    try {
        encoded_samples_.reserve(encoded_samples_.size() + bytes);
    } catch (...) {
        // Only an estimate: adding the samples grows the room as it needs.
    }
}

void ProfileBuilder::emit_mappings() {
    profile_.mapping.clear();
    if (modules_ == nullptr) return;
    const std::vector<symbolize::Module>& modules = modules_->modules();
    // pprof takes mapping[0] as the main executable: its mappings go first (even unused, so that
    // the profile names its program), then the others that some location uses, in order of use.
    std::vector<uint32_t> order;
    for (uint32_t i = 0; i < modules.size(); ++i) {
        if (modules[i].is_main) order.push_back(i);
    }
    for (uint32_t i : module_first_use_) {
        if (!modules[i].is_main) order.push_back(i);
    }
    std::vector<uint64_t> mapping_id_of_module(modules.size(), 0);
    for (uint32_t i : order) {
        const symbolize::Module& module = modules[i];
        MappingMessage mapping;
        mapping.id = profile_.mapping.size() + 1;
        mapping.memory_start = module.start;
        mapping.memory_limit = module.limit;
        mapping.file_offset = module.file_offset;
        mapping.filename = intern(module.path);
        mapping.build_id = intern(module.build_id);
        // Set only where gprof found them: with them set, pprof keeps gprof's names and lines
        // rather than looking for the binary itself. has_inline_frames: the module's DWARF was
        // read, so inlined calls are expanded (a symbol-table name alone is not).
        mapping.has_functions = (module_has_[i] & kHasFunctions) != 0;
        mapping.has_filenames = (module_has_[i] & kHasFilenames) != 0;
        mapping.has_line_numbers = (module_has_[i] & kHasLineNumbers) != 0;
        mapping.has_inline_frames = (module_has_[i] & kHasInlineFrames) != 0;
        mapping_id_of_module[i] = mapping.id;
        profile_.mapping.push_back(mapping);
    }
    for (size_t l = 0; l < profile_.location.size(); ++l) {
        uint32_t module = location_module_[l];
        profile_.location[l].mapping_id = module == kNoModule ? 0 : mapping_id_of_module[module];
    }
}

bool ProfileBuilder::build(std::string* out) noexcept {
    // What gprof could not see in this process, in every profile it writes.
    const char* notes[base::kMaxNotes];
    for (int i = 0, n = base::notes(notes); i < n; ++i) add_comment(notes[i]);
    if (stop_asked()) return false;
    const size_t original_size = out->size();
    try {
        emit_mappings();
        profile_.encoded_samples = encoded_samples_;
        // Room for all of it at once (an estimate from above, never written to until used):
        // growing by doubling would write most of the profile twice, into fresh pages.
        size_t estimate = encoded_samples_.size() + 4096 + 64 * profile_.mapping.size() +
                          24 * profile_.function.size();
        for (const LocationMessage& location : profile_.location)
            estimate += 24 + 16 * location.line.size();
        for (std::string_view text : profile_.string_table) estimate += text.size() + 4;
        out->reserve(original_size + estimate);
        encode_profile(profile_, out);
        return true;
    } catch (...) {
        out->resize(original_size);
        fail("out of memory while encoding a profile");
        return false;
    }
}

bool ProfileBuilder::build(std::string* out, std::string* error) noexcept {
    if (build(out)) return true;
    try {
        *error = error_;
    } catch (...) {
    }
    return false;
}

}  // namespace gprof::pprof
