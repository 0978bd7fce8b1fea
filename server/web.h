/* The dashboard: caviard's front request handler, serving the web pages beside the API.
 *
 * cv_web_on_request sees every request on the API listener first. It serves the dashboard's
 * static files (index.html, its ES modules and style sheet under the web root, and the charting
 * library's files, web/node_modules/uplot/dist/, under /vendor/uplot/) without the API token,
 * and hands every other request to the API (api.h) unchanged: the data the pages show, the
 * history route (api_history.h) included, comes from the API's routes and takes its token.
 *
 * A static path is "/" or a path of plain segments ([A-Za-z0-9_.-], none starting with a dot)
 * ending in a known extension; a path with a dot segment, a percent sign or a backslash is
 * refused with 400 before anything is read, and a file that resolves (links followed) outside
 * the root is a 404. Files are read on the libuv thread pool, never on the loop thread.
 *
 * Threads: every function here is called on the loop's thread. */
#ifndef CV_WEB_H
#define CV_WEB_H

#include <stddef.h>

#include <uv.h>

#include "server/api.h"
#include "server/http.h"

#define CV_WEB_FILE_MAX (16u << 20) /* largest static file served, bytes */

typedef struct cv_web cv_web_t;

/* Creates the front handler. root is the dashboard's directory (copied; canonicalized here, at
 * start-up; a missing root is not an error: the pages then answer 404 saying so). api and loop
 * are borrowed and outlive the result, which the caller owns (cv_web_destroy). Returns 0 or
 * CV_ENOMEM with err. */
int cv_web_create(cv_web_t **out, uv_loop_t *loop, const char *root, cv_api_t *api, char *err);

/* Frees the handler; the loop must have run until cv_web_idle. Accepts NULL. */
void cv_web_destroy(cv_web_t *web);

/* 1 when no file read is in flight. Accepts NULL. */
int cv_web_idle(const cv_web_t *web);

/* The web root in use (canonical), or "" when it does not exist. */
const char *cv_web_root(const cv_web_t *web);

/* The cv_http_on_request_t handler; userdata is the cv_web_t. */
void cv_web_on_request(void *userdata, const cv_http_request_t *req, cv_http_response_t *res);

/* The Content-Type of a static path by its extension, or NULL when the extension is not served.
 * Pure. */
const char *cv_web_content_type(const char *path);

/* 1 when path is one the static handler may serve ("/" or plain segments, see above), 0 when it
 * must be refused. Pure. */
int cv_web_path_ok(const char *path);

#endif
