/* HTTP/1.1 JSON API server (http.h): accepting connections, parsing requests with http_parser
 * under the configured limits, calling the handler and writing responses and protocol errors.
 *
 * Memory: each read gets a fresh READ_CHUNK buffer that the read callback frees (or parks while
 * parsing is paused); each response is one malloc'd write_t freed in its write callback; a
 * connection is freed in the close callback of the last of its two handles (TCP and timer); the
 * server is freed when its listener and every connection have been closed. */
#include "server/http.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <http_parser.h>

#include "common/buf.h"
#include "common/err.h"

#define READ_CHUNK            65536 /* bytes offered to each read */
#define MAX_PIPELINED         8     /* responses queued on a connection before parsing pauses */
#define FIELD_NAME_MAX        32    /* longest header name the server needs to recognise, bytes */
#define HEADER_LINE_OVERHEAD  4     /* ": " and CRLF, counted per header line */
#define REQUEST_LINE_OVERHEAD 16    /* method, spaces, "HTTP/1.1" and CRLF of the request line */
#define RESPONSE_HEAD_MAX     512   /* bytes of a response's status line and headers */
#define BODY_KEEP_MAX         65536 /* body buffer kept between requests, bytes; larger is freed */
#define LISTEN_BACKLOG        128

/* Connection states; a connection only moves down this list.
 *   READING    parsing requests and answering them in order;
 *   DRAINING   the last response is queued (Connection: close or an error); input is read and
 *              discarded; once every write has completed the write side is shut down;
 *   LINGERING  the write side is shut down; input is discarded until the client closes or the
 *              idle timeout expires, so the client reads the response before a reset could
 *              destroy it (closing with unread input makes the kernel send RST);
 *   CLOSING    uv_close was called on both handles; freed when the last close callback runs.
 * Timeouts (one timer per connection): READING closes after idle_timeout_ms without progress
 * (no byte read, and no byte of a queued response taken by the client), or answers 408 when a
 * request is partly read or older than request_timeout_ms; DRAINING and LINGERING close after
 * idle_timeout_ms without write progress. While a deferred response is awaited no timer runs:
 * the wait is the server's, not the client's. */
typedef enum { CONN_READING, CONN_DRAINING, CONN_LINGERING, CONN_CLOSING } conn_state_t;

/* Request headers the server keeps; every other header is counted against the limit and
 * dropped. */
enum { HDR_NONE = -1, HDR_AUTHORIZATION, HDR_CONTENT_TYPE, HDR_EXPECT, HDR_COUNT };
static const char *const kept_header_names[HDR_COUNT] = {"authorization", "content-type", "expect"};

/* One queued response (or 100 Continue), freed in after_write. */
typedef struct {
    uv_write_t req;
    struct conn *conn;
    size_t len;  /* bytes of data */
    char data[]; /* status line, headers and body */
} write_t;

typedef struct conn {
    cv_http_server_t *server;
    struct conn *prev, *next; /* the server's list of unfreed connections */
    uv_tcp_t tcp;
    uv_timer_t timer;           /* idle, request and linger deadline */
    uv_shutdown_t shutdown_req; /* used once, when entering LINGERING */
    cv_http_reader_t *reader; /* owned; parses this connection's requests */
    conn_state_t state;
    uint64_t id;             /* serial number, from 1 */
    int counted;             /* counted in server->counted (a served connection) */
    int rejected;            /* counted in server->rejected (being refused with 503) */
    int handles_open;        /* initialised handles whose close callback has not run, 0..2 */
    int reading;             /* uv_read_start is in effect */
    int peer_eof;            /* the client shut down its side */
    int paused;              /* the parser is paused until writes drain (back-pressure) */
    unsigned writes_pending; /* uv_write requests not yet called back */
    /* The request being read. */
    int in_request;         /* its first byte has arrived and it is not complete */
    uint64_t request_start; /* loop time of its first byte, ms */
    cv_http_deferred_t *deferred; /* the answer the handler promised, or NULL */
    size_t queue_seen;            /* response bytes not yet taken when the timer was armed */
    /* Input parked while the parser is paused. */
    char *stash;      /* owned read buffer */
    size_t stash_off; /* first unparsed byte */
    size_t stash_len; /* unparsed bytes */
} conn_t;

/* A promised response: the connection it goes to (NULL once that closed) and how. */
struct cv_http_deferred {
    conn_t *conn;
    int keep_alive;
    int head_only;
    int tag; /* the promised response's tag (cv_http_response_t) */
};

struct cv_http_server {
    uv_loop_t *loop; /* borrowed */
    uv_tcp_t listener;
    uv_tcp_t sink; /* accepts and drops a connection when a conn cannot be made */
    struct sockaddr_storage addr;
    cv_http_limits_t limits;
    cv_http_on_request_t on_request;
    cv_http_on_answered_t on_answered; /* NULL: nobody counts responses */
    void *answered_userdata;
    void *userdata;
    conn_t *conns;     /* unfreed connections, any state */
    unsigned counted;  /* connections served, <= limits.max_connections */
    unsigned rejected; /* connections being refused, <= limits.max_connections */
    uint64_t next_id;
    int port;            /* bound port, 0 before start */
    int listener_open;   /* the listener's close callback has not run */
    int sink_busy;       /* the sink is closing */
    int accept_deferred; /* a connection waits for the sink */
    int closing;         /* cv_http_server_close was called */
    cv_http_on_closed_t on_closed;
};

