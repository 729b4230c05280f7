/* A C program built against gprof.h that uses every function of the C API. It prints the same
   on stdout with or without gprof (its own work only). What the API told it goes to files in the
   directory given as argv[1]: functions.txt (which functions exist), results.txt (key=value), and
   one file per profile written through the API (<name>.<debug>). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gprof.h"

static const char* g_dir;
static FILE* g_results;

/* "<key>=<result>,<errno>": the call first, then errno (an argument list has no order). */
#define RESULT(key, call)                                                        \
    do {                                                                         \
        errno = 0;                                                               \
        long long result_ = (long long)(call);                                   \
        int errno_ = errno;                                                      \
        fprintf(g_results, "%s=%lld,%d\n", key, result_, errno_);                 \
    } while (0)

#define NOINLINE __attribute__((noinline))

static int open_out(const char* name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

static void write_profile(const char* name, int debug) {
    char file[256];
    snprintf(file, sizeof file, "%s.%d", name, debug);
    int fd = open_out(file);
    int rc = gprof_write_profile(name, fd, debug);
    fprintf(g_results, "write.%s.%d=%d\n", name, debug, rc == 0 ? 0 : errno);
    close(fd);
}

/* Allocation sites whose counts the test knows. */
static void* volatile g_keep[4096];
NOINLINE static void before_rate_site(int n) {
    for (int i = 0; i < n; ++i) free(malloc(100));
}
NOINLINE static void after_rate_site(int n) {
    for (int i = 0; i < n; ++i) g_keep[i] = malloc(200);
}
NOINLINE static void labelled_site_a(int n) {
    for (int i = 0; i < n; ++i) g_keep[1000 + i] = malloc(300);
}
NOINLINE static void labelled_site_b(int n) {
    for (int i = 0; i < n; ++i) g_keep[2000 + i] = malloc(400);
}

/* The custom profile: four threads open and close "connections". */
static struct gprof_profile* g_connections;
enum { kThreads = 4, kPerThread = 10000, kKeptPerThread = 2500 };

NOINLINE static void open_connection(uintptr_t key) {
    if (gprof_profile_add(g_connections, key) != 0) abort();
}

static void* connection_worker(void* arg) {
    uintptr_t base = (uintptr_t)arg * 1000000u;
    char value[32];
    snprintf(value, sizeof value, "worker%lu", (unsigned long)(uintptr_t)arg);
    gprof_label_push("worker", value);
    for (uintptr_t i = 0; i < kPerThread; ++i) open_connection(base + i);
    for (uintptr_t i = kKeptPerThread; i < kPerThread; ++i)
        if (gprof_profile_remove(g_connections, base + i) != 0) abort();
    gprof_label_pop();
    return NULL;
}

/* A wait the default block rate (GPROF_BLOCK_PROFILE_RATE) would mostly skip: 2 ms. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int g_holding = 0;
static void* holder(void* arg) {
    (void)arg;
    pthread_mutex_lock(&g_lock);
    __atomic_store_n(&g_holding, 1, __ATOMIC_RELEASE);
    usleep(20000);
    pthread_mutex_unlock(&g_lock);
    return NULL;
}
NOINLINE static void blocked_site(void) {
    pthread_t t;
    pthread_mutex_lock(&g_lock);
    pthread_create(&t, NULL, holder, NULL);
    usleep(5000);
    pthread_mutex_unlock(&g_lock);
    /* The holder has the lock (however loaded the machine) before this waits for it. */
    while (!__atomic_load_n(&g_holding, __ATOMIC_ACQUIRE)) usleep(100);
    pthread_mutex_lock(&g_lock); /* waits for the holder's 20 ms */
    pthread_mutex_unlock(&g_lock);
    pthread_join(t, NULL);
}

static void list_functions(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/functions.txt", g_dir);
    FILE* f = fopen(path, "w");
    struct {
        const char* name;
        int present;
    } functions[] = {
        {"gprof_write_profile", gprof_write_profile != NULL},
        {"gprof_dump", gprof_dump != NULL},
        {"gprof_start_cpu_profile", gprof_start_cpu_profile != NULL},
        {"gprof_stop_cpu_profile", gprof_stop_cpu_profile != NULL},
        {"gprof_set_mem_profile_rate", gprof_set_mem_profile_rate != NULL},
        {"gprof_set_block_profile_rate", gprof_set_block_profile_rate != NULL},
        {"gprof_set_mutex_profile_fraction", gprof_set_mutex_profile_fraction != NULL},
        {"gprof_label_push", gprof_label_push != NULL},
        {"gprof_label_pop", gprof_label_pop != NULL},
        {"gprof_profile_new", gprof_profile_new != NULL},
        {"gprof_profile_add", gprof_profile_add != NULL},
        {"gprof_profile_remove", gprof_profile_remove != NULL},
        {"gprof_profile_count", gprof_profile_count != NULL},
        {"gprof_read_memstats", gprof_read_memstats != NULL},
    };
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; ++i)
        fprintf(f, "%s %s\n", functions[i].name, functions[i].present ? "present" : "absent");
    fclose(f);
}

