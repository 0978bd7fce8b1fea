/* CSV reader for numeric datasets: one example per line, every field a number, one column the
 * integer class label; see dataset.h for the contract.
 *
 * The file is streamed through a block buffer and split into lines that grow as needed up to
 * CSV_MAX_LINE, so there is no fixed line length and no line can exhaust memory. Rows are
 * parsed straight into the dataset's feature matrix, which doubles in capacity as it fills and
 * is trimmed to size at the end. Every refusal names the line (1-based, counting the header and
 * blank lines, as an editor shows them) and the 1-based column. */
#include "common/dataset.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

#define CSV_MAX_LINE   (16u << 20) /* bytes in one line, without its line ending */
#define CSV_BLOCK      65536       /* bytes per fread */
#define CSV_FIRST_LINE 256         /* bytes first allocated for a line */
#define CSV_FIRST_GROW (1u << 20)  /* bytes of features allocated for the first rows */
#define CSV_SHOW       40          /* characters of a bad field or a name quoted in a message */

/* Streams lines out of a file. */
typedef struct {
    FILE *f;
    const char *path; /* borrowed, for messages */
    char *block;      /* CSV_BLOCK bytes read ahead */
    size_t block_len; /* valid bytes in block */
    size_t block_pos; /* next unread byte of block */
    int eof;          /* 1 once fread has reached the end of the file */
    cv_buf_t line;    /* current line, NUL-terminated, without "\n" or "\r\n"; line.len
                         counts its bytes without the NUL */
    size_t lineno;    /* 1-based number of the current line */
} csv_reader_t;

#define NO_LABEL SIZE_MAX /* label_col of a file without labels */

/* What the row parser needs to know about the columns. */
typedef struct {
    const char *path; /* borrowed, for messages */
    char delim;       /* field separator */
    size_t ncols;     /* fields in every row, label included */
    size_t label_col; /* 0-based index of the label column; NO_LABEL when there is none */
    char **names;     /* ncols header names, or NULL without a header */
} csv_layout_t;

/* The current line as a string (borrowed; valid until the next line is read). */
static char *line_text(const csv_reader_t *r) {
    return (char *)r->line.data;
}

static int csv_append(csv_reader_t *r, const char *s, size_t len, char *err) {
    if (len > CSV_MAX_LINE - r->line.len) {
        return cv_errf(err, CV_ERANGE, "%s: line %zu is longer than %u MiB", r->path, r->lineno + 1,
                       CSV_MAX_LINE >> 20);
    }
    if (cv_buf_reserve(&r->line, len + 1) != 0) {
        return cv_errf(err, CV_ENOMEM, "%s: out of memory for line %zu", r->path, r->lineno + 1);
    }
    memcpy(r->line.data + r->line.len, s, len);
    r->line.len += len;
    r->line.data[r->line.len] = '\0';
    return CV_OK;
}

/* Returns 1 with the next line in r->line (line_text), 0 at the end of the file, or a negative
 * code. A last line without a newline is still a line. */
static int csv_next_line(csv_reader_t *r, char *err) {
    int found_newline = 0;
    r->line.len = 0;
    for (;;) {
        if (r->block_pos == r->block_len) {
            if (r->eof) break;
            r->block_len = fread(r->block, 1, CSV_BLOCK, r->f);
            r->block_pos = 0;
            if (r->block_len < CSV_BLOCK) {
                if (ferror(r->f)) {
                    return cv_errf(err, CV_EIO, "%s: read failed near line %zu: %s", r->path,
                                   r->lineno + 1, strerror(errno));
                }
                r->eof = 1;
            }
            if (r->block_len == 0) break;
        }
        const char *start = r->block + r->block_pos;
        size_t avail = r->block_len - r->block_pos;
        const char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) : avail;
        int rc = csv_append(r, start, take, err);
        if (rc < 0) return rc;
        r->block_pos += take + (nl ? 1 : 0);
        if (nl) {
            found_newline = 1;
            break;
        }
    }
    if (!found_newline && r->line.len == 0) return 0;
    r->lineno++;
    char *text = line_text(r);
    if (r->line.len > 0 && text[r->line.len - 1] == '\r') text[--r->line.len] = '\0';
    if (memchr(text, '\0', r->line.len)) {
        return cv_errf(err, CV_EFORMAT, "%s: line %zu contains a NUL byte", r->path, r->lineno);
    }
    if (r->lineno == 1 && r->line.len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        /* A UTF-8 byte-order mark, as some spreadsheets write, is not part of the first name. */
        memmove(text, text + 3, r->line.len - 2);
        r->line.len -= 3;
    }
    return 1;
}

