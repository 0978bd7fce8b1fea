/* Model files and ensemble prediction; see model_file.h for the format and the contract.
 *
 * Every value is encoded with byte shifts into a small buffer, never by dumping a struct, so the
 * file is the same on any host. The writer goes to `path.tmp.<pid>` and renames it over path only
 * after fsync, so a reader never sees half a model. The reader checks the prefix, the
 * architecture and the three counts it implies before anything is allocated, then that the file
 * is exactly as long as the header says, and reads the payload straight into the network,
 * verifying the CRC-32 at the end; a model whose values are not finite is refused too. */
#include "worker/model_file.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/err.h"

static const unsigned char MODEL_MAGIC[8] = {'C', 'V', 'M', 'O', 'D', 'E', 'L', '\0'};

#define MODEL_PREFIX_BYTES 16u /* magic, version, header_bytes */
#define MODEL_COUNTS_BYTES 24u /* n_params, n_stats, n_features */
#define MODEL_CRC_BYTES    4u
#define MODEL_IO_VALUES    4096u /* f32 values per buffered read or write (16 KiB) */
#define MODEL_IO_BYTES     (MODEL_IO_VALUES * 4u)
/* Bytes of the architecture record of L layers: six scalars, L + 1 unit counts, three values
 * per hidden layer and keep_prob[0]. */
#define ARCH_RECORD_BYTES(L) (24u + 4u * ((unsigned)(L) + 1u) + 12u * ((unsigned)(L)-1u) + 4u)

#define ENSEMBLE_MAX_BATCH  256u       /* rows per ensemble pass at most */
#define ENSEMBLE_ROW_FLOATS (1u << 20) /* normalized input floats one ensemble pass may hold */
#define ENSEMBLE_P_FLOOR    1e-15      /* probabilities are clipped here before the log */

/* ---- little-endian encoding --------------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put_u64(unsigned char *p, uint64_t v) {
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static void put_f32(unsigned char *p, float f) {
    uint32_t v;
    memcpy(&v, &f, sizeof v);
    put_u32(p, v);
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static float get_f32(const unsigned char *p) {
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

/* ---- what an architecture implies ------------------------------------------------------- */

/* The sizes nn.c lays out for an architecture already checked by arch_check. */
typedef struct {
    uint64_t n_params;   /* W[l] then b[l] or γ[l], β[l], for l = 1..L */
    uint64_t n_stats;    /* running mean and variance of every batch-norm layer */
    uint64_t n_features; /* units[0] */
} model_counts_t;

static model_counts_t arch_counts(const cv_arch_t *a) {
    model_counts_t c = {0, 0, (uint64_t)a->units[0]};
    for (int l = 1; l <= a->layers; l++) {
        uint64_t n = (uint64_t)a->units[l], k = (uint64_t)a->units[l - 1];
        int bn = l < a->layers && a->batch_norm[l];
        c.n_params += n * k + (bn ? 2 * n : n);
        c.n_stats += bn ? 2 * n : 0;
    }
    return c;
}

/* Checks every value of an architecture against what the format and nn.c accept. who prefixes
 * the reason (the file's path). Returns CV_EFORMAT naming the first bad value. */
