// Memory for gprof's tables comes straight from the kernel, not from the heap it profiles: the
// tables grow while a sample is being recorded (inside malloc), their size is what "the library's
// own memory" means in the README, and untouched reserved pages cost nothing.
#pragma once

#include <sys/mman.h>

#include <cstddef>

namespace gprof::record {

inline void* os_reserve(size_t bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? nullptr : p;
}

inline void os_release(void* p, size_t bytes) {
    if (p) munmap(p, bytes);
}

}  // namespace gprof::record