static void conn_close(conn_t *c);
static void conn_drain(conn_t *c);
static void conn_after_io(conn_t *c);
static void conn_timer(conn_t *c, uint64_t ms);
static size_t conn_unsent(conn_t *c);
static void parse_input(conn_t *c, char *base, size_t off, size_t len);

/* ---- small helpers ---------------------------------------------------------------------- */

/* Appends n bytes to b, a byte string NUL-terminated at len once its data is allocated (its
 * limit leaves room for the NUL). The caller has already checked that b->len + n is within the
 * limit. Returns 0 or CV_ENOMEM. */
static int bytes_append(cv_buf_t *b, const char *at, size_t n) {
    if (cv_buf_reserve(b, n + 1)) return CV_ENOMEM;
    memcpy(b->data + b->len, at, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* The text of byte string b (see bytes_append). */
static char *bytes_text(const cv_buf_t *b) {
    return (char *)b->data;
}

static void response_clear(cv_http_response_t *res) {
    cJSON_Delete(res->json);
    res->json = NULL;
    free(res->text);
    res->text = NULL;
    res->text_len = 0;
}

void cv_http_limits_default(cv_http_limits_t *limits) {
    limits->max_header_bytes = 16 * 1024;
    limits->max_body_bytes = 1024 * 1024;
    limits->max_connections = 256;
    limits->idle_timeout_ms = 10000;
    limits->request_timeout_ms = 30000;
}

/* ---- response helpers ------------------------------------------------------------------- */

void cv_http_respond_json(cv_http_response_t *res, int status, cJSON *body) {
    response_clear(res);
    res->status = status;
    res->json = body;
    res->failed = body == NULL;
}

int cv_http_respond_text(cv_http_response_t *res, int status, const char *content_type,
                         const char *text, size_t len) {
    response_clear(res);
    res->status = status;
    snprintf(res->content_type, sizeof(res->content_type), "%s",
             content_type ? content_type : "text/plain; charset=utf-8");
    res->text = malloc(len ? len : 1);
    if (!res->text) {
        res->failed = 1;
        return CV_ENOMEM;
    }
    if (len) memcpy(res->text, text, len);
    res->text_len = len;
    res->failed = 0;
    return 0;
}

void cv_http_json_error(cv_http_response_t *res, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *body = cJSON_CreateObject();
    if (body && !cJSON_AddStringToObject(body, "error", msg)) {
        cJSON_Delete(body);
        body = NULL;
    }
    cv_http_respond_json(res, status, body);
}

cv_http_deferred_t *cv_http_defer(cv_http_response_t *res) {
    cv_http_deferred_t *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    response_clear(res);
    d->tag = res->tag;
    res->deferred = d;
    return d;
}

/* ---- writing ---------------------------------------------------------------------------- */

static void after_write(uv_write_t *req, int status) {
    write_t *w = (write_t *)req;
    conn_t *c = w->conn;
    free(w);
    c->writes_pending--;
    if (c->state == CONN_CLOSING) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_after_io(c);
}

/* Queues head (head_len bytes) followed by body (body_len bytes) as one write. On failure the
 * connection is closed. Returns 0 or a negative code. */
static int conn_write(conn_t *c, const char *head, size_t head_len, const char *body,
                      size_t body_len) {
    write_t *w = malloc(sizeof(*w) + head_len + body_len);
    if (!w) {
        conn_close(c);
        return CV_ENOMEM;
    }
    w->conn = c;
    w->len = head_len + body_len;
    memcpy(w->data, head, head_len);
    if (body_len) memcpy(w->data + head_len, body, body_len);
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, after_write);
    if (rc < 0) {
        free(w);
        conn_close(c);
        return CV_EIO;
    }
    c->writes_pending++;
    return 0;
}

/* Serialises res and queues it. keep_alive chooses the Connection header; head_only leaves the
 * body out (HEAD requests) while still announcing its length. Does not take res. */
static int send_response(conn_t *c, const cv_http_response_t *res, int tag, int keep_alive,
                         int head_only) {
    static const char oom_body[] = "{\"error\":\"out of memory\"}";
    static const char bad_status_body[] = "{\"error\":\"handler set no valid status\"}";
    int status = res->status;
    const char *content_type = "application/json";
    const char *body = NULL;
    size_t body_len = 0;
    char *printed = NULL;

    if (res->failed) {
        status = 500;
        body = oom_body;
        body_len = sizeof(oom_body) - 1;
    } else if (status < 200 || status > 599) {
        status = 500;
        body = bad_status_body;
        body_len = sizeof(bad_status_body) - 1;
    } else if (res->json) {
        printed = cJSON_PrintUnformatted(res->json);
        if (printed) {
            body = printed;
            body_len = strlen(printed);
        } else {
            status = 500;
            body = oom_body;
            body_len = sizeof(oom_body) - 1;
        }
    } else if (res->text) {
        content_type = res->content_type;
        body = res->text;
        body_len = res->text_len;
    }

    if (c->server->on_answered) c->server->on_answered(c->server->answered_userdata, tag, status);
    char head[RESPONSE_HEAD_MAX];
    const char *reason = http_status_str((enum http_status)status);
    if (reason[0] == '<') reason = "Unknown";
    const char *connection = keep_alive ? "keep-alive" : "close";
    int n;
    if (status == 204 || status == 304) {
        body_len = 0; /* these responses never carry a body or a Content-Length */
        n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nConnection: %s\r\n\r\n", status, reason,
                     connection);
    } else {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n\r\n",
                     status, reason, content_type, body_len, connection);
    }
    if (head_only) body_len = 0;
    int rc = CV_ERANGE;
    if (n > 0 && (size_t)n < sizeof(head))
        rc = conn_write(c, head, (size_t)n, body, body_len);
    else
        conn_close(c);
    free(printed);
    return rc;
}

