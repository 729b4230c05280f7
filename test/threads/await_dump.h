// The test programs raise the dump signal themselves, then wait for the dump to be complete: for
// its last file (the threads profile, which every dump by signal writes, last) under the
// GPROF_OUTPUT prefix they were given.
#pragma once

#include <unistd.h>

#include <cstdio>

// Waits up to 30 s, calling tick() (if given) every 10 ms meanwhile. True once the file is there.
inline bool await_dump(const char* prefix, void (*tick)() = nullptr) {
    char last_file[4096];
    snprintf(last_file, sizeof last_file, "%s.%d.0001.threads.pb.gz", prefix, getpid());
    for (int i = 0; i < 3000; ++i) {
        if (access(last_file, F_OK) == 0) return true;
        if (tick != nullptr) tick();
        usleep(10 * 1000);
    }
    return access(last_file, F_OK) == 0;
}
