/* A plain-text table printer: columns with a header and an alignment, rows of cells, printed
 * with each column as wide as its widest cell (counted in UTF-8 characters) and two spaces
 * between columns.
 *
 * Building a table allocates; rather than checking every call, a caller may check once:
 * the first failure is remembered, later calls do nothing, and cv_table_print returns it. */
#ifndef CV_CLIENT_TABLE_H
#define CV_CLIENT_TABLE_H

#include <stddef.h>
#include <stdio.h>

typedef enum { CV_TABLE_LEFT = 0, CV_TABLE_RIGHT } cv_table_align_t;

typedef struct cv_table cv_table_t;

/* A new empty table the caller releases with cv_table_destroy; NULL when out of memory. */
cv_table_t *cv_table_create(void);

/* Releases a table and every cell it copied; NULL is accepted. */
void cv_table_destroy(cv_table_t *table);

/* Appends a column (header copied). Columns must all be added before the first row: CV_EINVAL
 * afterwards. 0, CV_ENOMEM or the remembered failure. */
int cv_table_add_column(cv_table_t *table, const char *header, cv_table_align_t align);

/* Starts a new row whose cells are all empty. 0, CV_ENOMEM or the remembered failure. */
int cv_table_add_row(cv_table_t *table);

/* Sets cell `col` of the last row to a copy of text (NULL is shown as "-"). CV_EINVAL when
 * there is no row or col is out of range. */
int cv_table_set(cv_table_t *table, size_t col, const char *text);

/* cv_table_set with printf formatting. */
int cv_table_setf(cv_table_t *table, size_t col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Rows added so far. */
size_t cv_table_rows(const cv_table_t *table);

/* Prints the header and every row to out, each line prefixed by indent spaces, without
 * trailing spaces. Returns the remembered failure if any (printing nothing), CV_EIO when out
 * reports a write error, else 0. */
int cv_table_print(const cv_table_t *table, FILE *out, int indent);

#endif
