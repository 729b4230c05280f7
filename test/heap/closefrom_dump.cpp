// The hazard of a program that closes every descriptor it did not open (closefrom(3), as ssh
// does) and then opens its own files: a profiler that kept a descriptor (a wake-up pipe, or
// libunwind's validation pipe) would now close, read or write one of them. Usage: closefrom_dump
// DIR. Closes fds >= 3, opens DIR/own.txt (fd 3), writes "hello", asks for a dump with SIGUSR2,
// waits for the heap file, and prints the file's content: "hello" when nobody else touched it.
// Run at GPROF_MEM_PROFILE_RATE=1 every allocation unwinds, exercising libunwind's reader.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {
bool heap_file_exists(const char* dir) {
    bool found = false;
    if (DIR* d = opendir(dir)) {
        while (dirent* e = readdir(d)) {
            size_t n = strlen(e->d_name);  // the complete file, not its ".tmp" while written
            found |= n > 11 && strcmp(e->d_name + n - 11, ".heap.pb.gz") == 0;
        }
        closedir(d);
    }
    return found;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    closefrom(3);
    std::string own = std::string(argv[1]) + "/own.txt";
    int fd = open(own.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "hello", 5) != 5) return 3;
    raise(SIGUSR2);
    for (int i = 0; i < 1000 && !heap_file_exists(argv[1]); ++i) usleep(10000);
    if (!heap_file_exists(argv[1])) return 4;
    char buf[64] = {};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    printf("fd %d: %s (%zd bytes)\n", fd, buf, n);
    return 0;
}
