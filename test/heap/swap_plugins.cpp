// Loads the library argv[1], calls its plugin_run(100), unloads it; then the same with argv[2]
// (test/heap/swap_plugin.cpp, the same code with another frame size, which the loader usually
// maps where the first was). Prints `SAME 1` when both were at the same address, and
// `TRUTH site_swap ...` for the 200 allocations of 64 bytes they made (each library's kept
// array goes with it, unfreed).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>

#include "test/heap/site.h"

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    Site site{"site_swap"};
    uintptr_t at[2] = {};
    for (int i = 0; i < 2; ++i) {
        void* lib = dlopen(argv[1 + i], RTLD_NOW | RTLD_LOCAL);
        if (lib == nullptr) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 1;
        }
        auto run = reinterpret_cast<void (*)(int)>(dlsym(lib, "plugin_run"));
        if (run == nullptr) return 1;
        at[i] = reinterpret_cast<uintptr_t>(run);
        run(100);
        for (int j = 0; j < 100; ++j) site.alloc(64);
        if (dlclose(lib) != 0) return 1;
    }
    printf("SAME %d\n", at[0] == at[1] ? 1 : 0);
    site.print("TRUTH");
    return 0;
}
