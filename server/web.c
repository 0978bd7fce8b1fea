/* The dashboard's front handler: static files read on the thread pool, the history route, and
 * everything else passed to the API; see web.h. */
#include "server/web.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/hash.h"
#include "server/api_history.h"
#include "server/paths.h"

#define VENDOR_PREFIX "/vendor/uplot/"           /* where the charting library is served */
#define VENDOR_DIR    "node_modules/uplot/dist/" /* where npm installs it, under the root */

/* One static file read on the thread pool. */
typedef struct file_read {
    uv_work_t work;
    cv_web_t *web;
    cv_http_deferred_t *deferred; /* the answer owed */
    char rel[PATH_MAX];           /* the file, relative to the root */
    const char *content_type;     /* static string */
    int status;                   /* 200, 404 or 500 */
    char *data;                   /* the file (malloc'd) when status is 200 */
    size_t len;
    char err[CV_ERRLEN]; /* the reason of any other status */
} file_read_t;

struct cv_web {
    uv_loop_t *loop;
    cv_api_t *api;         /* borrowed */
    char root[PATH_MAX];   /* canonical; "" when the directory does not exist */
    int reads;             /* file reads in flight */
};

int cv_web_create(cv_web_t **out, uv_loop_t *loop, const char *root, cv_api_t *api, char *err) {
    cv_web_t *web = calloc(1, sizeof *web);
    if (!web) return cv_errf(err, CV_ENOMEM, "out of memory");
    web->loop = loop, web->api = api;
    if (!root || !realpath(root, web->root)) web->root[0] = '\0';
    *out = web;
    return 0;
}

void cv_web_destroy(cv_web_t *web) {
    if (!web) return;
    free(web);
}

int cv_web_idle(const cv_web_t *web) {
    return !web || web->reads == 0;
}

const char *cv_web_root(const cv_web_t *web) {
    return web->root;
}

const char *cv_web_content_type(const char *path) {
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
    };
    if (!strcmp(path, "/")) return types[0].type;
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext)) return types[i].type;
    return NULL;
}

int cv_web_path_ok(const char *path) {
    if (path[0] != '/') return 0;
    if (!strcmp(path, "/")) return 1;
    for (const char *seg = path + 1;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || seg[0] == '.') return 0; /* "", ".", "..", hidden files */
        for (size_t i = 0; i < len; i++) {
            char ch = seg[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
                return 0;
        }
        if (!end) return 1;
        seg = end + 1;
    }
}

/* ---- static files ----------------------------------------------------------------------- */

/* Thread pool: resolves the file under the root (links followed, the result checked to be
 * inside) and reads it whole. */
static void file_work(uv_work_t *work) {
    file_read_t *r = work->data;
    char joined[PATH_MAX * 2], real[PATH_MAX];
    int fd = -1;
    struct stat st;
    r->status = 404;
    snprintf(joined, sizeof joined, "%s/%s", r->web->root, r->rel);
    if (!realpath(joined, real) || !cv_path_is_inside(real, r->web->root)) {
        cv_errf(r->err, CV_EINVAL, "no file /%s in the dashboard", r->rel);
        return;
    }
    if ((fd = open(real, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0 || fstat(fd, &st) ||
        !S_ISREG(st.st_mode) || st.st_size > (off_t)CV_WEB_FILE_MAX) {
        cv_errf(r->err, CV_EINVAL, "no file /%s in the dashboard", r->rel);
        goto cleanup;
    }
    r->len = (size_t)st.st_size;
    if (!(r->data = malloc(r->len ? r->len : 1))) {
        r->status = 500;
        cv_errf(r->err, CV_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t got = 0; got < r->len;) {
        ssize_t n = read(fd, r->data + got, r->len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            r->status = 500;
            cv_errf(r->err, CV_EIO, "cannot read /%s: %s", r->rel,
                    n < 0 ? strerror(errno) : "the file shrank");
            free(r->data);
            r->data = NULL;
            goto cleanup;
        }
        got += (size_t)n;
    }
    r->status = 200;
cleanup:
    if (fd >= 0) close(fd);
}

/* Loop: gives the answer and frees the read. */
static void after_file(uv_work_t *work, int status) {
    file_read_t *r = work->data;
    cv_http_response_t res = {0};
    r->web->reads--;
    if (!r->deferred) { /* the promise could not be made: a 500 was given at once */
        free(r->data);
        free(r);
        return;
    }
    if (status)
        cv_http_json_error(&res, 503, "the read was cancelled");
    else if (r->status == 200)
        cv_http_respond_text(&res, 200, r->content_type, r->data, r->len);
    else
        cv_http_json_error(&res, r->status, "%s", r->err);
    cv_http_deferred_finish(r->deferred, &res);
    free(r->data);
    free(r);
}

/* GET of a static path: checks it on the loop, reads it on the thread pool. */
static void get_file(cv_web_t *web, const char *path, cv_http_response_t *res) {
    const char *type = cv_web_content_type(path);
    if (!cv_web_path_ok(path)) {
        cv_http_json_error(res, 400,
                           "path: %s is refused (only plain names under the dashboard's "
                           "directory are served)",
                           path);
        return;
    }
    if (!type || !strncmp(path, "/node_modules/", 14)) {
        cv_http_json_error(res, 404, "no file %s in the dashboard", path);
        return;
    }
    if (!web->root[0]) {
        cv_http_json_error(res, 404, "the dashboard's files are not installed (see --web-root)");
        return;
    }
    file_read_t *r = calloc(1, sizeof *r);
    if (!r) {
        cv_http_json_error(res, 500, "out of memory");
        return;
    }
    r->web = web, r->work.data = r, r->content_type = type;
    if (!strcmp(path, "/"))
        snprintf(r->rel, sizeof r->rel, "index.html");
    else if (!strncmp(path, VENDOR_PREFIX, strlen(VENDOR_PREFIX)))
        snprintf(r->rel, sizeof r->rel, "%s%s", VENDOR_DIR, path + strlen(VENDOR_PREFIX));
    else
        snprintf(r->rel, sizeof r->rel, "%s", path + 1);
    if (uv_queue_work(web->loop, &r->work, file_work, after_file)) {
        free(r);
        cv_http_json_error(res, 500, "cannot queue the read");
        return;
    }
    web->reads++;
    /* Queued first: when the promise cannot be made, the answer is given now and the read's
     * result is dropped by after_file. */
    if (!(r->deferred = cv_http_defer(res))) cv_http_json_error(res, 500, "out of memory");
}

/* ---- routing ---------------------------------------------------------------------------- */

/* 1 when path is the dashboard's to answer: "/", a known file extension, or anything that looks
 * like an attempt to leave the root (a dot segment, a percent sign, a backslash). The API's
 * paths (/v1/..., and the like without an extension) are not. */
static int is_static(const char *path) {
    if (!strncmp(path, "/v1/", 4)) return 0;
    return !strcmp(path, "/") || cv_web_content_type(path) || strstr(path, "/.") ||
           strchr(path, '%') || strchr(path, '\\');
}

void cv_web_on_request(void *userdata, const cv_http_request_t *req, cv_http_response_t *res) {
    cv_web_t *web = userdata;
    if (is_static(req->path)) {
        res->tag = cv_api_static_tag(req->method);
        if (strcmp(req->method, "GET"))
            cv_http_json_error(res, 405, "use GET on %s", req->path);
        else
            get_file(web, req->path, res);
        return;
    }
    cv_api_on_request(web->api, req, res);
}
