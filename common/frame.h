/* Framing of the worker wire protocol: a pure, incremental, bounded codec with no I/O.
 *
 * Every message between the coordinator and a worker travels as one frame:
 *
 *     offset 0  u32  payload length in bytes, big-endian, at most CV_FRAME_MAX
 *     offset 4  u8   kind: CV_FRAME_JSON (UTF-8 JSON text) or CV_FRAME_DATA (binary chunk)
 *     offset 5  u8   reserved, must be 0
 *     offset 6  u8   reserved, must be 0
 *     offset 7  u8   reserved, must be 0
 *     offset 8  ...  payload
 *
 * A header that declares more than CV_FRAME_MAX bytes, an unknown kind or a non-zero reserved
 * byte is refused as soon as its 8 bytes have arrived, before any payload memory is allocated.
 * schemas/protocol.md is the prose version of this contract. */
#ifndef CV_FRAME_H
#define CV_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define CV_FRAME_HEADER_SIZE 8                    /* bytes of every frame header */
#define CV_FRAME_MAX         (4u * 1024u * 1024u) /* largest payload accepted, bytes (4 MiB) */

/* What a frame's payload holds. */
typedef enum {
    CV_FRAME_JSON = 1, /* one JSON document as UTF-8 text, without a terminating NUL */
    CV_FRAME_DATA = 2, /* an opaque binary chunk, e.g. a slice of a dataset or a model file */
} cv_frame_kind_t;

/* Non-negative results of cv_frame_decode (errors are the negative CV_E* codes). */
enum {
    CV_FRAME_NEED_MORE = 0, /* every byte given was consumed; the frame is not complete yet */
    CV_FRAME_READY = 1,     /* a whole frame is in *frame_out; bytes after it were not consumed */
};

/* One decoded frame. The payload is borrowed from the decoder and stays valid until the next
 * call to cv_frame_decode or cv_frame_decoder_finish. payload[len] is always a NUL byte (not part
 * of the payload), so a JSON payload can be handed to a string parser as it is. */
typedef struct {
    cv_frame_kind_t kind;         /* CV_FRAME_JSON or CV_FRAME_DATA */
    const unsigned char *payload; /* len bytes followed by a NUL; never NULL when READY */
    size_t len;                   /* payload bytes, 0..CV_FRAME_MAX */
} cv_frame_t;

/* State of the incremental decoder. Caller-allocated; the fields are private to frame.c but
 * visible so that it can live inside another struct (and so tests can check allocations). */
typedef struct {
    unsigned char header[CV_FRAME_HEADER_SIZE]; /* header bytes of the frame being read */
    size_t header_have;   /* header bytes received so far, 0..CV_FRAME_HEADER_SIZE */
    cv_frame_kind_t kind; /* kind of the frame being read, valid once the header is complete */
    size_t want;          /* payload bytes the current header declares */
    cv_buf_t buf;         /* owned payload buffer: buf.len payload bytes received so far
                             (0..want), buf.data NULL until a payload arrives, buf.cap at most
                             CV_FRAME_MAX + 1 */
    int error;            /* 0, or the CV_E* code that stopped the stream (sticky) */
} cv_frame_decoder_t;

/* Writes the 8-byte header of a frame of the given kind and payload length into out.
 * Returns 0, CV_EINVAL for an unknown kind or CV_ERANGE when len exceeds CV_FRAME_MAX. */
int cv_frame_encode_header(cv_frame_kind_t kind, size_t len,
                           unsigned char out[CV_FRAME_HEADER_SIZE], char *err);

/* Checks an 8-byte header and returns its kind and declared payload length. Returns 0,
 * CV_ERANGE for a length over CV_FRAME_MAX, or CV_EFORMAT for an unknown kind or a non-zero
 * reserved byte. Pure; allocates nothing. */
int cv_frame_parse_header(const unsigned char header[CV_FRAME_HEADER_SIZE], cv_frame_kind_t *kind,
                          size_t *len, char *err);

/* Prepares a decoder. Allocates nothing; pair with cv_frame_decoder_finish. */
void cv_frame_decoder_init(cv_frame_decoder_t *dec);

/* Releases the decoder's buffer (it owns it) and resets it to the initialised state. Accepts
 * NULL. Any frame previously returned by cv_frame_decode becomes invalid. */
void cv_frame_decoder_finish(cv_frame_decoder_t *dec);

/* Feeds len bytes (any split of the stream, down to one byte at a time) to the decoder. Sets
 * *consumed to the number of bytes of buf it used. Returns:
 *   CV_FRAME_READY      a frame is complete in *frame_out (borrowed, see cv_frame_t); the caller
 *                       calls again with buf + *consumed for any further bytes;
 *   CV_FRAME_NEED_MORE  all len bytes were consumed and the current frame is still incomplete;
 *   CV_ERANGE / CV_EFORMAT for a bad header (nothing is allocated for it), CV_ENOMEM when the
 *                       payload buffer cannot grow. Errors are sticky: the stream cannot be
 *                       resynchronised, so every later call returns the same code.
 * The payload buffer grows with the bytes that have actually arrived, never past the declared
 * length, and is reused across frames. */
int cv_frame_decode(cv_frame_decoder_t *dec, const void *buf, size_t len, size_t *consumed,
                    cv_frame_t *frame_out, char *err);

/* Returns 1 when the decoder holds part of a frame (a stream ending now would be truncated),
 * 0 when it is between frames. */
int cv_frame_decoder_partial(const cv_frame_decoder_t *dec);

#endif
