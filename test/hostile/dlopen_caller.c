/* dlopen resolves names relative to its caller (hazards 1a, the dlopen shim): this executable's
   DT_RUNPATH ($ORIGIN/runpath) is the only way to find librunpath_only.so, and "$ORIGIN" in a
   name is this executable's directory. Then dlerror() after failing dlopens: a missing library,
   and a mode without RTLD_NOW or RTLD_LAZY. Usage: dlopen_caller now|deepbind NAME */
#include "hostile.h"

static void print_error(const char* what) {
    const char* first = dlerror();
    printf("%s: %s\n", what, first != NULL ? first : "(no error)");
    const char* second = dlerror();
    printf("%s, then: %s\n", what, second != NULL ? second : "(no error)");
}

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    const int bind = strcmp(argv[1], "deepbind") == 0 ? RTLD_DEEPBIND : 0;
    void* h = dlopen(argv[2], RTLD_NOW | bind);
    if (h == NULL) {
        printf("FAIL: %s\n", dlerror());
        return 1;
    }
    int (*answer)(void) = (int (*)(void))dlsym(h, "runpath_only_answer");
    Dl_info info;
    if (answer == NULL || dladdr((void*)answer, &info) == 0) hostile_fail("dlsym");
    printf("answer %d from %s\n", answer(), info.dli_fname);
    if (dlopen("libgprof-test-no-such-library.so", RTLD_NOW | bind) != NULL) return 3;
    print_error("missing library");
    if (dlopen(argv[2], bind) != NULL) return 3;
    print_error("no RTLD_NOW or RTLD_LAZY");
    print_error("nothing since");
    dlclose(h);
    return 0;
}
