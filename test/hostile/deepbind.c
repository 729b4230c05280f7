/* RTLD_DEEPBIND (hazards 1a): a library opened with it binds malloc and free to libc's even under
   a preload. Blocks cross in both directions: made by the library and freed by the program, made
   by the program and freed by the library. Usage: deepbind LIB */
#include "hostile.h"

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    void* h = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
    if (h == NULL) {
        fprintf(stderr, "FAIL: %s\n", dlerror());
        return 2;
    }
    char* (*make)(size_t) = (char* (*)(size_t))dlsym(h, "deep_make");
    void (*lib_free)(char*) = (void (*)(char*))dlsym(h, "deep_free");
    size_t (*check)(char*, size_t) = (size_t(*)(char*, size_t))dlsym(h, "deep_check");
    if (make == NULL || lib_free == NULL || check == NULL) hostile_fail("dlsym");
    long good = 0;
    for (int i = 0; i < 1000; ++i) {
        size_t n = 16 + (size_t)i * 97 % 100000;
        char* p = make(n);
        good += p != NULL && p[n - 1] == 'd';
        free(p);
        char* q = malloc(n);
        memset(q, 'x', n);
        good += check(q, n) == n;
        lib_free(q);
    }
    dlclose(h);
    printf("crossed blocks intact: %ld of 2000\n", good);
    return 0;
}
