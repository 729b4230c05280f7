// Loads the library argv[1], calls its plugin_run(100), unloads it; then the same with argv[2]
// (test/heap/swap_plugin.cpp, the same code with another frame size), which the loader usually
// maps where the first was. Something else may take that place in between (a table of gprof's
// growing, at GPROF_MEM_PROFILE_RATE=1): the pair is tried again, at most 20 times, until both
// were at the same address. Prints `SAME 1` and `AT <address of plugin_run>` for that pair (or
// `SAME 0`), and `TRUTH site_swap ...` for every allocation of 64 bytes they made (each library's
// kept array goes with it, unfreed).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>

#include "test/heap/site.h"

namespace {

Site site{"site_swap"};

// Loads, runs and unloads one library; its plugin_run's address, 0 on failure.
uintptr_t run_once(const char* path) {
    void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 0;
    }
    auto run = reinterpret_cast<void (*)(int)>(dlsym(lib, "plugin_run"));
    if (run == nullptr) return 0;
    run(100);
    for (int j = 0; j < 100; ++j) site.alloc(64);
    auto at = reinterpret_cast<uintptr_t>(run);
    return dlclose(lib) == 0 ? at : 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    bool same = false;
    uintptr_t at = 0;
    for (int attempt = 0; attempt < 20 && !same; ++attempt) {
        uintptr_t at_each[2];
        for (int i = 0; i < 2; ++i) {  // one call site for both: their stacks can be the same
            at_each[i] = run_once(argv[1 + i]);
            if (at_each[i] == 0) return 1;
        }
        at = at_each[1];
        same = at_each[0] == at_each[1];
    }
    printf("SAME %d\nAT %#lx\n", same ? 1 : 0, static_cast<unsigned long>(at));
    site.print("TRUTH");
    return 0;
}
