/* The worker's dataset cache declared in dataset_cache.h: remembered hashes of spec paths,
 * lookups by SHA-256, and verified storage of fetched files under <cache>/<hash>. */
#include "worker/dataset_cache.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define LOG(c, level, ...) cv_log((c)->log, (level), __VA_ARGS__)

void cv_dcache_init(cv_dcache_t *c, const char *dir, const cv_log_t *log) {
    memset(c, 0, sizeof *c);
    c->dir = dir;
    c->log = log;
}

/* Creates dir and its missing parents. */
static int make_dirs(const char *dir, char *err) {
    char path[CV_DCACHE_PATH];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return cv_errf(err, CV_ERANGE, "%s: path too long", dir);
    for (char *s = path + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return cv_errf(err, CV_EIO, "%s: cannot create: %s", path, strerror(errno));
        *s = saved;
        if (saved == '\0') return 0;
    }
}

int cv_dcache_hash(cv_dcache_t *c, const char *path, const struct stat *st,
                   char hex[CV_SHA256_HEX]) {
    for (size_t i = 0; i < CV_DCACHE_MEMO; i++) {
        cv_dcache_memo_t *m = &c->memo[i];
        if (m->hash[0] && m->size == st->st_size && m->mtime.tv_sec == st->st_mtim.tv_sec &&
            m->mtime.tv_nsec == st->st_mtim.tv_nsec && strcmp(m->path, path) == 0) {
            memcpy(hex, m->hash, CV_SHA256_HEX);
            return 0;
        }
    }
    char err[CV_ERRLEN];
    if (cv_sha256_file(path, hex, NULL, err) != 0) {
        LOG(c, CV_LOG_WARN, "cannot hash %s", err);
        return CV_EIO;
    }
    cv_dcache_memo_t *m = &c->memo[c->memo_next];
    c->memo_next = (c->memo_next + 1) % CV_DCACHE_MEMO;
    if (snprintf(m->path, sizeof m->path, "%s", path) >= (int)sizeof m->path) return 0;
    m->size = st->st_size;
    m->mtime = st->st_mtim;
    memcpy(m->hash, hex, CV_SHA256_HEX);
    return 0;
}

int cv_dcache_find(cv_dcache_t *c, const char *hash, int64_t bytes, const char *spec_path,
                   char *path) {
    struct stat st;
    char hex[CV_SHA256_HEX];
    if (stat(spec_path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == bytes &&
        cv_dcache_hash(c, spec_path, &st, hex) == 0 && strcmp(hex, hash) == 0) {
        snprintf(path, CV_DCACHE_PATH, "%s", spec_path);
        return 1;
    }
    if (c->dir == NULL) return 0;
    snprintf(path, CV_DCACHE_PATH, "%s/%s", c->dir, hash);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == bytes;
}

void cv_dcache_fill_begin(cv_dcache_t *c, cv_dcache_fill_t *fill, const char *hash) {
    char err[CV_ERRLEN];
    memset(fill, 0, sizeof *fill);
    snprintf(fill->hash, sizeof fill->hash, "%s", hash);
    snprintf(fill->tmp, sizeof fill->tmp, "%s/%s.tmp", c->dir, hash);
    if (make_dirs(c->dir, err) != 0)
        cv_errf(fill->failed, CV_EIO, "%s", err);
    else if ((fill->f = fopen(fill->tmp, "wb")) == NULL)
        cv_errf(fill->failed, CV_EIO, "%s: cannot create: %s", fill->tmp, strerror(errno));
}

void cv_dcache_fill_write(cv_dcache_fill_t *fill, const void *p, size_t n) {
    if (fill->f && fwrite(p, 1, n, fill->f) != n && !fill->failed[0])
        cv_errf(fill->failed, CV_EIO, "%s: cannot write: %s", fill->tmp, strerror(errno));
    fill->have += (int64_t)n;
}

void cv_dcache_fill_end(cv_dcache_t *c, cv_dcache_fill_t *fill) {
    char final[CV_DCACHE_PATH], hex[CV_SHA256_HEX], err[CV_ERRLEN];
    if (fill->f && fclose(fill->f) != 0 && !fill->failed[0])
        cv_errf(fill->failed, CV_EIO, "%s: cannot write: %s", fill->tmp, strerror(errno));
    fill->f = NULL;
    if (!fill->failed[0] && cv_sha256_file(fill->tmp, hex, NULL, err) != 0)
        cv_errf(fill->failed, CV_EIO, "%s", err);
    else if (!fill->failed[0] && strcmp(hex, fill->hash) != 0) {
        snprintf(fill->failed, sizeof fill->failed,
                 "dataset %s: the %lld bytes received have SHA-256 %s (the file changed after "
                 "the job was submitted)",
                 fill->hash, (long long)fill->have, hex);
        fill->failed_job = 1;
    }
    snprintf(final, sizeof final, "%s/%s", c->dir, fill->hash);
    if (!fill->failed[0] && rename(fill->tmp, final) != 0)
        cv_errf(fill->failed, CV_EIO, "%s: cannot rename to %s: %s", fill->tmp, final,
                strerror(errno));
    if (fill->failed[0])
        unlink(fill->tmp);
    else
        LOG(c, CV_LOG_INFO, "dataset %s: %lld bytes cached", fill->hash, (long long)fill->have);
}

void cv_dcache_fill_abandon(cv_dcache_fill_t *fill) {
    if (fill->f) fclose(fill->f);
    fill->f = NULL;
    unlink(fill->tmp);
}
