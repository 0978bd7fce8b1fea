/* Worker wire-protocol framing: header encoding and the incremental frame decoder (frame.h). */
#include "common/frame.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define FRAME_MIN_ALLOC 4096 /* first payload allocation, bytes, unless the frame is smaller */

/* Payload of zero-length frames, so that a READY frame never carries a NULL pointer. */
static const unsigned char empty_payload[1] = {0};

int cv_frame_encode_header(cv_frame_kind_t kind, size_t len,
                           unsigned char out[CV_FRAME_HEADER_SIZE], char *err) {
    if (kind != CV_FRAME_JSON && kind != CV_FRAME_DATA)
        return cv_errf(err, CV_EINVAL, "frame kind %d is neither JSON (1) nor data (2)", (int)kind);
    if (len > CV_FRAME_MAX)
        return cv_errf(err, CV_ERANGE, "frame payload of %zu bytes exceeds the %u-byte limit", len,
                       CV_FRAME_MAX);
    uint32_t n = (uint32_t)len;
    out[0] = (unsigned char)(n >> 24);
    out[1] = (unsigned char)(n >> 16);
    out[2] = (unsigned char)(n >> 8);
    out[3] = (unsigned char)n;
    out[4] = (unsigned char)kind;
    out[5] = 0;
    out[6] = 0;
    out[7] = 0;
    return 0;
}

int cv_frame_parse_header(const unsigned char header[CV_FRAME_HEADER_SIZE], cv_frame_kind_t *kind,
                          size_t *len, char *err) {
    uint32_t n = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 |
                 (uint32_t)header[3];
    if (n > CV_FRAME_MAX)
        return cv_errf(err, CV_ERANGE, "frame header declares %lu payload bytes, over the %u limit",
                       (unsigned long)n, CV_FRAME_MAX);
    if (header[4] != CV_FRAME_JSON && header[4] != CV_FRAME_DATA)
        return cv_errf(err, CV_EFORMAT, "frame header has unknown kind %u", (unsigned)header[4]);
    if (header[5] != 0 || header[6] != 0 || header[7] != 0)
        return cv_errf(err, CV_EFORMAT, "frame header has non-zero reserved bytes %02x %02x %02x",
                       (unsigned)header[5], (unsigned)header[6], (unsigned)header[7]);
    *kind = (cv_frame_kind_t)header[4];
    *len = n;
    return 0;
}

void cv_frame_decoder_init(cv_frame_decoder_t *dec) {
    memset(dec, 0, sizeof(*dec));
    cv_buf_init(&dec->buf, FRAME_MIN_ALLOC, 0); /* the limit is set per frame */
}

void cv_frame_decoder_finish(cv_frame_decoder_t *dec) {
    if (!dec) return;
    cv_buf_finish(&dec->buf);
    cv_frame_decoder_init(dec);
}

int cv_frame_decoder_partial(const cv_frame_decoder_t *dec) {
    return dec->header_have > 0;
}

/* Makes room for n more payload bytes plus the trailing NUL. Grows geometrically but never past
 * the declared length of the current frame (itself at most CV_FRAME_MAX). */
static int reserve(cv_frame_decoder_t *dec, size_t n, char *err) {
    dec->buf.limit = dec->want + 1;
    if (cv_buf_reserve(&dec->buf, n + 1) != 0)
        return cv_errf(err, CV_ENOMEM, "cannot grow the frame buffer to %zu bytes",
                       dec->buf.len + n + 1);
    return 0;
}

/* Hands the completed frame to the caller and resets the state for the next header. */
static int deliver(cv_frame_decoder_t *dec, cv_frame_t *frame_out) {
    frame_out->kind = dec->kind;
    frame_out->len = dec->want;
    if (dec->want == 0) {
        frame_out->payload = empty_payload;
    } else {
        dec->buf.data[dec->want] = 0;
        frame_out->payload = dec->buf.data;
    }
    dec->header_have = 0;
    dec->want = 0;
    dec->buf.len = 0;
    return CV_FRAME_READY;
}

int cv_frame_decode(cv_frame_decoder_t *dec, const void *buf, size_t len, size_t *consumed,
                    cv_frame_t *frame_out, char *err) {
    const unsigned char *in = buf;
    size_t used = 0;
    *consumed = 0;
    if (dec->error)
        return cv_errf(err, dec->error, "frame stream already failed (%s)",
                       cv_strerror(dec->error));

    if (dec->header_have < CV_FRAME_HEADER_SIZE) {
        size_t n = CV_FRAME_HEADER_SIZE - dec->header_have;
        if (n > len) n = len;
        memcpy(dec->header + dec->header_have, in, n);
        dec->header_have += n;
        used += n;
        if (dec->header_have < CV_FRAME_HEADER_SIZE) {
            *consumed = used;
            return CV_FRAME_NEED_MORE;
        }
        int rc = cv_frame_parse_header(dec->header, &dec->kind, &dec->want, err);
        if (rc < 0) {
            dec->error = rc;
            *consumed = used;
            return rc;
        }
        dec->buf.len = 0;
    }

    size_t n = dec->want - dec->buf.len;
    if (n > len - used) n = len - used;
    if (n > 0) {
        int rc = reserve(dec, n, err);
        if (rc < 0) {
            dec->error = rc;
            *consumed = used;
            return rc;
        }
        memcpy(dec->buf.data + dec->buf.len, in + used, n);
        dec->buf.len += n;
        used += n;
    }
    *consumed = used;
    if (dec->buf.len < dec->want) return CV_FRAME_NEED_MORE;
    return deliver(dec, frame_out);
}
