// Loads a library (argv[1]), calls its plugin_allocate, and with --dlclose unloads it before the
// program exits (and gprof dumps at exit). With --jit it also runs a piece of machine code from an
// anonymous executable mapping that calls an allocating function (x86-64 only): code with no file
// and no symbols.
#include <dlfcn.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

void* volatile kept[1024];

extern "C" __attribute__((noinline)) void loader_called_from_jit() {
    for (int i = 0; i < 100; ++i) kept[i] = malloc(3000);
    asm volatile("");
}

int run_jit() {
#if defined(__x86_64__)
    // sub rsp,8; movabs rax,<fn>; call rax; add rsp,8; ret
    unsigned char code[] = {0x48, 0x83, 0xec, 0x08, 0x48, 0xb8, 0,    0,    0,    0,   0,
                            0,    0,    0,    0xff, 0xd0, 0x48, 0x83, 0xc4, 0x08, 0xc3};
    void (*target)() = loader_called_from_jit;
    std::memcpy(code + 6, &target, sizeof target);
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return 1;
    std::memcpy(page, code, sizeof code);
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) return 1;
    reinterpret_cast<void (*)()>(page)();
    return 0;
#else
    loader_called_from_jit();
    return 0;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    bool close_it = false, jit = false;
    for (int i = 2; i < argc; ++i) {
        if (std::strcmp(argv[i], "--dlclose") == 0) close_it = true;
        if (std::strcmp(argv[i], "--jit") == 0) jit = true;
    }
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    auto allocate = reinterpret_cast<void (*)(int)>(dlsym(lib, "plugin_allocate"));
    if (allocate == nullptr) return 1;
    allocate(200);
    if (close_it) {
        if (dlclose(lib) != 0) return 1;
        // Really gone? (A library still referenced elsewhere would stay mapped.)
        if (dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD) == nullptr) printf("unloaded\n");
    }
    if (jit && run_jit() != 0) return 1;
    printf("done\n");
    return 0;
}
