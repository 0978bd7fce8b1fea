/* Tests of the HTTP/1.1 JSON API server (server/http.c) over real loopback sockets.
 *
 * Each test runs a server on an ephemeral port on its own uv loop in a second thread and talks to
 * it with a plain blocking client socket from the test thread. The loop thread alone touches the
 * fixture's counters until it is joined; then the test asserts exact callback counts and that
 * uv_loop_close() returns 0, i.e. that every handle was closed and nothing leaked. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "common/err.h"
#include "server/http.h"
#include "testutil.h"

#define CLIENT_TIMEOUT_S  5     /* longest a client read or write may block */
#define RESPONSE_BODY_MAX 65536 /* largest response body the client helper accepts */

/* ---- server fixture ------------------------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    uv_async_t stop;
    cv_http_server_t *server;
    pthread_t thread;
    int port;
    /* Written by the loop thread only; read by the test after the join. */
    int requests;      /* handler calls */
    int closed_calls;  /* on_closed calls */
    int stop_calls;    /* stop async callbacks */
    int async_closes;  /* close callbacks of the stop async */
    int server_closed; /* cv_http_server_close was called (by the handler or by stop) */
    int deferred;      /* answers given through cv_http_deferred_finish */
} fixture_t;

/* A deferred answer given by a timer after `ms` (the path /later/<ms>), freed when its timer
 * closes. */
typedef struct {
    uv_timer_t timer;
    fixture_t *f;
    cv_http_deferred_t *d;
    char path[64];
} later_t;

static void on_later_closed(uv_handle_t *h) {
    free(h->data);
}

static void on_later(uv_timer_t *t) {
    later_t *l = t->data;
    cv_http_response_t res;
    memset(&res, 0, sizeof(res));
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "path", l->path)) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(&res, 200, o);
    cv_http_deferred_finish(l->d, &res);
    l->f->deferred++;
    uv_close((uv_handle_t *)t, on_later_closed);
}

/* A big text body of n bytes ("/big/<n>"), to be read slowly. */
static void respond_big(cv_http_response_t *res, size_t n) {
    char *body = malloc(n);
    ck_assert_ptr_nonnull(body);
    memset(body, 'x', n);
    cv_http_respond_text(res, 200, NULL, body, n);
    free(body);
}

static void on_server_closed(void *userdata) {
    fixture_t *f = userdata;
    f->closed_calls++;
}

static void on_async_closed(uv_handle_t *handle) {
    fixture_t *f = handle->data;
    f->async_closes++;
}

static void on_stop(uv_async_t *async) {
    fixture_t *f = async->data;
    f->stop_calls++;
    if (!f->server_closed) {
        f->server_closed = 1;
        cv_http_server_close(f->server, on_server_closed);
    }
    uv_close((uv_handle_t *)async, on_async_closed);
}

