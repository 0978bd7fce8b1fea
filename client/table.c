/* The table printer declared in table.h. Cells live in one growing array, row-major. */
#include "client/table.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

#define TABLE_MAX_COLUMNS 256 /* more columns than any command produces */

struct cv_table {
    char *headers[TABLE_MAX_COLUMNS];          /* owned copies */
    cv_table_align_t align[TABLE_MAX_COLUMNS]; /* per column */
    size_t ncols;                              /* columns added */
    cv_buf_t storage;                          /* holds cells; room for 16 rows at first */
    char **cells;                              /* storage.data: rows * ncols owned strings or
                                                  NULL */
    size_t rows;                               /* rows added */
    int failed;                                /* the first failure, or 0 */
};

cv_table_t *cv_table_create(void) {
    return calloc(1, sizeof(cv_table_t));
}

void cv_table_destroy(cv_table_t *table) {
    if (!table) return;
    for (size_t i = 0; i < table->ncols; i++)
        free(table->headers[i]);
    for (size_t i = 0; i < table->rows * table->ncols; i++)
        free(table->cells[i]);
    cv_buf_finish(&table->storage);
    free(table);
}

/* Remembers the first failure and returns it. */
static int fail(cv_table_t *t, int code) {
    if (!t->failed) t->failed = code;
    return t->failed;
}

int cv_table_add_column(cv_table_t *table, const char *header, cv_table_align_t align) {
    if (table->failed) return table->failed;
    if (table->rows > 0 || table->ncols == TABLE_MAX_COLUMNS) return fail(table, CV_EINVAL);
    char *copy = strdup(header);
    if (!copy) return fail(table, CV_ENOMEM);
    table->headers[table->ncols] = copy;
    table->align[table->ncols] = align;
    table->ncols++;
    return 0;
}

int cv_table_add_row(cv_table_t *table) {
    if (table->failed) return table->failed;
    if (table->ncols == 0) return fail(table, CV_EINVAL);
    size_t row_bytes = table->ncols * sizeof(char *);
    if (table->rows == 0) cv_buf_init(&table->storage, 16 * row_bytes, SIZE_MAX);
    if (cv_buf_reserve(&table->storage, row_bytes) != 0) return fail(table, CV_ENOMEM);
    table->cells = (char **)table->storage.data;
    memset(table->storage.data + table->storage.len, 0, row_bytes);
    table->storage.len += row_bytes;
    table->rows++;
    return 0;
}

int cv_table_set(cv_table_t *table, size_t col, const char *text) {
    if (table->failed) return table->failed;
    if (table->rows == 0 || col >= table->ncols) return fail(table, CV_EINVAL);
    char *copy = strdup(text ? text : "-");
    if (!copy) return fail(table, CV_ENOMEM);
    char **cell = &table->cells[(table->rows - 1) * table->ncols + col];
    free(*cell);
    *cell = copy;
    return 0;
}

int cv_table_setf(cv_table_t *table, size_t col, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return cv_table_set(table, col, buf);
}

size_t cv_table_rows(const cv_table_t *table) {
    return table->rows;
}

/* Characters of UTF-8 text: bytes that do not continue a sequence. */
static size_t text_width(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* Prints one line of cells (cells[i] may be NULL, shown empty). */
static void print_line(const cv_table_t *t, char *const *cells, const size_t *width, FILE *out,
                       int indent) {
    size_t last = t->ncols;
    /* Trailing empty left-aligned cells would only print spaces. */
    while (last > 0 && t->align[last - 1] == CV_TABLE_LEFT &&
           (!cells[last - 1] || !cells[last - 1][0]))
        last--;
    fprintf(out, "%*s", indent, "");
    for (size_t c = 0; c < last; c++) {
        const char *text = cells[c] ? cells[c] : "";
        size_t pad = width[c] - text_width(text);
        if (c > 0) fputs("  ", out);
        if (t->align[c] == CV_TABLE_RIGHT)
            fprintf(out, "%*s%s", (int)pad, "", text);
        else if (c + 1 == last)
            fputs(text, out);
        else
            fprintf(out, "%s%*s", text, (int)pad, "");
    }
    fputc('\n', out);
}

int cv_table_print(const cv_table_t *table, FILE *out, int indent) {
    size_t width[TABLE_MAX_COLUMNS];
    if (table->failed) return table->failed;
    for (size_t c = 0; c < table->ncols; c++) {
        width[c] = text_width(table->headers[c]);
        for (size_t r = 0; r < table->rows; r++) {
            const char *cell = table->cells[r * table->ncols + c];
            size_t w = cell ? text_width(cell) : 0;
            if (w > width[c]) width[c] = w;
        }
    }
    print_line(table, table->headers, width, out, indent);
    for (size_t r = 0; r < table->rows; r++)
        print_line(table, table->cells + r * table->ncols, width, out, indent);
    return ferror(out) ? CV_EIO : 0;
}
