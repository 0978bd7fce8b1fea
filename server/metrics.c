/* The Prometheus text of GET /metrics (see metrics.h): HELP and TYPE lines, then the samples of
 * each family, metric names prefixed caviar_. */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

#define METRICS_LIMIT (16u << 20) /* bytes of one scrape's text at most */

void cv_metrics_http_count(cv_metrics_http_table_t *t, const char *route, const char *method,
                           int status) {
    for (size_t i = 0; i < t->n; i++) {
        cv_metrics_http_t *e = &t->series[i];
        if (e->status == status && !strcmp(e->route, route) && !strcmp(e->method, method)) {
            e->count++;
            return;
        }
    }
    if (t->n < CV_METRICS_HTTP_SERIES - 1) {
        t->series[t->n++] = (cv_metrics_http_t){route, method, status, 1};
        return;
    }
    /* Full: every new series from now on adds to the last slot. */
    if (t->n == CV_METRICS_HTTP_SERIES - 1)
        t->series[t->n++] = (cv_metrics_http_t){"other", "other", 0, 0};
    t->series[CV_METRICS_HTTP_SERIES - 1].count++;
}

/* Appends printf-formatted text; the first failure sticks in *rc. */
static void put(cv_buf_t *b, int *rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void put(cv_buf_t *b, int *rc, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (*rc == 0 && n > 0)
        *rc = cv_buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void family(cv_buf_t *b, int *rc, const char *name, const char *type, const char *help) {
    put(b, rc, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void latency(cv_buf_t *b, int *rc, const cv_sched_stats_t *st) {
    family(b, rc, "caviar_commit_latency_seconds", "histogram",
           "Time from a result's arrival to the commit after which it is acknowledged.");
    for (int e = 0; e < CV_SCHED_LATENCY_EDGES; e++)
        put(b, rc, "caviar_commit_latency_seconds_bucket{le=\"%g\"} %llu\n",
            cv_sched_latency_edges[e], (unsigned long long)st->latency_within[e]);
    put(b, rc, "caviar_commit_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
        (unsigned long long)st->results);
    put(b, rc, "caviar_commit_latency_seconds_sum %.9g\n", st->latency_sum);
    put(b, rc, "caviar_commit_latency_seconds_count %llu\n", (unsigned long long)st->results);
}

static void http(cv_buf_t *b, int *rc, const cv_metrics_http_table_t *t) {
    family(b, rc, "caviar_http_requests_total", "counter",
           "HTTP requests answered, by route pattern, method and status.");
    for (size_t i = 0; t && i < t->n; i++)
        if (t->series[i].count)
            put(b, rc,
                "caviar_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                t->series[i].route, t->series[i].method, t->series[i].status,
                (unsigned long long)t->series[i].count);
}

char *cv_metrics_render(const cv_metrics_snapshot_t *m) {
    const cv_sched_stats_t *st = &m->sched;
    cv_buf_t b;
    int rc = 0;
    cv_buf_init(&b, 4096, METRICS_LIMIT);
    family(&b, &rc, "caviar_trials", "gauge", "Trials of every job in the database, by status.");
    for (int s = 0; s < CV_STORE_TRIAL_STATUSES; s++)
        put(&b, &rc, "caviar_trials{status=\"%s\"} %lld\n",
            cv_store_trial_status_name((cv_store_trial_status_t)s), (long long)m->trials[s]);
    family(&b, &rc, "caviar_queue_depth", "gauge", "Trials of running jobs waiting for a worker.");
    put(&b, &rc, "caviar_queue_depth %llu\n", (unsigned long long)st->queued);
    family(&b, &rc, "caviar_workers", "gauge",
           "Workers connected now, of them running a trial (busy) and quarantined.");
    put(&b, &rc, "caviar_workers{state=\"connected\"} %u\n", st->workers_connected);
    put(&b, &rc, "caviar_workers{state=\"busy\"} %u\n", st->workers_busy);
    put(&b, &rc, "caviar_workers{state=\"quarantined\"} %u\n", st->workers_quarantined);
    family(&b, &rc, "caviar_results_committed_total", "counter",
           "Trial results committed to the database since start-up.");
    put(&b, &rc, "caviar_results_committed_total %llu\n", (unsigned long long)st->results);
    family(&b, &rc, "caviar_commits_total", "counter", "Non-empty commits since start-up.");
    put(&b, &rc, "caviar_commits_total %llu\n", (unsigned long long)st->commits);
    latency(&b, &rc, st);
    http(&b, &rc, m->http);
    family(&b, &rc, "caviar_dataset_bytes_served_total", "counter",
           "Bytes of dataset and model files sent to workers since start-up.");
    put(&b, &rc, "caviar_dataset_bytes_served_total %llu\n", (unsigned long long)st->bytes_served);
    if (rc == 0) rc = cv_buf_append(&b, "", 1);
    if (rc) {
        cv_buf_finish(&b);
        return NULL;
    }
    return (char *)b.data; /* taken from the buffer: freed with free() */
}