/* The handler under test: echoes what it received, with a few special paths. */
static void on_request(void *userdata, const cv_http_request_t *req, cv_http_response_t *res) {
    fixture_t *f = userdata;
    f->requests++;
    if (strcmp(req->path, "/text") == 0) {
        cv_http_respond_text(res, 200, "text/csv", "a,b\n1,2\n", 8);
        return;
    }
    if (strcmp(req->path, "/missing") == 0) {
        cv_http_json_error(res, 404, "no route for %s %s", req->method, req->path);
        return;
    }
    if (strcmp(req->path, "/nostatus") == 0) return;
    if (strncmp(req->path, "/later/", 7) == 0) {
        later_t *l = calloc(1, sizeof(*l));
        ck_assert_ptr_nonnull(l);
        l->f = f;
        snprintf(l->path, sizeof(l->path), "%s", req->path);
        ck_assert_ptr_nonnull(l->d = cv_http_defer(res));
        ck_assert_int_eq(uv_timer_init(&f->loop, &l->timer), 0);
        l->timer.data = l;
        ck_assert_int_eq(uv_timer_start(&l->timer, on_later, (uint64_t)atoi(req->path + 7), 0), 0);
        return;
    }
    if (strncmp(req->path, "/big/", 5) == 0) {
        respond_big(res, (size_t)atol(req->path + 5));
        return;
    }
    if (strcmp(req->path, "/nocontent") == 0) {
        res->status = 204;
        return;
    }
    if (strcmp(req->path, "/shutdown") == 0) {
        f->server_closed = 1;
        cv_http_server_close(f->server, on_server_closed);
        cv_http_json_error(res, 200, "never sent");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddNumberToObject(o, "n", f->requests) ||
        !cJSON_AddStringToObject(o, "method", req->method) ||
        !cJSON_AddStringToObject(o, "path", req->path) ||
        !cJSON_AddStringToObject(o, "query", req->query) ||
        !cJSON_AddStringToObject(o, "body", req->body) ||
        !cJSON_AddNumberToObject(o, "body_len", (double)req->body_len) ||
        !cJSON_AddNumberToObject(o, "conn", (double)req->connection_id) ||
        !cJSON_AddNumberToObject(o, "open", cv_http_server_connections(f->server)) ||
        !(req->authorization ? cJSON_AddStringToObject(o, "authorization", req->authorization)
                             : cJSON_AddNullToObject(o, "authorization")) ||
        !(req->content_type ? cJSON_AddStringToObject(o, "content_type", req->content_type)
                            : cJSON_AddNullToObject(o, "content_type"))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}

static void *loop_main(void *arg) {
    fixture_t *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Starts a server with the given limits (NULL: defaults) and its loop thread. */
static void server_up(fixture_t *f, const cv_http_limits_t *limits) {
    memset(f, 0, sizeof(*f));
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    ck_assert_int_eq(uv_async_init(&f->loop, &f->stop, on_stop), 0);
    f->stop.data = f;
    ck_assert_int_eq(
        cv_http_server_create(&f->server, &f->loop, "127.0.0.1", 0, limits, on_request, f, err), 0);
    ck_assert_msg(cv_http_server_start(f->server, err) == 0, "start: %s", err);
    f->port = cv_http_server_port(f->server);
    ck_assert_int_gt(f->port, 0);
    ck_assert_int_eq(pthread_create(&f->thread, NULL, loop_main, f), 0);
}

/* Stops the server from the test thread, joins the loop and checks that it closed cleanly. */
static void server_down(fixture_t *f) {
    ck_assert_int_eq(uv_async_send(&f->stop), 0);
    ck_assert_int_eq(pthread_join(f->thread, NULL), 0);
    ck_assert_int_eq(f->stop_calls, 1);
    ck_assert_int_eq(f->async_closes, 1);
    ck_assert_int_eq(f->closed_calls, 1);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
}

/* Limits with the given idle timeout and defaults otherwise. */
static cv_http_limits_t limits_with_idle(uint64_t idle_ms) {
    cv_http_limits_t l;
    cv_http_limits_default(&l);
    l.idle_timeout_ms = idle_ms;
    return l;
}

/* ---- blocking client ------------------------------------------------------------------ */

typedef struct {
    int fd;
    char buf[RESPONSE_BODY_MAX + 4096]; /* received, not yet consumed bytes */
    size_t len;
} client_t;

typedef struct {
    int status;
    long content_length; /* -1 when absent */
    char connection[32]; /* value of Connection, "" when absent */
    char content_type[64];
    char body[RESPONSE_BODY_MAX + 1];
    size_t body_len;
} response_t;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static client_t *client_open(int port) {
    client_t *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(c->fd, 0);
    struct timeval tv = {CLIENT_TIMEOUT_S, 0};
    ck_assert_int_eq(setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    ck_assert_int_eq(setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return c;
}

static void client_close(client_t *c) {
    close(c->fd);
    free(c);
}

static void send_bytes(client_t *c, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        ck_assert_msg(n > 0, "send failed: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static void send_str(client_t *c, const char *s) {
    send_bytes(c, s, strlen(s));
}

/* Receives more bytes into c->buf. Returns the count, 0 at EOF, -1 on error or timeout. */
static ssize_t client_fill(client_t *c) {
    ck_assert_uint_lt(c->len, sizeof(c->buf));
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n > 0) c->len += (size_t)n;
    return n < 0 ? -1 : n;
}

/* Finds a header's value in the head (NUL-terminated), copying at most cap - 1 bytes. */
static int header_value(const char *head, const char *name, char *out, size_t cap) {
    size_t name_len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *start = line + 2;
        if (strncasecmp(start, name, name_len) == 0 && start[name_len] == ':') {
            const char *v = start + name_len + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r");
            if (n >= cap) n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
    }
    return 0;
}

/* Reads one whole response (head and Content-Length body). Returns 0, or -1 when the
 * connection ended or timed out first. */
static int read_response(client_t *c, response_t *r) {
    memset(r, 0, sizeof(*r));
    char *end;
    for (;;) {
        c->buf[c->len] = '\0';
        end = c->len ? strstr(c->buf, "\r\n\r\n") : NULL;
        if (end) break;
        if (client_fill(c) <= 0) return -1;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    char head[8192];
    ck_assert_uint_lt(head_len, sizeof(head));
    memcpy(head, c->buf, head_len);
    head[head_len - 2] = '\0'; /* keep the last header's CRLF for header_value */
    ck_assert_int_eq(sscanf(head, "HTTP/1.1 %d", &r->status), 1);
    char value[64];
    r->content_length =
        header_value(head, "Content-Length", value, sizeof(value)) ? strtol(value, NULL, 10) : -1;
    header_value(head, "Connection", r->connection, sizeof(r->connection));
    header_value(head, "Content-Type", r->content_type, sizeof(r->content_type));
    size_t body_len = r->content_length > 0 ? (size_t)r->content_length : 0;
    ck_assert_uint_le(body_len, RESPONSE_BODY_MAX);
    while (c->len < head_len + body_len) {
        if (client_fill(c) <= 0) return -1;
    }
    memcpy(r->body, c->buf + head_len, body_len);
    r->body[body_len] = '\0';
    r->body_len = body_len;
    memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
    c->len -= head_len + body_len;
    return 0;
}

/* Returns 1 when the server closed the connection with no further bytes, 0 when bytes came,
 * -1 on timeout. A reset counts as closed. */
static int read_eof(client_t *c) {
    if (c->len > 0) return 0;
    char byte;
    ssize_t n = recv(c->fd, &byte, 1, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return 1;
    return n > 0 ? 0 : -1;
}

static cJSON *parse_body(const response_t *r) {
    cJSON *j = cJSON_Parse(r->body);
    ck_assert_msg(j != NULL, "response body is not JSON: %s", r->body);
    return j;
}

static const char *json_str(const cJSON *j, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    ck_assert_msg(cJSON_IsString(v), "field %s is not a string", name);
    return v->valuestring;
}

static double json_num(const cJSON *j, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    ck_assert_msg(cJSON_IsNumber(v), "field %s is not a number", name);
    return v->valuedouble;
}

/* Asserts r is an error with the given status, a JSON {"error": ...} containing `words`, and
 * Connection: close. */
static void assert_error(const response_t *r, int status, const char *words) {
    ck_assert_int_eq(r->status, status);
    ck_assert_str_eq(r->connection, "close");
    ck_assert_str_eq(r->content_type, "application/json");
    cJSON *j = parse_body(r);
    ck_assert_msg(strstr(json_str(j, "error"), words) != NULL, "error '%s' lacks '%s'",
                  json_str(j, "error"), words);
    cJSON_Delete(j);
}

/* A plain GET on a fresh connection succeeds: the server still works after a bad request. */
static void assert_fresh_request_succeeds(fixture_t *f) {
    client_t *c = client_open(f->port);
    send_str(c, "GET /healthy HTTP/1.1\r\nHost: t\r\n\r\n");
    response_t r;
    ck_assert_int_eq(read_response(c, &r), 0);
    ck_assert_int_eq(r.status, 200);
    cJSON *j = parse_body(&r);
    ck_assert_str_eq(json_str(j, "path"), "/healthy");
    cJSON_Delete(j);
    client_close(c);
}

/* ---- requests and responses ----------------------------------------------------------- */

START_TEST(get_gets_200_with_the_handlers_json_and_content_length) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET /v1/jobs HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.content_type, "application/json");
    ck_assert_str_eq(resp.connection, "keep-alive");
    ck_assert_int_eq(resp.content_length, (long)strlen(resp.body));
    cJSON *j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "method"), "GET");
    ck_assert_str_eq(json_str(j, "path"), "/v1/jobs");
    ck_assert_str_eq(json_str(j, "query"), "");
    ck_assert_int_eq((int)json_num(j, "n"), 1);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "authorization")));
    cJSON_Delete(j);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(query_headers_and_body_reach_the_handler) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "POST /v1/jobs?limit=5&state=running#frag HTTP/1.1\r\nHost: t\r\n"
                "authorization: Bearer s3cret\r\nContent-Type: application/json\r\n"
                "Content-Length: 13\r\n\r\n{\"lr\": 0.125}");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    cJSON *j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "method"), "POST");
    ck_assert_str_eq(json_str(j, "path"), "/v1/jobs");
    ck_assert_str_eq(json_str(j, "query"), "limit=5&state=running");
    ck_assert_str_eq(json_str(j, "authorization"), "Bearer s3cret");
    ck_assert_str_eq(json_str(j, "content_type"), "application/json");
    ck_assert_str_eq(json_str(j, "body"), "{\"lr\": 0.125}");
    ck_assert_int_eq((int)json_num(j, "body_len"), 13);
    cJSON_Delete(j);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(empty_header_value_does_not_hide_the_next_header) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET / HTTP/1.1\r\nX-Empty:\r\nAuthorization: token\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    cJSON *j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "authorization"), "token");
    cJSON_Delete(j);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(text_body_is_sent_with_its_own_content_type) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET /text HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.content_type, "text/csv");
    ck_assert_int_eq(resp.content_length, 8);
    ck_assert_str_eq(resp.body, "a,b\n1,2\n");
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(json_error_helper_gives_status_and_error_body_on_a_kept_connection) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "DELETE /missing HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 404);
    ck_assert_str_eq(resp.connection, "keep-alive");
    cJSON *j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "error"), "no route for DELETE /missing");
    cJSON_Delete(j);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(head_request_gets_the_length_without_the_body) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "HEAD /text HTTP/1.1\r\n\r\nGET /text HTTP/1.1\r\n\r\n");
    /* The HEAD response's head announces 8 bytes that never come; the next response follows
     * immediately, so read the head alone. */
    while (strstr(c->buf, "\r\n\r\n") == NULL)
        ck_assert_int_gt(client_fill(c), 0);
    ck_assert_ptr_nonnull(strstr(c->buf, "Content-Length: 8\r\n"));
    char *second = strstr(c->buf, "\r\n\r\n") + 4;
    size_t first_len = (size_t)(second - c->buf);
    memmove(c->buf, second, c->len - first_len);
    c->len -= first_len;
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_str_eq(resp.body, "a,b\n1,2\n");
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 2);
}
END_TEST

