/* HTTP/1.1 JSON API server running on a caller's libuv loop.
 *
 * One listening socket, keep-alive connections, pipelined requests answered in order, and a
 * single synchronous request handler that fills a status and a JSON (or raw text) body. Requests
 * are parsed with http_parser; the limits below are enforced as bytes arrive, before anything is
 * allocated for them. The server writes the protocol errors itself, each with a JSON body
 * {"error": "..."}:
 *
 *     400  malformed request (then the connection is closed)
 *     408  a request was partly read when the idle or request timeout expired (then closed)
 *     413  body larger than max_body_bytes, declared or decoded (then closed)
 *     417  an Expect header other than 100-continue (then closed)
 *     431  request line and headers larger than max_header_bytes (then closed)
 *     503  the connection arrived while max_connections were open (then closed)
 *
 * A connection is closed silently after idle_timeout_ms without progress in either direction:
 * no byte read and no byte of a queued response taken by the client. A deferred response (see
 * cv_http_defer) is the server's own work, so no timeout runs while one is awaited. Routing,
 * 404 and 405 are the handler's business (see cv_http_json_error).
 *
 * Threading: every function here must be called on the loop's thread. */
#ifndef CV_HTTP_H
#define CV_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

/* Limits of one server; cv_http_limits_default fills the documented defaults. */
typedef struct {
    size_t max_header_bytes;     /* request line + headers of one request, bytes (16 KiB) */
    size_t max_body_bytes;       /* decoded body of one request, bytes (1 MiB) */
    unsigned max_connections;    /* connections served at once; later ones get 503 (256) */
    uint64_t idle_timeout_ms;    /* longest silence from a client before closing, ms (10 s) */
    uint64_t request_timeout_ms; /* first byte to end of a request, max ms (30 s) */
} cv_http_limits_t;

/* One parsed request, borrowed by the handler for the duration of the call. Every string is
 * NUL-terminated and owned by the server. */
typedef struct {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* raw, percent-encoded path, e.g. "/v1/jobs/7"; "/" if none */
    const char *query;         /* raw query string without the '?', "" when absent */
    const char *body;          /* decoded body followed by a NUL; "" when there is none */
    size_t body_len;           /* bytes of body, excluding the NUL */
    const char *authorization; /* value of the Authorization header, or NULL when absent */
    const char *content_type;  /* value of the Content-Type header, or NULL when absent */
    uint64_t connection_id;    /* serial number of the connection, starting at 1 */
} cv_http_request_t;

/* The response a handler fills. Start from the zeroed struct the server passes in and use the
 * cv_http_respond_* helpers; the server frees whatever the response owns once it is written. */
typedef struct {
    int status;            /* HTTP status, 200..599; anything else is sent as a 500 */
    cJSON *json;           /* JSON body, owned by the response; NULL for none */
    char *text;            /* raw body (malloc'd, owned) used when json is NULL; NULL for none */
    size_t text_len;       /* bytes of text */
    char content_type[64]; /* Content-Type of a raw text body */
    int failed;            /* set when a helper ran out of memory; the server then sends a 500 */
    struct cv_http_deferred *deferred; /* set by cv_http_defer; the server's, not the handler's */
    int tag; /* the handler's label for this answer (its route, say), handed to on_answered with
                the status sent; kept across cv_http_defer; 0 by default */
} cv_http_response_t;

/* A response promised by a handler and given later (cv_http_defer). */
typedef struct cv_http_deferred cv_http_deferred_t;

/* Called once per complete request, in arrival order per connection. Fill res synchronously, or
 * call cv_http_defer and answer later; a response with neither json nor text has an empty body
 * (Content-Length: 0). The handler may call cv_http_server_close; the response to the current
 * request is then not sent. */
typedef void (*cv_http_on_request_t)(void *userdata, const cv_http_request_t *req,
                                     cv_http_response_t *res);

/* Called for every response as it is queued, with the handler's res->tag (0 for answers the
 * server gives itself: malformed requests, limits, and any handler that sets none) and the
 * status sent (a 500 when the handler's response could not be rendered). For counting; it must
 * not touch the connection. */
typedef void (*cv_http_on_answered_t)(void *userdata, int tag, int status);

/* Called once the server and all its connections are closed and freed. */
typedef void (*cv_http_on_closed_t)(void *userdata);

typedef struct cv_http_server cv_http_server_t;

/* Fills limits with the defaults named in cv_http_limits_t. */
void cv_http_limits_default(cv_http_limits_t *limits);

/* Allocates a server bound to loop (borrowed; it must outlive the server) that will listen on
 * host (an IPv4 or IPv6 literal, copied) and port (0 picks an ephemeral port). limits is copied;
 * NULL means the defaults. on_request is called with userdata. Initialises the listening handle
 * but does not bind: call cv_http_server_start. On success *out owns the server, which must be
 * released with cv_http_server_close whether or not it was started. On failure nothing is
 * allocated and err says why (CV_EINVAL for a bad address or limit, CV_ENOMEM). */
int cv_http_server_create(cv_http_server_t **out, uv_loop_t *loop, const char *host, int port,
                          const cv_http_limits_t *limits, cv_http_on_request_t on_request,
                          void *userdata, char *err);