/* Answers with {"error": msg} and Connection: close, then stops reading requests. */
static void send_error(conn_t *c, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void send_error(conn_t *c, int status, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cv_http_response_t res;
    memset(&res, 0, sizeof(res));
    cv_http_json_error(&res, status, "%s", msg);
    int rc = send_response(c, &res, 0, 0, 0);
    response_clear(&res);
    if (rc == 0) conn_drain(c);
}

/* ---- connection lifecycle --------------------------------------------------------------- */

static void server_maybe_free(cv_http_server_t *s) {
    if (!s->closing || s->listener_open || s->sink_busy || s->conns) return;
    cv_http_on_closed_t on_closed = s->on_closed;
    void *userdata = s->userdata;
    free(s);
    if (on_closed) on_closed(userdata);
}

static void on_conn_handle_closed(uv_handle_t *handle) {
    conn_t *c = handle->data;
    if (--c->handles_open > 0) return;
    cv_http_server_t *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    cv_http_reader_destroy(c->reader);
    free(c->stash);
    free(c);
    server_maybe_free(s);
}

/* Closes both handles; queued writes are cancelled and the connection is freed in the last
 * close callback. Safe to call more than once. */
static void conn_close(conn_t *c) {
    if (c->state == CONN_CLOSING) return;
    c->state = CONN_CLOSING;
    if (c->counted) c->server->counted--;
    if (c->rejected) c->server->rejected--;
    c->counted = 0;
    c->rejected = 0;
    if (c->deferred) c->deferred->conn = NULL; /* the answer will find nobody to go to */
    c->deferred = NULL;
    free(c->stash);
    c->stash = NULL;
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

/* Response bytes not yet taken by the client: those libuv still holds plus those in the kernel's
 * send queue (not yet acknowledged by the peer). */
static size_t conn_unsent(conn_t *c) {
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
    uv_os_fd_t fd;
    int in_kernel = 0;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &in_kernel) == 0 &&
        in_kernel > 0)
        queued += (size_t)in_kernel;
    return queued;
}

static void on_timeout(uv_timer_t *timer) {
    conn_t *c = timer->data;
    int reading_request = c->state == CONN_READING && c->in_request;
    if (!reading_request && c->writes_pending > 0 && conn_unsent(c) < c->queue_seen) {
        /* The client is slow but takes the response: that is progress, not idleness. */
        conn_timer(c, c->server->limits.idle_timeout_ms);
        return;
    }
    if (reading_request)
        send_error(c, 408, "request not received within the time limit");
    else
        conn_close(c);
}

/* Restarts the timer for `ms` from now. */
static void conn_timer(conn_t *c, uint64_t ms) {
    c->queue_seen = conn_unsent(c);
    if (uv_timer_start(&c->timer, on_timeout, ms, 0) < 0) conn_close(c);
}

