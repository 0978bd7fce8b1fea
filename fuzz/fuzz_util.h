/* Helpers shared by the fuzz targets: a deterministic chunking of the input (so one input also
 * chooses how an incremental parser is fed) and an in-memory file for readers that take a path.
 * Header-only (static inline) so that each target stays one source file plus this header. */
#ifndef CV_FUZZ_UTIL_H
#define CV_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/dataset.h"

/* Length of the next chunk to feed: 1..left bytes, drawn from a xorshift state the input
 * seeded. Small chunks are favoured so splits inside tokens are common. */
static inline size_t fuzz_next_chunk(uint32_t *state, size_t left) {
    uint32_t x = *state ? *state : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    size_t cap = (x & 3u) == 0 ? left : (size_t)(x >> 24) % 64u + 1u;
    return cap < left ? cap : left;
}

/* A per-process anonymous file (memfd) reused across inputs, and a path naming it. slot picks
 * one of a few files so that a target can hold two inputs (IDX images and labels). The file is
 * truncated and rewritten each time; its path stays valid for the life of the process. */
static inline const char *fuzz_file(int slot, const uint8_t *data, size_t len) {
    static int fds[4] = {-1, -1, -1, -1};
    static char paths[4][64];
    if (slot < 0 || slot >= 4) abort();
    if (fds[slot] < 0) {
        /* memfd_create through syscall(): its libc wrapper needs _GNU_SOURCE. */
        fds[slot] = (int)syscall(SYS_memfd_create, "caviar-fuzz", 0u);
        if (fds[slot] < 0) abort();
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0) abort();
    size_t off = 0;
    while (off < len) {
        ssize_t n = pwrite(fds[slot], data + off, len - off, (off_t)off);
        if (n <= 0) abort();
        off += (size_t)n;
    }
    return paths[slot];
}

/* The invariants of a dataset reader's outcome: a loaded dataset has rows and labels in range
 * (or, without labels, classes 0 and every label -1), a refusal says why. Aborts (a fuzzer
 * finding) otherwise; releases the dataset. */
static inline void fuzz_check_dataset(int rc, cv_dataset_t *ds, const char *err) {
    if (rc == 0) {
        if (!ds->x || !ds->y || ds->m == 0 || ds->n == 0) abort();
        for (size_t i = 0; i < ds->m; i++)
            if (ds->classes == 0 ? ds->y[i] != -1 : ds->y[i] < 0 || ds->y[i] >= ds->classes)
                abort();
    } else if (err[0] == '\0') {
        abort();
    }
    cv_dataset_finish(ds);
}

#endif