START_TEST(chunked_body_reaches_the_handler_decoded) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    cJSON *j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "body"), "hello, world");
    ck_assert_int_eq((int)json_num(j, "body_len"), 12);
    cJSON_Delete(j);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(expect_100_continue_is_answered_before_the_body) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 100);
    send_str(c, "abcd");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    cJSON *j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "body"), "abcd");
    cJSON_Delete(j);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(handler_that_sets_no_status_gives_a_500) {
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    response_t resp;
    send_str(c, "GET /nostatus HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 500);
    ck_assert_str_eq(resp.connection, "keep-alive");
    cJSON *j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "error"), "handler set no valid status");
    cJSON_Delete(j);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(no_content_response_has_neither_length_nor_body) {
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    response_t resp;
    send_str(c, "DELETE /nocontent HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 204);
    ck_assert_int_eq(resp.content_length, -1);
    ck_assert_int_eq(read_response(c, &resp), 0); /* the next response follows at once */
    ck_assert_int_eq(resp.status, 200);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 2);
}
END_TEST

/* ---- connections ---------------------------------------------------------------------- */

START_TEST(two_pipelined_requests_get_two_responses_in_order) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET /first HTTP/1.1\r\n\r\nPOST /second HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
    ck_assert_int_eq(read_response(c, &resp), 0);
    cJSON *j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "path"), "/first");
    ck_assert_int_eq((int)json_num(j, "n"), 1);
    cJSON_Delete(j);
    ck_assert_int_eq(read_response(c, &resp), 0);
    j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "path"), "/second");
    ck_assert_str_eq(json_str(j, "body"), "ok");
    ck_assert_int_eq((int)json_num(j, "n"), 2);
    cJSON_Delete(j);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 2);
}
END_TEST

