/* The growable byte buffer declared in buf.h: overflow-checked doubling under a byte limit. */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

void cv_buf_init(cv_buf_t *b, size_t first, size_t limit) {
    memset(b, 0, sizeof *b);
    b->first = first ? first : 1;
    b->limit = limit;
}

int cv_buf_reserve(cv_buf_t *b, size_t n) {
    if (n > b->limit || b->len > b->limit - n) return CV_ERANGE;
    size_t need = b->len + n;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : b->first;
    while (cap < need && cap <= b->limit / 2)
        cap *= 2;
    if (cap < need || cap > b->limit) cap = b->limit;
    unsigned char *data = realloc(b->data, cap);
    if (data == NULL) return CV_ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

int cv_buf_append(cv_buf_t *b, const void *p, size_t n) {
    if (n == 0) return 0;
    int rc = cv_buf_reserve(b, n);
    if (rc) return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void cv_buf_finish(cv_buf_t *b) {
    if (b == NULL) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
