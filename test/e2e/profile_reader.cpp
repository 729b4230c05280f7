#include "test/e2e/profile_reader.h"

#include <zlib.h>

#include <catch2/catch.hpp>
#include <set>

#include "test/e2e/run.h"

namespace e2e {

using perftools::profiles::Profile;

perftools::profiles::Profile read_profile(const std::string& path) {
    std::string gz = read_file(path);
    REQUIRE(!gz.empty());
    z_stream z = {};
    REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
    z.next_in = reinterpret_cast<Bytef*>(gz.data());
    z.avail_in = static_cast<uInt>(gz.size());
    std::string raw;
    char buf[1 << 16];
    int rc;
    do {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        REQUIRE((rc == Z_OK || rc == Z_STREAM_END));
        raw.append(buf, sizeof buf - z.avail_out);
    } while (rc != Z_STREAM_END);
    inflateEnd(&z);
    Profile p;
    INFO(path);
    REQUIRE(p.ParseFromString(raw));
    return p;
}

std::string string_at(const Profile& p, int64_t index) {
    if (index < 0 || index >= p.string_table_size()) return "<bad string index>";
    return p.string_table(static_cast<int>(index));
}

std::vector<std::string> consistency_problems(const Profile& p) {
    std::vector<std::string> problems;
    auto bad = [&](const std::string& what) { problems.push_back(what); };
    auto check_str = [&](int64_t i, const char* what) {
        if (i < 0 || i >= p.string_table_size()) bad(std::string("string index out of range: ") + what);
    };
    if (p.string_table_size() == 0 || !p.string_table(0).empty()) bad("string_table[0] is not \"\"");
    std::set<std::string> strings(p.string_table().begin(), p.string_table().end());
    if (strings.size() != static_cast<size_t>(p.string_table_size())) bad("duplicate strings");
    for (const auto& t : p.sample_type()) check_str(t.type(), "sample_type"), check_str(t.unit(), "sample_type");
    check_str(p.period_type().type(), "period_type");
    std::set<uint64_t> mappings, locations, functions;
    for (const auto& m : p.mapping()) {
        if (m.id() == 0 || !mappings.insert(m.id()).second) bad("mapping id zero or repeated");
        check_str(m.filename(), "mapping filename");
        check_str(m.build_id(), "mapping build_id");
        if (m.memory_limit() <= m.memory_start()) bad("mapping with limit <= start");
    }
    for (const auto& f : p.function()) {
        if (f.id() == 0 || !functions.insert(f.id()).second) bad("function id zero or repeated");
        check_str(f.name(), "function name");
        check_str(f.system_name(), "function system_name");
        check_str(f.filename(), "function filename");
    }
    std::set<uint64_t> addresses;
    for (const auto& l : p.location()) {
        if (l.id() == 0 || !locations.insert(l.id()).second) bad("location id zero or repeated");
        if (l.mapping_id() != 0 && !mappings.count(l.mapping_id())) bad("location with unknown mapping");
        if (l.address() != 0 && !addresses.insert(l.address()).second) bad("two locations, one address");
        for (const auto& line : l.line())
            if (!functions.count(line.function_id())) bad("line with unknown function");
    }
    for (const auto& s : p.sample()) {
        if (s.value_size() != p.sample_type_size()) bad("sample with wrong number of values");
        for (uint64_t id : s.location_id())
            if (!locations.count(id)) bad("sample with unknown location");
        for (const auto& label : s.label()) check_str(label.key(), "label key"), check_str(label.str(), "label str");
    }
    return problems;
}

std::vector<FlatSample> flatten(const Profile& p) {
    std::map<uint64_t, const perftools::profiles::Location*> loc;
    std::map<uint64_t, const perftools::profiles::Function*> fn;
    std::map<uint64_t, const perftools::profiles::Mapping*> map;
    for (const auto& l : p.location()) loc[l.id()] = &l;
    for (const auto& f : p.function()) fn[f.id()] = &f;
    for (const auto& m : p.mapping()) map[m.id()] = &m;
    std::vector<FlatSample> out;
    for (const auto& s : p.sample()) {
        FlatSample f;
        for (uint64_t id : s.location_id()) {
            const auto* l = loc.at(id);
            f.addresses.push_back(l->address());
            f.mappings.push_back(l->mapping_id() ? string_at(p, map.at(l->mapping_id())->filename()) : "");
            if (l->line_size() == 0) f.functions.push_back("");
            for (const auto& line : l->line()) f.functions.push_back(string_at(p, fn.at(line.function_id())->name()));
        }
        f.values.assign(s.value().begin(), s.value().end());
        for (const auto& label : s.label()) {
            if (label.str() != 0)
                f.strings[string_at(p, label.key())] = string_at(p, label.str());
            else
                f.numbers[string_at(p, label.key())] = label.num();
        }
        out.push_back(std::move(f));
    }
    return out;
}

std::string pprof_stderr(const std::vector<std::string>& args, const std::string& file,
                         std::string* out) {
    std::vector<std::string> argv = {"go", "tool", "pprof"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(file);
    RunOptions options;
    options.timeout_seconds = 120;
    options.env = {{"HOME", scratch_dir()}, {"GOCACHE", scratch_dir() + "/gocache"},
                   {"PPROF_TMPDIR", scratch_dir()}};
    RunResult r = run(argv, options);
    INFO(r.describe());
    REQUIRE(r.status == 0);
    if (out) *out = r.out;
    return r.err;
}

}  // namespace e2e
