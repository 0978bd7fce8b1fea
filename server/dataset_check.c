/* Checking a job's dataset files on the thread pool; see dataset_check.h. */
#include "server/dataset_check.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "server/csv_scan.h"
#include "server/paths.h"

#define READ_BLOCK (1u << 20) /* bytes per read while hashing */

/* The dataset fields whose files a job names, in the order they are checked. */
static const char *const FIELDS[CV_DATASET_CHECK_MAX_FILES] = {
    "images", "labels", "test_images", "test_labels", "csv", "test_csv"};

struct cv_dataset_check {
    uv_work_t work;
    cv_dataset_check_done_t done;
    void *userdata;
    atomic_int cancel;            /* 1: stop at the next block */
    const char *const *roots;     /* borrowed */
    size_t n_roots;
    uint64_t max_bytes;
    int csv;                      /* 1: format csv (labels are scanned) */
    int header;                   /* dataset.header (default 1) */
    char label_name[128];         /* dataset.label_column as a name, or "" */
    int label_index;              /* dataset.label_column as an index; -1: the last column */
    int classes;                  /* dataset.classes; 0: inferred */
    size_t n_given;
    char given_field[CV_DATASET_CHECK_MAX_FILES][16];
    char *given[CV_DATASET_CHECK_MAX_FILES]; /* paths as the job names them (owned) */
    cv_dataset_file_t files[CV_DATASET_CHECK_MAX_FILES];
    size_t n_files;
    uint8_t seen[(CV_DATASET_MAX_CLASSES + 7) / 8]; /* CSV label values seen in any file */
    int max_label;                /* largest CSV label seen, -1 before any */
    int rc;                       /* outcome once ended */
    char err[CV_ERRLEN];
};

int cv_dataset_check_create(cv_dataset_check_t **out, const cJSON *trial, const char *const *roots,
                            size_t n_roots, uint64_t max_bytes, char *err) {
    *out = NULL;
    cv_dataset_check_t *c = calloc(1, sizeof *c);
    if (!c) return cv_errf(err, CV_ENOMEM, "out of memory");
    c->roots = roots, c->n_roots = n_roots, c->max_bytes = max_bytes;
    c->header = 1, c->label_index = -1, c->max_label = -1;
    atomic_init(&c->cancel, 0);
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(trial, "dataset");
    const char *format = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ds, "format"));
    c->csv = format && !strcmp(format, "csv");
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(ds, "header");
    if (cJSON_IsBool(item)) c->header = cJSON_IsTrue(item);
    item = cJSON_GetObjectItemCaseSensitive(ds, "label_column");
    if (cJSON_IsString(item))
        snprintf(c->label_name, sizeof c->label_name, "%s", item->valuestring);
    else if (cJSON_IsNumber(item))
        c->label_index = (int)item->valuedouble;
    item = cJSON_GetObjectItemCaseSensitive(ds, "classes");
    if (cJSON_IsNumber(item)) c->classes = (int)item->valuedouble;
    for (size_t i = 0; i < CV_DATASET_CHECK_MAX_FILES; i++) {
        item = cJSON_GetObjectItemCaseSensitive(ds, FIELDS[i]);
        if (!cJSON_IsString(item)) continue;
        snprintf(c->given_field[c->n_given], sizeof c->given_field[0], "%s", FIELDS[i]);
        if (!(c->given[c->n_given++] = strdup(item->valuestring))) {
            cv_dataset_check_destroy(c);
            return cv_errf(err, CV_ENOMEM, "out of memory");
        }
    }
    *out = c;
    return 0;
}

void cv_dataset_check_destroy(cv_dataset_check_t *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_given; i++) free(c->given[i]);
    free(c);
}

void cv_dataset_check_cancel(cv_dataset_check_t *c) {
    atomic_store(&c->cancel, 1);
}

int cv_dataset_check_status(const cv_dataset_check_t *c, char *err) {
    if (c->rc) cv_errf(err, c->rc, "%s", c->err);
    return c->rc;
}

size_t cv_dataset_check_files(const cv_dataset_check_t *c, const cv_dataset_file_t **files) {
    *files = c->files;
    return c->n_files;
}

/* Opens a resolved path for reading without blocking on what is not a regular file
 * (cv_path_open_regular) and checks its size. Returns the descriptor, or -1 with the reason in
 * c->err. */
static int open_regular(cv_dataset_check_t *c, const char *field, const char *given,
                        const char *path, uint64_t *size) {
    char name[64];
    snprintf(name, sizeof name, "trial.dataset.%s", field);
    int fd = cv_path_open_regular(name, given, path, size, c->err);
    if (fd < 0) {
        c->rc = fd;
        return -1;
    }
    if (c->max_bytes && *size > c->max_bytes) {
        close(fd);
        c->rc = cv_errf(c->err, CV_EINVAL, "trial.dataset.%s: %s is %llu bytes, over the limit "
                        "of %llu (caviard --max-dataset-bytes)", field, given,
                        (unsigned long long)*size, (unsigned long long)c->max_bytes);
        return -1;
    }
    return fd;
}

/* Hashes one open file, scanning it as CSV when scan is not NULL. Sets c->rc and c->err on
 * failure. */
