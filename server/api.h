/* The HTTP API of the coordinator (schemas/api.md): routes requests to the scheduler (writes)
 * and to read-only stores (queries), and runs store queries and test-set evaluations on the libuv
 * thread pool. */
#ifndef CV_API_H
#define CV_API_H

#include <uv.h>

#include "server/http.h"
#include "server/scheduler.h"
#include "server/store.h"

typedef struct cv_api cv_api_t;

/* Creates the API over a scheduler and a read-only store (both borrowed, outliving the API).
 * token, when non-NULL and non-empty, is required as "Authorization: Bearer <token>" on every
 * route but /v1/health. The caller owns the result (cv_api_destroy). */
int cv_api_create(cv_api_t **out, uv_loop_t *loop, cv_sched_t *sched, cv_store_t *ro,
                  const char *token, const cv_log_t *log, char *err);
/* Opens n (1..CV_READ_POOL_MAX) read-only connections to the database at db_path for the GET
 * routes, which run their queries on the libuv thread pool: at most n at once, one per
 * connection; later ones wait their turn in arrival order. Call once, before serving. */
int cv_api_open_readers(cv_api_t *api, const char *db_path, int n, char *err);
/* Frees the API. Evaluations still running finish on the thread pool first (the loop must run
 * until cv_api_idle is true before destroying). Accepts NULL. */
void cv_api_destroy(cv_api_t *api);
/* 1 when no evaluation, no dataset check of a submission and no query is in flight. */
int cv_api_idle(const cv_api_t *api);
/* The coordinator is stopping: submissions whose datasets are being checked stop and are
 * answered 503, and new ones are refused (503). */
void cv_api_stop(cv_api_t *api);

/* The cv_http_on_request_t handler; userdata is the cv_api_t. */
void cv_api_on_request(void *userdata, const cv_http_request_t *req, cv_http_response_t *res);

/* The HTTP server's on_answered (userdata: the API): counts each answer by route, method and
 * status for GET /metrics: under its route's pattern, "static" for the dashboard's files
 * (cv_api_static_tag), "other" for a path with no route. */
void cv_api_on_answered(void *userdata, int tag, int status);

/* The tag (cv_http_response_t.tag) of an answer to a request for one of the dashboard's static
 * files (web.h) made with method: counted under the route "static". Pure. */
int cv_api_static_tag(const char *method);

#endif
