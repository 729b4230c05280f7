// Memory for gprof's tables comes straight from the kernel, not from the heap it profiles: the
// tables grow while a sample is being recorded (inside malloc), their size is what the README's
// `buck_hash_sys` (gprof's own tables) counts, and untouched reserved pages cost nothing.
#pragma once

#include <sys/mman.h>

#include <cstddef>

namespace gprof::base {

inline void* os_reserve(size_t bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
}

// Maps [p, p + bytes) of a reservation in one system call (MADV_POPULATE_WRITE, Linux 5.14), for
// memory about to be written all over: one fault per page costs more than populating the range at
// once. On an older kernel it does nothing, and the pages fault in one by one.
inline void os_prefault(void* p, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
    madvise(p, bytes, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)bytes;
#endif
}

inline void os_release(void* p, size_t bytes) {
    if (p) munmap(p, bytes);
}

}  // namespace gprof::base
