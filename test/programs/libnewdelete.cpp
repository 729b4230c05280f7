// A C++ module for dlopen_new.c: loaded into a C program (no libstdc++ until dlopen), its
// `new int`/`delete` must bind to the preloaded gprof's _Znwm/_ZdlPvm, not to libstdc++'s.
#include <cstddef>

namespace {
int* volatile g_slot;  // volatile: each new and delete really happens
}

extern "C" __attribute__((visibility("default"))) void churn(int n) {
    for (int i = 0; i < n; ++i) {
        g_slot = new int(i);
        delete g_slot;
    }
}
