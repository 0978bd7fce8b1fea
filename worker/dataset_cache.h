/* The worker's dataset cache: finding a verified local copy of a dataset file named by its
 * SHA-256, and storing a file received from the coordinator under that hash.
 *
 * A trial names each dataset file by its spec path, size and SHA-256. A file is used locally
 * when the spec's path holds exactly those bytes (hashes are remembered per path, size and
 * mtime, so a file is hashed once while it stays the same), or when <cache>/<hash> has the
 * right size: files enter the cache only through cv_dcache_fill_end, which checks their hash.
 * Everything else must be fetched. No I/O on sockets; the connection drives the transfer. */
#ifndef CV_WORKER_DATASET_CACHE_H
#define CV_WORKER_DATASET_CACHE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"

#define CV_DCACHE_PATH 4096 /* bytes of a file path */
#define CV_DCACHE_MEMO 32   /* remembered SHA-256 of spec paths */

/* The hash of a file, valid while its size and mtime stay the same. */
typedef struct {
    char path[CV_DCACHE_PATH];
    off_t size;            /* bytes */
    struct timespec mtime; /* modification time when hashed */
    char hash[CV_SHA256_HEX];
} cv_dcache_memo_t;

/* Caller-allocated; holds no resources, so it needs no finish. */
typedef struct {
    const char *dir;                       /* borrowed: the cache directory (created when first
                                              filled), or NULL for no cache */
    const cv_log_t *log;                   /* borrowed, may be NULL */
    cv_dcache_memo_t memo[CV_DCACHE_MEMO]; /* hashes of spec paths */
    size_t memo_next;                      /* slot the next memo entry replaces */
} cv_dcache_t;

/* A file being received into <dir>/<hash>.tmp, moved to <dir>/<hash> once verified. */
typedef struct {
    char hash[CV_SHA256_HEX]; /* the SHA-256 the bytes must have */
    FILE *f;                  /* owned; NULL when the file could not be created */
    char tmp[CV_DCACHE_PATH]; /* the temporary file */
    int64_t have;             /* bytes received */
    char failed[CV_ERRLEN];   /* why the file is unusable, "" when all is well */
    int failed_job;           /* 1 when failed says the bytes are not the ones the job named
                                 (the file changed on the coordinator): the job's fault */
} cv_dcache_fill_t;

/* Prepares a cache over dir (borrowed; NULL for none). */
void cv_dcache_init(cv_dcache_t *c, const char *dir, const cv_log_t *log);

/* The SHA-256 of the regular file at path (whose stat is st), remembered per path, size and
 * mtime. Returns 0, or CV_EIO (logged as a warning) when the file cannot be read. */
int cv_dcache_hash(cv_dcache_t *c, const char *path, const struct stat *st,
                   char hex[CV_SHA256_HEX]);

/* Looks for a verified local copy of the file of the given SHA-256 hash and size: spec_path when
 * it is a regular file with that size and hash, else <dir>/<hash> when it has that size. Returns
 * 1 with path (CV_DCACHE_PATH bytes) set, or 0 when the file must be fetched. */
int cv_dcache_find(cv_dcache_t *c, const char *hash, int64_t bytes, const char *spec_path,
                   char *path);

/* Starts receiving the file of the given hash: creates the cache directory and its parents and
 * opens <dir>/<hash>.tmp. A failure is recorded in fill->failed (the bytes are then counted but
 * not kept). c->dir must not be NULL. */
void cv_dcache_fill_begin(cv_dcache_t *c, cv_dcache_fill_t *fill, const char *hash);

/* Appends n received bytes; a write failure is recorded in fill->failed. */
void cv_dcache_fill_write(cv_dcache_fill_t *fill, const void *p, size_t n);

/* Ends the transfer: closes the file, checks its SHA-256 against fill->hash and moves it to
 * <dir>/<hash>. On failure fill->failed says why and the temporary file is removed. */
void cv_dcache_fill_end(cv_dcache_t *c, cv_dcache_fill_t *fill);

/* Abandons a transfer begun with cv_dcache_fill_begin: the partial file is removed. */
void cv_dcache_fill_abandon(cv_dcache_fill_t *fill);

#endif
