#include "serve/profile_delta.h"

#include <zlib.h>

#include <algorithm>
#include <new>
#include <unordered_map>
#include <vector>

#include "pprof/gzip.h"

namespace gprof::serve {
namespace {

// A profile of gprof's is far smaller; the bound keeps a hostile input from inflating without end.
constexpr size_t kMaxInflated = size_t{256} << 20;

bool inflate_gzip(std::string_view in, std::string* out, std::string* error) {
    z_stream s{};
    if (inflateInit2(&s, 15 + 32) != Z_OK) {  // +32: a gzip or zlib header, detected
        *error = "cannot start inflating";
        return false;
    }
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    s.avail_in = static_cast<uInt>(in.size());
    int status = Z_OK;
    while (status != Z_STREAM_END) {
        if (out->size() >= kMaxInflated) {
            status = Z_MEM_ERROR;
            break;
        }
        size_t used = out->size();
        out->resize(std::min(kMaxInflated, std::max<size_t>(used * 2, 64 * 1024)));
        s.next_out = reinterpret_cast<Bytef*>(out->data() + used);
        s.avail_out = static_cast<uInt>(out->size() - used);
        status = inflate(&s, Z_NO_FLUSH);
        out->resize(out->size() - s.avail_out);
        if (status == Z_BUF_ERROR && s.avail_in == 0) break;  // truncated
        if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) break;
    }
    inflateEnd(&s);
    if (status != Z_STREAM_END) {
        *error = "malformed gzip data";
        return false;
    }
    return true;
}

// A protobuf reader over one message's bytes; any malformation clears ok.
class Reader {
public:
    explicit Reader(std::string_view data)
        : p_(reinterpret_cast<const uint8_t*>(data.data())), end_(p_ + data.size()) {}

    bool done() const { return p_ >= end_ || !ok_; }
    bool ok() const { return ok_; }

    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p_ >= end_) break;
            uint8_t b = *p_++;
            v |= uint64_t{b & 0x7fu} << shift;
            if ((b & 0x80) == 0) return v;
        }
        ok_ = false;
        return 0;
    }

    // The next field's number and wire type.
    bool next(uint32_t* field, uint32_t* wire) {
        uint64_t key = varint();
        if (!ok_ || key >> 32 != 0) return ok_ = false;
        *field = static_cast<uint32_t>(key >> 3);
        *wire = static_cast<uint32_t>(key & 7);
        return *field != 0 || (ok_ = false);
    }

    std::string_view bytes() {
        uint64_t n = varint();
        if (!ok_ || n > static_cast<uint64_t>(end_ - p_)) {
            ok_ = false;
            return {};
        }
        std::string_view v(reinterpret_cast<const char*>(p_), n);
        p_ += n;
        return v;
    }

    void skip(uint32_t wire) {
        switch (wire) {
            case 0: varint(); break;
            case 1: advance(8); break;
            case 2: bytes(); break;
            case 5: advance(4); break;
            default: ok_ = false;
        }
    }

    // A scalar or a packed run of them, appended to *out.
    template <typename T>
    void repeated(uint32_t wire, std::vector<T>* out) {
        if (wire == 0) {
            out->push_back(static_cast<T>(varint()));
        } else if (wire == 2) {
            Reader packed(bytes());
            while (ok_ && !packed.done()) out->push_back(static_cast<T>(packed.varint()));
            if (!packed.ok()) ok_ = false;
        } else {
            ok_ = false;
        }
    }

    template <typename T>
    T scalar(uint32_t wire) {
        if (wire != 0) {
            ok_ = false;
            return T{};
        }
        return static_cast<T>(varint());
    }

private:
    void advance(size_t n) {
        if (n > static_cast<size_t>(end_ - p_)) ok_ = false;
        else p_ += n;
    }

    const uint8_t* p_;
    const uint8_t* end_;
    bool ok_ = true;
};

bool decode_value_type(std::string_view data, pprof::ValueTypeMessage* out) {
    Reader r(data);
    uint32_t f, w;
    while (!r.done() && r.next(&f, &w)) {
        if (f == 1) out->type = r.scalar<int64_t>(w);
        else if (f == 2) out->unit = r.scalar<int64_t>(w);
        else r.skip(w);
    }
    return r.ok();
}