static int arch_check(const cv_arch_t *a, const char *who, char *err) {
    int L = a->layers;
    if (L < 1 || L > CV_MAX_LAYERS)
        return cv_errf(err, CV_EFORMAT, "%s: %d layers, outside 1..%d", who, L, CV_MAX_LAYERS);
    int any_bn = 0;
    for (int l = 0; l <= L; l++) {
        if (a->units[l] < 1 || a->units[l] > CV_MAX_UNITS)
            return cv_errf(err, CV_EFORMAT, "%s: layer %d has %d units, outside 1..%d", who, l,
                           a->units[l], CV_MAX_UNITS);
        if (l < L && !(a->keep_prob[l] > 0.0f && a->keep_prob[l] <= 1.0f))
            return cv_errf(err, CV_EFORMAT, "%s: keep_prob of layer %d is %g, outside (0, 1]", who,
                           l, (double)a->keep_prob[l]);
        if (l == 0 || l == L) continue;
        if ((unsigned)a->act[l] > CV_ACT_SIGMOID)
            return cv_errf(err, CV_EFORMAT, "%s: layer %d has unknown activation %u", who, l,
                           (unsigned)a->act[l]);
        if (a->batch_norm[l] != 0 && a->batch_norm[l] != 1)
            return cv_errf(err, CV_EFORMAT, "%s: batch_norm of layer %d is %d, not 0 or 1", who, l,
                           a->batch_norm[l]);
        any_bn |= a->batch_norm[l];
    }
    if (a->output == CV_OUT_SOFTMAX) {
        if (a->classes < 2 || a->classes != a->units[L])
            return cv_errf(err, CV_EFORMAT,
                           "%s: a softmax output needs one unit per class (at least 2), got %d "
                           "units for %d classes",
                           who, a->units[L], a->classes);
    } else if (a->output == CV_OUT_SIGMOID) {
        if (a->classes != 2 || a->units[L] != 1)
            return cv_errf(err, CV_EFORMAT,
                           "%s: a sigmoid output needs 1 unit and 2 classes, got %d units for %d "
                           "classes",
                           who, a->units[L], a->classes);
    } else {
        return cv_errf(err, CV_EFORMAT, "%s: unknown output type %u", who, (unsigned)a->output);
    }
    if (!(a->leaky_slope >= 0.0f && a->leaky_slope < 1.0f))
        return cv_errf(err, CV_EFORMAT, "%s: leaky_slope %g is outside [0, 1)", who,
                       (double)a->leaky_slope);
    if (!(a->bn_momentum >= 0.0f && a->bn_momentum < 1.0f))
        return cv_errf(err, CV_EFORMAT, "%s: bn_momentum %g is outside [0, 1)", who,
                       (double)a->bn_momentum);
    if (!(a->bn_epsilon >= 0.0f && isfinite(a->bn_epsilon)) || (any_bn && a->bn_epsilon == 0.0f))
        return cv_errf(err, CV_EFORMAT, "%s: bn_epsilon %g must be finite and positive", who,
                       (double)a->bn_epsilon);
    return CV_OK;
}

/* Checks that every parameter, statistic and normalizer value is finite and every running
 * variance and inverse deviation positive where required, naming the first that is not. */
