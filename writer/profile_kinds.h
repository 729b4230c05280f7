// Every profile kind a dump can write, one row each: its name, the records it switches on at
// start-up (with the settings handed down to them), whether it has anything to say, and its
// builder. A new kind is a row here and its own builder's files.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/config.h"
#include "symbolize/modules.h"
#include "symbolize/symbols.h"

namespace gprof::writer {

// What a builder is given besides its records: where names come from, and the settings of the
// dump.
struct BuildContext {
    const symbolize::ModuleSnapshot* modules;
    symbolize::SymbolCache* symbols;
    int dump_signal;  // 0: none (the threads profile takes its stacks with another)
};

struct ProfileKind {
    uint32_t bit;      // in Config::profiles (GPROF_PROFILES)
    const char* name;  // <profile> in the file's name
    // Switches the kind's records on (with its settings) or off; null: nothing to switch.
    void (*start)(const Config& c, bool on);
    bool (*has_samples)();
    // Written by the at-exit dump too (the threads profile is not: it would show only the exit).
    bool at_exit;
    bool (*build)(const BuildContext& context, std::string* out, std::string* error);
    // The build takes the samples it writes (the CPU profile's since the previous dump), so a dump
    // that a fork stops (writer/dump.h) still builds and writes this one whole.
    bool takes_samples;
};

// In the order a dump writes them: the threads profile last, so that its file tells that a dump
// on request is complete.
std::span<const ProfileKind> profile_kinds();

}  // namespace gprof::writer
