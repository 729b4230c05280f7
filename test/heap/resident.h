// The resident set of the calling process in KiB (-1 if /proc cannot tell), for the heap test
// programs that check that memory goes away with their threads.
#pragma once

#include <unistd.h>

#include <cstdio>

inline long resident_kib() {
    long pages = 0, resident = 0;
    FILE* f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr || std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    if (f != nullptr) std::fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}
