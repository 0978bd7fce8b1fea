/* Inspecting a job's dataset files before the job is accepted, off the coordinator's loop thread.
 *
 * A job names files by path; the coordinator serves them to workers by SHA-256. Reading and
 * hashing a file may take seconds (or forever: a FIFO, /dev/zero), so it never happens on the
 * loop thread: a check is prepared on the loop thread from the job's fixed trial object, runs on
 * the libuv thread pool, and reports back on the loop thread. For each dataset file it
 *   - resolves the path under the dataset roots (server/paths.h);
 *   - refuses anything but a regular file, without ever blocking on it (opened O_NONBLOCK, then
 *     checked with fstat), and a file over max_bytes;
 *   - hashes it (SHA-256) in one pass that, for a CSV file, also scans the header and every
 *     label (server/csv_scan.h);
 * and, for CSV data without dataset.classes, refuses labels that never use 0 (a network would
 * get an output for an empty class 0).
 *
 * A check's reasons begin with the spec field ("trial.dataset.csv: ...") and say what to write
 * instead where there is something to write. */
#ifndef CV_DATASET_CHECK_H
#define CV_DATASET_CHECK_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "common/hash.h"

#define CV_DATASET_CHECK_MAX_FILES 6 /* images, labels, test_images, test_labels, csv, test_csv */
#define CV_DATASET_DEFAULT_MAX_BYTES (16ull << 30) /* caviard --max-dataset-bytes default */

/* One dataset file of a job once checked. */
typedef struct {
    char field[16];           /* the dataset field naming it: "csv", "test_images", ... */
    char path[PATH_MAX];      /* canonical absolute path */
    char hash[CV_SHA256_HEX]; /* SHA-256 of its bytes, hex */
    uint64_t bytes;           /* its size */
} cv_dataset_file_t;

typedef struct cv_dataset_check cv_dataset_check_t;

/* Called on the loop thread when a started check ended (passed, failed or cancelled). */
typedef void (*cv_dataset_check_done_t)(cv_dataset_check_t *check, void *userdata);

/* Prepares a check of the files named by trial (the job's fixed trial object; borrowed for the
 * call, everything needed is copied). roots (n_roots canonical directories, may be 0) are
 * borrowed and must outlive the check; max_bytes caps each file (0: no cap). Returns 0 with
 * *out owned by the caller (cv_dataset_check_destroy), or CV_ENOMEM. */
int cv_dataset_check_create(cv_dataset_check_t **out, const cJSON *trial, const char *const *roots,
                            size_t n_roots, uint64_t max_bytes, char *err);

/* Runs the check to its end on the calling thread (blocking I/O). */
void cv_dataset_check_run(cv_dataset_check_t *check);

/* Runs the check on loop's thread pool and calls done(check, userdata) on the loop thread when
 * it ended; the caller still owns the check and destroys it in done or later. Returns 0, or a
 * negative code when the work could not be queued (then done is never called). */
int cv_dataset_check_start(cv_dataset_check_t *check, uv_loop_t *loop,
                           cv_dataset_check_done_t done, void *userdata);

/* Asks a running check to stop as soon as possible (any thread); it then fails with
 * CV_ESTOPPED. */
void cv_dataset_check_cancel(cv_dataset_check_t *check);

/* The outcome of an ended check: 0 when every file passed, else the negative code, with the
 * reason copied into err. */
int cv_dataset_check_status(const cv_dataset_check_t *check, char *err);

/* The checked files (borrowed from the check) and their number; meaningful after a passed
 * check. */
size_t cv_dataset_check_files(const cv_dataset_check_t *check, const cv_dataset_file_t **files);

/* Frees a check that is not running. Accepts NULL. */
void cv_dataset_check_destroy(cv_dataset_check_t *check);

#endif