static int csv_is_blank(const char *s, char delim) {
    for (; *s; s++) {
        if ((*s != ' ' && *s != '\t') || *s == delim) return 0;
    }
    return 1;
}

static size_t csv_count_fields(const char *s, char delim) {
    size_t n = 1;
    for (; *s; s++)
        n += (*s == delim);
    return n;
}

/* Splits line in place at every delimiter, storing ncols field starts in fields. The caller has
 * checked that the line holds exactly ncols fields. */
static void csv_split(char *line, char delim, char **fields, size_t ncols) {
    for (size_t c = 0; c < ncols; c++) {
        fields[c] = line;
        char *end = strchr(line, delim);
        if (!end) break;
        *end = '\0';
        line = end + 1;
    }
}

/* Trims blanks in place and removes one pair of surrounding double quotes. */
static char *csv_trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s[len - 1] = '\0';
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        len = strlen(s);
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            s[--len] = '\0';
    }
    return s;
}

/* Writes "column C" or `column C ("name")` into buf for messages. */
static const char *csv_column(const csv_layout_t *lay, size_t col, char *buf, size_t size) {
    if (lay->names) {
        snprintf(buf, size, "column %zu (\"%.*s\")", col + 1, CSV_SHOW, lay->names[col]);
    } else {
        snprintf(buf, size, "column %zu", col + 1);
    }
    return buf;
}

/* Parses one trimmed field as a finite number that fits a float. */
static int csv_number(const csv_layout_t *lay, size_t lineno, size_t col, const char *field,
                      double *out, char *err) {
    char where[CSV_SHOW + 48]; /* room for: column N ("name") */
    if (*field == '\0') {
        return cv_errf(err, CV_EFORMAT, "%s: line %zu, %s: empty field", lay->path, lineno,
                       csv_column(lay, col, where, sizeof where));
    }
    char *end;
    errno = 0;
    double v = strtod(field, &end);
    if (end == field || *end != '\0') {
        return cv_errf(err, CV_EFORMAT, "%s: line %zu, %s: \"%.*s\" is not a number", lay->path,
                       lineno, csv_column(lay, col, where, sizeof where), CSV_SHOW, field);
    }
    /* strtod accepts "nan", "inf" and "infinity", and returns HUGE_VAL on overflow. */
    if (!isfinite(v)) {
        return cv_errf(err, CV_EFORMAT, "%s: line %zu, %s: \"%.*s\" is not a finite number",
                       lay->path, lineno, csv_column(lay, col, where, sizeof where), CSV_SHOW,
                       field);
    }
    if (fabs(v) > FLT_MAX) {
        return cv_errf(err, CV_ERANGE, "%s: line %zu, %s: \"%.*s\" is too large for a float",
                       lay->path, lineno, csv_column(lay, col, where, sizeof where), CSV_SHOW,
                       field);
    }
    *out = v;
    return CV_OK;
}

/* Parses a split row into features (n floats) and *label. */
static int csv_parse_row(const csv_layout_t *lay, size_t lineno, char **fields, float *features,
                         int32_t *label, char *err) {
    char where[CSV_SHOW + 48]; /* room for: column N ("name") */
    for (size_t c = 0, j = 0; c < lay->ncols; c++) {
        const char *field = csv_trim(fields[c]);
        double v = 0.0; /* set by csv_number whenever it returns 0 */
        int rc = csv_number(lay, lineno, c, field, &v, err);
        if (rc < 0) return rc;
        if (c != lay->label_col) {
            features[j++] = (float)v;
            continue;
        }
        if (v < 0 || v != floor(v)) {
            return cv_errf(
                err, CV_EFORMAT, "%s: line %zu, %s: label \"%.*s\" is not a non-negative integer",
                lay->path, lineno, csv_column(lay, c, where, sizeof where), CSV_SHOW, field);
        }
        if (v >= CV_DATASET_MAX_CLASSES) {
            return cv_errf(err, CV_ERANGE,
                           "%s: line %zu, %s: label \"%.*s\" is too large: labels must be below %d",
                           lay->path, lineno, csv_column(lay, c, where, sizeof where), CSV_SHOW,
                           field, CV_DATASET_MAX_CLASSES);
        }
        *label = (int32_t)v;
    }
    return CV_OK;
}

