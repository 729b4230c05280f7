// A program for the symbol tests: allocations reached through templates, inlined helpers, lambdas,
// std::function, libc's qsort (a libc frame in the stack) and std::thread (libstdc++'s thread
// entry in the stack). Built -O2 without frame pointers, with DWARF. The lines marked "LINE:<tag>"
// are where a test expects samples; the test finds them by the tag, not by number.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#define NOINLINE __attribute__((noinline))

namespace {

void* volatile kept[200000];
int nkept;

inline __attribute__((always_inline)) void keep(void* p) {
    kept[nkept++ % 200000] = p;
}

// Inlined into its callers: the allocation's line is here, the call's line in the caller.
inline __attribute__((always_inline)) void* grab(size_t n) {
    return malloc(n);  // LINE:grab
}

template <typename T>
struct Pool {
    NOINLINE T* make(int n) {
        T* p = new T[n];  // LINE:pool_make
        keep(p);
        return p;
    }
    inline __attribute__((always_inline)) void fill(int times) {
        for (int i = 0; i < times; ++i) keep(grab(sizeof(T) * 16));  // LINE:pool_fill
    }
};

NOINLINE void big_site(int times) {
    for (int i = 0; i < times; ++i) {
        keep(malloc(256 * 1024));  // LINE:big_site
    }
}

NOINLINE void nested(int times) {
    Pool<double> pool;
    pool.fill(times);  // LINE:nested_fill
    Pool<std::string> strings;
    for (int i = 0; i < times / 10 + 1; ++i) strings.make(4);
}

NOINLINE void with_lambda(int times) {
    auto allocate = [](size_t n) { keep(grab(n)); };  // LINE:lambda
    for (int i = 0; i < times; ++i) allocate(100 + i % 7);
    std::function<void(int)> f = [](int n) {
        keep(malloc(static_cast<size_t>(n)));
    };  // LINE:function
    for (int i = 0; i < times; ++i) f(64);
}

int compare_and_allocate(const void* a, const void* b) {
    keep(malloc(48));  // LINE:compare
    return *static_cast<const int*>(a) - *static_cast<const int*>(b);
}

NOINLINE void through_libc() {
    std::vector<int> values(2000);
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int>((i * 7919) % 2003);
    qsort(values.data(), values.size(), sizeof(int), compare_and_allocate);
}

NOINLINE void in_thread(int times) {
    std::thread t([times] {
        std::vector<std::string> words;
        for (int i = 0; i < times; ++i) words.push_back(std::string(100, 'x'));  // LINE:thread
        for (auto& w : words) keep(strdup(w.c_str()));
    });
    t.join();
}

// 200 instantiations of one template, each an allocation site of its own with an inlined chain.
template <int N>
NOINLINE void site() {
    Pool<char[N + 1]> pool;
    pool.fill(1);
}

template <int... N>
void all_sites(std::integer_sequence<int, N...>) {
    (site<N>(), ...);
}

}  // namespace

// --delete-self: removes its own executable file after allocating; --replace-self: and puts another
// file (a copy of /bin/true) under its name, before gprof dumps at exit.
int main(int argc, char** argv) {
    int times = 2000;
    bool delete_self = false, replace_self = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--delete-self") == 0)
            delete_self = true;
        else if (std::strcmp(argv[i], "--replace-self") == 0)
            replace_self = true;
        else
            times = atoi(argv[i]);
    }
    big_site(40);  // LINE:main_big_site
    nested(times);
    with_lambda(times);
    through_libc();
    in_thread(times);
    all_sites(std::make_integer_sequence<int, 200>());
    if (delete_self || replace_self) {
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) return 1;
        self[n] = '\0';
        if (unlink(self) != 0) return 1;
        if (replace_self) {
            FILE* in = fopen("/bin/true", "rb");
            FILE* out = fopen(self, "wb");
            if (in == nullptr || out == nullptr) return 1;
            char buffer[65536];
            size_t got;
            while ((got = fread(buffer, 1, sizeof buffer, in)) > 0) fwrite(buffer, 1, got, out);
            fclose(in);
            fclose(out);
        }
    }
    printf("allocated %d\n", nkept);
    return 0;
}
