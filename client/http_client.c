/* The libcurl wrapper declared in http_client.h: one easy handle per client, reused for every
 * request so that keep-alive connections to caviard are kept, and answers gathered into a
 * bounded, growing buffer before being parsed as JSON. */
#include "client/http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"

struct cv_http_client {
    CURL *curl;                     /* the easy handle, reused so connections stay open */
    struct curl_slist *headers;     /* Accept, Content-Type and Authorization headers */
    char *base;                     /* base URL without a trailing slash */
    int loopback;                   /* 1: the host is a loopback address; proxies are bypassed */
    char curl_err[CURL_ERROR_SIZE]; /* libcurl's explanation of the last failure */
};

/* The growing buffer an answer is written into. */
typedef struct {
    cv_buf_t body; /* NUL-terminated once anything was written; at most CV_HTTP_MAX_BODY bytes
                      and the NUL */
    int too_big;   /* 1: the answer exceeded CV_HTTP_MAX_BODY */
} body_buf_t;

/* libcurl's write callback: appends to the body buffer; returning less than asked aborts. */
static size_t on_body_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    body_buf_t *buf = userdata;
    size_t n = size * nmemb;
    if (n > CV_HTTP_MAX_BODY - buf->body.len) {
        buf->too_big = 1;
        return 0;
    }
    if (cv_buf_reserve(&buf->body, n + 1) != 0) return 0;
    memcpy(buf->body.data + buf->body.len, ptr, n);
    buf->body.len += n;
    buf->body.data[buf->body.len] = '\0';
    return n;
}

/* Returns 1 when host (as curl_url_get gives it, IPv6 in brackets) is a loopback address. */
static int host_is_loopback(const char *host) {
    return strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "[::1]") == 0;
}

/* Checks that url is http(s)://host[...] and reports whether the host is loopback. */
static int check_base_url(const char *url, int *loopback, char *err) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = 0;
    if (!u) return cv_errf(err, CV_ENOMEM, "out of memory parsing the server URL");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = cv_errf(err, CV_EINVAL, "server URL \"%s\" is not a valid http://host:port URL", url);
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = cv_errf(err, CV_EINVAL, "server URL \"%s\": the scheme must be http or https", url);
        goto out;
    }
    *loopback = host_is_loopback(host);
out:
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

/* Builds the fixed request headers; NULL when out of memory. */
static struct curl_slist *make_headers(const char *token) {
    struct curl_slist *list = NULL, *next;
    next = curl_slist_append(list, "Accept: application/json");
    if (!next) return NULL;
    list = next;
    /* Keep libcurl from sending "Expect: 100-continue" and waiting on larger POST bodies. */
    next = curl_slist_append(list, "Expect:");
    if (!next) goto fail;
    list = next;
    if (token && token[0]) {
        size_t n = strlen("Authorization: Bearer ") + strlen(token) + 1;
        char *line = malloc(n);
        if (!line) goto fail;
        snprintf(line, n, "Authorization: Bearer %s", token);
        next = curl_slist_append(list, line);
        free(line);
        if (!next) goto fail;
        list = next;
    }
    return list;
fail:
    curl_slist_free_all(list);
    return NULL;
}

int cv_http_client_create(const char *base_url, const char *token, cv_http_client_t **out,
                          char *err) {
    int rc, loopback = 0;
    *out = NULL;
    if (!base_url || !base_url[0]) return cv_errf(err, CV_EINVAL, "the server URL is empty");
    rc = check_base_url(base_url, &loopback, err);
    if (rc < 0) return rc;

    cv_http_client_t *c = calloc(1, sizeof *c);
    if (!c) return cv_errf(err, CV_ENOMEM, "out of memory creating the HTTP client");
    c->loopback = loopback;
    c->base = strdup(base_url);
    if (!c->base) goto nomem;
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/')
        c->base[--n] = '\0';
    if (n + 2 > CV_HTTP_URL_MAX) {
        cv_http_client_destroy(c);
        return cv_errf(err, CV_EINVAL, "the server URL is longer than %d bytes",
                       CV_HTTP_URL_MAX - 2);
    }
    c->headers = make_headers(token);
    if (!c->headers) goto nomem;
    c->curl = curl_easy_init();
    if (!c->curl) goto nomem;
    *out = c;
    return 0;
nomem:
    cv_http_client_destroy(c);
    return cv_errf(err, CV_ENOMEM, "out of memory creating the HTTP client");
}

void cv_http_client_destroy(cv_http_client_t *client) {
    if (!client) return;
    if (client->curl) curl_easy_cleanup(client->curl);
    curl_slist_free_all(client->headers);
    free(client->base);
    free(client);
}

const char *cv_http_client_url(const cv_http_client_t *client) {
    return client->base;
}

