// Go's pprof.Lookup(name).WriteTo(w, debug): one profile by name, on request (the C API's
// gprof_write_profile, the HTTP server's /debug/pprof/<name>), built from the same records and
// builders as a dump's files.
//
// The caller holds the re-entry guard and keeps dumps out meanwhile (the symbol cache is shared
// with them: preload/dumper.h's run_exclusive).
#pragma once

#include <string>
#include <string_view>

#include "record/cpu_samples.h"
#include "record/custom_profiles.h"
#include "writer/profile_kinds.h"

namespace gprof::writer {

enum class NamedResult {
    Written,
    UnknownName,   // no built-in or custom profile of that name (Go's Lookup returns nil)
    UnknownDebug,  // debug is not 0, 1 or 2
    Failed,        // building failed (out of memory): *error says why
};

// Names: heap, allocs (the heap profile with alloc_space shown first), goroutine and threads (the
// same), threadcreate, block, mutex, and every custom profile (record/custom_profiles.h).
// debug 0: the gzipped protobuf; 1: Go's legacy text form; 2: the same, except that goroutine and
// threads give every thread's stack in the shape of Go's goroutine dump.
NamedResult write_named_profile(std::string_view name, int debug, std::string* out,
                                std::string* error);

// The cpu profile of an on-demand session (the C API's gprof_stop_cpu_profile, the HTTP server's
// profile?seconds=N), gzipped, named and mapped as a dump's. Same caller's duties as above.
bool write_cpu_profile(const record::CpuProfileData& data, std::string* out, std::string* error);

// Whether `name` is a built-in profile's (a custom profile may not take it).
bool is_builtin_profile_name(std::string_view name);

// The heap profile's text form ends with Go's `# runtime.MemStats` block, which the C API's
// memstats make (api/memstats.cpp registers it at start-up; until then the block is left out).
void set_memstats_text(void (*append_memstats)(std::string* out));

// A custom profile's protobuf (Go's printCountProfile: sample and period type <name>/count, one
// sample per stack valued by how many keys it added that are still in the profile).
bool build_custom_profile(const record::CustomProfile& profile, const BuildContext& context,
                          std::string* out, std::string* error);

}  // namespace gprof::writer
