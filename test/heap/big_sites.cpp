// Large allocation volumes for the statistical tests of the sampler: sites whose true totals are
// known, allocated without touching the memory (fast, little RSS). Prints TRUTH lines like
// known_allocs.cpp.
#include <cstdio>
#include <cstdlib>

#define NOINLINE __attribute__((noinline))

namespace {

void* volatile sink;
void* volatile kept[4000];

struct Truth {
    const char* name;
    long alloc_objects, alloc_space, inuse_objects, inuse_space;
};

NOINLINE Truth site_large_fn() {  // 4000 x 256 KiB; 1500 kept
    for (int i = 0; i < 4000; ++i) {
        void* p = malloc(256 << 10);
        if (i < 1500) kept[i] = p;
        else sink = p, free(p);
    }
    return {"site_large", 4000, 4000L << 18, 1500, 1500L << 18};
}

NOINLINE Truth site_medium_fn() {  // 40000 x 16 KiB, all freed
    for (int i = 0; i < 40000; ++i) {
        void* p = malloc(16 << 10);
        sink = p;
        free(p);
    }
    return {"site_medium", 40000, 40000L << 14, 0, 0};
}

NOINLINE Truth site_small_fn() {  // 2,000,000 x 256 B, all freed
    for (int i = 0; i < 2000000; ++i) {
        void* p = malloc(256);
        sink = p;
        free(p);
    }
    return {"site_small", 2000000, 2000000L * 256, 0, 0};
}

void* volatile odd_kept[100000];

// A size that is no allocator's size class: jemalloc serves 33 bytes from its 48-byte class, and
// when it samples for gprof it counts 48. Un-sampled as if 33 bytes had been counted, the
// estimate would be 45% high: several times the bound at this count.
NOINLINE Truth site_odd_fn() {  // 10,000,000 x 33 B; 100,000 kept
    for (int i = 0; i < 10000000; ++i) {
        void* p = malloc(33);
        if (i < 100000) odd_kept[i] = p;
        else sink = p, free(p);
    }
    return {"site_odd", 10000000, 10000000L * 33, 100000, 100000L * 33};
}

}  // namespace

int main() {
    Truth t[] = {site_large_fn(), site_medium_fn(), site_small_fn(), site_odd_fn()};
    for (const Truth& s : t)
        printf("TRUTH %s %ld %ld %ld %ld\n", s.name, s.alloc_objects, s.alloc_space,
               s.inuse_objects, s.inuse_space);
    return 0;
}
