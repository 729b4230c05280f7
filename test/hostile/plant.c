/* Cases 44, 45 and the hostile output paths: before allocating, the program puts something at the
   name its own at-exit heap profile will have (PREFIX.<pid>.0001.heap.pb.gz): a directory, a FIFO
   (which would block a writer that opened it), a symlink to VICTIM (which must not be written
   through), or a regular file from "an earlier process" (which must not be lost).
   Usage: plant PREFIX dir|fifo|symlink|file [VICTIM] */
#include <sys/stat.h>

#include "hostile.h"

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s.%d.0001.heap.pb.gz", argv[1], (int)getpid());
    int r = -1;
    if (strcmp(argv[2], "dir") == 0) r = mkdir(path, 0755);
    if (strcmp(argv[2], "fifo") == 0) r = mkfifo(path, 0644);
    if (strcmp(argv[2], "symlink") == 0 && argc > 3) r = symlink(argv[3], path);
    if (strcmp(argv[2], "file") == 0) {
        FILE* f = fopen(path, "w");
        r = f != NULL && fputs("an earlier process's file\n", f) >= 0 ? 0 : -1;
        if (f != NULL) fclose(f);
    }
    if (r != 0) hostile_fail("plant");
    long sum = 0;
    for (int i = 0; i < 300; ++i) {
        char* p = malloc(4096 + (size_t)i);
        if (p == NULL) hostile_fail("malloc");
        p[0] = (char)i;
        sum += p[0];
    }
    printf("planted a %s; sum %ld\n", argv[2], sum);
    return 0;
}
