/* What a job spec may name on the coordinator's filesystem.
 *
 * A job names dataset files, which the coordinator reads, hashes and serves to any worker that
 * asks. With dataset roots configured (caviard --dataset-root DIR, repeatable), every such path
 * must resolve, with every symbolic link followed, to a regular file inside one of the roots;
 * a relative path is taken relative to the first root. A path that does not resolve is reported
 * missing only when it is missing inside a root; otherwise (through "..", a link to a directory
 * outside, a dangling link) it is "outside", exactly as an existing file outside would be, so
 * that the answers cannot be used to probe the disk. Without roots (a private coordinator on
 * loopback, as `caviar run` starts it) a path resolves against the working directory. Either way
 * only a regular file is a dataset: a directory, FIFO, device or socket is refused, checked with
 * stat and then with a non-blocking open and fstat, so that a FIFO cannot block.
 *
 * A job may not name a file to write either: model files are written by the coordinator under
 * its data directory only, so a job's fixed trial fields may not carry save_model.
 *
 * These functions keep no state; the resolving ones call realpath(3), stat(2) and open(2). */
#ifndef CV_PATHS_H
#define CV_PATHS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define CV_PATHS_MAX_ROOTS 64 /* --dataset-root given at most this many times */

/* 1 when path equals root or lies below it, comparing whole components ("/data" holds
 * "/data/a" but not "/database"); 0 otherwise. Both must already be canonical absolute paths
 * (realpath's output): this compares strings only. */
int cv_path_is_inside(const char *path, const char *root);

/* Canonicalizes a configured dataset root into out (cap bytes): it must exist and be a
 * directory. Returns 0, or CV_EINVAL with the reason in err. */
int cv_path_root_resolve(const char *root, char *out, size_t cap, char *err);

/* Resolves the dataset path given for field (named in reasons, e.g. "trial.dataset.csv") into a
 * canonical absolute path in out (cap bytes, PATH_MAX is enough). roots (borrowed, n_roots of
 * them, n_roots == 0 allowed with roots NULL) are resolved here too, so they may be given as
 * configured. Returns 0, or CV_EINVAL with err:
 *   "<field>: cannot open <given>: <errno text>"          the file does not resolve; a relative
 *                                                          given adds " (looked for <absolute>)"
 *   "<field>: <given> is outside the dataset roots"       it resolves outside every root
 *   "<field>: <given> is not a regular file"              a directory, a FIFO, a device, ...
 * or CV_ERANGE when a joined path does not fit. */
int cv_path_resolve_dataset(const char *field, const char *given, const char *const *roots,
                            size_t n_roots, char *out, size_t cap, char *err);

/* Refuses the trial fields a job may not fix because they name a file the worker would write
 * (save_model). trial is the job's fixed trial object (borrowed; NULL is accepted). Returns 0,
 * or CV_EINVAL with "trial.save_model: ..." in err. */
/* Opens abs (the resolved path of a dataset field's value given) for reading, refusing anything
 * but a regular file without ever blocking: a directory, a FIFO, a device or a socket is named in
 * the message ("trial.dataset.csv: x is a FIFO, not a regular file"); stat first, so that no
 * device is opened, then a non-blocking open and a second check of what was opened. Returns the
 * descriptor (the caller closes it) with the file's size in *size (may be NULL), or a negative
 * CV_E* code with the reason in err. */
int cv_path_open_regular(const char *field, const char *given, const char *abs, uint64_t *size,
                         char *err);

int cv_paths_check_job_trial(const cJSON *trial, char *err);

#endif