bool decode_sample(std::string_view data, pprof::SampleMessage* out) {
    Reader r(data);
    uint32_t f, w;
    while (!r.done() && r.next(&f, &w)) {
        if (f == 1) {
            r.repeated(w, &out->location_id);
        } else if (f == 2) {
            r.repeated(w, &out->value);
        } else if (f == 3 && w == 2) {
            Reader l(r.bytes());
            pprof::LabelMessage label;
            uint32_t lf, lw;
            while (!l.done() && l.next(&lf, &lw)) {
                if (lf == 1) label.key = l.scalar<int64_t>(lw);
                else if (lf == 2) label.str = l.scalar<int64_t>(lw);
                else if (lf == 3) label.num = l.scalar<int64_t>(lw);
                else if (lf == 4) label.num_unit = l.scalar<int64_t>(lw);
                else l.skip(lw);
            }
            if (!l.ok()) return false;
            out->label.push_back(label);
        } else {
            r.skip(w);
        }
    }
    return r.ok();
}

bool decode_mapping(std::string_view data, pprof::MappingMessage* m) {
    Reader r(data);
    uint32_t f, w;
    while (!r.done() && r.next(&f, &w)) {
        switch (f) {
            case 1: m->id = r.scalar<uint64_t>(w); break;
            case 2: m->memory_start = r.scalar<uint64_t>(w); break;
            case 3: m->memory_limit = r.scalar<uint64_t>(w); break;
            case 4: m->file_offset = r.scalar<uint64_t>(w); break;
            case 5: m->filename = r.scalar<int64_t>(w); break;
            case 6: m->build_id = r.scalar<int64_t>(w); break;
            case 7: m->has_functions = r.scalar<uint64_t>(w) != 0; break;
            case 8: m->has_filenames = r.scalar<uint64_t>(w) != 0; break;
            case 9: m->has_line_numbers = r.scalar<uint64_t>(w) != 0; break;
            case 10: m->has_inline_frames = r.scalar<uint64_t>(w) != 0; break;
            default: r.skip(w);
        }
    }
    return r.ok();
}

bool decode_location(std::string_view data, pprof::LocationMessage* out) {
    Reader r(data);
    uint32_t f, w;
    while (!r.done() && r.next(&f, &w)) {
        if (f == 1) {
            out->id = r.scalar<uint64_t>(w);
        } else if (f == 2) {
            out->mapping_id = r.scalar<uint64_t>(w);
        } else if (f == 3) {
            out->address = r.scalar<uint64_t>(w);
        } else if (f == 4 && w == 2) {
            Reader l(r.bytes());
            pprof::LineMessage line;
            uint32_t lf, lw;
            while (!l.done() && l.next(&lf, &lw)) {
                if (lf == 1) line.function_id = l.scalar<uint64_t>(lw);
                else if (lf == 2) line.line = l.scalar<int64_t>(lw);
                else if (lf == 3) line.column = l.scalar<int64_t>(lw);
                else l.skip(lw);
            }
            if (!l.ok()) return false;
            out->line.push_back(line);
        } else if (f == 5) {
            out->is_folded = r.scalar<uint64_t>(w) != 0;
        } else {
            r.skip(w);
        }
    }
    return r.ok();
}

bool decode_function(std::string_view data, pprof::FunctionMessage* out) {
    Reader r(data);
    uint32_t f, w;
    while (!r.done() && r.next(&f, &w)) {
        switch (f) {
            case 1: out->id = r.scalar<uint64_t>(w); break;
            case 2: out->name = r.scalar<int64_t>(w); break;
            case 3: out->system_name = r.scalar<int64_t>(w); break;
            case 4: out->filename = r.scalar<int64_t>(w); break;
            case 5: out->start_line = r.scalar<int64_t>(w); break;
            default: r.skip(w);
        }
    }
    return r.ok();
}

