#include "test/hostile/suite.h"

#include <algorithm>
#include <filesystem>

#include "test/e2e/profile_reader.h"

namespace hostile {

std::string Config::describe() const {
    return "GPROF_ALLOCATOR=" + allocator + " GPROF_CPU_HZ=" + std::to_string(cpu_hz);
}

std::vector<Config> configs(bool with_cpu) {
    std::vector<Config> all;
    for (int hz : {0, 1000}) {
        if (hz != 0 && !with_cpu) continue;
        for (const std::string& mode : e2e::kModes) all.push_back({mode, hz});
    }
    return all;
}

std::map<std::string, std::string> gprof_env(const Config& config, const std::string& dir,
                                             std::map<std::string, std::string> extra) {
    auto env = e2e::preload_env(config.allocator, {{"GPROF_OUTPUT", dir + "/p"}});
    if (config.cpu_hz != 0) env["GPROF_CPU_HZ"] = std::to_string(config.cpu_hz);
    for (auto& [k, v] : extra) env[k] = v;
    return env;
}

RunOptions options(std::map<std::string, std::string> env, int timeout_seconds,
                   const std::string& cwd) {
    RunOptions o;
    o.env = std::move(env);
    o.timeout_seconds = timeout_seconds;
    o.cwd = cwd;
    return o;
}

void check_outcome(const RunResult& bare, const RunResult& r, Outcome outcome, std::string* line) {
    INFO("bare run: " << bare.describe());
    INFO("under gprof: " << r.describe());
    CHECK_FALSE(r.timed_out);
    CHECK(r.status == bare.status);
    CHECK(r.out == bare.out);
    const bool same = r.err == bare.err;
    std::string extra;
    bool one_line = false;
    if (r.err.size() > bare.err.size() && r.err.compare(0, bare.err.size(), bare.err) == 0) {
        extra = r.err.substr(bare.err.size());
        one_line = extra.rfind("gprof: ", 0) == 0 && extra.find('\n') == extra.size() - 1;
    }
    bool gprof_lines = !extra.empty() && extra.back() == '\n';
    for (const std::string& l : e2e::split_lines(extra))
        gprof_lines = gprof_lines && l.rfind("gprof: ", 0) == 0;
    if (line != nullptr) *line = one_line ? extra.substr(0, extra.size() - 1) : "";
    switch (outcome) {
        case Outcome::kSame: CHECK(same); break;
        case Outcome::kOneLine: CHECK(one_line); break;
        case Outcome::kSameOrOneLine: CHECK((same || one_line)); break;
        case Outcome::kGprofLines: CHECK(gprof_lines); break;
        case Outcome::kSameOrGprofLines: CHECK((same || gprof_lines)); break;
    }
}

std::vector<std::string> check_written(const std::string& dir, size_t pprof_max) {
    std::vector<std::string> profiles, temporaries;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_regular_file()) continue;
        std::string path = it->path().string();
        if (path.ends_with(".tmp")) temporaries.push_back(path);
        if (path.ends_with(".pb.gz")) profiles.push_back(path);
    }
    std::sort(profiles.begin(), profiles.end());
    INFO("temporary files left: " << temporaries.size()
                                  << (temporaries.empty() ? "" : ", first " + temporaries[0]));
    CHECK(temporaries.empty());
    for (size_t i = 0; i < profiles.size(); ++i) {
        INFO(profiles[i]);
        CHECK(e2e::consistency_problems(e2e::read_profile(profiles[i])).empty());
        if (i + pprof_max >= profiles.size()) CHECK(e2e::pprof_stderr({"-raw"}, profiles[i]) == "");
    }
    return profiles;
}

RunResult check_case(const std::string& name, const std::vector<std::string>& argv,
                     const std::vector<Config>& run_configs, Outcome outcome,
                     const std::map<std::string, std::string>& extra_env, int timeout_seconds,
                     const MoreChecks& more, size_t pprof_max) {
    auto with_dir = [&argv](const std::string& dir) {
        std::vector<std::string> v = argv;
        for (std::string& a : v)
            for (size_t at; (at = a.find("{dir}")) != std::string::npos;) a.replace(at, 5, dir);
        return v;
    };
    std::string bare_dir = e2e::make_dir(name + "-bare");
    RunResult bare = e2e::run(with_dir(bare_dir), options({}, timeout_seconds, bare_dir));
    INFO("bare run: " << bare.describe());
    CHECK_FALSE(bare.timed_out);
    for (const Config& config : run_configs) {
        INFO(config.describe());
        std::string dir = e2e::make_dir(name);
        RunResult r = e2e::run(with_dir(dir),
                               options(gprof_env(config, dir, extra_env), timeout_seconds, dir));
        check_outcome(bare, r, outcome);
        check_written(dir, pprof_max);
        if (more) more(config, r, dir);
    }
    return bare;
}

std::string comments(const std::string& path) {
    perftools::profiles::Profile p = e2e::read_profile(path);
    std::string all;
    for (int64_t c : p.comment()) all += e2e::string_at(p, c) + "\n";
    return all;
}

}  // namespace hostile
