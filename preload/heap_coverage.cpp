#include "preload/heap_coverage.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/files.h"
#include "base/log.h"
#include "base/notes.h"
#include "preload/backing.h"
#include "record/heap_profile.h"
#include "record/labels.h"
#include "record/stack_table.h"

namespace gprof::heap_coverage {
namespace {

// Said where more than this is unseen, and the seen part is under a quarter of the whole: thread
// stacks and a program's own buffers of a few MiB stay below it, and gprof's tables are counted
// as seen.
constexpr uint64_t kMinUnseen = uint64_t{64} << 20;

std::atomic<bool> g_said{false};

// RssAnon from /proc/self/status, in bytes; 0 if it cannot be read.
uint64_t anonymous_resident() {
    int fd = base::open_read_only("/proc/self/status");
    if (fd < 0) return 0;
    char text[4096];
    ssize_t n;
    do {
        n = read(fd, text, sizeof text - 1);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0) return 0;
    text[n] = '\0';
    const char* at = strstr(text, "\nRssAnon:");
    if (at == nullptr) return 0;
    return strtoull(at + 9, nullptr, 10) << 10;  // "RssAnon:\t  1234 kB"
}

uint64_t allocator_resident() {
    if (backing::jemalloc()) {
        uint64_t epoch = 1;
        size_t length = sizeof epoch;
        gprof_je_mallctl("epoch", &epoch, &length, &epoch, length);
        size_t resident = 0;
        length = sizeof resident;
        if (gprof_je_mallctl("stats.resident", &resident, &length, nullptr, 0) != 0) return 0;
        return resident;
    }
    struct mallinfo2 info = mallinfo2();
    return info.arena + info.hblkhd;
}

}  // namespace

bool mostly_unseen(uint64_t anonymous, uint64_t seen) {
    return anonymous > seen && anonymous - seen > kMinUnseen && seen < anonymous / 4;
}

void check() {
    // A process that sampled nothing writes no heap profile: nothing to look at (and a short
    // process pays neither the status file nor the allocator's statistics).
    if (g_said.load(std::memory_order_relaxed) || backing::foreign() ||
        record::heap_profile().bucket_count() == 0)
        return;
    // The allocator's statistics cost a few hundred thousand instructions (jemalloc merges its
    // arenas'): only a process with that much anonymous memory asks for them.
    const uint64_t anonymous = anonymous_resident();
    if (anonymous <= kMinUnseen) return;
    const uint64_t seen = allocator_resident() + record::heap_profile().bytes_used() +
                          record::stack_table().bytes_used() + record::label_bytes_used();
    if (!mostly_unseen(anonymous, seen) || g_said.exchange(true)) return;
    log::info("%llu MiB of this process's %llu MiB of anonymous memory did not come through "
                 "malloc (an allocator of the program's own, mmap, thread stacks): the heap "
                 "profile does not show it",
                 static_cast<unsigned long long>((anonymous - seen) >> 20),
                 static_cast<unsigned long long>(anonymous >> 20));
    base::note("gprof: most of this process's memory did not come through malloc (an allocator "
               "of the program's own, mmap, thread stacks): the heap profile does not show it");
}

}  // namespace gprof::heap_coverage
