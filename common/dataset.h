/* Labelled datasets in memory, their readers (IDX, gzip or raw; CSV), the train/dev/test split,
 * input normalization and image augmentation.
 *
 * A dataset is a dense row-major matrix of float features (one example per row) and an int32
 * label per example. Splits are views: the rows of one loaded file are permuted once in place
 * and train, dev and test point into contiguous ranges of that single buffer, so a split costs
 * no copy and the process holds the dataset exactly once. */
#ifndef CV_DATASET_H
#define CV_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"

/* Limits checked before anything is allocated, so a file that lies about its sizes is refused. */
#define CV_DATASET_MAX_EXAMPLES  100000000u /* rows */
#define CV_DATASET_MAX_FEATURES  1000000u   /* columns */
#define CV_DATASET_MAX_CLASSES   10000      /* distinct labels */

typedef struct {
    float *x;        /* m × n features, row-major; owned only when owner != 0 */
    int32_t *y;      /* m labels in [0, classes); owned only when owner != 0 */
    size_t m;        /* number of examples */
    size_t n;        /* features per example */
    int classes;     /* number of classes: 1 + the largest label seen (at least 2); 0 when the
                        file had no labels (every y is then -1) */
    int height;      /* image rows when the data are images (IDX 3-D), else 0 */
    int width;       /* image columns when the data are images, else 0 */
    int owner;       /* 1 when x and y are this struct's allocations, 0 for a view */
} cv_dataset_t;

/* Reads an IDX image file (magic 0x00000803, u8 pixels, 3-D: count × rows × cols) and its IDX
 * label file (magic 0x00000801, u8 labels) into ds. Either file may be gzip-compressed (detected
 * by its content, not its name). Pixels become floats 0..255 unchanged; scaling is the
 * normalizer's job. Refuses wrong magic, truncated files, trailing bytes, counts that disagree
 * and sizes over the limits, naming the file and the problem in err. labels_path NULL reads
 * the images alone: every label is -1 and classes is 0 (for prediction).
 * On success ds owns its memory (release with cv_dataset_finish); on failure ds is zeroed. */
int cv_dataset_load_idx(cv_dataset_t *ds, const char *images_path, const char *labels_path,
                        char *err);

typedef struct {
    int header;              /* 1: the first line names the columns */
    const char *label_name;  /* label column by header name, or NULL to use label_index */
    int label_index;         /* label column by 0-based index; -1 means the last column */
    char delimiter;          /* field separator, usually ','; 0 means ',' */
    size_t unlabeled_width;  /* > 0: a file whose rows have exactly this many fields has no
                                label column (the label options are then ignored): every field
                                is a feature, labels are -1 and classes is 0 */
} cv_csv_options_t;

/* Reads a CSV file: every row has the same number of numeric fields; the label column holds
 * non-negative integers below CV_DATASET_MAX_CLASSES ("3.0" counts as 3). Fields may be padded
 * with blanks or wrapped in double quotes; blank lines are skipped; LF and CRLF both end a line.
 * Refuses ragged rows, non-numeric, NaN or infinite fields (and values beyond float range),
 * negative or non-integer labels, empty files, a header without rows and lines over 16 MiB,
 * naming the line (1-based, counting the header and blank lines) and the column (1-based, with
 * its header name). Ownership as for cv_dataset_load_idx. */
int cv_dataset_load_csv(cv_dataset_t *ds, const char *path, const cv_csv_options_t *opts,
                        char *err);

/* Releases what ds owns (nothing for a view) and zeroes it. Accepts NULL. */
void cv_dataset_finish(cv_dataset_t *ds);

/* Returns a view of rows [begin, begin + count) of ds (the range must lie inside ds); the view
 * borrows ds's memory, so cv_dataset_finish on it frees nothing. */
cv_dataset_t cv_dataset_view(const cv_dataset_t *ds, size_t begin, size_t count);

/* Permutes the rows of ds in place with rng (features and labels together). Extra memory is
 * m 32-bit indices and one row, never a second copy of the data. */
int cv_dataset_shuffle(cv_dataset_t *ds, cv_rng_t *rng, char *err);

/* Copies rows order[0..rows) of ds (features and labels) into x (rows × n) and y: the
 * mini-batch of a shuffled epoch. order may be read up to order[available − 1] (available ≥
 * rows): rows a little ahead, the next batch's first ones included, are prefetched into the
 * cache, since shuffled rows are scattered over the whole set. */
void cv_dataset_gather(const cv_dataset_t *ds, const uint32_t *order, size_t rows,
                       size_t available, float *x, int32_t *y);

/* Checks every label lies in [0, classes); err names the first offending example. */
int cv_dataset_check_labels(const cv_dataset_t *ds, int classes, char *err);

/* Fractions of one file's examples given to train, dev and test. */
typedef struct {
    double train, dev, test; /* each in [0, 1], summing to 1 within 1e-9 */
} cv_split_fractions_t;

/* The course's default split: 60/20/20 below 1,000,000 examples, 98/1/1 at or above. */
cv_split_fractions_t cv_split_auto(size_t m);

/* Shuffles all (with rng) and cuts it into three views by the fractions: train gets the first
 * round(m·train) rows, dev the next round(m·dev) (fewer if the roundings overshoot m), test the
 * rest, which may be empty. Every view borrows all's memory, so all must outlive them. Fails,
 * leaving all unshuffled and the views zeroed, when the fractions are invalid or train or dev
 * would be empty. */
int cv_dataset_split(cv_dataset_t *all, cv_split_fractions_t f, cv_rng_t *rng,
                     cv_dataset_t *train, cv_dataset_t *dev, cv_dataset_t *test, char *err);

/* Per-feature statistics of a training set, applied unchanged to dev, test and new data. */
typedef struct {
    size_t n;        /* features */
    float *mean;     /* n means of the training features */
    float *inv_std;  /* n values 1/σ; 1 for a constant feature (σ below 1e-8), so no divide by 0 */
} cv_normalizer_t;

/* Computes mean and standard deviation (population, in double) of every feature of train,
 * which must hold at least one example. On success norm owns two arrays; release with
 * cv_normalizer_finish (accepts NULL). On failure norm is zeroed. */
int cv_normalizer_fit(cv_normalizer_t *norm, const cv_dataset_t *train, char *err);
/* x ← (x − mean) · inv_std for every row of ds, in place. ds->n must equal norm->n. */
void cv_normalizer_apply(const cv_normalizer_t *norm, cv_dataset_t *ds);
/* Same for a single row-major block of rows (used by predict on new data). */
void cv_normalizer_apply_rows(const cv_normalizer_t *norm, float *x, size_t rows);
void cv_normalizer_finish(cv_normalizer_t *norm);

/* Augments a mini-batch of raw (not yet normalized) images in place (rows × height·width floats,
 * one channel): with probability 1/2 each image is flipped left-right when flip is set, then
 * shifted by a random whole number of pixels in [−translate, translate] along each axis, filling
 * uncovered pixels with fill (0 for a blank pixel). scratch holds height·width floats.
 * Per image, rng gives the flip bit (only when flip is set), then the column and row shifts (only
 * when translate > 0), so a seed reproduces a batch.
 * Used on training batches only, before the batch is normalized. */
void cv_augment_batch(float *x, size_t rows, int height, int width, int flip, int translate,
                      float fill, float *scratch, cv_rng_t *rng);

#endif
