// The program `scripts/gprof run` profiles when given none: a few allocation sites that a heap
// profile should tell apart, one leak, and a few threads.
#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

// Grows and keeps an index: in use at exit.
__attribute__((noinline)) std::map<std::string, std::vector<int>> build_index(int words) {
    std::map<std::string, std::vector<int>> index;
    for (int i = 0; i < words; ++i) {
        std::string word = "word-" + std::to_string(i % 5000) + "-" + std::string(i % 40, 'x');
        index[word].push_back(i);
    }
    return index;
}

// Forgets its buffers: a leak.
__attribute__((noinline)) void leak_buffers(int n) {
    for (int i = 0; i < n; ++i) {
        char* buf = static_cast<char*>(malloc(64 * 1024));
        memset(buf, i, 64 * 1024);
    }
}

// Allocates and frees a lot: large alloc_space, nothing in use.
__attribute__((noinline)) size_t compress_chunk(size_t size) {
    std::vector<unsigned char> in(size), out(size / 2 + 64);
    for (size_t i = 0; i < size; ++i) in[i] = static_cast<unsigned char>(i * 31);
    size_t o = 0;
    for (size_t i = 0; i + 1 < size; i += 2) out[o++ % out.size()] = in[i] ^ in[i + 1];
    return out[size / 4];
}

void worker(int id, size_t* result) {
    pthread_setname_np(pthread_self(), ("demo-worker-" + std::to_string(id)).c_str());
    size_t sum = 0;
    for (int i = 0; i < 400; ++i) sum += compress_chunk(size_t{16} * 1024 * (1 + (i + id) % 16));
    *result = sum;
}

}  // namespace

int main() {
    std::vector<size_t> results(3);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) threads.emplace_back(worker, i, &results[i]);
    auto index = build_index(200000);
    leak_buffers(200);
    for (auto& t : threads) t.join();
    size_t total = 0;
    for (size_t r : results) total += r;
    printf("demo: %zu index entries, checksum %zu\n", index.size(), total);
    return 0;
}