bool decode_message(std::string_view data, pprof::ProfileMessage* p) {
    Reader r(data);
    uint32_t f, w;
    bool ok = true;
    while (ok && !r.done() && r.next(&f, &w)) {
        if (w == 2 && f >= 1 && f <= 6) {
            std::string_view field = r.bytes();
            switch (f) {
                case 1: ok = decode_value_type(field, &p->sample_type.emplace_back()); break;
                case 2: ok = decode_sample(field, &p->sample.emplace_back()); break;
                case 3: ok = decode_mapping(field, &p->mapping.emplace_back()); break;
                case 4: ok = decode_location(field, &p->location.emplace_back()); break;
                case 5: ok = decode_function(field, &p->function.emplace_back()); break;
                case 6: p->string_table.push_back(field); break;
            }
            continue;
        }
        switch (f) {
            case 7: p->drop_frames = r.scalar<int64_t>(w); break;
            case 8: p->keep_frames = r.scalar<int64_t>(w); break;
            case 9: p->time_nanos = r.scalar<int64_t>(w); break;
            case 10: p->duration_nanos = r.scalar<int64_t>(w); break;
            case 11:
                if (w == 2) ok = decode_value_type(r.bytes(), &p->period_type);
                else r.skip(w);
                break;
            case 12: p->period = r.scalar<int64_t>(w); break;
            case 13: r.repeated(w, &p->comment); break;
            case 14: p->default_sample_type = r.scalar<int64_t>(w); break;
            default: r.skip(w);
        }
    }
    return ok && r.ok();
}

// Every string index, location and function reference within bounds.
bool consistent(const pprof::ProfileMessage& p) {
    const auto strings = static_cast<int64_t>(p.string_table.size());
    auto string_ok = [&](int64_t i) { return i >= 0 && i < strings; };
    if (strings == 0 || !p.string_table[0].empty()) return false;
    for (const auto& t : p.sample_type)
        if (!string_ok(t.type) || !string_ok(t.unit)) return false;
    if (!string_ok(p.period_type.type) || !string_ok(p.period_type.unit)) return false;
    std::unordered_map<uint64_t, size_t> locations, functions;
    for (size_t i = 0; i < p.function.size(); ++i) {
        const auto& f = p.function[i];
        if (f.id == 0 || !functions.emplace(f.id, i).second) return false;
        if (!string_ok(f.name) || !string_ok(f.system_name) || !string_ok(f.filename))
            return false;
    }
    for (size_t i = 0; i < p.location.size(); ++i) {
        const auto& l = p.location[i];
        if (l.id == 0 || !locations.emplace(l.id, i).second) return false;
        for (const auto& line : l.line)
            if (!functions.contains(line.function_id)) return false;
    }
    for (const auto& m : p.mapping)
        if (!string_ok(m.filename) || !string_ok(m.build_id)) return false;
    for (const auto& s : p.sample) {
        if (s.value.size() != p.sample_type.size()) return false;
        for (uint64_t id : s.location_id)
            if (!locations.contains(id)) return false;
        for (const auto& l : s.label)
            if (!string_ok(l.key) || !string_ok(l.str) || !string_ok(l.num_unit)) return false;
    }
    for (int64_t c : p.comment)
        if (!string_ok(c)) return false;
    return true;
}

// Finds locations and functions by id.
struct Index {
    explicit Index(const pprof::ProfileMessage& p) : profile(p) {
        for (size_t i = 0; i < p.location.size(); ++i) locations.emplace(p.location[i].id, i);
        for (size_t i = 0; i < p.function.size(); ++i) functions.emplace(p.function[i].id, i);
    }
    const pprof::ProfileMessage& profile;
    std::unordered_map<uint64_t, size_t> locations, functions;
};

void append_bytes(std::string* key, const void* data, size_t size) {
    key->append(static_cast<const char*>(data), size);
}

void append_string(std::string* key, std::string_view s) {
    uint64_t n = s.size();
    append_bytes(key, &n, sizeof n);
    key->append(s);
}

// What makes two samples the same: each frame's address and the functions and lines at it, and
// the labels in a fixed order.
std::string sample_key(const Index& index, const pprof::SampleMessage& s) {
    const auto& p = index.profile;
    std::string key;
    for (uint64_t id : s.location_id) {
        const auto& loc = p.location[index.locations.at(id)];
        append_bytes(&key, &loc.address, sizeof loc.address);
        uint64_t lines = loc.line.size();
        append_bytes(&key, &lines, sizeof lines);
        for (const auto& line : loc.line) {
            append_string(&key, p.string_table[p.function[index.functions.at(line.function_id)].name]);
            append_bytes(&key, &line.line, sizeof line.line);
        }
    }
    key.push_back('\0');
    std::vector<std::string> labels;
    for (const auto& l : s.label) {
        std::string one;
        append_string(&one, p.string_table[l.key]);
        append_string(&one, p.string_table[l.str]);
        append_bytes(&one, &l.num, sizeof l.num);
        append_string(&one, p.string_table[l.num_unit]);
        labels.push_back(std::move(one));
    }
    std::sort(labels.begin(), labels.end());
    for (const auto& l : labels) key += l;
    return key;
}

