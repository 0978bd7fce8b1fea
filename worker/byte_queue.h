/* The worker's byte queue: bytes waiting for the socket, appended at the back and consumed from
 * the front as send() takes them. It sits on cv_buf_t: the storage doubles as bytes arrive, and
 * the consumed front is moved out of the way (compacted) before the storage grows, so a queue
 * that is drained as fast as it is filled never grows at all. */
#ifndef CV_WORKER_BYTE_QUEUE_H
#define CV_WORKER_BYTE_QUEUE_H

#include <stddef.h>

#include "common/buf.h"

#define CV_BYTES_FIRST 4096u      /* bytes of the first allocation */
#define CV_BYTES_MAX   (1u << 30) /* most bytes a queue holds (1 GiB): more is refused */

/* Queued bytes are buf.data[off, buf.len). Caller-allocated. */
typedef struct {
    cv_buf_t buf; /* owned storage; buf.len is the end of the queued bytes */
    size_t off;   /* bytes at the front already consumed */
} cv_bytes_t;

/* Prepares an empty queue. Allocates nothing; pair with cv_bytes_finish. */
void cv_bytes_init(cv_bytes_t *q);

/* Bytes queued and not yet consumed. */
size_t cv_bytes_queued(const cv_bytes_t *q);

/* The first queued byte (borrowed, valid until the next reserve, append or consume). */
const unsigned char *cv_bytes_head(const cv_bytes_t *q);

/* Makes room for n more bytes at the back, compacting first when the consumed front leaves room
 * enough without growing. Returns where the n bytes go (borrowed), or NULL when the queue would
 * exceed CV_BYTES_MAX or memory ran out; the queued bytes stay either way. The caller writes the
 * bytes there, then counts them with cv_bytes_commit. */
unsigned char *cv_bytes_reserve(cv_bytes_t *q, size_t n);

/* Counts n bytes written after cv_bytes_reserve(q, m) with n <= m. */
void cv_bytes_commit(cv_bytes_t *q, size_t n);

/* Copies n bytes from p (which may be NULL when n is 0) to the back. Returns 0, CV_ERANGE when
 * the queue would exceed CV_BYTES_MAX, or CV_ENOMEM; the queue is unchanged on failure. */
int cv_bytes_append(cv_bytes_t *q, const void *p, size_t n);

/* Drops n queued bytes (at most cv_bytes_queued) from the front. An emptied queue starts again
 * at the start of its storage. */
void cv_bytes_consume(cv_bytes_t *q, size_t n);

/* Frees the storage and empties the queue. */
void cv_bytes_finish(cv_bytes_t *q);

#endif
