/* Fuzz target: the HTTP request reader of server/http.c (cv_http_reader_t), the exact parser
 * each connection of the coordinator runs. The first byte seeds how the rest is split into
 * reads and picks the limits (bit 0: tiny limits so that 413 and 431 are reached cheaply); the
 * loop then acts as the server does: answer 100 Continue, take each request, stop at an error
 * or at the connection's last request. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_util.h"
#include "server/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks what a request result promises to the handler. */
static void check_request(const cv_http_read_result_t *ev) {
    const cv_http_request_t *req = &ev->request;
    if (!req->method || !req->path || !req->query || !req->body) abort();
    if (req->body[req->body_len] != '\0') abort();
    /* Every string is NUL-terminated inside its buffer (ASan checks the reads). */
    volatile size_t total = strlen(req->method) + strlen(req->path) + strlen(req->query);
    if (req->authorization) total += strlen(req->authorization);
    if (req->content_type) total += strlen(req->content_type);
    (void)total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint32_t seed = data[0] * 0x01010101u;
    cv_http_limits_t limits;
    cv_http_limits_default(&limits);
    if (data[0] & 1) {
        limits.max_header_bytes = 256;
        limits.max_body_bytes = 64;
    }
    const char *in = (const char *)data + 1;
    size_t left = size - 1;
    cv_http_reader_t *r = NULL;
    if (cv_http_reader_create(&r, &limits) != 0) abort();
    cv_http_read_result_t ev;
    while (left > 0) {
        size_t chunk = fuzz_next_chunk(&seed, left);
        size_t end_left = left - chunk;
        while (left > end_left) {
            size_t used = 0;
            size_t avail = left - end_left;
            cv_http_read_t what = cv_http_reader_feed(r, in, avail, &used, &ev);
            if (used > avail) abort();
            in += used;
            left -= used;
            switch (what) {
            case CV_HTTP_READ_MORE:
                if (left != end_left) abort(); /* MORE consumes everything given */
                break;
            case CV_HTTP_READ_CONTINUE:
                break;
            case CV_HTTP_READ_REQUEST:
                check_request(&ev);
                break;
            case CV_HTTP_READ_ERROR:
                if (ev.status < 400 || ev.status > 599 || ev.reason[0] == '\0') abort();
                /* fall through */
            case CV_HTTP_READ_DONE:
                goto done;
            }
        }
    }
done:
    cv_http_reader_destroy(r);
    return 0;
}