/* Sets the options of one request on the reused handle. Returns a CURLcode. */
static CURLcode set_request(cv_http_client_t *c, const char *url, int post, int del,
                            const char *body, size_t body_len, long timeout_ms,
                            struct curl_slist *headers, body_buf_t *buf) {
    CURL *h = c->curl;
    CURLcode rc;
    curl_easy_reset(h);
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        rc = curl_easy_setopt(h, opt, val);                                                        \
        if (rc != CURLE_OK) return rc;                                                             \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, c->curl_err);
    SET(CURLOPT_CONNECTTIMEOUT_MS, CV_HTTP_CONNECT_MS);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_WRITEFUNCTION, on_body_data);
    SET(CURLOPT_WRITEDATA, buf);
    SET(CURLOPT_USERAGENT, "caviar/" CV_CLIENT_VERSION);
    if (c->loopback) SET(CURLOPT_NOPROXY, "*");
    if (post) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        SET(CURLOPT_POSTFIELDS, body ? body : "");
    } else {
        SET(CURLOPT_HTTPGET, 1L);
        if (del) SET(CURLOPT_CUSTOMREQUEST, "DELETE");
    }
#undef SET
    return CURLE_OK;
}

/* Turns a failed transfer into a code and a reason naming the URL. */
static int transfer_error(const cv_http_client_t *c, CURLcode code, const body_buf_t *buf,
                          long timeout_ms, char *err) {
    const char *why = c->curl_err[0] ? c->curl_err : curl_easy_strerror(code);
    switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return cv_errf(err, CV_HTTP_EUNREACHABLE, "the server is not reachable at %s (%s)", c->base,
                       why);
    case CURLE_OPERATION_TIMEDOUT:
        return cv_errf(err, CV_HTTP_ETIMEOUT, "the server at %s did not answer within %.0f s (%s)",
                       c->base, (double)timeout_ms / 1000.0, why);
    case CURLE_WRITE_ERROR:
        if (buf->too_big)
            return cv_errf(err, CV_ERANGE, "the answer from %s is larger than %u bytes", c->base,
                           CV_HTTP_MAX_BODY);
        return cv_errf(err, CV_ENOMEM, "out of memory reading the answer from %s", c->base);
    case CURLE_OUT_OF_MEMORY:
        return cv_errf(err, CV_ENOMEM, "out of memory talking to %s", c->base);
    default:
        return cv_errf(err, CV_EIO, "request to %s failed: %s", c->base, why);
    }
}

int cv_http_request(cv_http_client_t *client, const char *method, const char *path,
                    const char *body, size_t body_len, long timeout_ms, cv_http_reply_t *reply,
                    char *err) {
    char url[CV_HTTP_URL_MAX];
    body_buf_t buf = {0};
    cv_buf_init(&buf.body, 4096, (size_t)CV_HTTP_MAX_BODY + 1);
    struct curl_slist *headers = client->headers, *with_type = NULL;
    int post, del = 0, rc;

    memset(reply, 0, sizeof *reply);
    if (strcmp(method, "GET") == 0)
        post = 0;
    else if (strcmp(method, "POST") == 0)
        post = 1;
    else if (strcmp(method, "DELETE") == 0)
        post = 0, del = 1;
    else
        return cv_errf(err, CV_EINVAL, "unsupported HTTP method \"%s\"", method);
    if (path[0] != '/')
        return cv_errf(err, CV_EINVAL, "request path \"%s\" must begin with '/'", path);
    if ((size_t)snprintf(url, sizeof url, "%s%s", client->base, path) >= sizeof url)
        return cv_errf(err, CV_EINVAL, "request URL for %s is longer than %d bytes", path,
                       CV_HTTP_URL_MAX - 1);
    if (timeout_ms <= 0) timeout_ms = CV_HTTP_DEFAULT_MS;

    if (post) {
        /* Appending to a copy keeps the shared list free of Content-Type for GETs. */
        with_type = curl_slist_append(NULL, "Content-Type: application/json");
        if (!with_type)
            return cv_errf(err, CV_ENOMEM, "out of memory building the request headers");
        with_type->next = client->headers;
        headers = with_type;
    }
    client->curl_err[0] = '\0';
    CURLcode code = set_request(client, url, post, del, body, body_len, timeout_ms, headers, &buf);
    if (code == CURLE_OK) code = curl_easy_perform(client->curl);
    if (code != CURLE_OK) {
        rc = transfer_error(client, code, &buf, timeout_ms, err);
        goto out;
    }
    curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &reply->status);
    if (!buf.body.data) { /* no body: an empty string */
        if (cv_buf_reserve(&buf.body, 1) != 0) {
            rc = cv_errf(err, CV_ENOMEM, "out of memory reading the answer from %s", url);
            goto out;
        }
        buf.body.data[0] = '\0';
    }
    reply->body = (char *)buf.body.data; /* the reply takes the buffer over */
    reply->body_len = buf.body.len;
    buf.body.data = NULL;
    /* A body that is not JSON is reported by the caller, which knows what it expected. */
    if (reply->body_len > 0) reply->json = cv_json_parse(reply->body, reply->body_len, NULL);
    rc = 0;
out:
    if (with_type) {
        with_type->next = NULL; /* the tail belongs to the client */
        curl_slist_free_all(with_type);
    }
    cv_buf_finish(&buf.body);
    return rc;
}

void cv_http_reply_finish(cv_http_reply_t *reply) {
    if (!reply) return;
    cJSON_Delete(reply->json);
    free(reply->body);
    memset(reply, 0, sizeof *reply);
}

const char *cv_http_reply_error(const cv_http_reply_t *reply) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply->json, "error");
    return cJSON_IsString(e) && e->valuestring[0] ? e->valuestring : NULL;
}