// Copies a sample of `from` (its locations, their functions and mappings, its strings) into `to`.
class Importer {
public:
    Importer(const pprof::ProfileMessage& from, pprof::ProfileMessage* to)
        : from_(from), to_(to) {
        for (const auto& l : to->location) next_location_ = std::max(next_location_, l.id + 1);
        for (const auto& f : to->function) next_function_ = std::max(next_function_, f.id + 1);
        for (const auto& m : to->mapping) next_mapping_ = std::max(next_mapping_, m.id + 1);
        for (size_t i = 0; i < to->string_table.size(); ++i)
            strings_.emplace(to->string_table[i], static_cast<int64_t>(i));
        for (size_t i = 0; i < from.location.size(); ++i) from_locations_.emplace(from.location[i].id, i);
        for (size_t i = 0; i < from.function.size(); ++i) from_functions_.emplace(from.function[i].id, i);
    }

    pprof::SampleMessage import(const pprof::SampleMessage& s) {
        pprof::SampleMessage out;
        for (uint64_t id : s.location_id) out.location_id.push_back(location(id));
        for (auto l : s.label) {
            l.key = str(l.key);
            l.str = str(l.str);
            l.num_unit = str(l.num_unit);
            out.label.push_back(l);
        }
        return out;
    }

private:
    // Each string once in `to`: found there, or added.
    int64_t str(int64_t i) {
        std::string_view s = from_.string_table[static_cast<size_t>(i)];
        auto [it, added] = strings_.emplace(s, static_cast<int64_t>(to_->string_table.size()));
        if (added) to_->string_table.push_back(s);
        return it->second;
    }

    uint64_t location(uint64_t id) {
        auto [it, added] = locations_.emplace(id, 0);
        if (!added) return it->second;
        pprof::LocationMessage l = from_.location[from_locations_.at(id)];
        l.id = it->second = next_location_++;
        l.mapping_id = mapping(l.mapping_id);
        for (auto& line : l.line) line.function_id = function(line.function_id);
        to_->location.push_back(std::move(l));
        return it->second;
    }

    uint64_t function(uint64_t id) {
        auto [it, added] = functions_.emplace(id, 0);
        if (!added) return it->second;
        pprof::FunctionMessage f = from_.function[from_functions_.at(id)];
        f.id = it->second = next_function_++;
        f.name = str(f.name);
        f.system_name = str(f.system_name);
        f.filename = str(f.filename);
        to_->function.push_back(f);
        return it->second;
    }

    // The same mapping in `to` where there is one (same range and offset), else a copy.
    uint64_t mapping(uint64_t id) {
        if (id == 0) return 0;
        auto [it, added] = mappings_.emplace(id, 0);
        if (!added) return it->second;
        const pprof::MappingMessage* m = nullptr;
        for (const auto& candidate : from_.mapping)
            if (candidate.id == id) m = &candidate;
        if (m == nullptr) return it->second = 0;
        for (const auto& existing : to_->mapping) {
            if (existing.memory_start == m->memory_start &&
                existing.memory_limit == m->memory_limit && existing.file_offset == m->file_offset)
                return it->second = existing.id;
        }
        pprof::MappingMessage copy = *m;
        copy.id = it->second = next_mapping_++;
        copy.filename = str(copy.filename);
        copy.build_id = str(copy.build_id);
        to_->mapping.push_back(copy);
        return it->second;
    }

    const pprof::ProfileMessage& from_;
    pprof::ProfileMessage* to_;
    std::unordered_map<std::string_view, int64_t> strings_;
    uint64_t next_location_ = 1, next_function_ = 1, next_mapping_ = 1;
    std::unordered_map<uint64_t, size_t> from_locations_, from_functions_;
    std::unordered_map<uint64_t, uint64_t> locations_, functions_, mappings_;
};

bool all_zero(const std::vector<int64_t>& values) {
    return std::all_of(values.begin(), values.end(), [](int64_t v) { return v == 0; });
}

