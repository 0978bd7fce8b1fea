/* A thin libcurl wrapper for talking to caviard's JSON API (schemas/api.md): one reusable
 * connection to a base URL, GET and POST with a per-request timeout, and each answer returned as
 * its HTTP status, its body text and the body parsed as JSON.
 *
 * The caller calls curl_global_init(CURL_GLOBAL_DEFAULT) once before the first
 * cv_http_client_create and curl_global_cleanup at exit. A client is not thread-safe. */
#ifndef CV_HTTP_CLIENT_H
#define CV_HTTP_CLIENT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define CV_HTTP_EUNREACHABLE -20 /* no connection could be made: refused, no route, unknown host   \
                                  */
#define CV_HTTP_ETIMEOUT -21     /* the server took longer than the request's timeout */

#define CV_HTTP_MAX_BODY   (64u << 20) /* bytes of an answer accepted before giving up */
#define CV_HTTP_CONNECT_MS 5000L       /* milliseconds allowed to establish a connection */
#define CV_HTTP_URL_MAX    2048        /* bytes of a base URL plus a request path, with NUL */
#define CV_HTTP_DEFAULT_MS 30000L      /* a request's timeout when the caller passes 0 */

typedef struct cv_http_client cv_http_client_t;

/* One answer. Fields are owned by the reply and released by cv_http_reply_finish. */
typedef struct {
    long status;     /* HTTP status code, e.g. 200 or 404 */
    char *body;      /* the body text, NUL-terminated (never NULL after a successful request) */
    size_t body_len; /* bytes of body, without the terminator */
    cJSON *json;     /* the body parsed, or NULL when it is empty or not JSON */
} cv_http_reply_t;

/* Opens a client for base_url ("http://host:port", optionally with a path prefix; a trailing
 * slash is dropped). token, when not NULL or empty, is sent as "Authorization: Bearer <token>".
 * Proxies from the environment are bypassed for loopback hosts. Both strings are copied. On
 * success *out is a new client the caller releases with cv_http_client_destroy. CV_EINVAL for a
 * URL that is not http(s)://..., CV_ENOMEM. */
int cv_http_client_create(const char *base_url, const char *token, cv_http_client_t **out,
                          char *err);

/* Releases a client; NULL is accepted. */
void cv_http_client_destroy(cv_http_client_t *client);

/* The base URL as normalized by cv_http_client_create; borrowed from the client. */
const char *cv_http_client_url(const cv_http_client_t *client);

/* Sends one request: method "GET", "POST" or "DELETE", path beginning with '/', and for POST a body of
 * body_len bytes sent as application/json (body may be NULL for an empty body). timeout_ms <= 0
 * means CV_HTTP_DEFAULT_MS. On success (any HTTP status, including 4xx and 5xx) fills *reply,
 * which the caller releases with cv_http_reply_finish, and returns 0. On failure *reply is empty
 * and the result is CV_HTTP_EUNREACHABLE (err names the URL), CV_HTTP_ETIMEOUT, CV_ERANGE (answer
 * larger than CV_HTTP_MAX_BODY), CV_ENOMEM, CV_EINVAL (bad method or path) or CV_EIO for any other
 * transport error, with libcurl's explanation in err. */
int cv_http_request(cv_http_client_t *client, const char *method, const char *path,
                    const char *body, size_t body_len, long timeout_ms, cv_http_reply_t *reply,
                    char *err);

/* Releases what a reply holds and empties it; an empty or already finished reply is fine. */
void cv_http_reply_finish(cv_http_reply_t *reply);

/* The "error" member of an error answer's JSON body, or NULL when there is none. Borrowed from
 * the reply. */
const char *cv_http_reply_error(const cv_http_reply_t *reply);

#endif