START_TEST(forty_pipelined_requests_are_answered_in_order_through_back_pressure) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    char all[40 * 32];
    size_t len = 0;
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(all + len, sizeof(all) - len, "GET /r%d HTTP/1.1\r\n\r\n", i);
    send_bytes(c, all, len);
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(read_response(c, &resp), 0);
        cJSON *j = parse_body(&resp);
        char want[16];
        snprintf(want, sizeof(want), "/r%d", i);
        ck_assert_str_eq(json_str(j, "path"), want);
        cJSON_Delete(j);
    }
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 40);
}
END_TEST

START_TEST(keep_alive_reuses_the_connection) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    double conn[3];
    for (int i = 0; i < 2; i++) {
        send_str(c, "GET /again HTTP/1.1\r\n\r\n");
        ck_assert_int_eq(read_response(c, &resp), 0);
        ck_assert_str_eq(resp.connection, "keep-alive");
        cJSON *j = parse_body(&resp);
        conn[i] = json_num(j, "conn");
        cJSON_Delete(j);
    }
    client_t *other = client_open(f.port);
    send_str(other, "GET /other HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(other, &resp), 0);
    cJSON *j = parse_body(&resp);
    conn[2] = json_num(j, "conn");
    ck_assert_int_eq((int)json_num(j, "open"), 2);
    cJSON_Delete(j);
    ck_assert(conn[0] == conn[1]);
    ck_assert(conn[2] != conn[0]);
    client_close(other);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 3);
}
END_TEST

