/* GET /v1/jobs/{id}/history: a job's trials as columns, for the dashboard (schemas/api.md).
 *
 * One reply carries, per finished trial in the order trials finished, its id, number, status,
 * objective value, epochs run, last worker and each searched parameter, one JSON array per
 * column, with the trials running now beside them and a cursor: the next request passes it as
 * `after` and gets only the trials that finished since. The query runs and its reply is
 * rendered on the libuv thread pool with a read-only connection of its own; requests beyond
 * the one running wait their turn in arrival order, at most HISTORY_WAITING_MAX of them.
 *
 * Threads: every function here is called on the loop's thread. */
#ifndef CV_API_HISTORY_H
#define CV_API_HISTORY_H

#include <stdint.h>

#include <uv.h>

#include "server/http.h"

#define CV_HISTORY_LIMIT_MAX 100000 /* trials one reply may carry (the default limit) */

typedef struct cv_history cv_history_t;

/* Opens a read-only connection to the database at db_path (copied) for the route. loop is
 * borrowed and outlives the result, which the caller owns (cv_history_destroy). Returns 0, or a
 * CV_E* code with err. */
int cv_history_create(cv_history_t **out, uv_loop_t *loop, const char *db_path, char *err);

/* Frees the route's state; the loop must have run until cv_history_idle. Accepts NULL. */
void cv_history_destroy(cv_history_t *h);

/* 1 when no history read is queued or running. */
int cv_history_idle(const cv_history_t *h);

/* Answers GET /v1/jobs/{job_id}/history?after=C&limit=K (query: the raw query string, borrowed
 * for the call): a 400 naming a bad parameter at once, else a deferred answer from the thread
 * pool. */
void cv_history_get(cv_history_t *h, int64_t job_id, const char *query, cv_http_response_t *res);

/* Parses a history cursor "<16 lowercase hex digits: the bits of finished_at>.<trial id>".
 * Returns 0 with *finished_at and *id, or -1 when text is not one. Pure. */
int cv_history_cursor_parse(const char *text, double *finished_at, int64_t *id);

/* Writes the cursor of (finished_at, id) into out (at least 40 bytes). */
void cv_history_cursor_format(double finished_at, int64_t id, char *out, size_t cap);

#endif