/* Sets the observer of every response (NULL: none) and the userdata it is called with. */
void cv_http_server_on_answered(cv_http_server_t *server, cv_http_on_answered_t on_answered,
                                void *userdata);

/* Binds and listens. Returns 0, or CV_EIO with libuv's reason (address in use, ...) in err; the
 * server must still be closed after a failure. */
int cv_http_server_start(cv_http_server_t *server, char *err);

/* The port the server is listening on (the ephemeral port when 0 was asked), or 0 before a
 * successful cv_http_server_start. */
int cv_http_server_port(const cv_http_server_t *server);

/* Number of connections currently counted against max_connections. */
unsigned cv_http_server_connections(const cv_http_server_t *server);

/* Stops listening, abandons every connection (queued responses are cancelled) and frees the
 * server in libuv close callbacks; on_closed(userdata) runs after the last one. Accepts NULL
 * (then does nothing) and on_closed == NULL. Calling it twice is a programming error. */
void cv_http_server_close(cv_http_server_t *server, cv_http_on_closed_t on_closed);

/* Called by a handler that will answer after it returns (work on the thread pool, say): the
 * connection reads no further request until the answer is given, so responses stay in order.
 * Whatever res holds is discarded. Returns the promise, owned by the server until it is passed to
 * cv_http_deferred_finish exactly once, or NULL when out of memory (then answer res at once). */
cv_http_deferred_t *cv_http_defer(cv_http_response_t *res);

/* Gives a deferred answer: res (filled with the cv_http_respond_* helpers; its body is taken
 * over and freed) is sent, and the connection reads on. When the client or the server closed the
 * connection meanwhile, the answer is dropped. Frees d. Loop thread only. */
void cv_http_deferred_finish(cv_http_deferred_t *d, cv_http_response_t *res);

/* Sets status and an owned JSON body; takes ownership of body. A NULL body (a failed cJSON
 * allocation upstream) marks the response failed. */
void cv_http_respond_json(cv_http_response_t *res, int status, cJSON *body);

/* Sets status and a raw body of len bytes copied from text, sent with content_type (NULL means
 * "text/plain; charset=utf-8"; truncated to 63 bytes). Returns 0 or CV_ENOMEM (response marked
 * failed). */
int cv_http_respond_text(cv_http_response_t *res, int status, const char *content_type,
                         const char *text, size_t len);

/* Sets status and the body {"error": "<formatted message>"} (the message is cut at 511 bytes).
 * Marks the response failed when memory runs out. */
void cv_http_json_error(cv_http_response_t *res, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The value of key in a request's query string (no percent-decoding: the API's values are plain
 * words and numbers), copied into out (cap bytes, truncated); 1 when present, else 0. */
int cv_http_query_get(const char *query, const char *key, char *out, size_t cap);

/* ---- the request reader -----------------------------------------------------------------
 * The server's request parser without any I/O: bytes in, requests and protocol errors out, under
 * the same limits. The server runs one per connection; fuzz/http_request.c drives it directly. */

typedef struct cv_http_reader cv_http_reader_t;

/* What one cv_http_reader_feed produced. */
typedef enum {
    CV_HTTP_READ_MORE,     /* every byte was consumed; no request is complete yet */
    CV_HTTP_READ_CONTINUE, /* an HTTP/1.1 request's head asks for "100 Continue"; send it, then
                            * feed the rest */
    CV_HTTP_READ_REQUEST,  /* a request is complete (see the result); feed the rest after it */
    CV_HTTP_READ_ERROR,    /* the input is refused (status and reason); nothing more is parsed */
    CV_HTTP_READ_DONE,     /* the last request of the connection was read; nothing more is
                            * parsed */
} cv_http_read_t;

/* The details of a READ_REQUEST or READ_ERROR. */
typedef struct {
    cv_http_request_t request; /* READ_REQUEST: strings borrowed from the reader until the next
                                * feed; connection_id is 0 */
    int keep_alive;            /* READ_REQUEST: another request may follow on the connection */
    int head_only;             /* READ_REQUEST: a HEAD request (the answer carries no body) */
    int status;                /* READ_ERROR: 400, 413, 417, 431 or 500 (out of memory) */
    char reason[256];          /* READ_ERROR: human reason, NUL-terminated */
} cv_http_read_result_t;

/* Allocates a reader enforcing limits->max_header_bytes and max_body_bytes (NULL: defaults).
 * Returns 0 with *out owned by the caller (release with cv_http_reader_destroy), CV_EINVAL for
 * limits cv_http_server_create would refuse, or CV_ENOMEM. */
int cv_http_reader_create(cv_http_reader_t **out, const cv_http_limits_t *limits);

/* Frees the reader and every request string it lent. Accepts NULL. */
void cv_http_reader_destroy(cv_http_reader_t *reader);

/* Parses up to len bytes of data (borrowed) and stops at the first event: *consumed tells how
 * many bytes were used; the caller feeds the remainder next (len 0 is a no-op returning MORE).
 * Limits are checked before anything is copied. After ERROR or DONE every later feed returns
 * the same and consumes nothing. */
cv_http_read_t cv_http_reader_feed(cv_http_reader_t *reader, const char *data, size_t len,
                                   size_t *consumed, cv_http_read_result_t *out);

/* 1 while a request has started arriving and is not yet complete, else 0. */
int cv_http_reader_in_request(const cv_http_reader_t *reader);

#endif
