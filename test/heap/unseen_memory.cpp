// Memory the heap profile cannot see: 192 MiB taken with mmap (as an allocator of the program's
// own would) or with malloc, every page touched, plus 1000 small allocations through malloc, then
// the at-exit dump. Usage: unseen_memory mmap|malloc. Prints "touched N MiB".
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    constexpr size_t kBytes = size_t{192} << 20;
    void* big = std::strcmp(argv[1], "mmap") == 0
                    ? mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0)
                    : std::malloc(kBytes);
    if (big == MAP_FAILED || big == nullptr) return 3;
    std::memset(big, 1, kBytes);
    static void* small[1000];
    for (void*& p : small) p = std::malloc(4096);
    std::printf("touched %zu MiB\n", kBytes >> 20);
    return 0;  // both stay in use at the at-exit dump
}
