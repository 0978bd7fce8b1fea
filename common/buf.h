/* A growable byte buffer: the one grow-by-doubling allocation shared by the readers, parsers and
 * queues of every binary.
 *
 * The capacity starts at `first` bytes and doubles until it holds what is asked, never past
 * `limit`: the step that would cross it is cut down to the limit, and asking for more than the
 * limit (or for a size that would overflow size_t) is refused before anything is allocated. A
 * buffer may be used as a byte string (append) or as raw storage that the caller fills after a
 * reserve and then counts in len. */
#ifndef CV_BUF_H
#define CV_BUF_H

#include <stddef.h>

typedef struct {
    unsigned char *data; /* owned, cap bytes; NULL until the first reservation */
    size_t len;          /* bytes in use at data, 0..cap */
    size_t cap;          /* bytes allocated at data, 0..limit */
    size_t first;        /* bytes of the first allocation (at least 1), unless limit is lower */
    size_t limit;        /* most bytes the buffer may ever hold */
} cv_buf_t;

/* Prepares an empty buffer. Allocates nothing; pair with cv_buf_finish. A first of 0 counts as
 * 1. */
void cv_buf_init(cv_buf_t *b, size_t first, size_t limit);

/* Makes room for n more bytes after data + len, keeping the bytes held. Returns 0 (data then
 * has at least len + n bytes), CV_ERANGE when len + n exceeds the limit or overflows, or
 * CV_ENOMEM; on failure the buffer is unchanged. */
int cv_buf_reserve(cv_buf_t *b, size_t n);

/* Copies n bytes from p (which may be NULL when n is 0) to the end of the buffer. Returns 0,
 * CV_ERANGE or CV_ENOMEM as cv_buf_reserve, the buffer unchanged on failure. */
int cv_buf_append(cv_buf_t *b, const void *p, size_t n);

/* Frees the buffer's memory and empties it; first and limit stay. Accepts NULL. */
void cv_buf_finish(cv_buf_t *b);

#endif