static int values_check(const cv_nnf_net_t *net, const cv_normalizer_t *norm, const char *who,
                        char *err) {
    for (size_t i = 0; i < net->n_params; i++)
        if (!isfinite(net->params[i]))
            return cv_errf(err, CV_EFORMAT, "%s: parameter %zu is not finite", who, i);
    for (int l = 1; l < net->arch.layers; l++) {
        if (!net->run_mean[l]) continue;
        for (int j = 0; j < net->arch.units[l]; j++)
            if (!isfinite(net->run_mean[l][j]) || !(net->run_var[l][j] >= 0.0f) ||
                !isfinite(net->run_var[l][j]))
                return cv_errf(err, CV_EFORMAT,
                               "%s: running statistics of unit %d of layer %d are not a finite "
                               "mean and a non-negative variance",
                               who, j, l);
    }
    for (size_t j = 0; j < norm->n; j++)
        if (!isfinite(norm->mean[j]) || !isfinite(norm->inv_std[j]))
            return cv_errf(err, CV_EFORMAT, "%s: normalization of feature %zu is not finite", who,
                           j);
    return CV_OK;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* A buffered little-endian writer that keeps the running CRC of what it flushed. The first
 * failure sticks: later writes are ignored and the caller checks error once at the end. */
typedef struct {
    FILE *f;
    uLong crc;  /* CRC-32 of every byte flushed so far */
    size_t len; /* bytes waiting in buf */
    int error;  /* errno of the first failed write, else 0 */
    unsigned char buf[MODEL_IO_BYTES];
} writer_t;

static void w_flush(writer_t *w) {
    if (w->len == 0 || w->error) return;
    w->crc = crc32(w->crc, w->buf, (uInt)w->len);
    errno = 0;
    if (fwrite(w->buf, 1, w->len, w->f) != w->len) w->error = errno ? errno : EIO;
    w->len = 0;
}

/* Makes room for n ≤ MODEL_IO_BYTES bytes and returns where to put them. */
static unsigned char *w_space(writer_t *w, size_t n) {
    if (w->len + n > sizeof w->buf) w_flush(w);
    unsigned char *p = w->buf + w->len;
    w->len += n;
    return p;
}

static void w_u32(writer_t *w, uint32_t v) {
    put_u32(w_space(w, 4), v);
}

static void w_u64(writer_t *w, uint64_t v) {
    put_u64(w_space(w, 8), v);
}

static void w_f32(writer_t *w, float f) {
    put_f32(w_space(w, 4), f);
}

static void w_floats(writer_t *w, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        w_f32(w, v[i]);
}

/* Writes the whole file body and its CRC through w. */
static void write_model(writer_t *w, const cv_nnf_net_t *net, const cv_normalizer_t *norm) {
    const cv_arch_t *a = &net->arch;
    int L = a->layers;
    memcpy(w_space(w, sizeof MODEL_MAGIC), MODEL_MAGIC, sizeof MODEL_MAGIC);
    w_u32(w, CV_MODEL_VERSION);
    w_u32(w, ARCH_RECORD_BYTES(L));
    w_u32(w, (uint32_t)L);
    w_u32(w, (uint32_t)a->classes);
    w_u32(w, (uint32_t)a->output);
    w_f32(w, a->leaky_slope);
    w_f32(w, a->bn_momentum);
    w_f32(w, a->bn_epsilon);
    for (int l = 0; l <= L; l++)
        w_u32(w, (uint32_t)a->units[l]);
    for (int l = 1; l < L; l++) {
        w_u32(w, (uint32_t)a->act[l]);
        w_u32(w, (uint32_t)a->batch_norm[l]);
        w_f32(w, a->keep_prob[l]);
    }
    w_f32(w, a->keep_prob[0]);
    w_u64(w, net->n_params);
    w_u64(w, net->n_stats);
    w_u64(w, norm->n);
    w_floats(w, net->params, net->n_params);
    w_floats(w, net->stats, net->n_stats);
    w_floats(w, norm->mean, norm->n);
    w_floats(w, norm->inv_std, norm->n);
    w_flush(w);
    w_u32(w, (uint32_t)w->crc);
    w_flush(w);
}

int cv_model_save(const char *path, const cv_nnf_net_t *net, const cv_normalizer_t *norm,
                  char *err) {
    int rc = arch_check(&net->arch, path, err);
    if (rc < 0) return CV_EINVAL;
    model_counts_t c = arch_counts(&net->arch);
    if (net->n_params != c.n_params || net->n_stats != c.n_stats || norm->n != c.n_features)
        return cv_errf(err, CV_EINVAL,
                       "%s: cannot save %zu parameters, %zu statistics and %zu normalized "
                       "features for an architecture of %llu, %llu and %llu",
                       path, net->n_params, net->n_stats, norm->n, (unsigned long long)c.n_params,
                       (unsigned long long)c.n_stats, (unsigned long long)c.n_features);
    if (values_check(net, norm, path, err) < 0) return CV_EINVAL;

    writer_t *w = NULL;
    FILE *f = NULL;
    int closed;
    size_t tmp_len = strlen(path) + 32;
    char *tmp = malloc(tmp_len);
    if (!tmp) return cv_errf(err, CV_ENOMEM, "%s: out of memory for the temporary name", path);
    snprintf(tmp, tmp_len, "%s.tmp.%ld", path, (long)getpid());
    w = calloc(1, sizeof *w);
    if (!w) {
        rc = cv_errf(err, CV_ENOMEM, "%s: out of memory for the write buffer", path);
        goto done;
    }
    f = fopen(tmp, "wb");
    if (!f) {
        rc = cv_errf(err, CV_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    w->f = f;
    w->crc = crc32(0L, Z_NULL, 0);
    write_model(w, net, norm);
    if (w->error) {
        rc = cv_errf(err, CV_EIO, "%s: write to %s failed: %s", path, tmp, strerror(w->error));
        goto remove_tmp;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = cv_errf(err, CV_EIO, "%s: flushing %s failed: %s", path, tmp, strerror(errno));
        goto remove_tmp;
    }
    closed = fclose(f);
    f = NULL;
    if (closed != 0) {
        rc = cv_errf(err, CV_EIO, "%s: closing %s failed: %s", path, tmp, strerror(errno));
        goto remove_tmp;
    }
    if (rename(tmp, path) != 0) {
        rc = cv_errf(err, CV_EIO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        goto remove_tmp;
    }
    rc = CV_OK;
    goto done;

remove_tmp:
    if (f) fclose(f);
    f = NULL;
    unlink(tmp);
done:
    free(w);
    free(tmp);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* An open model file whose header has been read and checked. */
typedef struct {
    FILE *f;
    const char *path;      /* borrowed, for messages */
    uLong crc;             /* CRC-32 of every byte read so far */
    uint64_t offset;       /* bytes read so far */
    cv_arch_t arch;        /* checked by arch_check */
    model_counts_t counts; /* equal to what arch implies */
} reader_t;

/* Reads exactly len bytes or explains why not: a read error, or the file ending early. */
static int r_read(reader_t *r, unsigned char *buf, size_t len, char *err) {
    size_t got = fread(buf, 1, len, r->f);
    r->crc = crc32(r->crc, buf, (uInt)got);
    r->offset += got;
    if (got == len) return CV_OK;
    if (ferror(r->f))
        return cv_errf(err, CV_EIO, "%s: read failed at byte %llu: %s", r->path,
                       (unsigned long long)r->offset, strerror(errno));
    return cv_errf(err, CV_EFORMAT, "%s: truncated at byte %llu", r->path,
                   (unsigned long long)r->offset);
}

/* Reads n f32 values into dst. */
static int r_floats(reader_t *r, float *dst, uint64_t n, char *err) {
    unsigned char buf[MODEL_IO_BYTES];
    while (n > 0) {
        size_t k = n < MODEL_IO_VALUES ? (size_t)n : MODEL_IO_VALUES;
        int rc = r_read(r, buf, 4 * k, err);
        if (rc < 0) return rc;
        for (size_t i = 0; i < k; i++)
            dst[i] = get_f32(buf + 4 * i);
        dst += k;
        n -= k;
    }
    return CV_OK;
}

/* Decodes the architecture record rec of len bytes (already read) into r->arch and checks it. */
static int r_arch(reader_t *r, const unsigned char *rec, uint32_t len, char *err) {
    cv_arch_t *a = &r->arch;
    memset(a, 0, sizeof *a);
    uint32_t layers = get_u32(rec);
    if (layers < 1 || layers > CV_MAX_LAYERS)
        return cv_errf(err, CV_EFORMAT, "%s: %lu layers, outside 1..%d", r->path,
                       (unsigned long)layers, CV_MAX_LAYERS);
    if (len != ARCH_RECORD_BYTES(layers))
        return cv_errf(err, CV_EFORMAT,
                       "%s: the architecture record is %lu bytes, %lu layers need %u", r->path,
                       (unsigned long)len, (unsigned long)layers, ARCH_RECORD_BYTES(layers));
    int L = (int)layers;
    uint32_t classes = get_u32(rec + 4), output = get_u32(rec + 8);
    if (classes > CV_MAX_UNITS)
        return cv_errf(err, CV_EFORMAT, "%s: %lu classes, more than %d", r->path,
                       (unsigned long)classes, CV_MAX_UNITS);
    if (output > CV_OUT_SIGMOID)
        return cv_errf(err, CV_EFORMAT, "%s: unknown output type %lu", r->path,
                       (unsigned long)output);
    /* The enums and counts are range-checked here, before they become ints and enums; the
     * rest is arch_check's, shared with the writer. */
    a->layers = L;
    a->classes = (int)classes;
    a->output = (cv_output_t)output;
    a->leaky_slope = get_f32(rec + 12);
    a->bn_momentum = get_f32(rec + 16);
    a->bn_epsilon = get_f32(rec + 20);
    const unsigned char *p = rec + 24;
    for (int l = 0; l <= L; l++, p += 4) {
        uint32_t u = get_u32(p);
        if (u > CV_MAX_UNITS)
            return cv_errf(err, CV_EFORMAT, "%s: layer %d has %lu units, outside 1..%d", r->path, l,
                           (unsigned long)u, CV_MAX_UNITS);
        a->units[l] = (int)u;
    }
    for (int l = 1; l < L; l++, p += 12) {
        uint32_t act = get_u32(p), bn = get_u32(p + 4);
        if (act > CV_ACT_SIGMOID)
            return cv_errf(err, CV_EFORMAT, "%s: layer %d has unknown activation %lu", r->path, l,
                           (unsigned long)act);
        if (bn > 1)
            return cv_errf(err, CV_EFORMAT, "%s: batch_norm of layer %d is %lu, not 0 or 1",
                           r->path, l, (unsigned long)bn);
        a->act[l] = (cv_activation_t)act;
        a->batch_norm[l] = (int)bn;
        a->keep_prob[l] = get_f32(p + 8);
    }
    a->keep_prob[0] = get_f32(p);
    return arch_check(a, r->path, err);
}

/* Reads and checks everything before the payload of the file r->f of size bytes: magic,
 * version, architecture, the counts it implies and the file's length. Allocates nothing. */
static int r_header(reader_t *r, uint64_t size, char *err) {
    const char *path = r->path;
    unsigned char head[MODEL_PREFIX_BYTES], rec[ARCH_RECORD_BYTES(CV_MAX_LAYERS)];
    unsigned char counts[MODEL_COUNTS_BYTES];
    size_t got = fread(head, 1, sizeof head, r->f);
    r->crc = crc32(r->crc, head, (uInt)got);
    r->offset = got;
    size_t cmp = got < sizeof MODEL_MAGIC ? got : sizeof MODEL_MAGIC;
    if (memcmp(head, MODEL_MAGIC, cmp) != 0)
        return cv_errf(err, CV_EFORMAT, "%s: bad magic, not a caviar model file", path);
    if (got < sizeof head) {
        if (ferror(r->f)) return cv_errf(err, CV_EIO, "%s: read failed: %s", path, strerror(errno));
        return cv_errf(err, CV_EFORMAT, "%s: truncated at byte %zu", path, got);
    }
    uint32_t version = get_u32(head + 8), header_bytes = get_u32(head + 12);
    if (version > CV_MODEL_VERSION)
        return cv_errf(err, CV_EFORMAT, "%s: model file version %lu is newer than this build's %d",
                       path, (unsigned long)version, CV_MODEL_VERSION);
    if (version != CV_MODEL_VERSION)
        return cv_errf(err, CV_EFORMAT, "%s: unknown model file version %lu", path,
                       (unsigned long)version);
    if (header_bytes < ARCH_RECORD_BYTES(1) || header_bytes > sizeof rec)
        return cv_errf(err, CV_EFORMAT, "%s: architecture record of %lu bytes, outside %u..%u",
                       path, (unsigned long)header_bytes, ARCH_RECORD_BYTES(1),
                       (unsigned)sizeof rec);
    int rc;
    if ((rc = r_read(r, rec, header_bytes, err)) < 0) return rc;
    if ((rc = r_arch(r, rec, header_bytes, err)) < 0) return rc;
    if ((rc = r_read(r, counts, sizeof counts, err)) < 0) return rc;

    model_counts_t want = arch_counts(&r->arch);
    const char *names[3] = {"n_params", "n_stats", "n_features"};
    uint64_t have[3] = {get_u64(counts), get_u64(counts + 8), get_u64(counts + 16)};
    uint64_t need[3] = {want.n_params, want.n_stats, want.n_features};
    for (int i = 0; i < 3; i++)
        if (have[i] != need[i])
            return cv_errf(err, CV_EFORMAT, "%s: %s is %llu but the architecture implies %llu",
                           path, names[i], (unsigned long long)have[i],
                           (unsigned long long)need[i]);
    r->counts = want;
    /* At most 33 · 65536 · 65538 values: far from overflowing 64 bits. */
    uint64_t total =
        r->offset + 4 * (want.n_params + want.n_stats + 2 * want.n_features) + MODEL_CRC_BYTES;
    if (size < total)
        return cv_errf(err, CV_EFORMAT, "%s: truncated at byte %llu of the %llu its header implies",
                       path, (unsigned long long)size, (unsigned long long)total);
    if (size > total)
        return cv_errf(err, CV_EFORMAT, "%s: %llu bytes after the %llu its header implies", path,
                       (unsigned long long)(size - total), (unsigned long long)total);
    return CV_OK;
}

/* Opens path and checks its header (r_header). On success the caller reads the payload with
 * r_payload, which closes r->f; on failure r->f is already closed. */
static int r_open(reader_t *r, const char *path, char *err) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->crc = crc32(0L, Z_NULL, 0);
    r->f = fopen(path, "rb");
    if (!r->f) return cv_errf(err, CV_EIO, "%s: cannot open model file: %s", path, strerror(errno));
    struct stat st;
    int rc = fstat(fileno(r->f), &st) != 0
                 ? cv_errf(err, CV_EIO, "%s: cannot stat model file: %s", path, strerror(errno))
                 : r_header(r, (uint64_t)st.st_size, err);
    if (rc < 0) {
        fclose(r->f);
        r->f = NULL;
    }
    return rc;
}

/* Reads the payload of an opened file into a new network of batch_cap rows and into norm,
 * verifies the CRC and the values, and closes the file. Ownership as for cv_model_load. */
static int r_payload(reader_t *r, size_t batch_cap, cv_nnf_net_t **out, cv_normalizer_t *norm,
                     char *err) {
    cv_nnf_net_t *net = NULL;
    unsigned char tail[MODEL_CRC_BYTES];
    uLong crc;
    memset(norm, 0, sizeof *norm);
    size_t n = (size_t)r->counts.n_features;
    int rc = cv_nnf_create(&net, &r->arch, batch_cap, err);
    if (rc < 0) goto fail;
    norm->mean = malloc(n * sizeof *norm->mean);
    norm->inv_std = malloc(n * sizeof *norm->inv_std);
    if (!norm->mean || !norm->inv_std) {
        rc = cv_errf(err, CV_ENOMEM, "%s: out of memory for %zu features", r->path, n);
        goto fail;
    }
    norm->n = n;
    if ((rc = r_floats(r, net->params, net->n_params, err)) < 0) goto fail;
    if ((rc = r_floats(r, net->stats, net->n_stats, err)) < 0) goto fail;
    if ((rc = r_floats(r, norm->mean, n, err)) < 0) goto fail;
    if ((rc = r_floats(r, norm->inv_std, n, err)) < 0) goto fail;
    crc = r->crc;
    if ((rc = r_read(r, tail, sizeof tail, err)) < 0) goto fail;
    if (get_u32(tail) != (uint32_t)crc) {
        rc = cv_errf(err, CV_EFORMAT,
                     "%s: checksum mismatch (stored %08lx, computed %08lx): the "
                     "file is corrupt",
                     r->path, (unsigned long)get_u32(tail), (unsigned long)crc);
        goto fail;
    }
    if ((rc = values_check(net, norm, r->path, err)) < 0) goto fail;
    fclose(r->f);
    r->f = NULL;
    *out = net;
    return CV_OK;

fail:
    fclose(r->f);
    r->f = NULL;
    cv_nnf_destroy(net);
    cv_normalizer_finish(norm);
    return rc;
}

int cv_model_load(const char *path, size_t batch_cap, cv_nnf_net_t **net, cv_normalizer_t *norm,
                  char *err) {
    *net = NULL;
    memset(norm, 0, sizeof *norm);
    reader_t r;
    int rc = r_open(&r, path, err);
    if (rc < 0) return rc;
    return r_payload(&r, batch_cap, net, norm, err);
}

/* ---- ensembles ---------------------------------------------------------------------------- */

int cv_ensemble_load(cv_ensemble_t *ens, const char *const *paths, int count, char *err) {
    memset(ens, 0, sizeof *ens);
    if (count < 1) return cv_errf(err, CV_EINVAL, "an ensemble needs at least one model");
    int rc;
    ens->nets = calloc((size_t)count, sizeof *ens->nets);
    ens->norms = calloc((size_t)count, sizeof *ens->norms);
    if (!ens->nets || !ens->norms) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory for an ensemble of %d models", count);
        goto fail;
    }
    ens->count = count;
    for (int i = 0; i < count; i++) {
        reader_t r;
        if ((rc = r_open(&r, paths[i], err)) < 0) goto fail;
        size_t n = (size_t)r.counts.n_features;
        if (i == 0) {
            ens->n_features = n;
            ens->classes = r.arch.classes;
            size_t cap = ENSEMBLE_ROW_FLOATS / n;
            ens->batch_cap = cap < 1 ? 1 : cap > ENSEMBLE_MAX_BATCH ? ENSEMBLE_MAX_BATCH : cap;
        } else if (n != ens->n_features || r.arch.classes != ens->classes) {
            fclose(r.f);
            rc = cv_errf(err, CV_EINVAL,
                         "%s: %zu features and %d classes, but %s has %zu features and %d "
                         "classes; an ensemble's models must agree",
                         paths[i], n, r.arch.classes, paths[0], ens->n_features, ens->classes);
            goto fail;
        }
        if ((rc = r_payload(&r, ens->batch_cap, &ens->nets[i], &ens->norms[i], err)) < 0) goto fail;
    }
    ens->scratch = malloc(ens->batch_cap * ens->n_features * sizeof *ens->scratch);
    if (!ens->scratch) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory for %zu rows of %zu features", ens->batch_cap,
                     ens->n_features);
        goto fail;
    }
    return CV_OK;

fail:
    cv_ensemble_finish(ens);
    return rc;
}

void cv_ensemble_finish(cv_ensemble_t *ens) {
    if (!ens) return;
    for (int i = 0; i < ens->count; i++) {
        if (ens->nets) cv_nnf_destroy(ens->nets[i]);
        if (ens->norms) cv_normalizer_finish(&ens->norms[i]);
    }
    free(ens->nets);
    free(ens->norms);
    free(ens->scratch);
    memset(ens, 0, sizeof *ens);
}

void cv_ensemble_predict(cv_ensemble_t *ens, const float *x, size_t m, float *probs) {
    size_t n = ens->n_features, C = (size_t)ens->classes;
    if (m == 0) return;
    memset(probs, 0, m * C * sizeof *probs);
    for (size_t start = 0; start < m; start += ens->batch_cap) {
        size_t B = m - start < ens->batch_cap ? m - start : ens->batch_cap;
        float *out = probs + start * C;
        for (int k = 0; k < ens->count; k++) {
            cv_nnf_net_t *net = ens->nets[k];
            memcpy(ens->scratch, x + start * n, B * n * sizeof *ens->scratch);
            cv_normalizer_apply_rows(&ens->norms[k], ens->scratch, B);
            cv_nnf_forward(net, ens->scratch, B, NN_FORWARD_INFER, NULL);
            if (net->arch.output == CV_OUT_SIGMOID) {
                for (size_t i = 0; i < B; i++) {
                    out[2 * i] += 1.0f - net->probs[i];
                    out[2 * i + 1] += net->probs[i];
                }
            } else {
                for (size_t i = 0; i < B * C; i++)
                    out[i] += net->probs[i];
            }
        }
        /* Summing first and dividing once keeps a two-model average exactly (p₁ + p₂) / 2. */
        for (size_t i = 0; i < B * C; i++)
            out[i] /= (float)ens->count;
    }
}

int cv_ensemble_evaluate(cv_ensemble_t *ens, const cv_dataset_t *ds, double *accuracy, double *cost,
                         char *err) {
    size_t n = ens->n_features, C = (size_t)ens->classes;
    if (ds->n != n)
        return cv_errf(err, CV_EINVAL, "the data have %zu features, the model expects %zu", ds->n,
                       n);
    if (ds->m == 0) return cv_errf(err, CV_EINVAL, "cannot evaluate on an empty dataset");
    for (size_t i = 0; i < ds->m; i++)
        if (ds->y[i] < 0 || (size_t)ds->y[i] >= C)
            return cv_errf(err, CV_EINVAL, "example %zu has label %d, outside the model's 0..%zu",
                           i, (int)ds->y[i], C - 1);
    float *probs = malloc(ens->batch_cap * C * sizeof *probs);
    if (!probs)
        return cv_errf(err, CV_ENOMEM, "out of memory for %zu rows of %zu probabilities",
                       ens->batch_cap, C);
    size_t correct = 0;
    double sum = 0;
    for (size_t start = 0; start < ds->m; start += ens->batch_cap) {
        size_t B = ds->m - start < ens->batch_cap ? ds->m - start : ens->batch_cap;
        cv_ensemble_predict(ens, ds->x + start * n, B, probs);
        for (size_t i = 0; i < B; i++) {
            const float *p = probs + i * C;
            size_t best = 0, y = (size_t)ds->y[start + i];
            for (size_t c = 1; c < C; c++)
                best = p[c] > p[best] ? c : best;
            correct += best == y;
            sum -= log(p[y] > ENSEMBLE_P_FLOOR ? (double)p[y] : ENSEMBLE_P_FLOOR);
        }
    }
    free(probs);
    *accuracy = (double)correct / (double)ds->m;
    *cost = sum / (double)ds->m;
    return CV_OK;
}