/* Makes room for one more row in ds, doubling the capacity (counted in rows). */
static int csv_reserve(cv_dataset_t *ds, size_t *cap, const char *path, size_t lineno, char *err) {
    if (ds->m < *cap) return CV_OK;
    if (ds->m >= CV_DATASET_MAX_EXAMPLES) {
        return cv_errf(err, CV_ERANGE, "%s: line %zu: more than %u examples", path, lineno,
                       CV_DATASET_MAX_EXAMPLES);
    }
    size_t row_bytes = ds->n * sizeof(float);
    size_t grown = *cap ? *cap * 2 : CSV_FIRST_GROW / row_bytes;
    if (grown < 1) grown = 1;
    if (grown > CV_DATASET_MAX_EXAMPLES) grown = CV_DATASET_MAX_EXAMPLES;
    if (grown > SIZE_MAX / row_bytes) {
        return cv_errf(err, CV_ENOMEM, "%s: line %zu: %zu rows do not fit in memory", path, lineno,
                       grown);
    }
    float *x = realloc(ds->x, grown * row_bytes);
    if (!x) goto oom;
    ds->x = x;
    int32_t *y = realloc(ds->y, grown * sizeof *y);
    if (!y) goto oom;
    ds->y = y;
    *cap = grown;
    return CV_OK;
oom:
    return cv_errf(err, CV_ENOMEM, "%s: out of memory for %zu rows of %zu features at line %zu",
                   path, grown, ds->n, lineno);
}

/* Validates the options, resolving the delimiter's default. */
static int csv_check_options(const cv_csv_options_t *opts, const char *path, char *delim,
                             char *err) {
    if (!opts) return cv_errf(err, CV_EINVAL, "%s: no CSV options given", path);
    *delim = opts->delimiter ? opts->delimiter : ',';
    if (strchr("\"\r\n+-.0123456789", *delim)) {
        return cv_errf(err, CV_EINVAL, "%s: '%c' cannot be a CSV delimiter", path, *delim);
    }
    if (opts->label_name && !opts->header) {
        return cv_errf(err, CV_EINVAL,
                       "%s: label column \"%.*s\" is named but the file has no header", path,
                       CSV_SHOW, opts->label_name);
    }
    if (!opts->label_name && opts->label_index < -1) {
        return cv_errf(err, CV_EINVAL,
                       "%s: label index %d is negative (use -1 for the last column)", path,
                       opts->label_index);
    }
    return CV_OK;
}

/* Resolves the label column from the first line (header or first row) already in r->line. */
static int csv_layout(csv_layout_t *lay, csv_reader_t *r, const cv_csv_options_t *opts,
                      char **header_copy, char *err) {
    lay->ncols = csv_count_fields(line_text(r), lay->delim);
    int unlabeled = opts->unlabeled_width > 0 && lay->ncols == opts->unlabeled_width;
    if (unlabeled && lay->ncols > CV_DATASET_MAX_FEATURES) {
        return cv_errf(err, CV_ERANGE, "%s: line %zu has %zu features, over the limit of %u",
                       r->path, r->lineno, lay->ncols, CV_DATASET_MAX_FEATURES);
    }
    if (!unlabeled && lay->ncols < 2) {
        return cv_errf(err, CV_EFORMAT,
                       "%s: line %zu has 1 column; need at least one feature and the label",
                       r->path, r->lineno);
    }
    if (!unlabeled && lay->ncols - 1 > CV_DATASET_MAX_FEATURES) {
        return cv_errf(err, CV_ERANGE, "%s: line %zu has %zu features, over the limit of %u",
                       r->path, r->lineno, lay->ncols - 1, CV_DATASET_MAX_FEATURES);
    }
    if (opts->header) {
        /* Keep the names for messages: they live in a copy of the header line. */
        *header_copy = malloc(r->line.len + 1);
        lay->names = malloc(lay->ncols * sizeof *lay->names);
        if (!*header_copy || !lay->names) {
            return cv_errf(err, CV_ENOMEM, "%s: out of memory for the header", r->path);
        }
        memcpy(*header_copy, line_text(r), r->line.len + 1);
        csv_split(*header_copy, lay->delim, lay->names, lay->ncols);
        for (size_t c = 0; c < lay->ncols; c++)
            lay->names[c] = csv_trim(lay->names[c]);
    }
    if (unlabeled) {
        lay->label_col = NO_LABEL;
        return CV_OK;
    }
    if (opts->label_name) {
        for (lay->label_col = 0; lay->label_col < lay->ncols; lay->label_col++) {
            if (strcmp(lay->names[lay->label_col], opts->label_name) == 0) return CV_OK;
        }
        return cv_errf(err, CV_EINVAL, "%s: no column named \"%.*s\" in the header (line %zu)",
                       r->path, CSV_SHOW, opts->label_name, r->lineno);
    }
    if (opts->label_index == -1) {
        lay->label_col = lay->ncols - 1;
    } else if ((size_t)opts->label_index >= lay->ncols) {
        return cv_errf(err, CV_EINVAL, "%s: label index %d but line %zu has only %zu columns",
                       r->path, opts->label_index, r->lineno, lay->ncols);
    } else {
        lay->label_col = (size_t)opts->label_index;
    }
    return CV_OK;
}

