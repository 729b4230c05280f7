// Producer threads that end while a consumer thread is still freeing what they allocated: the
// heap profile must show everything freed, and the memory gprof's jemalloc keeps for each
// thread's samples must go with the thread even when another thread frees its last sample at the
// moment it exits. Four producers at a time, kProducers in all, each allocating 64 blocks of
// 64 KiB (sampled with probability 1 - exp(-1/8) at the default rate): half freed by the producer
// itself, half handed to the consumer through a queue. Prints a TRUTH line like known_allocs.cpp
// (nothing in use at the end) and "RSS_GROWTH_KIB n" from the 200th producer to the end.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "test/heap/resident.h"

#define NOINLINE __attribute__((noinline))

namespace {

constexpr int kProducers = 1000, kBlocks = 64;
constexpr size_t kBlock = 64 * 1024;

std::mutex queue_lock;
std::vector<void*> queue;
std::atomic<bool> producing{true};
void* volatile sink;

NOINLINE void* site_handoff_fn(size_t n) {
    void* p = malloc(n);
    sink = p;
    return p;
}

void produce() {
    std::vector<void*> own;
    for (int k = 0; k < kBlocks; ++k) {
        void* p = site_handoff_fn(kBlock);
        if (p == nullptr) std::exit(1);
        static_cast<char*>(p)[0] = 1;
        if (k % 2 != 0) {
            own.push_back(p);
        } else {
            std::lock_guard<std::mutex> guard(queue_lock);
            queue.push_back(p);
        }
    }
    for (void* p : own) free(p);
}

void consume() {
    for (;;) {
        std::vector<void*> taken;
        {
            std::lock_guard<std::mutex> guard(queue_lock);
            taken.swap(queue);
        }
        for (void* p : taken) free(p);
        if (taken.empty()) {
            if (!producing.load()) return;
            usleep(50);
        }
    }
}

}  // namespace

int main() {
    std::thread consumer(consume);
    long base = 0;
    for (int i = 0; i < kProducers; i += 4) {
        std::thread producers[4];
        for (std::thread& t : producers) t = std::thread(produce);
        for (std::thread& t : producers) t.join();
        if (i == 200) base = resident_kib();
    }
    producing.store(false);
    consumer.join();
    long total = long{kProducers} * kBlocks * static_cast<long>(kBlock);
    std::printf("TRUTH site_handoff %ld %ld 0 0\n", long{kProducers} * kBlocks, total);
    std::printf("RSS_GROWTH_KIB %ld\n", resident_kib() - base);
    return 0;
}