static void hash_file(cv_dataset_check_t *c, int fd, const char *field, const char *given,
                      cv_csv_scan_t *scan, cv_dataset_file_t *out) {
    unsigned char *buf = malloc(READ_BLOCK), md[EVP_MAX_MD_SIZE];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 0;
    uint64_t total = 0;
    if (!buf || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        c->rc = cv_errf(c->err, CV_ENOMEM, "trial.dataset.%s: out of memory", field);
        goto done;
    }
    for (;;) {
        if (atomic_load(&c->cancel)) {
            c->rc = cv_errf(c->err, CV_ESTOPPED, "the coordinator is stopping");
            goto done;
        }
        ssize_t n = read(fd, buf, READ_BLOCK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            c->rc = cv_errf(c->err, CV_EINVAL, "trial.dataset.%s: %s: read failed: %s", field,
                            given, strerror(errno));
            goto done;
        }
        if (n == 0) break;
        total += (uint64_t)n;
        if (c->max_bytes && total > c->max_bytes) {
            c->rc = cv_errf(c->err, CV_EINVAL, "trial.dataset.%s: %s grew over the limit of %llu "
                            "bytes while it was read", field, given,
                            (unsigned long long)c->max_bytes);
            goto done;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        if (scan && (c->rc = cv_csv_scan_feed(scan, (const char *)buf, (size_t)n, c->err)))
            goto done;
    }
    if (scan && (c->rc = cv_csv_scan_end(scan, c->err))) goto done;
    EVP_DigestFinal_ex(ctx, md, &len);
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < len && i < 32; i++) {
        out->hash[2 * i] = digits[md[i] >> 4];
        out->hash[2 * i + 1] = digits[md[i] & 15];
    }
    out->hash[64] = '\0';
    out->bytes = total;
done:
    EVP_MD_CTX_free(ctx);
    free(buf);
}

/* Checks the i-th named file into c->files. */
static void check_file(cv_dataset_check_t *c, size_t i) {
    const char *field = c->given_field[i], *given = c->given[i];
    char spec_field[48];
    cv_dataset_file_t *out = &c->files[c->n_files];
    snprintf(spec_field, sizeof spec_field, "trial.dataset.%s", field);
    memcpy(out->field, c->given_field[i], sizeof out->field);
    c->rc = cv_path_resolve_dataset(spec_field, given, c->roots, c->n_roots, out->path,
                                    sizeof out->path, c->err);
    if (c->rc) return;
    uint64_t size = 0;
    int fd = open_regular(c, field, given, out->path, &size);
    if (fd < 0) return;
    int is_csv = c->csv && (!strcmp(field, "csv") || !strcmp(field, "test_csv"));
    cv_csv_scan_t scan;
    if (is_csv) {
        cv_csv_scan_options_t o = {.field = spec_field, .path = given, .header = c->header,
                                   .label_name = c->label_name[0] ? c->label_name : NULL,
                                   .label_index = c->label_index, .classes = c->classes};
        cv_csv_scan_init(&scan, &o);
    }
    hash_file(c, fd, field, given, is_csv ? &scan : NULL, out);
    close(fd);
    if (is_csv && c->rc == 0) {
        for (size_t b = 0; b < sizeof c->seen; b++) c->seen[b] |= scan.seen[b];
        if (scan.max_label > c->max_label) c->max_label = scan.max_label;
    }
    if (is_csv) cv_csv_scan_finish(&scan);
    if (c->rc == 0) c->n_files++;
}

void cv_dataset_check_run(cv_dataset_check_t *c) {
    c->rc = 0;
    c->n_files = 0;
    for (size_t i = 0; i < c->n_given && c->rc == 0; i++) check_file(c, i);
    if (c->rc || !c->csv || c->classes || c->max_label < 1 || (c->seen[0] & 1)) return;
    /* Labels 1..K without classes: the network would get K+1 outputs, class 0 never seen. */
    const char *csv = c->given[0];
    for (size_t i = 0; i < c->n_given; i++)
        if (!strcmp(c->given_field[i], "csv")) csv = c->given[i];
    int low = 1;
    while (!(c->seen[low / 8] & (1u << (low % 8)))) low++;
    c->rc = cv_errf(c->err, CV_EINVAL,
                    "trial.dataset.csv: the labels of %s go from %d to %d and 0 never appears: "
                    "labels are class numbers 0..K-1, so a network would get %d outputs with "
                    "class 0 never seen; renumber the labels 0..%d, or write \"classes\": %d in "
                    "trial.dataset to keep an empty class 0", csv, low,
                    c->max_label, c->max_label + 1, c->max_label - low, c->max_label + 1);
}

static void work(uv_work_t *w) {
    cv_dataset_check_run(w->data);
}

static void after_work(uv_work_t *w, int status) {
    cv_dataset_check_t *c = w->data;
    if (status == UV_ECANCELED) c->rc = cv_errf(c->err, CV_ESTOPPED, "the coordinator is stopping");
    c->done(c, c->userdata);
}

int cv_dataset_check_start(cv_dataset_check_t *c, uv_loop_t *loop, cv_dataset_check_done_t done,
                           void *userdata) {
    c->done = done;
    c->userdata = userdata;
    c->work.data = c;
    int rc = uv_queue_work(loop, &c->work, work, after_work);
    return rc ? CV_EIO : 0;
}