/* Arms the READING deadline: idle timeout from now, or the request's own deadline if sooner. */
static void conn_arm_reading_timer(conn_t *c) {
    const cv_http_limits_t *l = &c->server->limits;
    if (c->deferred) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = uv_now(c->server->loop);
    uint64_t deadline = now + l->idle_timeout_ms;
    if (c->in_request && c->request_start + l->request_timeout_ms < deadline)
        deadline = c->request_start + l->request_timeout_ms;
    conn_timer(c, deadline > now ? deadline - now : 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)handle;
    (void)suggested;
    buf->base = malloc(READ_CHUNK);
    buf->len = buf->base ? READ_CHUNK : 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void conn_start_reading(conn_t *c) {
    if (c->reading || c->peer_eof || c->state == CONN_CLOSING) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

static void conn_stop_reading(conn_t *c) {
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

/* Enters DRAINING: no more requests are parsed; input is discarded until the queued responses
 * are written. */
static void conn_drain(conn_t *c) {
    if (c->state != CONN_READING) return;
    c->state = CONN_DRAINING;
    c->paused = 0;
    free(c->stash);
    c->stash = NULL;
    conn_start_reading(c);
    if (c->state == CONN_DRAINING) conn_after_io(c);
}

static void after_shutdown(uv_shutdown_t *req, int status) {
    conn_t *c = req->data;
    if (c->state == CONN_CLOSING) return;
    if (status < 0 || c->peer_eof) conn_close(c);
}

/* Moves the connection on after a write completed, the client shut down, or DRAINING began. */
static void conn_after_io(conn_t *c) {
    const cv_http_limits_t *l = &c->server->limits;
    switch (c->state) {
    case CONN_READING:
        if (c->paused && !c->deferred && c->writes_pending < MAX_PIPELINED) {
            c->paused = 0;
            char *stash = c->stash;
            c->stash = NULL;
            if (stash) {
                parse_input(c, stash, c->stash_off, c->stash_len); /* takes stash */
                return;
            }
        }
        if (c->peer_eof && !c->paused && c->writes_pending == 0) {
            conn_close(c);
            return;
        }
        if (!c->paused) conn_start_reading(c);
        if (c->state == CONN_READING) conn_arm_reading_timer(c);
        return;
    case CONN_DRAINING:
        if (c->writes_pending > 0) {
            conn_timer(c, l->idle_timeout_ms);
            return;
        }
        if (c->peer_eof) {
            conn_close(c);
            return;
        }
        c->shutdown_req.data = c;
        if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, after_shutdown) < 0) {
            conn_close(c);
            return;
        }
        c->state = CONN_LINGERING;
        conn_timer(c, l->idle_timeout_ms);
        return;
    case CONN_LINGERING:
    case CONN_CLOSING:
        return;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    conn_t *c = stream->data;
    if (nread == 0) { /* EAGAIN: nothing read */
        free(buf->base);
        return;
    }
    if (nread < 0) {
        free(buf->base);
        if (nread != UV_EOF) {
            conn_close(c);
            return;
        }
        conn_stop_reading(c);
        c->peer_eof = 1;
        if (c->state == CONN_LINGERING)
            conn_close(c);
        else
            conn_after_io(c);
        return;
    }
    if (c->state != CONN_READING) { /* DRAINING or LINGERING: discard */
        free(buf->base);
        return;
    }
    parse_input(c, buf->base, 0, (size_t)nread);
}

void cv_http_deferred_finish(cv_http_deferred_t *d, cv_http_response_t *res) {
    conn_t *c = d->conn;
    int keep_alive = d->keep_alive, head_only = d->head_only, tag = d->tag;
    free(d);
    if (!c || c->state != CONN_READING) {
        response_clear(res);
        return;
    }
    c->deferred = NULL;
    int rc = send_response(c, res, tag, keep_alive, head_only);
    response_clear(res);
    if (rc < 0) return; /* the connection was closed */
    if (!keep_alive)
        conn_drain(c);
    else
        conn_after_io(c); /* reads on, starting with input parked while the answer was awaited */
}

/* ---- the request reader ----------------------------------------------------------------- */

/* Request reader states beyond the parser's own:
 *   event    what the callback that paused the parser produced (READ_MORE when none);
 *   finished a request that ends the connection was returned, or an error: nothing more is
 *            parsed. */
struct cv_http_reader {
    http_parser parser;
    size_t max_header_bytes;    /* copied from the limits */
    size_t max_body_bytes;      /* copied from the limits */
    cv_http_read_t event;       /* READ_CONTINUE or READ_REQUEST when a callback paused */
    cv_http_read_t finished;    /* READ_DONE or READ_ERROR once nothing more may be parsed */
    int in_request;             /* the request's first byte has arrived and it is not complete */
    int force_close;            /* answer it with Connection: close (upgrade requests) */
    int keep_alive;             /* the completed request allows another one */
    size_t head_bytes;          /* request line and header bytes counted, <= max_header_bytes */
    int error_status;           /* HTTP status chosen by the callback that stopped the parser */
    cv_buf_t url;               /* request target, bounded by max_header_bytes */
    cv_buf_t body;              /* decoded body, bounded by max_body_bytes */
    cv_buf_t headers[HDR_COUNT]; /* values of the kept headers */
    int have_header[HDR_COUNT]; /* which kept headers were seen */
    char field[FIELD_NAME_MAX]; /* name of the header being read, lowercase, not terminated */
    size_t field_len;           /* bytes in field */
    int field_too_long;         /* the name is longer than any kept header */
    int in_value;               /* the last header callback was a value (or none yet) */
    int current;                /* HDR_* slot receiving the current value */
    int error_status_final;     /* status of the error once finished == READ_ERROR */
    char error_reason[256];     /* reason of that error */
};

/* Forgets the previous request; keeps small buffers for reuse. */
static void request_reset(cv_http_reader_t *r) {
    r->url.len = 0;
    r->body.len = 0;
    if (r->body.cap > BODY_KEEP_MAX) cv_buf_finish(&r->body);
    for (int i = 0; i < HDR_COUNT; i++) {
        r->headers[i].len = 0;
        r->have_header[i] = 0;
    }
    r->head_bytes = REQUEST_LINE_OVERHEAD;
    r->error_status = 0;
    r->force_close = 0;
    r->keep_alive = 0;
    r->field_len = 0;
    r->field_too_long = 0;
    r->in_value = 1;
    r->current = HDR_NONE;
}

/* Counts n more bytes of request head; refuses with 431 past the limit, before any copy. */
static int head_count(cv_http_reader_t *r, size_t n) {
    if (n > r->max_header_bytes - r->head_bytes) {
        r->error_status = 431;
        return -1;
    }
    r->head_bytes += n;
    return 0;
}

static int out_of_memory(cv_http_reader_t *r) {
    r->error_status = 500;
    return -1;
}

static int on_message_begin(http_parser *p) {
    cv_http_reader_t *r = p->data;
    request_reset(r);
    r->in_request = 1;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
    cv_http_reader_t *r = p->data;
    if (head_count(r, n) < 0) return -1;
    if (bytes_append(&r->url, at, n) < 0) return out_of_memory(r);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
    cv_http_reader_t *r = p->data;
    if (r->in_value) { /* a new header line starts */
        if (head_count(r, HEADER_LINE_OVERHEAD) < 0) return -1;
        r->in_value = 0;
        r->field_len = 0;
        r->field_too_long = 0;
    }
    if (head_count(r, n) < 0) return -1;
    if (r->field_too_long || n > sizeof(r->field) - r->field_len) {
        r->field_too_long = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = at[i];
        r->field[r->field_len++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    return 0;
}

static int kept_header_slot(const cv_http_reader_t *r) {
    if (r->field_too_long) return HDR_NONE;
    for (int i = 0; i < HDR_COUNT; i++) {
        const char *name = kept_header_names[i];
        if (strlen(name) == r->field_len && memcmp(name, r->field, r->field_len) == 0) return i;
    }
    return HDR_NONE;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
    cv_http_reader_t *r = p->data;
    if (!r->in_value) { /* first piece of this header's value */
        r->in_value = 1;
        r->current = kept_header_slot(r);
        if (r->current != HDR_NONE) {
            if (r->have_header[r->current]) {
                r->error_status = 400; /* a repeated Authorization or Content-Type is ambiguous */
                return -1;
            }
            r->have_header[r->current] = 1;
            if (bytes_append(&r->headers[r->current], "", 0) < 0) return out_of_memory(r);
        }
    }
    if (head_count(r, n) < 0) return -1;
    if (r->current != HDR_NONE && bytes_append(&r->headers[r->current], at, n) < 0)
        return out_of_memory(r);
    return 0;
}

/* Checks the declared body against the limit and the Expect header; pauses the parser to ask
 * for a 100 Continue when an HTTP/1.1 client waits for one. */
static int on_headers_complete(http_parser *p) {
    cv_http_reader_t *r = p->data;
    int upgrade = (p->flags & F_UPGRADE) && (p->flags & F_CONNECTION_UPGRADE);
    if (upgrade || p->method == HTTP_CONNECT)
        r->force_close = 1; /* the server speaks nothing but HTTP/1.1 on this connection */
    int chunked = (p->flags & F_CHUNKED) != 0;
    if (!chunked && p->content_length != ULLONG_MAX && p->content_length > r->max_body_bytes) {
        r->error_status = 413;
        return -1;
    }
    int want_continue = 0;
    if (r->have_header[HDR_EXPECT]) {
        if (strcasecmp(bytes_text(&r->headers[HDR_EXPECT]), "100-continue") != 0) {
            r->error_status = 417;
            return -1;
        }
        want_continue = p->http_major == 1 && p->http_minor >= 1;
    }
    if (!chunked && p->content_length != ULLONG_MAX && p->content_length > 0 &&
        r->body.cap < p->content_length + 1) {
        /* Reserve the declared body at once; it is within max_body_bytes. */
        if (cv_buf_reserve(&r->body, (size_t)p->content_length + 1)) return out_of_memory(r);
    }
    if (want_continue) {
        r->event = CV_HTTP_READ_CONTINUE;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int on_chunk_header(http_parser *p) {
    cv_http_reader_t *r = p->data;
    if (p->content_length > r->max_body_bytes - r->body.len) {
        r->error_status = 413;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
    cv_http_reader_t *r = p->data;
    if (n > r->max_body_bytes - r->body.len) {
        r->error_status = 413;
        return -1;
    }
    if (bytes_append(&r->body, at, n) < 0) return out_of_memory(r);
    return 0;
}

/* Pauses the parser after every request so that the caller answers it before reading on. */
static int on_message_complete(http_parser *p) {
    cv_http_reader_t *r = p->data;
    r->in_request = 0;
    r->keep_alive = http_should_keep_alive(p) && !r->force_close;
    r->event = CV_HTTP_READ_REQUEST;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings reader_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

/* Splits the request target in place into path and query. Returns 0, or -1 when the target is
 * not a valid URL. */
static int split_target(cv_http_reader_t *r, const char **path, const char **query) {
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (r->url.len == 0 || http_parser_parse_url(bytes_text(&r->url), r->url.len,
                                                 r->parser.method == HTTP_CONNECT, &u) != 0)
        return -1;
    *path = "/";
    *query = "";
    char *url = bytes_text(&r->url);
    if (u.field_set & (1u << UF_QUERY)) {
        *query = url + u.field_data[UF_QUERY].off;
        url[u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len] = '\0';
    }
    if (u.field_set & (1u << UF_PATH)) {
        *path = url + u.field_data[UF_PATH].off;
        url[u.field_data[UF_PATH].off + u.field_data[UF_PATH].len] = '\0';
    }
    return 0;
}

/* Ends the reader with an error: the status and reason are kept and reported to every later
 * feed. Returns CV_HTTP_READ_ERROR. */
static cv_http_read_t reader_fail(cv_http_reader_t *r, cv_http_read_result_t *out, int status,
                                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static cv_http_read_t reader_fail(cv_http_reader_t *r, cv_http_read_result_t *out, int status,
                                  const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error_reason, sizeof(r->error_reason), fmt, ap);
    va_end(ap);
    r->finished = CV_HTTP_READ_ERROR;
    r->error_status_final = status;
    out->status = status;
    memcpy(out->reason, r->error_reason, sizeof(out->reason));
    return CV_HTTP_READ_ERROR;
}

int cv_http_reader_create(cv_http_reader_t **out, const cv_http_limits_t *limits) {
    cv_http_limits_t l;
    if (limits)
        l = *limits;
    else
        cv_http_limits_default(&l);
    *out = NULL;
    if (l.max_header_bytes < 256 || l.max_body_bytes == 0 || l.max_body_bytes > SIZE_MAX / 2)
        return CV_EINVAL;
    cv_http_reader_t *r = calloc(1, sizeof(*r));
    if (!r) return CV_ENOMEM;
    r->max_header_bytes = l.max_header_bytes;
    r->max_body_bytes = l.max_body_bytes;
    cv_buf_init(&r->url, 256, l.max_header_bytes + 1);
    cv_buf_init(&r->body, 256, l.max_body_bytes + 1);
    for (int i = 0; i < HDR_COUNT; i++)
        cv_buf_init(&r->headers[i], 256, l.max_header_bytes + 1);
    r->event = CV_HTTP_READ_MORE;
    r->finished = CV_HTTP_READ_MORE;
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    request_reset(r);
    *out = r;
    return 0;
}

void cv_http_reader_destroy(cv_http_reader_t *r) {
    if (!r) return;
    cv_buf_finish(&r->url);
    cv_buf_finish(&r->body);
    for (int i = 0; i < HDR_COUNT; i++)
        cv_buf_finish(&r->headers[i]);
    free(r);
}

int cv_http_reader_in_request(const cv_http_reader_t *r) {
    return r->in_request;
}

cv_http_read_t cv_http_reader_feed(cv_http_reader_t *r, const char *data, size_t len,
                                   size_t *consumed, cv_http_read_result_t *out) {
    *consumed = 0;
    memset(out, 0, sizeof(*out));
    if (r->finished == CV_HTTP_READ_ERROR) {
        out->status = r->error_status_final;
        memcpy(out->reason, r->error_reason, sizeof(out->reason));
        return CV_HTTP_READ_ERROR;
    }
    if (r->finished == CV_HTTP_READ_DONE) return CV_HTTP_READ_DONE;
    if (r->event == CV_HTTP_READ_REQUEST) request_reset(r); /* the caller is done with it */
    r->event = CV_HTTP_READ_MORE;
    if (len == 0) return CV_HTTP_READ_MORE; /* http_parser would take it for end of input */
    if (HTTP_PARSER_ERRNO(&r->parser) == HPE_PAUSED) http_parser_pause(&r->parser, 0);

    size_t n = http_parser_execute(&r->parser, &reader_settings, data, len);
    *consumed = n;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (e == HPE_PAUSED && r->event == CV_HTTP_READ_CONTINUE) return CV_HTTP_READ_CONTINUE;
    if (e == HPE_PAUSED && r->event == CV_HTTP_READ_REQUEST) {
        cv_http_request_t *req = &out->request;
        if (split_target(r, &req->path, &req->query) < 0)
            return reader_fail(r, out, 400, "malformed request target");
        req->method = http_method_str((enum http_method)r->parser.method);
        req->body = r->body.len ? bytes_text(&r->body) : "";
        req->body_len = r->body.len;
        req->authorization =
            r->have_header[HDR_AUTHORIZATION] ? bytes_text(&r->headers[HDR_AUTHORIZATION]) : NULL;
        req->content_type =
            r->have_header[HDR_CONTENT_TYPE] ? bytes_text(&r->headers[HDR_CONTENT_TYPE]) : NULL;
        out->keep_alive = r->keep_alive;
        out->head_only = r->parser.method == HTTP_HEAD;
        if (!out->keep_alive) r->finished = CV_HTTP_READ_DONE;
        return CV_HTTP_READ_REQUEST;
    }
    if (e != HPE_OK) {
        int status = r->error_status ? r->error_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
        switch (status) {
        case 413:
            return reader_fail(r, out, 413, "request body exceeds %zu bytes", r->max_body_bytes);
        case 417:
            return reader_fail(r, out, 417, "only 'Expect: 100-continue' is supported");
        case 431:
            return reader_fail(r, out, 431, "request line and headers exceed %zu bytes",
                               r->max_header_bytes);
        case 500:
            return reader_fail(r, out, 500, "out of memory while reading the request");
        default:
            return reader_fail(r, out, 400, "malformed request: %s", http_errno_description(e));
        }
    }
    if (n != len) { /* an upgrade stopped the parser; nothing more is HTTP */
        r->finished = CV_HTTP_READ_DONE;
        return CV_HTTP_READ_DONE;
    }
    return CV_HTTP_READ_MORE;
}

/* ---- parsing a connection's input --------------------------------------------------------- */

/* Hands a complete request to the handler and queues its response. */
static void dispatch(conn_t *c, cv_http_read_result_t *ev) {
    cv_http_server_t *s = c->server;
    ev->request.connection_id = c->id;
    cv_http_response_t res;
    memset(&res, 0, sizeof(res));
    s->on_request(s->userdata, &ev->request, &res);
    if (c->state != CONN_READING || s->closing) { /* the handler closed the server */
        response_clear(&res);
        return;
    }
    if (res.deferred) { /* answered later by cv_http_deferred_finish */
        res.deferred->conn = c;
        res.deferred->keep_alive = ev->keep_alive;
        res.deferred->head_only = ev->head_only;
        c->deferred = res.deferred;
        response_clear(&res);
        return;
    }
    int rc = send_response(c, &res, res.tag, ev->keep_alive, ev->head_only);
    response_clear(&res);
    if (rc == 0 && !ev->keep_alive) conn_drain(c);
}

/* Parses len bytes at base + off, answering each request as it completes. Takes ownership of
 * base (a read buffer): frees it, or parks it in c->stash when enough responses are queued that
 * the client must read some before more input is parsed (back-pressure). */
static void parse_input(conn_t *c, char *base, size_t off, size_t len) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    cv_http_read_result_t ev;
    while (c->state == CONN_READING) {
        size_t n = 0;
        cv_http_read_t what = cv_http_reader_feed(c->reader, base + off, len, &n, &ev);
        off += n;
        len -= n;
        int in_request = cv_http_reader_in_request(c->reader);
        if (in_request && !c->in_request) c->request_start = uv_now(c->server->loop);
        c->in_request = in_request;
        switch (what) {
        case CV_HTTP_READ_MORE:
            free(base);
            conn_after_io(c);
            return;
        case CV_HTTP_READ_CONTINUE:
            (void)conn_write(c, cont, sizeof(cont) - 1, NULL, 0); /* closes on failure */
            break;
        case CV_HTTP_READ_REQUEST:
            dispatch(c, &ev);
            if (c->state == CONN_READING &&
                (c->deferred || c->writes_pending >= MAX_PIPELINED)) {
                c->paused = 1;
                conn_stop_reading(c);
                if (len > 0) {
                    c->stash = base;
                    c->stash_off = off;
                    c->stash_len = len;
                } else {
                    free(base);
                }
                conn_arm_reading_timer(c);
                return;
            }
            break;
        case CV_HTTP_READ_ERROR:
            free(base);
            send_error(c, ev.status, "%s", ev.reason);
            return;
        case CV_HTTP_READ_DONE:
            free(base);
            conn_drain(c);
            return;
        }
    }
    free(base);
}

/* ---- accepting -------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status);

static void on_sink_closed(uv_handle_t *handle) {
    cv_http_server_t *s = handle->data;
    s->sink_busy = 0;
    if (s->closing) {
        server_maybe_free(s);
        return;
    }
    if (s->accept_deferred) {
        s->accept_deferred = 0;
        on_connection((uv_stream_t *)&s->listener, 0);
    }
}

/* Accepts the pending connection into the sink and closes it at once: the way to drop a client
 * when no connection object can be made (libuv stops accepting until uv_accept is called). */
static void accept_into_sink(cv_http_server_t *s) {
    if (s->sink_busy) {
        s->accept_deferred = 1;
        return;
    }
    if (uv_tcp_init(s->loop, &s->sink) < 0) {
        s->accept_deferred = 1; /* retried when the next connection arrives */
        return;
    }
    s->sink.data = s;
    s->sink_busy = 1;
    /* A failed accept leaves nothing to drop, so its result does not matter. */
    (void)uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&s->sink);
    uv_close((uv_handle_t *)&s->sink, on_sink_closed);
}

static conn_t *conn_create(cv_http_server_t *s) {
    conn_t *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    if (cv_http_reader_create(&c->reader, &s->limits) < 0) {
        free(c);
        return NULL;
    }
    if (uv_timer_init(s->loop, &c->timer) < 0) {
        cv_http_reader_destroy(c->reader);
        free(c);
        return NULL;
    }
    c->timer.data = c;
    c->handles_open = 1;
    c->server = s;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    if (uv_tcp_init(s->loop, &c->tcp) < 0) {
        c->state = CONN_CLOSING;
        uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
        return NULL;
    }
    c->tcp.data = c;
    c->handles_open = 2;
    c->id = ++s->next_id;
    return c;
}

static void on_connection(uv_stream_t *listener, int status) {
    cv_http_server_t *s = listener->data;
    if (status < 0 || s->closing) return;
    conn_t *c = conn_create(s);
    if (!c) {
        accept_into_sink(s);
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    unsigned max = s->limits.max_connections;
    if (s->counted < max) {
        c->counted = 1;
        s->counted++;
        conn_start_reading(c);
        if (c->state == CONN_READING) conn_arm_reading_timer(c);
    } else if (s->rejected < max) {
        c->rejected = 1;
        s->rejected++;
        send_error(c, 503, "too many connections (limit %u)", max);
    } else {
        conn_close(c);
    }
}

/* ---- server ----------------------------------------------------------------------------- */

int cv_http_server_create(cv_http_server_t **out, uv_loop_t *loop, const char *host, int port,
                          const cv_http_limits_t *limits, cv_http_on_request_t on_request,
                          void *userdata, char *err) {
    *out = NULL;
    cv_http_limits_t l;
    if (limits)
        l = *limits;
    else
        cv_http_limits_default(&l);
    if (!loop || !host || !on_request)
        return cv_errf(err, CV_EINVAL, "http server needs a loop, a host and a handler");
    if (port < 0 || port > 65535)
        return cv_errf(err, CV_EINVAL, "port %d is outside 0..65535", port);
    if (l.max_header_bytes < 256 || l.max_body_bytes == 0 || l.max_body_bytes > SIZE_MAX / 2 ||
        l.max_connections == 0 || l.idle_timeout_ms == 0 || l.request_timeout_ms == 0)
        return cv_errf(err, CV_EINVAL,
                       "http limits need max_header_bytes >= 256 and non-zero body, connection "
                       "and timeout limits");

    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof(addr));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0)
        return cv_errf(err, CV_EINVAL, "'%s' is not an IPv4 or IPv6 address", host);

    cv_http_server_t *s = calloc(1, sizeof(*s));
    if (!s) return cv_errf(err, CV_ENOMEM, "cannot allocate the http server");
    int rc = uv_tcp_init(loop, &s->listener);
    if (rc < 0) {
        free(s);
        return cv_errf(err, CV_EIO, "cannot create the listening socket: %s", uv_strerror(rc));
    }
    s->listener.data = s;
    s->listener_open = 1;
    s->loop = loop;
    s->addr = addr;
    s->limits = l;
    s->on_request = on_request;
    s->userdata = userdata;
    *out = s;
    return 0;
}

void cv_http_server_on_answered(cv_http_server_t *server, cv_http_on_answered_t on_answered,
                                void *userdata) {
    server->on_answered = on_answered;
    server->answered_userdata = userdata;
}

int cv_http_server_start(cv_http_server_t *s, char *err) {
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&s->addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    if (rc < 0) return cv_errf(err, CV_EIO, "cannot listen for http: %s", uv_strerror(rc));
    struct sockaddr_storage bound;
    int len = (int)sizeof(bound);
    rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    if (rc < 0)
        return cv_errf(err, CV_EIO, "cannot read the bound http address: %s", uv_strerror(rc));
    if (bound.ss_family == AF_INET6)
        s->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    else
        s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int cv_http_server_port(const cv_http_server_t *s) {
    return s->port;
}

unsigned cv_http_server_connections(const cv_http_server_t *s) {
    return s->counted;
}

static void on_listener_closed(uv_handle_t *handle) {
    cv_http_server_t *s = handle->data;
    s->listener_open = 0;
    server_maybe_free(s);
}

void cv_http_server_close(cv_http_server_t *s, cv_http_on_closed_t on_closed) {
    if (!s) return;
    s->closing = 1;
    s->on_closed = on_closed;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    for (conn_t *c = s->conns; c; c = c->next)
        conn_close(c);
}

int cv_http_query_get(const char *query, const char *key, char *out, size_t cap) {
    size_t klen = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > klen && !strncmp(p, key, klen) && p[klen] == '=') {
            size_t vlen = len - klen - 1 < cap - 1 ? len - klen - 1 : cap - 1;
            memcpy(out, p + klen + 1, vlen);
            out[vlen] = '\0';
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}
