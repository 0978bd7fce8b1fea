/* The worker's byte queue declared in byte_queue.h: a cv_buf_t with a consumed front. */
#include "worker/byte_queue.h"

#include <string.h>

#include "common/err.h"

void cv_bytes_init(cv_bytes_t *q) {
    cv_buf_init(&q->buf, CV_BYTES_FIRST, CV_BYTES_MAX);
    q->off = 0;
}

size_t cv_bytes_queued(const cv_bytes_t *q) {
    return q->buf.len - q->off;
}

const unsigned char *cv_bytes_head(const cv_bytes_t *q) {
    return q->buf.data + q->off;
}

/* Moves the queued bytes to the start of the storage. */
static void compact(cv_bytes_t *q) {
    memmove(q->buf.data, q->buf.data + q->off, q->buf.len - q->off);
    q->buf.len -= q->off;
    q->off = 0;
}

/* Makes room for n more bytes at the back; returns 0, CV_ERANGE or CV_ENOMEM. */
static int make_room(cv_bytes_t *q, size_t n) {
    if (q->off > 0 && (n > q->buf.cap || q->buf.len > q->buf.cap - n)) compact(q);
    return cv_buf_reserve(&q->buf, n);
}

unsigned char *cv_bytes_reserve(cv_bytes_t *q, size_t n) {
    return make_room(q, n) == 0 ? q->buf.data + q->buf.len : NULL;
}

void cv_bytes_commit(cv_bytes_t *q, size_t n) {
    q->buf.len += n;
}

int cv_bytes_append(cv_bytes_t *q, const void *p, size_t n) {
    if (n == 0) return 0; /* p may be NULL then */
    int rc = make_room(q, n);
    if (rc) return rc;
    memcpy(q->buf.data + q->buf.len, p, n);
    q->buf.len += n;
    return 0;
}

void cv_bytes_consume(cv_bytes_t *q, size_t n) {
    q->off += n;
    if (q->off == q->buf.len) q->off = q->buf.len = 0;
}

void cv_bytes_finish(cv_bytes_t *q) {
    cv_buf_finish(&q->buf);
    q->off = 0;
}
