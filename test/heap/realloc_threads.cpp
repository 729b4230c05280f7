// Threads that realloc, allocate and free objects the default rate samples with certainty (16 MiB
// and up: each escapes with probability exp(-32)), all at once, so the heap profile must equal
// the truth exactly. With gprof's jemalloc, jemalloc reports the end of a moved realloc's old
// block after the move, when another thread may already have been handed that address and had
// its own sample there: the profile must tell the two lives apart. Sizes are varied so that
// reallocs both move and resize in place. Memory is not touched beyond what realloc copies.
// Prints TRUTH lines like known_allocs.cpp.
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#define NOINLINE __attribute__((noinline))

namespace {

constexpr size_t kBig = size_t{16} << 20;
constexpr int kThreads = 4, kRounds = 60;

struct Count {
    long alloc_objects = 0, alloc_space = 0, inuse_objects = 0, inuse_space = 0;
    void alloc(size_t n) { ++alloc_objects, alloc_space += n, ++inuse_objects, inuse_space += n; }
    void free(size_t n) { --inuse_objects, inuse_space -= n; }
};

std::vector<void*> kept;
void* volatile sink;  // after each call, so no call becomes a tail call that drops the site

NOINLINE void* site_realloc_threads_fn(void* p, size_t n) {
    void* q = realloc(p, n);
    sink = q;
    return q;
}

NOINLINE void* site_malloc_threads_fn(size_t n) {
    void* p = malloc(n);
    sink = p;
    return p;
}

void worker(int id, Count* grown, Count* fresh, void** keep) {
    unsigned state = 2166136261u * static_cast<unsigned>(id + 1);
    auto next = [&] { return state = state * 1103515245u + 12345u; };
    size_t a_size = kBig;
    void* a = site_realloc_threads_fn(nullptr, a_size);  // realloc(NULL) is a malloc
    grown->alloc(a_size);
    for (int round = 0; round < kRounds; ++round) {
        size_t n = kBig + (next() >> 8) % (kBig / 2);  // 16-24 MiB: some in place, some moved
        void* q = site_realloc_threads_fn(a, n);
        if (q == nullptr) std::abort();
        grown->free(a_size);
        grown->alloc(n);
        a = q, a_size = n;
        void* b = site_malloc_threads_fn(kBig);
        fresh->alloc(kBig);
        free(b);
        fresh->free(kBig);
    }
    *keep = a;
}

}  // namespace

int main() {
    std::vector<Count> grown(kThreads), fresh(kThreads);
    kept.resize(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
        threads.emplace_back(worker, i, &grown[i], &fresh[i], &kept[i]);
    for (auto& t : threads) t.join();
    Count g, f;
    for (int i = 0; i < kThreads; ++i) {
        g.alloc_objects += grown[i].alloc_objects, g.alloc_space += grown[i].alloc_space;
        g.inuse_objects += grown[i].inuse_objects, g.inuse_space += grown[i].inuse_space;
        f.alloc_objects += fresh[i].alloc_objects, f.alloc_space += fresh[i].alloc_space;
        f.inuse_objects += fresh[i].inuse_objects, f.inuse_space += fresh[i].inuse_space;
    }
    printf("TRUTH site_realloc_threads %ld %ld %ld %ld\n", g.alloc_objects, g.alloc_space,
           g.inuse_objects, g.inuse_space);
    printf("TRUTH site_malloc_threads %ld %ld %ld %ld\n", f.alloc_objects, f.alloc_space,
           f.inuse_objects, f.inuse_space);
    return 0;
}
