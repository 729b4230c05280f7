// A program whose allocations are known exactly. It prints one TRUTH line per site:
//   TRUTH <site> <alloc_objects> <alloc_space> <inuse_objects> <inuse_space>
// counting what is live at exit (nothing here is freed by static destructors), and with
// `--signal-dump DIR` it also asks for a dump mid-run (raise(SIGUSR2)) and waits for the file,
// printing MIDRUN lines with what is live at that moment. With `--until FILE` it writes its pid
// to FILE.pid after allocating, and waits (at most 60 s) for FILE to exist before it exits: a
// long-running process for `scripts/gprof dump`.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test/heap/site.h"

#define NOINLINE __attribute__((noinline))

namespace {

Site site_keep{"site_keep"}, site_churn{"site_churn"}, site_calloc{"site_calloc"},
    site_realloc{"site_realloc"}, site_aligned{"site_aligned"}, site_new{"site_new"},
    site_thread{"site_thread"};

void* volatile sink;
void* volatile kept[100000];
int nkept;

NOINLINE void site_keep_fn() {  // 1000 x 100 B, all kept
    for (int i = 0; i < 1000; ++i) {
        kept[nkept++] = malloc(100);
        site_keep.alloc(100);
    }
}

NOINLINE void site_churn_fn() {  // 500 x 4 KiB and 20 x 1 MiB, all freed
    for (int i = 0; i < 500; ++i) {
        void* p = malloc(4096);
        site_churn.alloc(4096);
        sink = p;
        free(p);
        site_churn.free(4096);
    }
    for (int i = 0; i < 20; ++i) {
        void* p = malloc(1 << 20);
        site_churn.alloc(1 << 20);
        sink = p;
        free(p);
        site_churn.free(1 << 20);
    }
}

NOINLINE void site_calloc_fn() {  // 200 x (10 x 33 B), half kept
    for (int i = 0; i < 200; ++i) {
        void* p = calloc(10, 33);
        site_calloc.alloc(330);
        if (i % 2) {
            kept[nkept++] = p;
        } else {
            free(p);
            site_calloc.free(330);
        }
    }
}

NOINLINE void site_realloc_fn() {  // malloc 10, realloc to 1000 then 50000: a move is free+alloc
    for (int i = 0; i < 50; ++i) {
        void* p = malloc(10);
        site_realloc.alloc(10);
        p = realloc(p, 1000);
        site_realloc.free(10);
        site_realloc.alloc(1000);
        p = realloc(p, 50000);
        site_realloc.free(1000);
        site_realloc.alloc(50000);
        kept[nkept++] = p;
    }
}

NOINLINE void site_aligned_fn() {  // posix_memalign and aligned_alloc, kept
    for (int i = 0; i < 64; ++i) {
        void* p = nullptr;
        if (posix_memalign(&p, 64, 192) != 0) abort();
        site_aligned.alloc(192);
        kept[nkept++] = p;
        kept[nkept++] = aligned_alloc(4096, 8192);
        site_aligned.alloc(8192);
    }
}

struct alignas(64) Wide {
    char bytes[320];
};

NOINLINE void site_new_fn() {  // new/delete forms: plain, array, over-aligned; 2/3 kept
    for (int i = 0; i < 300; ++i) {
        int* a = new int[25];  // 100 B
        site_new.alloc(100);
        Wide* w = new Wide;  // 320 B, aligned new
        site_new.alloc(320);
        std::string* s = new std::string;  // sizeof(std::string) = 32
        site_new.alloc(sizeof(std::string));
        kept[nkept++] = a;
        kept[nkept++] = w;
        delete s;
        site_new.free(sizeof(std::string));
    }
}

std::atomic<int> thread_slot{0};
void* volatile thread_kept[4][250];  // volatile: stores the compiler may not drop

NOINLINE void site_thread_fn(int t) {  // 4 threads x 250 x 64 B, kept
    for (int i = 0; i < 250; ++i) thread_kept[t][i] = malloc(64);
}


const Site* all_sites[] = {&site_keep, &site_churn, &site_calloc, &site_realloc, &site_aligned,
                           &site_new, &site_thread};

// Waits until a file ending in `.heap.pb.gz` shows up in dir (the dumper renames it complete).
bool wait_for_heap_file(const char* dir) {
    for (int i = 0; i < 1000; ++i) {
        DIR* d = opendir(dir);
        if (d) {
            bool found = false;
            while (dirent* e = readdir(d)) {
                size_t n = strlen(e->d_name);
                if (n > 11 && strcmp(e->d_name + n - 11, ".heap.pb.gz") == 0) found = true;
            }
            closedir(d);
            if (found) return true;
        }
        usleep(10000);
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    site_keep_fn();
    site_churn_fn();
    site_calloc_fn();
    site_realloc_fn();
    site_aligned_fn();
    site_new_fn();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back(site_thread_fn, t);
    for (auto& t : threads) t.join();
    for (int t = 0; t < 4; ++t)
        for (int i = 0; i < 250; ++i) site_thread.alloc(64);

    if (argc == 3 && strcmp(argv[1], "--signal-dump") == 0) {
        for (const Site* s : all_sites) s->print("MIDRUN");
        fflush(stdout);
        raise(SIGUSR2);
        if (!wait_for_heap_file(argv[2])) {
            fprintf(stderr, "no heap profile appeared\n");
            return 3;
        }
        // After the mid-run dump: free the kept 100 B objects, so the exit dump differs.
        for (int i = 0; i < 1000; ++i) {
            free(kept[i]);
            site_keep.free(100);
        }
    }
    if (argc == 3 && strcmp(argv[1], "--until") == 0) {
        std::string pid_file = std::string(argv[2]) + ".pid", tmp = pid_file + ".tmp";
        FILE* f = fopen(tmp.c_str(), "w");
        if (!f) return 4;
        fprintf(f, "%d\n", getpid());
        fclose(f);
        rename(tmp.c_str(), pid_file.c_str());
        for (int i = 0; i < 6000 && access(argv[2], F_OK) != 0; ++i) usleep(10000);
    }
    for (const Site* s : all_sites) s->print("TRUTH");
    return 0;
}
