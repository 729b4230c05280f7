/* Loaded with RTLD_DEEPBIND by deepbind (case 1a): its own malloc and free resolve in its own
   dependencies first (libc), not in the preloaded ones. */
#include <stdlib.h>
#include <string.h>

char* deep_make(size_t n) {
    char* p = malloc(n);
    if (p != NULL) memset(p, 'd', n);
    return p;
}

void deep_free(char* p) { free(p); }

size_t deep_check(char* p, size_t n) {
    size_t same = 0;
    for (size_t i = 0; i < n; ++i) same += p[i] == 'x';
    return same;
}