START_TEST(connection_close_request_gets_close_then_eof) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.connection, "close");
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(http_1_0_request_without_keep_alive_is_answered_then_closed) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET /old HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.connection, "close");
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(client_half_close_after_a_request_still_gets_the_response) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 2);
}
END_TEST

START_TEST(upgrade_request_is_answered_with_close_and_nothing_after_it_is_parsed) {
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    response_t resp;
    send_str(c, "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                "\x81\x05hello");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_str_eq(resp.connection, "close");
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(connections_past_the_cap_get_503_then_close) {
    response_t resp;
    cv_http_limits_t l;
    cv_http_limits_default(&l);
    l.max_connections = 2;
    fixture_t f;
    server_up(&f, &l);
    client_t *a = client_open(f.port), *b = client_open(f.port);
    send_str(a, "GET /a HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(a, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    send_str(b, "GET /b HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(b, &resp), 0);
    ck_assert_int_eq(resp.status, 200);

    client_t *third = client_open(f.port);
    ck_assert_int_eq(read_response(third, &resp), 0);
    assert_error(&resp, 503, "too many connections");
    ck_assert_int_eq(read_eof(third), 1);
    client_close(third);

    /* Once a served connection ends, a new one is served again. The server closes its side on
     * seeing our EOF, so the read below returns only after the slot is free. */
    ck_assert_int_eq(shutdown(a->fd, SHUT_WR), 0);
    ck_assert_int_eq(read_eof(a), 1);
    client_close(a);
    assert_fresh_request_succeeds(&f);
    client_close(b);
    server_down(&f);
    ck_assert_int_eq(f.requests, 3);
}
END_TEST

START_TEST(server_close_ends_open_connections) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET /a HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    client_t *idle = client_open(f.port);
    server_down(&f);
    ck_assert_int_eq(read_eof(c), 1);
    ck_assert_int_eq(read_eof(idle), 1);
    client_close(idle);
    client_close(c);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(handler_may_close_the_server) {
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "POST /shutdown HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_eof(c), 1); /* the response is dropped, the pipelined GET unread */
    client_close(c);
    server_down(&f); /* stop finds the server already closed */
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(start_fails_on_a_port_in_use_and_both_servers_still_close) {
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    fixture_t f;
    memset(&f, 0, sizeof(f));
    char err[CV_ERRLEN] = "";
    cv_http_server_t *first, *second;
    ck_assert_int_eq(
        cv_http_server_create(&first, &loop, "127.0.0.1", 0, NULL, on_request, &f, err), 0);
    ck_assert_int_eq(cv_http_server_start(first, err), 0);
    int port = cv_http_server_port(first);
    ck_assert_int_eq(
        cv_http_server_create(&second, &loop, "127.0.0.1", port, NULL, on_request, &f, err), 0);
    ck_assert_int_eq(cv_http_server_start(second, err), CV_EIO);
    ck_assert_ptr_nonnull(strstr(err, "address already in use"));
    cv_http_server_close(first, on_server_closed);
    cv_http_server_close(second, on_server_closed);
    ck_assert_int_eq(f.closed_calls, 0); /* only in close callbacks */
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(f.closed_calls, 2);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(create_refuses_a_bad_address_and_allocates_nothing) {
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    char err[CV_ERRLEN] = "";
    cv_http_server_t *s = (cv_http_server_t *)&loop;
    ck_assert_int_eq(cv_http_server_create(&s, &loop, "localhost", 0, NULL, on_request, NULL, err),
                     CV_EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(err, "localhost"));
    cv_http_server_close(NULL, NULL);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------- */

START_TEST(malformed_request_line_gets_400_and_close) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET /jobs HTTP/1.x\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    assert_error(&resp, 400, "malformed request");
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    assert_fresh_request_succeeds(&f);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(repeated_authorization_header_gets_400) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    assert_error(&resp, 400, "malformed request");
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    assert_fresh_request_succeeds(&f);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(header_of_20_kib_gets_431) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    size_t n = 20 * 1024;
    char *big = malloc(n + 128);
    ck_assert_ptr_nonnull(big);
    int head = snprintf(big, 128, "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + head, 'x', n);
    memcpy(big + head + n, "\r\n\r\n", 4);
    send_bytes(c, big, (size_t)head + n + 4);
    free(big);
    ck_assert_int_eq(read_response(c, &resp), 0);
    assert_error(&resp, 431, "16384 bytes");
    ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    assert_fresh_request_succeeds(&f);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(body_of_2_mib_gets_413_and_close) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    size_t n = 2 * 1024 * 1024;
    send_str(c, "POST /big HTTP/1.1\r\nContent-Length: 2097152\r\n\r\n");
    char *body = malloc(n);
    ck_assert_ptr_nonnull(body);
    memset(body, 'b', n);
    send_bytes(c, body, n); /* the server discards it while it answers */
    free(body);
    ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
    ck_assert_int_eq(read_response(c, &resp), 0);
    assert_error(&resp, 413, "1048576 bytes");
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    assert_fresh_request_succeeds(&f);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(chunked_body_over_the_limit_gets_413) {
    response_t resp;
    cv_http_limits_t l;
    cv_http_limits_default(&l);
    l.max_body_bytes = 1000;
    fixture_t f;
    server_up(&f, &l);
    client_t *c = client_open(f.port);
    char chunk[600];
    memset(chunk, 'c', sizeof(chunk));
    send_str(c, "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n");
    send_bytes(c, chunk, sizeof(chunk));
    send_str(c, "\r\n258\r\n");
    send_bytes(c, chunk, sizeof(chunk));
    send_str(c, "\r\n0\r\n\r\n");
    ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
    ck_assert_int_eq(read_response(c, &resp), 0);
    assert_error(&resp, 413, "1000 bytes");
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    assert_fresh_request_succeeds(&f);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(expect_100_continue_with_an_oversize_body_is_refused_with_413) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2097152\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    assert_error(&resp, 413, "exceeds");
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    assert_fresh_request_succeeds(&f);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(unsupported_expectation_gets_417) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "PUT /x HTTP/1.1\r\nExpect: tea\r\nContent-Length: 1\r\n\r\nx");
    ck_assert_int_eq(read_response(c, &resp), 0);
    assert_error(&resp, 417, "100-continue");
    ck_assert_int_eq(read_eof(c), 1);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 0);
}
END_TEST

/* ---- timeouts ------------------------------------------------------------------------- */

START_TEST(slow_client_with_half_a_request_gets_408_after_the_timeout) {
    response_t resp;
    cv_http_limits_t l = limits_with_idle(200);
    fixture_t f;
    server_up(&f, &l);
    client_t *c = client_open(f.port);
    uint64_t start = now_ms();
    send_str(c, "GET /slow HTTP/1.1\r\nHost: t\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    uint64_t waited = now_ms() - start;
    assert_error(&resp, 408, "time limit");
    ck_assert_int_eq(read_eof(c), 1);
    ck_assert_uint_ge(waited, 150);
    ck_assert_uint_lt(waited, 3000);
    client_close(c);
    assert_fresh_request_succeeds(&f);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(idle_keep_alive_connection_is_closed_silently_after_the_timeout) {
    response_t resp;
    cv_http_limits_t l = limits_with_idle(200);
    fixture_t f;
    server_up(&f, &l);
    client_t *c = client_open(f.port);
    send_str(c, "GET /once HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    uint64_t start = now_ms();
    ck_assert_int_eq(read_eof(c), 1);
    uint64_t waited = now_ms() - start;
    ck_assert_uint_ge(waited, 150);
    ck_assert_uint_lt(waited, 3000);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 1);
}
END_TEST

START_TEST(trickling_client_gets_408_at_the_request_timeout) {
    response_t resp;
    cv_http_limits_t l = limits_with_idle(300);
    l.request_timeout_ms = 500;
    fixture_t f;
    server_up(&f, &l);
    client_t *c = client_open(f.port);
    const char *req =
        "GET /trickle HTTP/1.1\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    uint64_t start = now_ms();
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN, .revents = 0};
    size_t sent = 0;
    /* One byte every 50 ms: never idle for 300 ms, but slower than the 500 ms request limit. */
    while (sent < strlen(req) && poll(&pfd, 1, 50) == 0) {
        send_bytes(c, req + sent, 1);
        sent++;
    }
    ck_assert_uint_lt(sent, strlen(req));
    ck_assert_int_eq(read_response(c, &resp), 0);
    uint64_t waited = now_ms() - start;
    assert_error(&resp, 408, "time limit");
    ck_assert_uint_ge(waited, 450);
    ck_assert_uint_lt(waited, 3000);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 0);
}
END_TEST

/* ---- deferred answers ------------------------------------------------------------------ */

START_TEST(deferred_answer_comes_before_the_next_pipelined_one) {
    response_t resp;
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET /later/150 HTTP/1.1\r\n\r\nGET /now HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    cJSON *j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "path"), "/later/150");
    cJSON_Delete(j);
    ck_assert_int_eq(read_response(c, &resp), 0);
    j = parse_body(&resp);
    ck_assert_str_eq(json_str(j, "path"), "/now");
    cJSON_Delete(j);
    client_close(c);
    server_down(&f);
    ck_assert_int_eq(f.requests, 2);
    ck_assert_int_eq(f.deferred, 1);
}
END_TEST

START_TEST(a_deferred_answer_slower_than_the_idle_timeout_still_arrives) {
    response_t resp;
    cv_http_limits_t l = limits_with_idle(150);
    fixture_t f;
    server_up(&f, &l);
    client_t *c = client_open(f.port);
    uint64_t start = now_ms();
    send_str(c, "GET /later/600 HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(read_response(c, &resp), 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert_uint_ge(now_ms() - start, 550);
    assert_fresh_request_succeeds(&f);
    client_close(c);
    server_down(&f);
}
END_TEST

START_TEST(a_client_gone_before_its_deferred_answer_is_simply_dropped) {
    fixture_t f;
    server_up(&f, NULL);
    client_t *c = client_open(f.port);
    send_str(c, "GET /later/200 HTTP/1.1\r\n\r\n");
    usleep(50 * 1000);
    client_close(c);
    usleep(300 * 1000); /* the answer is given to a closed connection */
    assert_fresh_request_succeeds(&f);
    server_down(&f);
    ck_assert_int_eq(f.deferred, 1);
}
END_TEST

START_TEST(a_slow_reader_of_a_long_answer_is_not_cut_at_the_idle_timeout) {
    cv_http_limits_t l = limits_with_idle(300);
    fixture_t f;
    server_up(&f, &l);
    client_t *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 16 * 1024; /* a small window, so the server's writes wait on this reader */
    ck_assert_int_eq(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    struct timeval tv = {CLIENT_TIMEOUT_S, 0};
    ck_assert_int_eq(setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f.port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    const size_t body = 8u << 20;
    send_str(c, "GET /big/8388608 HTTP/1.1\r\n\r\n");
    size_t got = 0;
    uint64_t start = now_ms();
    char chunk[64 * 1024];
    for (int closed = 0; !closed && got < body;) {
        /* 256 KiB at a time with 100 ms pauses: always some progress within 300 ms */
        for (size_t step = 0; step < 256 * 1024 && got < body;) {
            ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
            if (n <= 0) {
                closed = 1;
                break;
            }
            got += (size_t)n;
            step += (size_t)n;
        }
        usleep(100 * 1000);
    }
    ck_assert_uint_gt(now_ms() - start, 600); /* the answer really outlasted the idle timeout */
    ck_assert_uint_ge(got, body);            /* ... and arrived whole */
    client_close(c);
    server_down(&f);
}
END_TEST

/* A query value is found by its whole key, copied truncated to the buffer, absent otherwise. */
START_TEST(query_values_are_found_by_whole_key) {
    char v[8];
    ck_assert_int_eq(cv_http_query_get("limit=50&after=7", "after", v, sizeof v), 1);
    ck_assert_str_eq(v, "7");
    ck_assert_int_eq(cv_http_query_get("limit=50&after=7", "limit", v, sizeof v), 1);
    ck_assert_str_eq(v, "50");
    ck_assert_int_eq(cv_http_query_get("xlimit=5&lim=4", "limit", v, sizeof v), 0);
    ck_assert_int_eq(cv_http_query_get("limit", "limit", v, sizeof v), 0);
    ck_assert_int_eq(cv_http_query_get(NULL, "limit", v, sizeof v), 0);
    ck_assert_int_eq(cv_http_query_get("order=0123456789", "order", v, sizeof v), 1);
    ck_assert_str_eq(v, "0123456");
    ck_assert_int_eq(cv_http_query_get("order=", "order", v, sizeof v), 1);
    ck_assert_str_eq(v, "");
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("http");
    TCase *req = tcase_create("requests");
    tcase_set_timeout(req, 30);
    tcase_add_test(req, get_gets_200_with_the_handlers_json_and_content_length);
    tcase_add_test(req, query_headers_and_body_reach_the_handler);
    tcase_add_test(req, empty_header_value_does_not_hide_the_next_header);
    tcase_add_test(req, text_body_is_sent_with_its_own_content_type);
    tcase_add_test(req, json_error_helper_gives_status_and_error_body_on_a_kept_connection);
    tcase_add_test(req, head_request_gets_the_length_without_the_body);
    tcase_add_test(req, chunked_body_reaches_the_handler_decoded);
    tcase_add_test(req, expect_100_continue_is_answered_before_the_body);
    tcase_add_test(req, handler_that_sets_no_status_gives_a_500);
    tcase_add_test(req, no_content_response_has_neither_length_nor_body);
    suite_add_tcase(s, req);

    TCase *conn = tcase_create("connections");
    tcase_set_timeout(conn, 30);
    tcase_add_test(conn, two_pipelined_requests_get_two_responses_in_order);
    tcase_add_test(conn, forty_pipelined_requests_are_answered_in_order_through_back_pressure);
    tcase_add_test(conn, keep_alive_reuses_the_connection);
    tcase_add_test(conn, connection_close_request_gets_close_then_eof);
    tcase_add_test(conn, http_1_0_request_without_keep_alive_is_answered_then_closed);
    tcase_add_test(conn, client_half_close_after_a_request_still_gets_the_response);
    tcase_add_test(conn, upgrade_request_is_answered_with_close_and_nothing_after_it_is_parsed);
    tcase_add_test(conn, connections_past_the_cap_get_503_then_close);
    tcase_add_test(conn, server_close_ends_open_connections);
    tcase_add_test(conn, handler_may_close_the_server);
    tcase_add_test(conn, start_fails_on_a_port_in_use_and_both_servers_still_close);
    tcase_add_test(conn, create_refuses_a_bad_address_and_allocates_nothing);
    suite_add_tcase(s, conn);

    TCase *refuse = tcase_create("refusals");
    tcase_set_timeout(refuse, 30);
    tcase_add_test(refuse, malformed_request_line_gets_400_and_close);
    tcase_add_test(refuse, repeated_authorization_header_gets_400);
    tcase_add_test(refuse, header_of_20_kib_gets_431);
    tcase_add_test(refuse, body_of_2_mib_gets_413_and_close);
    tcase_add_test(refuse, chunked_body_over_the_limit_gets_413);
    tcase_add_test(refuse, expect_100_continue_with_an_oversize_body_is_refused_with_413);
    tcase_add_test(refuse, unsupported_expectation_gets_417);
    suite_add_tcase(s, refuse);

    TCase *timeouts = tcase_create("timeouts");
    tcase_set_timeout(timeouts, 30);
    tcase_add_test(timeouts, slow_client_with_half_a_request_gets_408_after_the_timeout);
    tcase_add_test(timeouts, idle_keep_alive_connection_is_closed_silently_after_the_timeout);
    tcase_add_test(timeouts, trickling_client_gets_408_at_the_request_timeout);
    suite_add_tcase(s, timeouts);

    TCase *query = tcase_create("query");
    tcase_add_test(query, query_values_are_found_by_whole_key);
    suite_add_tcase(s, query);

    TCase *later = tcase_create("deferred");
    tcase_set_timeout(later, 60);
    tcase_add_test(later, deferred_answer_comes_before_the_next_pipelined_one);
    tcase_add_test(later, a_deferred_answer_slower_than_the_idle_timeout_still_arrives);
    tcase_add_test(later, a_client_gone_before_its_deferred_answer_is_simply_dropped);
    tcase_add_test(later, a_slow_reader_of_a_long_answer_is_not_cut_at_the_idle_timeout);
    suite_add_tcase(s, later);
    return s;
}

CV_TEST_MAIN(make_suite)
