/* Deferred durability for a store opened with deferred_sync: the writer's commits only write the
 * WAL (synchronous=NORMAL, no automatic checkpoint), and this file makes them durable from
 * another thread, so the thread that writes never waits for the disk. cv_store_sync is an
 * fdatasync of the WAL through a descriptor of its own; cv_store_checkpoint copies the WAL into
 * the database through a connection of its own. A commit is durable once a sync that started
 * after it returned: WAL frames carry a running checksum, so after a power loss SQLite keeps the
 * commits up to the first frame that did not reach the disk, never a later one without it. */

#include "server/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "common/err.h"

/* WAL frames after which cv_store_checkpoint copies them into the database: SQLite's own
 * automatic checkpoint threshold. The WAL restarts from its start after a complete copy, and
 * SQLite syncs the new WAL header on the writer's thread then: once per this many frames. */
#define CHECKPOINT_FRAMES 1000

/* The writer's WAL hook, after each commit: the frames now in the WAL. */
static int count_frames(void *arg, sqlite3 *db, const char *name, int frames) {
    (void)db, (void)name;
    __atomic_store_n(&((cv_store_t *)arg)->wal_frames, frames, __ATOMIC_RELAXED);
    return SQLITE_OK;
}

int store_sync_open(cv_store_t *s, const char *path, const cv_store_options_t *opt, char *err) {
    size_t n = strlen(path);
    char *wal = malloc(n + sizeof "-wal"), *dir = malloc(n + 2);
    int ret = 0;
    if (!wal || !dir) {
        ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
        goto done;
    }
    memcpy(wal, path, n);
    memcpy(wal + n, "-wal", sizeof "-wal");
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, n + 2, ".");
    else
        slash[slash == dir] = '\0'; /* "/db" keeps its "/" */
    /* SQLite makes the WAL at the first write; made here first, empty (which SQLite reads as a
     * WAL without frames) and with the database's permissions, as SQLite would. */
    struct stat db;
    if (stat(path, &db) != 0) {
        ret = cv_errf(err, CV_EIO, "store: %s: %s", path, strerror(errno));
        goto done;
    }
    if ((s->wal_fd = open(wal, O_RDONLY | O_CREAT | O_CLOEXEC, db.st_mode & 0777)) < 0) {
        ret = cv_errf(err, CV_EIO, "store: %s: %s", wal, strerror(errno));
        goto done;
    }
    /* The WAL's directory entry is made durable once, here: the file exists from now on. */
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fsync(dir_fd)) {
        ret = cv_errf(err, CV_EIO, "store: syncing %s: %s", dir, strerror(errno));
        if (dir_fd >= 0) close(dir_fd);
        goto done;
    }
    close(dir_fd);
    int rc = sqlite3_open_v2(path, &s->checkpointer, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             opt->vfs);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->checkpointer, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        ret = cv_errf(err, CV_EIO, "store: %s: the checkpointing connection: %s", path,
                      s->checkpointer ? sqlite3_errmsg(s->checkpointer) : "out of memory");
    else
        sqlite3_wal_hook(s->db, count_frames, s); /* replaces the automatic checkpoint */
done:
    free(wal);
    free(dir);
    return ret;
}

void store_sync_close(cv_store_t *s) {
    sqlite3_close(s->checkpointer);
    s->checkpointer = NULL;
    if (s->wal_fd >= 0) close(s->wal_fd);
    s->wal_fd = -1;
}

int cv_store_sync(cv_store_t *store, char *err) {
    if (store->wal_fd < 0) return cv_errf(err, CV_EINVAL, "store: not opened with deferred_sync");
    if (fdatasync(store->wal_fd))
        return cv_errf(err, CV_EIO, "store: syncing the WAL: %s", strerror(errno));
    return 0;
}

int cv_store_checkpoint(cv_store_t *store, char *err) {
    if (!store->checkpointer)
        return cv_errf(err, CV_EINVAL, "store: not opened with deferred_sync");
    if (!cv_store_checkpoint_due(store)) return 0;
    int rc = sqlite3_wal_checkpoint_v2(store->checkpointer, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                       NULL);
    if (rc == SQLITE_OK || rc == SQLITE_BUSY) return 0; /* busy: the next one goes further */
    return cv_errf(err, CV_EIO, "store: checkpoint: %s", sqlite3_errmsg(store->checkpointer));
}

int cv_store_checkpoint_due(const cv_store_t *store) {
    return store->checkpointer &&
           __atomic_load_n(&store->wal_frames, __ATOMIC_RELAXED) >= CHECKPOINT_FRAMES;
}