bool delta(std::string_view earlier, std::string_view later, int64_t time_nanos,
           int64_t duration_nanos, std::string* out, std::string* error) {
    DecodedProfile p1;
    if (!decode_profile(later, &p1, error)) return false;
    pprof::ProfileMessage& result = p1.message;
    DecodedProfile p0;
    if (!earlier.empty()) {
        if (!decode_profile(earlier, &p0, error)) return false;
        const auto& before = p0.message;
        bool same = before.sample_type.size() == result.sample_type.size();
        for (size_t i = 0; same && i < before.sample_type.size(); ++i) {
            same = before.string_table[before.sample_type[i].type] ==
                       result.string_table[result.sample_type[i].type] &&
                   before.string_table[before.sample_type[i].unit] ==
                       result.string_table[result.sample_type[i].unit];
        }
        if (!same) {
            *error = "the profiles have different sample types";
            return false;
        }
        std::vector<bool> kept(result.sample_type.size());
        for (size_t i = 0; i < kept.size(); ++i)
            kept[i] = result.string_table[result.sample_type[i].type].starts_with("inuse_");
        Index before_index(before);
        std::unordered_map<std::string, size_t> earlier_samples;
        for (size_t i = 0; i < before.sample.size(); ++i) {
            auto [it, added] = earlier_samples.emplace(sample_key(before_index, before.sample[i]), i);
            if (!added) {  // the same stack twice: one sample with both's values
                auto& into = p0.message.sample[it->second].value;
                for (size_t v = 0; v < into.size(); ++v) into[v] += before.sample[i].value[v];
                p0.message.sample[i].value.assign(into.size(), 0);
            }
        }
        std::vector<bool> matched(before.sample.size());
        Index later_index(result);
        for (auto& s : result.sample) {
            auto it = earlier_samples.find(sample_key(later_index, s));
            if (it == earlier_samples.end() || matched[it->second]) continue;
            const auto& old = before.sample[it->second].value;
            for (size_t v = 0; v < s.value.size(); ++v)
                if (!kept[v]) s.value[v] -= old[v];
            matched[it->second] = true;
        }
        Importer importer(before, &result);
        for (size_t i = 0; i < before.sample.size(); ++i) {
            if (matched[i] || all_zero(before.sample[i].value)) continue;
            pprof::SampleMessage gone = importer.import(before.sample[i]);
            for (size_t v = 0; v < kept.size(); ++v)
                gone.value.push_back(kept[v] ? 0 : -before.sample[i].value[v]);
            result.sample.push_back(std::move(gone));
        }
        std::erase_if(result.sample, [](const pprof::SampleMessage& s) { return all_zero(s.value); });
    }
    result.time_nanos = time_nanos;
    result.duration_nanos = duration_nanos;
    std::string raw;
    pprof::encode_profile(result, &raw);
    out->clear();
    return pprof::gzip_compress(raw, out, error);
}

}  // namespace

bool decode_profile(std::string_view encoded, DecodedProfile* out, std::string* error) noexcept {
    try {
        out->bytes.clear();
        out->message = {};
        if (encoded.size() >= 2 && static_cast<uint8_t>(encoded[0]) == 0x1f &&
            static_cast<uint8_t>(encoded[1]) == 0x8b) {
            if (!inflate_gzip(encoded, &out->bytes, error)) return false;
        } else {
            out->bytes.assign(encoded);
        }
        if (!decode_message(out->bytes, &out->message) || !consistent(out->message)) {
            *error = "malformed profile";
            return false;
        }
        return true;
    } catch (const std::bad_alloc&) {
        *error = "out of memory";
        return false;
    }
}

bool profile_delta(std::string_view earlier, std::string_view later, int64_t time_nanos,
                   int64_t duration_nanos, std::string* out, std::string* error) noexcept {
    try {
        return delta(earlier, later, time_nanos, duration_nanos, out, error);
    } catch (const std::bad_alloc&) {
        *error = "out of memory";
        return false;
    }
}

int64_t profile_count(std::string_view encoded, bool sum_values) noexcept {
    DecodedProfile p;
    std::string error;
    if (!decode_profile(encoded, &p, &error)) return -1;
    if (!sum_values) return static_cast<int64_t>(p.message.sample.size());
    int64_t total = 0;
    for (const auto& s : p.message.sample)
        if (!s.value.empty()) total += s.value[0];
    return total;
}

}  // namespace gprof::serve
