/* The submission-time CSV scan; see csv_scan.h for what it checks and why. */
#include "server/csv_scan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define SHOW 40 /* characters of a field or a name quoted in a message */

void cv_csv_scan_init(cv_csv_scan_t *s, const cv_csv_scan_options_t *opt) {
    memset(s, 0, sizeof *s);
    s->opt = *opt;
    s->min_label = s->max_label = -1;
    cv_buf_init(&s->first, 1024, CV_CSV_SCAN_MAX_LINE + 2);
}

void cv_csv_scan_finish(cv_csv_scan_t *s) {
    if (!s) return;
    cv_buf_finish(&s->first);
    free(s->names);
    free(s->name_of);
    s->names = NULL;
    s->name_of = NULL;
}

/* Trims blanks in place and removes one pair of surrounding double quotes, as common/csv.c. */
static char *trim(char *p) {
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strlen(p);
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        p[--len] = '\0';
    if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
        p[len - 1] = '\0';
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        len = strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            p[--len] = '\0';
    }
    return p;
}

/* 1 when the trimmed field is a finite number, as the worker reads features. */
static int is_number(const char *field, double *out) {
    char *end;
    if (!*field) return 0;
    double v = strtod(field, &end);
    if (end == field || *end != '\0' || !isfinite(v)) return 0;
    if (out) *out = v;
    return 1;
}

/* "column C" or `column C ("name")` for messages. */
static const char *column(const cv_csv_scan_t *s, size_t col, char *buf, size_t cap) {
    if (s->name_of)
        snprintf(buf, cap, "column %zu (\"%.*s\")", col + 1, SHOW, s->name_of[col]);
    else
        snprintf(buf, cap, "column %zu", col + 1);
    return buf;
}