int cv_dataset_load_csv(cv_dataset_t *ds, const char *path, const cv_csv_options_t *opts,
                        char *err) {
    csv_reader_t r = {.path = path};
    cv_buf_init(&r.line, CSV_FIRST_LINE, (size_t)CSV_MAX_LINE + 1);
    csv_layout_t lay = {.path = path};
    char *header_copy = NULL;
    char **fields = NULL;
    size_t cap = 0;
    int32_t max_label = 0;
    memset(ds, 0, sizeof *ds);

    int rc = csv_check_options(opts, path, &lay.delim, err);
    if (rc < 0) return rc;
    r.f = fopen(path, "rb");
    if (!r.f) return cv_errf(err, CV_EIO, "%s: cannot open: %s", path, strerror(errno));
    r.block = malloc(CSV_BLOCK);
    if (!r.block) {
        rc = cv_errf(err, CV_ENOMEM, "%s: out of memory for the read buffer", path);
        goto done;
    }
    ds->owner = 1;

    /* The first non-blank line fixes the number of columns, whether header or data. */
    do {
        rc = csv_next_line(&r, err);
    } while (rc == 1 && csv_is_blank(line_text(&r), lay.delim));
    if (rc < 0) goto done;
    if (rc == 0) {
        rc = cv_errf(err, CV_EFORMAT, "%s: file is empty", path);
        goto done;
    }
    size_t first_line = r.lineno;
    rc = csv_layout(&lay, &r, opts, &header_copy, err);
    if (rc < 0) goto done;
    ds->n = lay.label_col == NO_LABEL ? lay.ncols : lay.ncols - 1;
    fields = malloc(lay.ncols * sizeof *fields);
    if (!fields) {
        rc = cv_errf(err, CV_ENOMEM, "%s: out of memory for %zu columns", path, lay.ncols);
        goto done;
    }

    /* Without a header the first line is already the first row. */
    rc = opts->header ? csv_next_line(&r, err) : 1;
    for (; rc == 1; rc = csv_next_line(&r, err)) {
        if (csv_is_blank(line_text(&r), lay.delim)) continue;
        size_t nf = csv_count_fields(line_text(&r), lay.delim);
        if (nf != lay.ncols) {
            rc = cv_errf(err, CV_EFORMAT,
                         "%s: line %zu has %zu fields, expected %zu (as on line %zu)", path,
                         r.lineno, nf, lay.ncols, first_line);
            goto done;
        }
        rc = csv_reserve(ds, &cap, path, r.lineno, err);
        if (rc < 0) goto done;
        csv_split(line_text(&r), lay.delim, fields, lay.ncols);
        ds->y[ds->m] = -1; /* stays -1 without a label column */
        rc = csv_parse_row(&lay, r.lineno, fields, ds->x + ds->m * ds->n, ds->y + ds->m, err);
        if (rc < 0) goto done;
        if (ds->y[ds->m] > max_label) max_label = ds->y[ds->m];
        ds->m++;
    }
    if (rc < 0) goto done;
    if (ds->m == 0) {
        rc = cv_errf(err, CV_EFORMAT, "%s: header on line %zu but no data rows", path, first_line);
        goto done;
    }
    /* Give back the unused capacity; keeping the larger block is harmless if that fails. */
    float *x = realloc(ds->x, ds->m * ds->n * sizeof *x);
    if (x) ds->x = x;
    int32_t *y = realloc(ds->y, ds->m * sizeof *y);
    if (y) ds->y = y;
    ds->classes = lay.label_col == NO_LABEL ? 0 : max_label + 1 < 2 ? 2 : max_label + 1;
    rc = CV_OK;

done:
    free(fields);
    free(lay.names);
    free(header_copy);
    cv_buf_finish(&r.line);
    free(r.block);
    if (r.f) (void)fclose(r.f); /* read-only: nothing buffered to lose */
    if (rc < 0) cv_dataset_finish(ds);
    return rc;
}
