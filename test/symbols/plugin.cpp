// A library the loader test program dlopens (and maybe dlcloses before the dump). Its allocations
// go through an internal function and an inlined helper; plugin_allocate is its only export
// besides what C++ needs.
#include <cstdlib>

namespace {

void* volatile kept[4096];
int nkept;

inline __attribute__((always_inline)) void* plugin_grab(size_t n) {
    return malloc(n);  // LINE:plugin_grab
}

__attribute__((noinline)) void plugin_internal(int times) {
    for (int i = 0; i < times; ++i)
        kept[nkept++ % 4096] = plugin_grab(1000);  // LINE:plugin_internal
}

}  // namespace

extern "C" __attribute__((visibility("default"), noinline)) void plugin_allocate(int times) {
    plugin_internal(times);
    for (int i = 0; i < times; ++i) kept[nkept++ % 4096] = malloc(2000);  // LINE:plugin_allocate
    asm volatile("");
}
