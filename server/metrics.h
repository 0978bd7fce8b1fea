/* Prometheus metrics of a coordinator, as GET /metrics serves them (the text exposition format,
 * version 0.0.4): trials by status, the queue, workers, the commit-latency histogram, HTTP
 * requests by route and status, dataset bytes served.
 *
 * Two parts: a table of HTTP request counts the API adds to on the loop thread as each answer is
 * queued (cv_metrics_http_count), and a renderer that turns one snapshot of every figure into
 * the exposition text (cv_metrics_render), pure, so that it can run on the thread pool after the
 * store's trial counts are read there. */
#ifndef CV_METRICS_H
#define CV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "server/scheduler.h"
#include "server/store.h"

#define CV_METRICS_HTTP_SERIES 256 /* distinct (route, method, status) kept; later ones: "other"   \
                                    */

/* One counted series of HTTP answers. */
typedef struct {
    const char *route;  /* the route's pattern ("/v1/jobs/{id}"), "static" (the dashboard's
                           files) or "other"; static */
    const char *method; /* "GET", "POST", "DELETE" or "other"; static */
    int status;
    uint64_t count;
} cv_metrics_http_t;

typedef struct {
    cv_metrics_http_t series[CV_METRICS_HTTP_SERIES];
    size_t n;
} cv_metrics_http_table_t;

/* Adds one answer. route and method must be static strings. */
void cv_metrics_http_count(cv_metrics_http_table_t *t, const char *route, const char *method,
                           int status);

/* Everything one scrape reports. */
typedef struct {
    cv_sched_stats_t sched;                  /* the scheduler's counters and state */
    int64_t trials[CV_STORE_TRIAL_STATUSES]; /* every job's trials, by status */
    const cv_metrics_http_table_t *http;     /* borrowed */
} cv_metrics_snapshot_t;

/* Renders the snapshot as exposition text: a new NUL-terminated string the caller frees with
 * free(), or NULL when out of memory. */
char *cv_metrics_render(const cv_metrics_snapshot_t *m);

#endif
