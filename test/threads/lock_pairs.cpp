// N uncontended lock+unlock pairs of a plain mutex, in a process with a second (idle) thread, as
// most programs that lock have. The test counts the instructions of N and of N + 200 000 pairs
// under callgrind, with and without gprof: the difference per pair is what one pair costs.
// Usage: lock_pairs N
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace {

int g_pipe[2];

void* idle(void*) {
    char c;
    return read(g_pipe[0], &c, 1) == 1 ? nullptr : nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2 || pipe(g_pipe) != 0) return 2;
    long pairs = atol(argv[1]);
    pthread_t t;
    pthread_create(&t, nullptr, idle, nullptr);
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    volatile long count = 0;
    for (long i = 0; i < pairs; ++i) {
        pthread_mutex_lock(&m);
        count = count + 1;
        pthread_mutex_unlock(&m);
    }
    if (write(g_pipe[1], "x", 1) != 1) return 2;
    pthread_join(t, nullptr);
    printf("pairs %ld\n", static_cast<long>(count));
    return 0;
}
