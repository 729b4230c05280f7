// A C++ program built against gprof.hpp that uses every function of the C API: two threads label
// their work request=a and request=b (an allocation site and a CPU burner each), and the program
// writes its profiles through the API into the directory given as argv[1]. stdout is the same
// with or without gprof.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gprof.hpp"

namespace {

std::string g_dir;
FILE* g_results = nullptr;
std::vector<void*> g_kept_a, g_kept_b;

constexpr int kAllocsA = 3000, kAllocsB = 1000;

[[gnu::noinline]] void site_a() {
    for (int i = 0; i < kAllocsA; ++i) g_kept_a.push_back(new char[1000]);
}
[[gnu::noinline]] void site_b() {
    for (int i = 0; i < kAllocsB; ++i) g_kept_b.push_back(new char[1000]);
}

// A CPU burner that gives the same answer every time.
[[gnu::noinline]] unsigned long burn(unsigned long rounds) {
    unsigned long x = 1;
    for (unsigned long i = 0; i < rounds; ++i)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x;
}
[[gnu::noinline]] unsigned long burn_a(unsigned long rounds) {
    return burn(rounds);
}
[[gnu::noinline]] unsigned long burn_b(unsigned long rounds) {
    return burn(rounds);
}

void write_profile(const char* name, int debug) {
    std::string path = g_dir + "/" + name + "." + std::to_string(debug);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = gprof_write_profile(name, fd, debug);
    fprintf(g_results, "write.%s.%d=%d\n", name, debug, rc == 0 ? 0 : errno);
    close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    g_dir = argv[1];
    const bool present =
        gprof_write_profile != nullptr && gprof_dump != nullptr &&
        gprof_set_mem_profile_rate != nullptr && gprof_set_block_profile_rate != nullptr &&
        gprof_set_mutex_profile_fraction != nullptr && gprof_label_push != nullptr &&
        gprof_label_pop != nullptr && gprof_profile_new != nullptr &&
        gprof_profile_add != nullptr && gprof_profile_remove != nullptr &&
        gprof_profile_count != nullptr && gprof_read_memstats != nullptr;
    const bool absent = gprof_write_profile == nullptr && gprof_dump == nullptr &&
                        gprof_set_mem_profile_rate == nullptr && gprof_label_push == nullptr &&
                        gprof_label_pop == nullptr && gprof_profile_new == nullptr &&
                        gprof_read_memstats == nullptr && gprof_start_cpu_profile == nullptr &&
                        gprof_stop_cpu_profile == nullptr;
    FILE* f = fopen((g_dir + "/functions.txt").c_str(), "w");
    fprintf(f, "all_present=%d\nall_absent=%d\n", present, absent);
    fclose(f);
    if (present) {
        g_results = fopen((g_dir + "/results.txt").c_str(), "w");
        fprintf(g_results, "mem_rate.was=%lld\n",
                static_cast<long long>(gprof_set_mem_profile_rate(1)));
        fprintf(g_results, "block_rate.was=%lld\n",
                static_cast<long long>(gprof_set_block_profile_rate(-1)));
        fprintf(g_results, "mutex_fraction.was=%lld\n",
                static_cast<long long>(gprof_set_mutex_profile_fraction(-1)));
    }

    unsigned long answers[2] = {};
    std::thread a([&] {
        gprof::Label label("request", "a");
        site_a();
        answers[0] = burn_a(300000000UL);
    });
    std::thread b([&] {
        gprof::Label label("request", "b");
        site_b();
        answers[1] = burn_b(100000000UL);
    });
    a.join();
    b.join();

    if (present) {
        gprof_profile* sockets = gprof_profile_new("sockets");
        for (uintptr_t key = 0; key < 100; ++key) gprof_profile_add(sockets, key);
        for (uintptr_t key = 0; key < 40; ++key) gprof_profile_remove(sockets, key);
        fprintf(g_results, "profile_count=%lld\n",
                static_cast<long long>(gprof_profile_count(sockets)));
        {
            gprof::Label outer("phase", "write");
            fprintf(g_results, "label.pushed=%d\n", outer.pushed());
            for (const char* name :
                 {"heap", "allocs", "goroutine", "threadcreate", "block", "mutex", "sockets"}) {
                write_profile(name, 0);
                write_profile(name, 1);
            }
            write_profile("threads", 2);
        }
        gprof_memstats m{};
        fprintf(g_results, "memstats=%d\n", gprof_read_memstats(&m, sizeof m));
        fprintf(g_results, "dump=%d\n", gprof_dump());
        if (gprof_start_cpu_profile != nullptr && gprof_stop_cpu_profile != nullptr) {
            int fd =
                open((g_dir + "/cpu.0").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            fprintf(g_results, "cpu.start=%d\n", gprof_start_cpu_profile(fd));
            fprintf(g_results, "cpu.stop=%d\n", gprof_stop_cpu_profile());
            close(fd);
        }
        fclose(g_results);
    }
    printf("answers=%lu %lu objects=%zu %zu\n", answers[0], answers[1], g_kept_a.size(),
           g_kept_b.size());
    for (void* p : g_kept_a) delete[] static_cast<char*>(p);
    for (void* p : g_kept_b) delete[] static_cast<char*>(p);
    return 0;
}
