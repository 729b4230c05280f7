// A call site of a heap test program, with what it allocated and what it still holds, as the
// profile should show them: printed as
//   <TAG> <site> <alloc_objects> <alloc_space> <inuse_objects> <inuse_space>
// (TAG is TRUTH for the at-exit truth; test/e2e/heap_test.cpp reads these lines).
#pragma once

#include <cstdio>

struct Site {
    const char* name;
    long alloc_objects = 0, alloc_space = 0, inuse_objects = 0, inuse_space = 0;
    void alloc(long n) { ++alloc_objects, alloc_space += n, ++inuse_objects, inuse_space += n; }
    void free(long n) { --inuse_objects, inuse_space -= n; }
    void print(const char* tag) const {
        printf("%s %s %ld %ld %ld %ld\n", tag, name, alloc_objects, alloc_space, inuse_objects,
               inuse_space);
    }
};
