#include "preload/http.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <string>

#include "base/files.h"
#include "base/reentry_guard.h"
#include "pprof/gzip.h"
#include "preload/cpu_sampler.h"
#include "preload/dumper.h"
#include "record/cpu_samples.h"
#include "record/custom_profiles.h"
#include "record/stack_table.h"
#include "serve/server.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"
#include "writer/cpu_builder.h"
#include "writer/dump.h"
#include "writer/named_profile.h"

namespace gprof::http {
namespace {

// How long a request waits for a dump, a fork or another request's profile in progress.
constexpr int kExclusiveWaitMs = 30 * 1000;

// Runs f() while no dump, fork or other profile build runs; false when that could not be had.
template <typename F>
bool exclusively(F&& f) {
    return dumper::run_exclusive(
        kExclusiveWaitMs, [](void* arg) { (*static_cast<F*>(arg))(); }, &f);
}

class ProcessBackend final : public serve::Backend {
public:
    bool has_profile(std::string_view name) override {
        if (record::find_custom_profile(name) != nullptr) return true;
        return writer::is_builtin_profile_name(name) && name != "cpu";
    }

    Written write_profile(std::string_view name, int debug, std::string* out) override {
        writer::NamedResult result = writer::NamedResult::Failed;
        std::string error;
        if (!exclusively([&] { result = writer::write_named_profile(name, debug, out, &error); }))
            return Written::Failed;
        switch (result) {
            case writer::NamedResult::Written: return Written::Ok;
            case writer::NamedResult::UnknownName: return Written::UnknownName;
            default: return Written::Failed;
        }
    }

    std::vector<std::string> custom_profile_names() override {
        std::vector<std::string> names;
        for (const record::CustomProfile* p : record::custom_profiles()) names.emplace_back(p->name());
        return names;
    }

    std::string command_line() override {
        std::string text;
        int fd = base::open_read_only("/proc/self/cmdline");
        if (fd < 0) return {};
        char buffer[4096];
        for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) != 0;) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) break;
            text.append(buffer, static_cast<size_t>(n));
        }
        close(fd);
        if (!text.empty() && text.back() == '\0') text.pop_back();
        return text;
    }

    std::vector<std::string> function_names(const std::vector<uint64_t>& pcs) override {
        std::vector<std::string> names(pcs.size());
        exclusively([&] {
            symbolize::ModuleSnapshot modules;
            std::string error;
            if (!modules.capture(&error)) return;
            symbolize::SymbolCache& symbols = writer::shared_symbol_cache();
            symbolize::FunctionName name;
            for (size_t i = 0; i < pcs.size(); ++i) {
                const symbolize::Module* module = modules.find(static_cast<uintptr_t>(pcs[i]));
                if (module != nullptr && symbols.lookup(*module, pcs[i], &name))
                    names[i] = name.name;
            }
            symbols.end_dump();
        });
        return names;
    }

    int cpu_begin(std::string* reason) override {
        int err = cpu_sampler::begin(record::CpuSession::OnDemand);
        if (err != 0 && err != EBUSY) *reason = "cannot start sampling (see the gprof: line)";
        return err;
    }

    bool cpu_end(std::string* out, std::string* error) override {
        record::CpuProfileData data;
        record::take_cpu_session(record::CpuSession::OnDemand, &data);
        cpu_sampler::end_on_demand();
        std::string raw;
        bool built = false;
        if (!exclusively([&] {
                symbolize::ModuleSnapshot modules;
                std::string ignored;
                modules.capture(&ignored);
                built = writer::build_cpu_profile(data, record::stack_table(), &modules,
                                                  &writer::shared_symbol_cache(), &raw, error);
                writer::shared_symbol_cache().end_dump();
            })) {
            *error = "a dump kept the profile from being written";
            return false;
        }
        return built && pprof::gzip_compress(raw, out, error);
    }

    bool wait(int64_t seconds) override { return serve::wait_while_connected(seconds); }

    int64_t now_nanos() override {
        timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
    }

    std::string swap_previous(std::string_view path, std::string current) override {
        std::lock_guard lock(mutex_);
        std::string& slot = previous_[std::string(path)];
        slot.swap(current);
        return current;
    }

private:
    std::mutex mutex_;
    std::map<std::string, std::string> previous_;
};

// Never destroyed: requests may still run while the process exits.
alignas(ProcessBackend) unsigned char g_backend_storage[sizeof(ProcessBackend)];
bool g_started = false;

void stop_at_exit() { stop(); }

}  // namespace

void start(const Config& c) {
    if (!c.http.enabled) return;
    base::ReentryGuard guard;
    auto* backend = new (g_backend_storage) ProcessBackend;
    g_started = serve::start(c.http, backend);
    if (g_started) atexit(stop_at_exit);
}

void stop() {
    if (!g_started) return;
    base::ReentryGuard guard;
    serve::stop();
}

bool pause() {
    if (!g_started) return false;
    base::ReentryGuard guard;
    return serve::pause();
}

void resume() {
    base::ReentryGuard guard;  // the server's threads are gprof's own
    serve::resume();
}

void child_after_fork() {
    if (!g_started) return;
    base::ReentryGuard guard;
    serve::abandon_after_fork();
}

}  // namespace gprof::http