static int fail(cv_csv_scan_t *s, int code, char *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(cv_csv_scan_t *s, int code, char *err, const char *fmt, ...) {
    char msg[CV_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->failed = 1;
    return cv_errf(err, code, "%s", msg);
}

/* "0..K-1" with K the spec's classes, for messages. */
static const char *label_range(const cv_csv_scan_t *s, char *buf, size_t cap) {
    if (s->opt.classes > 0)
        snprintf(buf, cap, "0..%d", s->opt.classes - 1);
    else
        snprintf(buf, cap, "0..K-1 for K classes");
    return buf;
}

/* Checks one label field (already trimmed) of data line lineno. */
static int check_label(cv_csv_scan_t *s, const char *text, int truncated, char *err) {
    char where[SHOW + 48], range[48];
    const char *f = s->opt.field, *p = s->opt.path;
    double v;
    column(s, s->label_col, where, sizeof where);
    label_range(s, range, sizeof range);
    if (truncated || !is_number(text, &v))
        return fail(s, CV_EINVAL, err,
                    "%s: %s line %zu, %s: \"%.*s%s\" is not a number: labels must be integers "
                    "%s; write each class as its number (e.g. the first class as 0)",
                    f, p, s->lineno, where, SHOW, text, truncated ? "..." : "", range);
    if (v < 0 || v != floor(v))
        return fail(s, CV_EINVAL, err,
                    "%s: %s line %zu, %s: label \"%.*s\" is not a non-negative integer: labels "
                    "must be integers %s", f, p, s->lineno, where, SHOW, text, range);
    if (s->opt.classes > 0 && v >= s->opt.classes)
        return fail(s, CV_EINVAL, err,
                    "trial.dataset.classes: is %d but %s line %zu, %s has label %.0f: labels must "
                    "be integers %s; write \"classes\": %.0f if there are that many classes, or "
                    "renumber the labels", s->opt.classes, p, s->lineno, where, v, range, v + 1);
    if (v >= CV_DATASET_MAX_CLASSES)
        return fail(s, CV_EINVAL, err,
                    "%s: %s line %zu, %s: label %.0f is too large: labels must be integers below "
                    "%d", f, p, s->lineno, where, v, CV_DATASET_MAX_CLASSES);
    int label = (int)v;
    s->seen[label / 8] |= (uint8_t)(1u << (label % 8));
    if (s->min_label < 0 || label < s->min_label) s->min_label = label;
    if (label > s->max_label) s->max_label = label;
    s->rows++;
    return 0;
}

/* The first non-blank line, whole in s->first: fixes the columns, the label column and the
 * header names; when it is data, checks its label. */
static int take_layout(cv_csv_scan_t *s, char *err) {
    const char *f = s->opt.field, *p = s->opt.path;
    char *line = (char *)s->first.data;
    if (s->lineno == 1 && !strncmp(line, "\xEF\xBB\xBF", 3)) line += 3; /* byte-order mark */
    size_t n = 1;
    for (const char *c = line; *c; c++)
        n += *c == ',';
    if (n < 2)
        return fail(s, CV_EINVAL, err,
                    "%s: %s line %zu has 1 column; need at least one feature and the label", f, p,
                    s->lineno);
    if (n - 1 > CV_DATASET_MAX_FEATURES)
        return fail(s, CV_EINVAL, err, "%s: %s line %zu has %zu features, over the limit of %u",
                    f, p, s->lineno, n - 1, CV_DATASET_MAX_FEATURES);
    s->ncols = n;
    s->layout_line = s->lineno;
    s->names = strdup(line);
    s->name_of = malloc(n * sizeof *s->name_of);
    if (!s->names || !s->name_of) return fail(s, CV_ENOMEM, err, "%s: out of memory", f);
    char *q = s->names;
    for (size_t c = 0; c < n; c++) {
        char *end = strchr(q, ',');
        if (end) *end = '\0';
        s->name_of[c] = trim(q);
        q = end ? end + 1 : q + strlen(q);
    }
    int numbers = 1;
    for (size_t c = 0; c < n && numbers; c++)
        numbers = is_number(s->name_of[c], NULL);
    if (s->opt.header && numbers)
        return fail(s, CV_EINVAL, err,
                    "trial.dataset.header: the first line of %s (line %zu) is all numbers "
                    "(\"%.*s\", ...): it looks like data, not column names, and would be dropped; "
                    "write \"header\": false in trial.dataset (with \"label_column\" as a 0-based "
                    "index, if you give one)", p, s->lineno, SHOW, s->name_of[0]);
    if (s->opt.label_name) {
        for (s->label_col = 0; s->label_col < n; s->label_col++)
            if (!strcmp(s->name_of[s->label_col], s->opt.label_name)) break;
        if (s->label_col == n) {
            char list[256] = "";
            size_t used = 0;
            for (size_t c = 0; c < n && used + 8 < sizeof list; c++) {
                int w = snprintf(list + used, sizeof list - used, "%s\"%.*s\"", c ? ", " : "",
                                 SHOW, s->name_of[c]);
                used += w > 0 ? (size_t)w : 0;
            }
            if (used >= sizeof list) strcpy(list + sizeof list - 5, "...");
            return fail(s, CV_EINVAL, err,
                        "trial.dataset.label_column: %s has no column \"%.*s\" in its header "
                        "(line %zu); its columns are %s", p, SHOW, s->opt.label_name,
                        s->lineno, list);
        }
    } else if (s->opt.label_index == -1) {
        s->label_col = n - 1;
    } else if (s->opt.label_index < 0 || (size_t)s->opt.label_index >= n) {
        return fail(s, CV_EINVAL, err,
                    "trial.dataset.label_column: column index %d but %s has %zu columns on line "
                    "%zu (indexes 0..%zu)", s->opt.label_index, p, n, s->lineno, n - 1);
    } else {
        s->label_col = (size_t)s->opt.label_index;
    }
    s->have_layout = 1;
    if (s->opt.header) return 0;
    /* Without a header the names are data: no names in messages, and the line is a row. */
    char label[CV_CSV_SCAN_LABEL_MAX + 1];
    snprintf(label, sizeof label, "%s", s->name_of[s->label_col]);
    int truncated = strlen(s->name_of[s->label_col]) > CV_CSV_SCAN_LABEL_MAX;
    free(s->name_of);
    s->name_of = NULL;
    return check_label(s, label, truncated, err);
}

/* Appends a byte to the buffered first line. */
static int first_append(cv_csv_scan_t *s, char c, char *err) {
    s->first.len = s->line_len; /* the bytes of the line so far */
    if (cv_buf_reserve(&s->first, 2))
        return fail(s, CV_ENOMEM, err, "%s: out of memory", s->opt.field);
    s->first.data[s->line_len] = (unsigned char)c;
    s->first.data[s->line_len + 1] = '\0';
    return 0;
}

/* Takes one content byte of the current line. */
static int take_byte(cv_csv_scan_t *s, char c, char *err) {
    if (s->line_len == 0 && s->col == 0) s->lineno++;
    if (c == '\0')
        return fail(s, CV_EINVAL, err, "%s: %s line %zu contains a NUL byte", s->opt.field,
                    s->opt.path, s->lineno);
    if (s->line_len >= CV_CSV_SCAN_MAX_LINE)
        return fail(s, CV_EINVAL, err, "%s: %s line %zu is longer than %u MiB", s->opt.field,
                    s->opt.path, s->lineno, CV_CSV_SCAN_MAX_LINE >> 20);
    if (c != ' ' && c != '\t') s->nonblank = 1;
    if (!s->have_layout) {
        int rc = first_append(s, c, err);
        if (rc) return rc;
    } else if (c == ',') {
        s->col++;
    } else if (s->col == s->label_col) {
        if (s->label_len < CV_CSV_SCAN_LABEL_MAX)
            s->label[s->label_len++] = c;
        else
            s->label_long = 1;
    }
    s->line_len++;
    return 0;
}

/* The current line ended (its '\r' before '\n' dropped). */
static int end_line(cv_csv_scan_t *s, char *err) {
    int rc = 0;
    if (s->line_len == 0 && s->col == 0) s->lineno++; /* an empty line */
    if (!s->nonblank) {
        /* blank: skipped */
    } else if (!s->have_layout) {
        rc = take_layout(s, err);
    } else if (s->col + 1 != s->ncols) {
        rc = fail(s, CV_EINVAL, err, "%s: %s line %zu has %zu fields, expected %zu (as on line "
                  "%zu)", s->opt.field, s->opt.path, s->lineno, s->col + 1, s->ncols,
                  s->layout_line);
    } else {
        s->label[s->label_len] = '\0';
        rc = check_label(s, trim(s->label), s->label_long, err);
    }
    s->line_len = s->col = s->label_len = 0;
    s->nonblank = s->label_long = 0;
    return rc;
}

int cv_csv_scan_feed(cv_csv_scan_t *s, const char *data, size_t len, char *err) {
    if (s->failed) return cv_errf(err, CV_EINVAL, "%s: the scan already failed", s->opt.field);
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        int rc = 0;
        if (c == '\n') {
            s->pending_cr = 0;
            rc = end_line(s, err);
        } else {
            if (s->pending_cr) { /* the '\r' did not end the line: it is content */
                s->pending_cr = 0;
                rc = take_byte(s, '\r', err);
            }
            if (rc == 0 && c == '\r')
                s->pending_cr = 1;
            else if (rc == 0)
                rc = take_byte(s, c, err);
        }
        if (rc) return rc;
    }
    return 0;
}

int cv_csv_scan_end(cv_csv_scan_t *s, char *err) {
    if (s->failed) return cv_errf(err, CV_EINVAL, "%s: the scan already failed", s->opt.field);
    s->pending_cr = 0; /* a last line's "\r" is its line end */
    if (s->line_len > 0 || s->col > 0) {
        int rc = end_line(s, err);
        if (rc) return rc;
    }
    if (!s->have_layout)
        return fail(s, CV_EINVAL, err, "%s: %s is empty", s->opt.field, s->opt.path);
    if (s->rows == 0)
        return fail(s, CV_EINVAL, err, "%s: %s has a header on line %zu but no data rows",
                    s->opt.field, s->opt.path, s->layout_line);
    return 0;
}
