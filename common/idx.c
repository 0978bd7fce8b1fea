/* IDX reader (the MNIST / Fashion-MNIST container): an image file and a label file, each raw or
 * gzip-compressed, loaded into a cv_dataset_t; see dataset.h for the contract.
 *
 * Both headers are read and checked against each other and the limits before anything is
 * allocated, and the pixel array then grows with the bytes that actually arrive (the labels are
 * allocated once every pixel has arrived), so a file that lies about its sizes costs no more
 * memory than it holds. Pixels are decompressed in small
 * chunks and widened to float straight into the dataset, so the process never holds a second,
 * byte-sized copy of the images. zlib's gz* functions read raw files transparently, which is
 * how compression is detected by content rather than by name. */
#include "common/dataset.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/err.h"

#define IDX_TYPE_U8   0x08          /* element type byte for unsigned bytes */
#define IDX_CHUNK     16384         /* bytes decompressed per gzread into the stack buffer */
#define IDX_GZ_BUFFER (128u * 1024) /* zlib's own input buffer; larger than its 8 KiB default */
#define IDX_X_FIRST   (1u << 20)    /* floats of the first pixel allocation; then it doubles */

/* One opened IDX file and what its header declared. */
typedef struct {
    gzFile gz;
    const char *path; /* borrowed from the caller, for messages */
    const char *what; /* "images" or "labels", for messages */
    uint32_t dims[3]; /* sizes from the header, big-endian on disk */
} idx_file_t;

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads up to len bytes into buf and stores the count in *got. A short count means the data
 * ended (a raw file's end or a gzip stream cut short); an error is returned only when zlib
 * reports corrupt compressed data or the operating system reports a read failure. */
static int idx_read(idx_file_t *f, unsigned char *buf, size_t len, size_t *got, char *err) {
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > IDX_CHUNK) want = IDX_CHUNK;
        int n = gzread(f->gz, buf + *got, (unsigned)want);
        if (n > 0) {
            *got += (size_t)n;
            continue;
        }
        int zerr = Z_OK;
        const char *msg = gzerror(f->gz, &zerr);
        if (zerr == Z_ERRNO)
            return cv_errf(err, CV_EIO, "%s: read failed: %s", f->path, strerror(errno));
        if (zerr == Z_MEM_ERROR)
            return cv_errf(err, CV_ENOMEM, "%s: out of memory while decompressing", f->path);
        if (n < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR))
            return cv_errf(err, CV_EFORMAT, "%s: corrupt gzip stream (%s)", f->path, msg);
        break; /* end of data; Z_BUF_ERROR is a gzip stream that stops early: the caller's
                  truncation message says more than zlib's "unexpected end of file" */
    }
    return CV_OK;
}

/* Opens path and checks its IDX header: two zero bytes, the unsigned-byte type code and the
 * expected number of dimensions, then reads the sizes into f->dims. */
static int idx_open(idx_file_t *f, const char *path, const char *what, unsigned ndims, char *err) {
    memset(f, 0, sizeof *f);
    f->path = path;
    f->what = what;
    errno = 0;
    f->gz = gzopen(path, "rb");
    if (!f->gz) {
        return cv_errf(err, CV_EIO, "%s: cannot open %s file: %s", path, what,
                       errno ? strerror(errno) : "out of memory");
    }
    (void)gzbuffer(f->gz, IDX_GZ_BUFFER);

    unsigned char head[4 + 4 * 3];
    size_t hlen = 4 + 4 * (size_t)ndims, got;
    int rc = idx_read(f, head, hlen, &got, err);
    if (rc < 0) return rc;
    if (got < 4) {
        return cv_errf(err, CV_EFORMAT,
                       "%s: %s file is %zu bytes long, too short for an IDX header", path, what,
                       got);
    }
    uint32_t magic = be32(head), expect = (uint32_t)IDX_TYPE_U8 << 8 | ndims;
    if (head[0] != 0 || head[1] != 0) {
        return cv_errf(err, CV_EFORMAT,
                       "%s: not an IDX %s file: wrong magic 0x%08x, expected 0x%08x", path, what,
                       (unsigned)magic, (unsigned)expect);
    }
    if (head[2] != IDX_TYPE_U8) {
        return cv_errf(err, CV_EFORMAT,
                       "%s: IDX %s file has element type 0x%02x (magic 0x%08x), "
                       "expected 0x08 (unsigned byte)",
                       path, what, head[2], (unsigned)magic);
    }
    if (head[3] != ndims) {
        return cv_errf(err, CV_EFORMAT,
                       "%s: IDX %s file has %u dimensions (magic 0x%08x), expected %u", path, what,
                       head[3], (unsigned)magic, ndims);
    }
    if (got < hlen) {
        return cv_errf(err, CV_EFORMAT, "%s: truncated IDX %s header: expected %zu bytes, read %zu",
                       path, what, hlen, got);
    }
    for (unsigned d = 0; d < ndims; d++)
        f->dims[d] = be32(head + 4 + 4 * d);
    return CV_OK;
}

