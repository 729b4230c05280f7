// Start-up and exit survival (after glibc's tst-malloc-thread-exit).
//
//  - libearly_lib.so's constructor allocated before main (maybe before gprof's constructor);
//  - short threads allocate in their thread_local destructors and pthread key destructors
//    (the key destructor re-arms itself once, so it runs a second round);
//  - the main thread's thread_local destructor, two atexit handlers and a static destructor
//    allocate during exit;
//  - four detached threads never stop allocating, and main returns while they run.
//
// The output is fixed (the e2e suite compares it with the run without gprof) and the exit status
// is 0.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" const char* early_lib_status(void);

namespace {

constexpr int kSpinners = 4;
constexpr int kShortThreads = 8;

std::atomic<long> g_spins[kSpinners];
std::atomic<int> g_tls_dtors{0};
std::atomic<int> g_key_dtors{0};
pthread_key_t g_key;
pthread_t g_main_thread;

// Allocates forever: a ring of blocks of varying sizes, freed and replaced, sometimes realloc'd.
void* spinner(void* arg) {
    const long index = reinterpret_cast<long>(arg);
    unsigned x = 2463534242u + static_cast<unsigned>(index) * 7919u;
    void* ring[32] = {};
    for (;;) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        unsigned slot = x % 32;
        if (x % 16 == 0 && ring[slot] != nullptr) {
            void* r = std::realloc(ring[slot], 16 + x % 50000);
            if (r != nullptr) ring[slot] = r;
        } else {
            std::free(ring[slot]);
            ring[slot] = std::malloc(8 + x % 3000);
            if (ring[slot] != nullptr) std::memset(ring[slot], 0x33, 8);
        }
        g_spins[index].fetch_add(1, std::memory_order_relaxed);
    }
    return nullptr;
}

struct TlsThing {
    std::string name;
    std::vector<int> values;
    TlsThing() : name("a thread_local object with a long enough name"), values(100, 7) {}
    ~TlsThing() {
        // Allocation in a thread_local destructor, late in the thread's life.
        std::string s = name + name + " is being destroyed";
        std::vector<int> w(1000, static_cast<int>(s.size()));
        void* p = std::malloc(5000);
        if (p != nullptr) std::memset(p, 1, 5000);
        std::free(p);
        if (w.size() == 1000 && !s.empty()) g_tls_dtors.fetch_add(1);
        if (pthread_equal(pthread_self(), g_main_thread))
            std::printf("main thread's thread_local destructor ran (%zu)\n", values.size());
    }
};
thread_local TlsThing t_thing;

struct KeyValue {
    int round;
    char text[100];
};

// glibc runs key destructors after the thread's TLS destructors, and again (up to 4 rounds) for
// keys that a destructor set anew.
void key_destructor(void* v) {
    auto* kv = static_cast<KeyValue*>(v);
    if (kv->round == 0) {
        auto* next = static_cast<KeyValue*>(std::malloc(sizeof(KeyValue)));
        next->round = 1;
        std::strcpy(next->text, "second round");
        pthread_setspecific(g_key, next);
    }
    char* s = strdup(kv->text);
    void* big = std::malloc(200000);
    if (big != nullptr) std::memset(big, 2, 200000);
    std::free(big);
    std::free(s);
    std::free(kv);
    g_key_dtors.fetch_add(1);
}

void* short_thread(void* arg) {
    t_thing.values.push_back(static_cast<int>(reinterpret_cast<long>(arg)));
    auto* kv = static_cast<KeyValue*>(std::malloc(sizeof(KeyValue)));
    kv->round = 0;
    std::strcpy(kv->text, "first round");
    pthread_setspecific(g_key, kv);
    std::vector<std::string> junk(100, std::string(50, 'j'));
    return nullptr;
}

void at_exit_first() {
    void* p = std::malloc(100);
    void* q = std::realloc(p, 100000);
    if (q != nullptr) p = q;
    q = std::realloc(p, 10);
    if (q != nullptr) p = q;
    std::free(p);
    std::printf("atexit handler 1 ran\n");
}

void at_exit_second() {
    char* s = strdup("atexit");
    void* c = std::calloc(100, 100);
    std::string str(10000, 'a');
    std::free(c);
    std::free(s);
    std::printf("atexit handler 2 ran (%zu)\n", str.size());
}

struct StaticObject {
    ~StaticObject() {
        std::vector<std::string> v(100, std::string(100, 's'));
        std::printf("static destructor ran (%zu)\n", v.size());
    }
} g_static_object;

}  // namespace

int main() {
    g_main_thread = pthread_self();
    std::printf("%s\n", early_lib_status());

    pthread_key_create(&g_key, key_destructor);
    std::vector<pthread_t> threads(kShortThreads);
    for (int i = 0; i < kShortThreads; ++i)
        pthread_create(&threads[i], nullptr, short_thread, reinterpret_cast<void*>(long{i}));
    for (pthread_t t : threads) pthread_join(t, nullptr);
    std::printf("short threads: %d, thread_local destructors: %d, key destructors: %d\n",
                kShortThreads, g_tls_dtors.load(), g_key_dtors.load());

    t_thing.values.push_back(1);  // the main thread's copy is destroyed in exit()

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (long i = 0; i < kSpinners; ++i) {
        pthread_t t;
        if (pthread_create(&t, &attr, spinner, reinterpret_cast<void*>(i)) != 0) {
            std::printf("pthread_create failed\n");
            return 1;
        }
    }
    pthread_attr_destroy(&attr);
    for (int i = 0; i < kSpinners; ++i)
        while (g_spins[i].load(std::memory_order_relaxed) < 2000) usleep(100);

    std::atexit(at_exit_first);
    std::atexit(at_exit_second);
    std::printf("main returns while %d threads allocate\n", kSpinners);
    return 0;
}
