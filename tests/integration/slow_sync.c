/* Test aid, loaded with LD_PRELOAD: every fsync and fdatasync of a SQLite WAL file (a path ending
 * in "-wal") or of a model file being received (".part") first sleeps CAVIAR_TEST_SYNC_DELAY_MS
 * milliseconds, as on a slow disk, then syncs for real. test_slow_disk.py uses it to see which
 * thread waits for the disk. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void slow_down(int fd) {
    const char *ms = getenv("CAVIAR_TEST_SYNC_DELAY_MS");
    long delay = ms ? strtol(ms, NULL, 10) : 0;
    if (delay <= 0) return;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 5 || (memcmp(path + n - 4, "-wal", 4) != 0 && memcmp(path + n - 5, ".part", 5) != 0))
        return;
    struct timespec left = {delay / 1000, delay % 1000 * 1000000L};
    while (nanosleep(&left, &left) == -1 && errno == EINTR) {
    }
}

/* The next definition of name (libc's), called with fd. */
static int call_next(const char *name, int fd) {
    void *sym = dlsym(RTLD_NEXT, name);
    int (*real)(int);
    memcpy(&real, &sym, sizeof real); /* POSIX's way from dlsym to a function pointer */
    return real(fd);
}

int fsync(int fd) {
    slow_down(fd);
    return call_next("fsync", fd);
}

int fdatasync(int fd) {
    slow_down(fd);
    return call_next("fdatasync", fd);
}