/* Confirms nothing follows the declared data. Reading past the end also makes zlib verify the
 * gzip trailer (CRC and length), which is where a corrupted stream is usually caught. */
static int idx_expect_end(idx_file_t *f, const char *declared, char *err) {
    unsigned char extra;
    size_t got;
    int rc = idx_read(f, &extra, 1, &got, err);
    if (rc < 0) return rc;
    if (got != 0) {
        return cv_errf(err, CV_EFORMAT,
                       "%s: trailing bytes after the %s declared by the IDX header", f->path,
                       declared);
    }
    int zerr = Z_OK;
    const char *msg = gzerror(f->gz, &zerr);
    if (zerr != Z_OK) return cv_errf(err, CV_EFORMAT, "%s: corrupt gzip stream (%s)", f->path, msg);
    return CV_OK;
}

/* Checks both headers against each other and the limits; fills m, n, height and width. */
static int idx_check_sizes(const idx_file_t *img, const idx_file_t *lab, cv_dataset_t *ds,
                           char *err) {
    uint32_t count = img->dims[0], rows = img->dims[1], cols = img->dims[2];
    if (count > CV_DATASET_MAX_EXAMPLES) {
        return cv_errf(err, CV_ERANGE, "%s: header declares %u images, over the limit of %u",
                       img->path, (unsigned)count, CV_DATASET_MAX_EXAMPLES);
    }
    if (count == 0) return cv_errf(err, CV_EFORMAT, "%s: header declares 0 images", img->path);
    /* Multiply in 64 bits: two 32-bit sizes can overflow a 32-bit product. */
    uint64_t pixels = (uint64_t)rows * cols;
    if (rows == 0 || cols == 0 || pixels > CV_DATASET_MAX_FEATURES) {
        return cv_errf(err, CV_ERANGE,
                       "%s: header declares %ux%u images; each must have 1 to %u pixels", img->path,
                       (unsigned)rows, (unsigned)cols, CV_DATASET_MAX_FEATURES);
    }
    if (lab->dims[0] != count) {
        return cv_errf(err, CV_EFORMAT, "%s holds %u images but %s holds %u labels", img->path,
                       (unsigned)count, lab->path, (unsigned)lab->dims[0]);
    }
    if ((uint64_t)count * pixels > SIZE_MAX / sizeof(float)) {
        return cv_errf(err, CV_ERANGE, "%s: %u images of %u pixels do not fit in memory", img->path,
                       (unsigned)count, (unsigned)pixels);
    }
    ds->m = count;
    ds->n = (size_t)pixels;
    ds->height = (int)rows;
    ds->width = (int)cols;
    return CV_OK;
}

/* Streams the pixel bytes into ds->x as floats, one stack-sized chunk at a time. ds->x (NULL
 * on entry) grows by doubling as bytes arrive, never past the declared size, which it reaches
 * exactly. */
