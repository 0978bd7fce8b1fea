/* Specification of server/metrics.c: HTTP answers are counted per (route, method, status), a
 * full table sends every new series to one "other" slot without losing a count, and the rendered
 * text carries each family once with its samples. */
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "testutil.h"

START_TEST(answers_are_counted_per_route_method_and_status) {
    static cv_metrics_http_table_t t;
    memset(&t, 0, sizeof t);
    cv_metrics_http_count(&t, "/v1/jobs", "GET", 200);
    cv_metrics_http_count(&t, "/v1/jobs", "GET", 200);
    cv_metrics_http_count(&t, "/v1/jobs", "POST", 201);
    cv_metrics_http_count(&t, "/v1/jobs", "GET", 500);
    ck_assert_uint_eq(t.n, 3);
    ck_assert_uint_eq(t.series[0].count, 2);
    ck_assert_uint_eq(t.series[1].count, 1);
    ck_assert_int_eq(t.series[2].status, 500);
}
END_TEST

START_TEST(a_full_table_counts_new_series_as_other) {
    static cv_metrics_http_table_t t;
    memset(&t, 0, sizeof t);
    for (int s = 0; s < CV_METRICS_HTTP_SERIES + 10; s++)
        cv_metrics_http_count(&t, "/r", "GET", s);
    ck_assert_uint_eq(t.n, CV_METRICS_HTTP_SERIES);
    const cv_metrics_http_t *last = &t.series[CV_METRICS_HTTP_SERIES - 1];
    ck_assert_str_eq(last->route, "other");
    ck_assert_uint_eq(last->count, 11); /* 266 answers, 255 series of their own */
    uint64_t total = 0;
    for (size_t i = 0; i < t.n; i++)
        total += t.series[i].count;
    ck_assert_uint_eq(total, CV_METRICS_HTTP_SERIES + 10);
}
END_TEST

START_TEST(render_gives_each_family_once_with_its_samples) {
    static cv_metrics_http_table_t t;
    memset(&t, 0, sizeof t);
    cv_metrics_http_count(&t, "/v1/jobs/{id}", "GET", 404);
    cv_metrics_snapshot_t m = {.http = &t};
    m.sched.results = 5;
    m.sched.latency_within[CV_SCHED_LATENCY_EDGES - 1] = 4;
    m.sched.workers_connected = 2;
    m.trials[CV_STORE_TRIAL_PRUNED] = 7;
    char *text = cv_metrics_render(&m);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "caviar_trials{status=\"pruned\"} 7\n"));
    ck_assert_ptr_nonnull(strstr(text, "caviar_workers{state=\"connected\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "caviar_commit_latency_seconds_bucket{le=\"2.5\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(text, "caviar_commit_latency_seconds_bucket{le=\"+Inf\"} 5\n"));
    ck_assert_ptr_nonnull(strstr(
        text,
        "caviar_http_requests_total{route=\"/v1/jobs/{id}\",method=\"GET\",status=\"404\"} 1\n"));
    const char *first = strstr(text, "# TYPE caviar_trials gauge");
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_null(strstr(first + 1, "# TYPE caviar_trials gauge"));
    free(text);
}
END_TEST

static Suite *metrics_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("prometheus");
    tcase_add_test(tc, answers_are_counted_per_route_method_and_status);
    tcase_add_test(tc, a_full_table_counts_new_series_as_other);
    tcase_add_test(tc, render_gives_each_family_once_with_its_samples);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(metrics_suite)