static void use_gprof(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/results.txt", g_dir);
    g_results = fopen(path, "w");

    /* Rates: the heap rate 0, then 1 from the second site on. */
    fprintf(g_results, "mem_rate.start=%lld\n", (long long)gprof_set_mem_profile_rate(0));
    before_rate_site(1000);
    fprintf(g_results, "mem_rate.was=%lld\n", (long long)gprof_set_mem_profile_rate(1));
    fprintf(g_results, "mem_rate.now=%lld\n", (long long)gprof_set_mem_profile_rate(-1));
    after_rate_site(1000);
    fprintf(g_results, "block_rate.start=%lld\n", (long long)gprof_set_block_profile_rate(1));
    fprintf(g_results, "mutex_fraction.start=%lld\n",
            (long long)gprof_set_mutex_profile_fraction(1));
    fprintf(g_results, "block_rate.now=%lld\n", (long long)gprof_set_block_profile_rate(-1));
    blocked_site();

    /* Labels on heap samples. */
    gprof_label_push("request", "a");
    labelled_site_a(100);
    gprof_label_push("request", "b"); /* the innermost value wins */
    gprof_label_push("user", "x");
    labelled_site_b(50);
    gprof_label_pop();
    gprof_label_pop();
    gprof_label_pop();

    /* The custom profile. */
    g_connections = gprof_profile_new("connections");
    fprintf(g_results, "profile_new=%d\n", g_connections != NULL);
    pthread_t threads[kThreads];
    for (uintptr_t i = 0; i < kThreads; ++i)
        pthread_create(&threads[i], NULL, connection_worker, (void*)i);
    for (int i = 0; i < kThreads; ++i) pthread_join(threads[i], NULL);
    fprintf(g_results, "profile_count=%lld\n", (long long)gprof_profile_count(g_connections));

    /* Misuse: each -1 with its errno. */
    RESULT("misuse.remove_absent", gprof_profile_remove(g_connections, 999999999));
    gprof_profile_add(g_connections, 123456789);
    RESULT("misuse.add_twice", gprof_profile_add(g_connections, 123456789));
    gprof_profile_remove(g_connections, 123456789);
    RESULT("misuse.remove_twice", gprof_profile_remove(g_connections, 123456789));
    RESULT("misuse.profile_dup", gprof_profile_new("connections") == NULL);
    RESULT("misuse.profile_builtin", gprof_profile_new("heap") == NULL);
    RESULT("misuse.profile_null", gprof_profile_new(NULL) == NULL);
    RESULT("misuse.profile_slash", gprof_profile_new("a/b") == NULL);
    RESULT("misuse.add_null", gprof_profile_add(NULL, 1));
    RESULT("misuse.write_unknown", gprof_write_profile("nope", 1, 0));
    RESULT("misuse.write_null", gprof_write_profile(NULL, 1, 0));
    RESULT("misuse.write_debug", gprof_write_profile("heap", 1, 7));
    RESULT("misuse.write_closed_fd", gprof_write_profile("heap", 1000, 0));
    int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
    RESULT("misuse.write_read_only", gprof_write_profile("heap", ro, 0));
    close(ro);
    RESULT("misuse.push_null", gprof_label_push(NULL, "v"));
    gprof_label_pop(); /* matches the failed push */
    errno = 0;
    gprof_label_pop(); /* nothing pushed */
    fprintf(g_results, "misuse.pop_empty_errno=%d\n", errno);
    char* long_value = malloc(2000);
    memset(long_value, 'v', 1999);
    long_value[1999] = '\0';
    RESULT("misuse.push_long", gprof_label_push("k", long_value));
    gprof_label_pop();
    free(long_value);
    RESULT("misuse.memstats_small", gprof_read_memstats((struct gprof_memstats*)path, 8));
    RESULT("misuse.memstats_null", gprof_read_memstats(NULL, sizeof(struct gprof_memstats)));

    /* Every profile, in every form. */
    const char* names[] = {"heap", "allocs", "goroutine", "threads", "threadcreate",
                           "block", "mutex", "connections"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
        write_profile(names[i], 0);
        write_profile(names[i], 1);
    }
    write_profile("goroutine", 2);

    struct gprof_memstats m;
    memset(&m, 0, sizeof m);
    fprintf(g_results, "memstats=%d\n", gprof_read_memstats(&m, sizeof m));
    fprintf(g_results, "memstats.mallocs=%llu\nmemstats.frees=%llu\nmemstats.alloc=%llu\n",
            (unsigned long long)m.mallocs, (unsigned long long)m.frees,
            (unsigned long long)m.alloc);
    fprintf(g_results, "dump=%d\n", gprof_dump());

    /* The CPU profile functions belong to the CPU profiler; called when present. */
    if (gprof_start_cpu_profile != NULL && gprof_stop_cpu_profile != NULL) {
        int fd = open_out("cpu.0");
        fprintf(g_results, "cpu.start=%d\n", gprof_start_cpu_profile(fd));
        fprintf(g_results, "cpu.stop=%d\n", gprof_stop_cpu_profile());
        close(fd);
        /* Stopped into a pipe nobody reads any more: the write's own error. */
        int ends[2];
        if (pipe2(ends, O_CLOEXEC) == 0) {
            signal(SIGPIPE, SIG_IGN);
            close(ends[0]);
            gprof_start_cpu_profile(ends[1]);
            RESULT("misuse.cpu_stop_broken_pipe", gprof_stop_cpu_profile());
            close(ends[1]);
        }
    }
    fclose(g_results);
}

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    g_dir = argv[1];
    list_functions();
    if (gprof_write_profile != NULL) use_gprof();
    /* The program's own work, the same with or without gprof. */
    unsigned long sum = 0;
    for (int i = 0; i < 1000; ++i) {
        char* p = malloc(64 + (size_t)i);
        memset(p, i & 0xff, 64);
        sum += (unsigned char)p[10];
        free(p);
    }
    printf("sum=%lu\n", sum);
    return 0;
}
