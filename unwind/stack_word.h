// What gprof's walks read of a stack, and where they stop.
#pragma once

#include <cstdint>

namespace gprof::unwind {

// A word of the thread's stack, read in assembly: the words a walk reads belong to other frames,
// which a sanitizer's instrumentation would take for out-of-bounds accesses.
[[gnu::always_inline]] inline uintptr_t load_stack_word(uintptr_t address) {
    uintptr_t v;
    asm("movq %1, %0" : "=r"(v) : "m"(*reinterpret_cast<const uintptr_t*>(address)));
    return v;
}

// libunwind's trace stops at a return address below this (a zeroed or garbage slot), and so do
// gprof's walks.
constexpr uintptr_t kLowestReturnAddress = 0x4000;

}  // namespace gprof::unwind