static int idx_read_pixels(idx_file_t *f, cv_dataset_t *ds, char *err) {
    unsigned char chunk[IDX_CHUNK];
    size_t total = ds->m * ds->n, done = 0;
    cv_buf_t x; /* ds->x's storage: ds takes it over as it grows and frees it */
    cv_buf_init(&x, IDX_X_FIRST * sizeof(float), total * sizeof(float));
    while (done < total) {
        size_t want = total - done, got;
        if (want > sizeof chunk) want = sizeof chunk;
        int rc = idx_read(f, chunk, want, &got, err);
        if (rc < 0) return rc;
        if (cv_buf_reserve(&x, got * sizeof(float)) != 0) {
            return cv_errf(err, CV_ENOMEM, "%s: out of memory for %zu images of %zu pixels",
                           f->path, ds->m, ds->n);
        }
        ds->x = (float *)x.data;
        for (size_t i = 0; i < got; i++)
            ds->x[done + i] = (float)chunk[i];
        done += got;
        x.len = done * sizeof(float);
        if (got < want) {
            return cv_errf(err, CV_EFORMAT,
                           "%s: truncated pixel data: expected %zu bytes (%zu "
                           "images of %dx%d), read %zu (%zu whole images)",
                           f->path, total, ds->m, ds->height, ds->width, done, done / ds->n);
        }
    }
    return idx_expect_end(f, "images", err);
}

/* Streams the label bytes into ds->y and sets ds->classes from the largest label. */
static int idx_read_labels(idx_file_t *f, cv_dataset_t *ds, char *err) {
    unsigned char chunk[IDX_CHUNK];
    size_t done = 0;
    int max_label = 0;
    while (done < ds->m) {
        size_t want = ds->m - done, got;
        if (want > sizeof chunk) want = sizeof chunk;
        int rc = idx_read(f, chunk, want, &got, err);
        if (rc < 0) return rc;
        for (size_t i = 0; i < got; i++) {
            ds->y[done + i] = chunk[i];
            if (chunk[i] > max_label) max_label = chunk[i];
        }
        done += got;
        if (got < want) {
            return cv_errf(err, CV_EFORMAT,
                           "%s: truncated label data: expected %zu labels, read %zu", f->path,
                           ds->m, done);
        }
    }
    /* A u8 label is at most 255, well under CV_DATASET_MAX_CLASSES. */
    ds->classes = max_label + 1 < 2 ? 2 : max_label + 1;
    return idx_expect_end(f, "labels", err);
}

int cv_dataset_load_idx(cv_dataset_t *ds, const char *images_path, const char *labels_path,
                        char *err) {
    idx_file_t img = {0}, lab = {0};
    memset(ds, 0, sizeof *ds);

    int rc = idx_open(&img, images_path, "images", 3, err);
    if (rc < 0) goto done;
    if (labels_path) {
        rc = idx_open(&lab, labels_path, "labels", 1, err);
        if (rc < 0) goto done;
    } else {
        lab.dims[0] = img.dims[0]; /* no label file: as many labels as images, all -1 */
    }
    rc = idx_check_sizes(&img, &lab, ds, err);
    if (rc < 0) goto done;

    ds->owner = 1;
    rc = idx_read_pixels(&img, ds, err);
    if (rc < 0) goto done;
    /* Every image arrived, so m is real and its labels are a fraction of what was read. */
    ds->y = malloc(ds->m * sizeof *ds->y);
    if (!ds->y) {
        rc = cv_errf(err, CV_ENOMEM, "%s: out of memory for %zu labels", images_path, ds->m);
        goto done;
    }
    if (labels_path) {
        rc = idx_read_labels(&lab, ds, err);
    } else {
        for (size_t i = 0; i < ds->m; i++)
            ds->y[i] = -1;
        ds->classes = 0;
    }

done:
    /* Reading only, and every stream error was already caught above: gzclose_r has nothing
     * left to report. */
    if (lab.gz) (void)gzclose_r(lab.gz);
    if (img.gz) (void)gzclose_r(img.gz);
    if (rc < 0) cv_dataset_finish(ds);
    return rc;
}
