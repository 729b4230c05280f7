#include "writer/dump.h"

#include <sys/stat.h>
#include <unistd.h>

#include <new>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/stop_scope.h"
#include "symbolize/debug_cache.h"
#include "pprof/gzip.h"
#include "symbolize/modules.h"
#include "record/custom_profiles.h"
#include "record/own_records.h"
#include "writer/named_profile.h"
#include "writer/profile_kinds.h"
#include "writer/sink.h"
#include "symbolize/symbols.h"

namespace gprof::writer {
namespace {

// The settings start() hands down: the Config is constant-initialised static storage, alive for
// the whole process.
const Config* g_settings = nullptr;

// Symbol tables read for one dump serve the next ones too (a long-running process dumps often).
// Never destroyed: a dump at exit may run after static destructors.
symbolize::SymbolCache& symbol_cache() {
    static symbolize::SymbolCache* cache = new symbolize::SymbolCache;
    return *cache;
}

// The kinds of write failure this process has reported (its text with the paths before the
// last ": " and every digit left out: "Permission denied", "No space left on device"), so that a
// process that cannot write says so once, not at every dump (a worker that dropped privileges,
// dumped every second). A forked child is another process: it says so again. Used only by the
// dump in progress (dumps are one at a time); never destroyed (dumps at exit).
struct ReportedFailures {
    pid_t pid = 0;
    std::vector<std::string> kinds;
};
ReportedFailures& reported_failures() {
    static ReportedFailures* reported = new ReportedFailures;
    return *reported;
}

bool first_failure_of_its_kind(const std::string& error) {
    ReportedFailures& r = reported_failures();
    if (r.pid != getpid()) {
        r.pid = getpid();
        r.kinds.clear();
    }
    size_t colon = error.rfind(": ");
    std::string kind;
    for (char ch : colon == std::string::npos ? error : error.substr(colon + 2))
        if (ch < '0' || ch > '9') kind += ch;
    for (const std::string& k : r.kinds)
        if (k == kind) return false;
    if (r.kinds.size() < 16) r.kinds.push_back(kind);
    return true;
}

// Writes one profile's file. A problem is reported unless *reported (an unwritable output
// directory gives one line per dump, not one per profile) or this process already said it.
void write_profile(const char* name, const std::string& raw, unsigned seq, bool* reported) {
    std::string path = profile_file_path(g_settings->output, getpid(), seq, name);
    std::string compressed, error;
    if (!pprof::gzip_compress(raw, &compressed, &error) ||
        !write_file_atomically(path, compressed, &error)) {
        if (base::StopScope::stopped()) return;  // the dump was cut short: nothing to say
        if (!*reported && first_failure_of_its_kind(error))
            log::problem("cannot write %s: %s (not said again by this process)", path.c_str(),
                         error.c_str());
        *reported = true;
        return;
    }
    log::info("wrote %s", path.c_str());
}

// Numbers that a process of the same pid used before this one (an earlier image of an exec
// chain; pid 1 of another pid namespace writing into the same directory) are skipped: a dump
// takes the first number, from the one it was given on, at which none of its files exists, and
// later dumps of the process follow on from it. So no dump renames over a file written earlier.
constinit unsigned g_skip = 0;
constinit pid_t g_skip_pid = 0;  // a forked child numbers its files afresh

bool taken(unsigned seq, const char* name) {
    struct stat status;
    std::string path = profile_file_path(g_settings->output, getpid(), seq, name);
    return lstat(path.c_str(), &status) == 0 && S_ISREG(status.st_mode);
}

unsigned free_sequence(unsigned seq, uint32_t wanted, bool custom) {
    if (getpid() != g_skip_pid) {
        g_skip = 0;
        g_skip_pid = getpid();
    }
    for (int tries = 0; tries < 100000; ++tries, ++g_skip) {
        bool any = false;
        if (custom)
            for (const record::CustomProfile* profile : record::custom_profiles())
                any = any || taken(seq + g_skip, profile->name());
        for (const ProfileKind& kind : profile_kinds())
            any = any || ((wanted & kind.bit) && taken(seq + g_skip, kind.name));
        if (!any) break;
    }
    return seq + g_skip;
}

// Custom profiles (Go's NewProfile) are written with every dump, before the built-in kinds (the
// threads profile stays last), whether or not they hold keys now: the program made them.
// Returns false if the dump was stopped (base::StopScope) before all were written.
bool write_custom_profiles(const BuildContext& context, unsigned seq, bool* reported) {
    std::string error;
    for (const record::CustomProfile* profile : record::custom_profiles()) {
        std::string raw;
        if (build_custom_profile(*profile, context, &raw, &error))
            write_profile(profile->name(), raw, seq, reported);
        else if (!base::StopScope::stopped())
            log::problem("cannot build the %s profile: %s", profile->name(), error.c_str());
        if (base::StopScope::stopped()) return false;
    }
    return true;
}

}  // namespace

const Config* settings() {
    return g_settings;
}

symbolize::SymbolCache& shared_symbol_cache() {
    return symbol_cache();
}

void start(const Config& c) {
    g_settings = &c;
    symbolize::configure_debug_cache(c.debug_cache, c.debug_cache_explicit);
    for (const ProfileKind& kind : profile_kinds())
        if (kind.start != nullptr) kind.start(c, (c.profiles & kind.bit) != 0);
}

unsigned write_dump(unsigned seq, DumpReason reason, const std::atomic<int>* stop,
                    bool* stopped) {
    if (stopped != nullptr) *stopped = false;
    if (g_settings == nullptr) return seq;  // before start-up
    const base::StopScope scope(stop);
    try {
        const Config& c = *g_settings;
        // A forked child's exit before it recorded anything of its own: its records are its
        // parent's (the CPU profile's samples are always the process's own).
        const bool parents = reason == DumpReason::Exit && record::records_are_parents();
        uint32_t wanted = 0;
        for (const ProfileKind& kind : profile_kinds()) {
            if ((c.profiles & kind.bit) && (reason != DumpReason::Exit || kind.at_exit) &&
                (!parents || kind.takes_samples) && kind.has_samples())
                wanted |= kind.bit;
        }
        const bool custom = !parents && !record::custom_profiles().empty();
        if (wanted == 0 && !custom) return seq;  // nothing to say: no module list read, no
                                                 // symbol looked up
        seq = free_sequence(seq, wanted, custom);
        symbolize::ModuleSnapshot modules;
        std::string error, modules_error;
        if (!modules.capture(&error)) modules_error = error;
        const BuildContext context{&modules, &symbol_cache(), c.dump_signal};
        bool reported = false;
        bool cut = custom && !write_custom_profiles(context, seq, &reported);
        for (const ProfileKind& kind : profile_kinds()) {
            if (cut) break;
            if (!(wanted & kind.bit)) continue;
            {
                const base::StopScope whole(kind.takes_samples ? nullptr : stop);
                std::string raw;
                if (kind.build(context, &raw, &error))
                    write_profile(kind.name, raw, seq, &reported);
                else if (!base::StopScope::stopped())
                    log::problem("cannot build the %s profile: %s", kind.name, error.c_str());
            }
            cut = base::StopScope::stopped();
        }
        if (stopped != nullptr) *stopped = cut;
        // Where the files could not be written either (no descriptor left, say), that line is
        // the dump's one.
        if (!modules_error.empty() && !reported)
            log::problem("cannot read the module list (%s); profiles have no mappings",
                         modules_error.c_str());
        symbol_cache().end_dump();
    } catch (const std::bad_alloc&) {
        log::problem("out of memory while writing profiles; dump %u skipped", seq);
    }
    return seq;
}

}  // namespace gprof::writer
