/* A one-pass look at a CSV dataset file at submission: its header, its label column and every
 * label, without parsing the features. The coordinator runs it on the thread pool while it
 * hashes the file (server/dataset_check.h), so that a job whose labels the worker would refuse,
 * or silently misread, is refused at once with the file, line and column, and what to write
 * instead.
 *
 * It reads lines the way the worker's CSV reader does (common/csv.c): LF or CRLF line ends, blank
 * lines skipped, a UTF-8 byte-order mark on line 1 ignored, fields split at every delimiter,
 * blanks and one pair of double quotes trimmed, lines of at most 16 MiB, no NUL byte. It refuses:
 *   - a header of numbers only (the default "header": true would drop a data row);
 *   - a label column that is not in the header, or an index beyond the columns;
 *   - a row whose field count differs from the first line's;
 *   - a label that is not a number, not a non-negative integer, or not below "classes" (or
 *     CV_DATASET_MAX_CLASSES without it);
 *   - a file without data rows.
 *
 * The parser is pure and incremental: feed it any split of the file's bytes; it does no I/O and
 * holds at most one line (the first) plus a bounded label field. fuzz/csv_scan.c drives it. */
#ifndef CV_CSV_SCAN_H
#define CV_CSV_SCAN_H

#include <stddef.h>

#include "common/buf.h"
#include <stdint.h>

#include "common/dataset.h"

#define CV_CSV_SCAN_MAX_LINE (16u << 20) /* bytes of one line, as common/csv.c allows */
#define CV_CSV_SCAN_LABEL_MAX 64         /* bytes of a label field kept for parsing */

/* What the scan needs from the trial spec's dataset object. Strings are borrowed for the
 * lifetime of the scan. */
typedef struct {
    const char *field;      /* the spec field naming the file, for messages ("trial.dataset.csv") */
    const char *path;       /* the file as the user named it, for messages */
    int header;             /* 1: the first non-blank line names the columns */
    const char *label_name; /* label column by header name, or NULL to use label_index */
    int label_index;        /* label column by 0-based index; -1: the last column */
    int classes;            /* the spec's dataset.classes; 0: inferred from the labels */
} cv_csv_scan_options_t;

typedef struct {
    cv_csv_scan_options_t opt;
    size_t lineno;        /* number of the line being read, 1-based once a byte arrived */
    size_t line_len;      /* bytes of the current line so far */
    size_t col;           /* 0-based field of the current line being read */
    int nonblank;         /* the current line has a byte other than blanks */
    int pending_cr;       /* the last byte was '\r', which ends the line if '\n' follows */
    int have_layout;      /* 1 once the first non-blank line fixed the columns */
    cv_buf_t first;       /* the current line while !have_layout, NUL-terminated in data */
    size_t ncols;         /* fields per row */
    size_t label_col;     /* 0-based label column */
    size_t layout_line;   /* line number of the first non-blank line */
    char *names;          /* header line split into names (owned), or NULL */
    char **name_of;       /* ncols names into names (owned), or NULL */
    char label[CV_CSV_SCAN_LABEL_MAX + 1]; /* the label field of the current line */
    size_t label_len;
    int label_long;       /* the label field was longer than CV_CSV_SCAN_LABEL_MAX */
    int failed;           /* an error was returned; later calls return it again */
    uint64_t rows;        /* data rows seen */
    int min_label, max_label;        /* over the rows seen; -1 before the first */
    uint8_t seen[(CV_DATASET_MAX_CLASSES + 7) / 8]; /* bit per label value seen */
} cv_csv_scan_t;

/* Starts a scan with opt (copied; its strings borrowed). Release with cv_csv_scan_finish. */
void cv_csv_scan_init(cv_csv_scan_t *scan, const cv_csv_scan_options_t *opt);

/* Scans len more bytes of the file. Returns 0, or a negative CV_E* code with the reason in err,
 * starting with the spec field and naming the file, the line and the column. After an error
 * every later call returns CV_EINVAL without reading. */
int cv_csv_scan_feed(cv_csv_scan_t *scan, const char *data, size_t len, char *err);

/* Ends the scan at the end of the file: the last line may lack its newline. Returns 0 when the
 * file has data rows and every check passed, else a negative code with the reason. */
int cv_csv_scan_end(cv_csv_scan_t *scan, char *err);

/* Frees what the scan holds. Accepts a scan that failed or never ended. */
void cv_csv_scan_finish(cv_csv_scan_t *scan);

#endif
