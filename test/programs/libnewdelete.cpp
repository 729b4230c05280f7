// A C++ module for dlopen_new.c: loaded into a C program (no libstdc++ until dlopen), its
// `new int`/`delete` must bind to the preloaded gprof's _Znwm/_ZdlPvm, not to libstdc++'s.
#include <cstddef>
#include <new>

namespace {
int* volatile g_slot;  // volatile: each new and delete really happens
}

extern "C" __attribute__((visibility("default"))) void churn(int n) {
    for (int i = 0; i < n; ++i) {
        g_slot = new int(i);
        delete g_slot;
    }
}

namespace {
int g_handler_calls = 0;
void count_and_give_up() {
    if (++g_handler_calls == 2) std::set_new_handler(nullptr);  // then operator new throws
}
}  // namespace

// The new-handler contract from a module whose libstdc++ the program loaded only locally: the
// handler set here must be the one a failing operator new calls (twice: the second call removes
// it), and bad_alloc must reach this catch. Returns the calls, or -1 if nothing was thrown.
extern "C" __attribute__((visibility("default"))) int new_handler_calls() {
    g_handler_calls = 0;
    std::set_new_handler(count_and_give_up);
    try {
        void* p = ::operator new(std::size_t{1} << 62);
        ::operator delete(p);
        return -1;
    } catch (const std::bad_alloc&) {
        return g_handler_calls;
    }
}
