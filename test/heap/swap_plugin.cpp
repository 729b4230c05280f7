// A library built twice (meson.build: libswap256.so and libswap512.so) whose code is the same
// instruction for instruction but for the size of one frame (FRAME): loaded one after the other at
// the same address, the same return address then needs a different rule to find its caller. A
// stack walk that kept the first library's rules after it was unloaded would walk the second's
// stacks wrongly (test/heap/swap_plugins.cpp).
#include <cstdlib>

#define NOINLINE __attribute__((noinline))

namespace {
void* volatile kept[256];
}

NOINLINE void swap_site_fn(int n) {
    for (int i = 0; i < n; ++i) kept[i % 256] = malloc(64);
}

NOINLINE void swap_middle_fn(int n) {
    volatile char pad[FRAME];  // 256 or 512: `sub $0x108,%rsp` or `sub $0x208,%rsp`, same length
    pad[0] = 0;
    swap_site_fn(n);
    pad[1] = static_cast<char>(pad[0] + 1);
}

extern "C" __attribute__((visibility("default"))) void plugin_run(int n) {
    swap_middle_fn(n);
}
