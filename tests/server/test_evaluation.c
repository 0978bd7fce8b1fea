/* Tests of the coordinator's queue of test-set evaluations and importance tasks
 * (server/evaluation.c) without a network: a fake send records what a worker would get. The
 * paths that store a result through the scheduler are covered by
 * tests/integration/test_evaluation.py with real processes. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/message.h"
#include "server/evaluation.h"
#include "server/store.h"
#include "testutil.h"

/* What the fake transport was asked to send. */
typedef struct {
    int calls;
    int fail; /* 1: the send fails */
    int64_t job_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    size_t n_models;
} sent_t;

static sent_t sent;

static int fake_send(void *conn, int64_t job_id, const char *lease, const char *spec_json,
                     const cv_msg_file_t *files, size_t n_files, const cv_msg_model_t *models,
                     size_t n_models) {
    (void)conn, (void)spec_json, (void)files, (void)n_files, (void)models;
    sent.calls++;
    if (sent.fail) return -1;
    sent.job_id = job_id;
    snprintf(sent.lease, sizeof sent.lease, "%s", lease);
    sent.n_models = n_models;
    return 0;
}

/* A task for job_id with k models (trial ids 10, 11, ...). */
static void add_task(cv_evals_t *ev, int64_t job_id, int k) {
    char err[CV_ERRLEN];
    cv_eval_task_t t = {.job_id = job_id, .k = k, .n_models = (size_t)k};
    cJSON *spec = cJSON_CreateObject();
    t.spec_json = cJSON_PrintUnformatted(spec); /* "{}" */
    cJSON_Delete(spec);
    for (int i = 0; i < k; i++)
        t.models[i].trial_id = 10 + i;
    ck_assert_int_eq(cv_evals_add(ev, &t, err), 0);
    ck_assert_ptr_null(t.spec_json); /* taken */
}

/* What the fake transport was asked to send as an importance task. */
typedef struct {
    int calls;
    int64_t job_id, seed;
    size_t n, p;
    double y0; /* the first objective */
    char lease[CV_MSG_LEASE_HEX + 1];
} imp_sent_t;

static imp_sent_t imp_sent;

/* Parses the frame as a worker would and records what it says. */
static int fake_send_importance(void *conn, const unsigned char *frame, size_t len) {
    (void)conn;
    char err[CV_ERRLEN];
    cv_msg_t m;
    ck_assert_uint_gt(len, CV_FRAME_HEADER_SIZE);
    ck_assert_int_eq(cv_msg_parse((const char *)frame + CV_FRAME_HEADER_SIZE,
                                  len - CV_FRAME_HEADER_SIZE, &m, err),
                     0);
    ck_assert_int_eq(m.type, CV_MSG_IMPORTANCE);
    double x[64], y[32], lo[2], hi[2];
    ck_assert_uint_le(m.importance.n, 32);
    cv_msg_importance_rows(&m.importance, x, y, lo, hi);
    imp_sent = (imp_sent_t){imp_sent.calls + 1,
                            m.importance.job_id,
                            m.importance.seed,
                            m.importance.n,
                            m.importance.p,
                            y[0],
                            ""};
    snprintf(imp_sent.lease, sizeof imp_sent.lease, "%s", m.importance.lease);
    cv_msg_finish(&m);
    return 0;
}

/* An importance task of job_id over n (at most 32) trials of two parameters, "learning_rate"
 * (log) and "epsilon" (log), whose objectives are first_y, first_y + 1, ..., with its frame
 * built as server/api.c builds it. Returns what cv_evals_add_importance returned; the frame is
 * freed here when it was not taken. */
static int add_importance(cv_evals_t *ev, int64_t job_id, size_t n, double first_y) {
    char err[CV_ERRLEN];
    cv_importance_task_t t = {.job_id = job_id, .n = n, .rows = n, .p = 2};
    t.scales[0] = t.scales[1] = "log";
    snprintf(t.names[0], sizeof t.names[0], "learning_rate");
    snprintf(t.names[1], sizeof t.names[1], "epsilon");
    snprintf(t.lease, sizeof t.lease, "%032llx", (unsigned long long)(job_id * 1000 + (int64_t)n));
    double x[64] = {0}, y[32], lo[2] = {-6, -9}, hi[2] = {-1, -8};
    for (size_t i = 0; i < n; i++)
        y[i] = first_y + (double)i;
    cJSON *msg = cv_msg_importance(job_id, t.lease, job_id, x, y, n, 2, lo, hi, err);
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_eq(cv_msg_encode(msg, &t.frame, &t.frame_len, err), 0);
    cJSON_Delete(msg);
    int rc = cv_evals_add_importance(ev, &t, err);
    if (rc == 0) ck_assert_ptr_null(t.frame); /* taken */
    free(t.frame);
    return rc;
}

/* Stand-ins for two workers: the queue only compares their addresses. */
static char worker_a, worker_b;
#define WA ((cv_sched_worker_t *)(void *)&worker_a)
#define WB ((cv_sched_worker_t *)(void *)&worker_b)

START_TEST(an_idle_worker_gets_the_oldest_evaluation_under_a_fresh_lease) {
    char err[CV_ERRLEN];
    cv_evals_t *ev = NULL;
    memset(&sent, 0, sizeof sent);
    ck_assert_int_eq(cv_evals_create(&ev, NULL, err), 0);
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 0); /* nothing waits */
    ck_assert_int_eq(sent.calls, 0);
    add_task(ev, 7, 3);
    add_task(ev, 8, 1);
    ck_assert_int_eq(cv_evals_pending(ev, 7), 3);
    ck_assert_int_eq(cv_evals_pending(ev, 8), 1);
    ck_assert_int_eq(cv_evals_pending(ev, 9), 0);
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 1);
    ck_assert_int_eq(sent.job_id, 7);
    ck_assert_uint_eq(sent.n_models, 3);
    ck_assert_uint_eq(strlen(sent.lease), CV_MSG_LEASE_HEX);
    ck_assert_uint_eq(strspn(sent.lease, "0123456789abcdef"), CV_MSG_LEASE_HEX);
    ck_assert_int_eq(cv_evals_busy(ev, WA), 1);
    ck_assert_int_eq(cv_evals_busy(ev, WB), 0);
    char first[CV_MSG_LEASE_HEX + 1];
    memcpy(first, sent.lease, sizeof first);
    ck_assert_int_eq(cv_evals_assign(ev, WB, NULL, "b", fake_send), 1);
    ck_assert_int_eq(sent.job_id, 8);
    ck_assert_str_ne(sent.lease, first);
    ck_assert_int_eq(cv_evals_assign(ev, WB, NULL, "b", fake_send), 0); /* none left waiting */
    cv_evals_destroy(ev);
}
END_TEST

START_TEST(a_failed_send_leaves_the_evaluation_waiting) {
    char err[CV_ERRLEN];
    cv_evals_t *ev = NULL;
    memset(&sent, 0, sizeof sent);
    ck_assert_int_eq(cv_evals_create(&ev, NULL, err), 0);
    add_task(ev, 7, 2);
    sent.fail = 1;
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 0);
    ck_assert_int_eq(cv_evals_busy(ev, WA), 0);
    sent.fail = 0;
    ck_assert_int_eq(cv_evals_assign(ev, WB, NULL, "b", fake_send), 1);
    ck_assert_int_eq(cv_evals_busy(ev, WB), 1);
    cv_evals_destroy(ev);
}
END_TEST

START_TEST(a_worker_that_leaves_hands_its_evaluation_back_first_in_line) {
    char err[CV_ERRLEN];
    cv_evals_t *ev = NULL;
    memset(&sent, 0, sizeof sent);
    ck_assert_int_eq(cv_evals_create(&ev, NULL, err), 0);
    add_task(ev, 7, 2);
    add_task(ev, 8, 2);
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 1);
    ck_assert_int_eq(sent.job_id, 7);
    char lost[CV_MSG_LEASE_HEX + 1];
    memcpy(lost, sent.lease, sizeof lost);
    cv_evals_worker_left(ev, NULL, WA); /* attempts left: no store is needed */
    ck_assert_int_eq(cv_evals_busy(ev, WA), 0);
    ck_assert_int_eq(cv_evals_pending(ev, 7), 2);
    ck_assert_int_eq(cv_evals_assign(ev, WB, NULL, "b", fake_send), 1);
    ck_assert_int_eq(sent.job_id, 7);
    ck_assert_str_ne(sent.lease, lost);
    /* The lost worker's lease is stale now, and so is any other worker's answer. */
    cv_msg_evaluation_t a = {.job_id = 7, .test_accuracy = 1, .examples = 1};
    memcpy(a.lease, lost, sizeof a.lease);
    ck_assert_int_eq(cv_evals_on_answer(ev, NULL, WB, "b", &a, err), CV_STORE_STALE);
    ck_assert_str_eq(err, "worker b answered an evaluation of job 7 it does not hold under that "
                          "lease; refused");
    memcpy(a.lease, sent.lease, sizeof a.lease);
    ck_assert_int_eq(cv_evals_on_answer(ev, NULL, WA, "a", &a, err), CV_STORE_STALE);
    a.job_id = 8;
    ck_assert_int_eq(cv_evals_on_answer(ev, NULL, WB, "b", &a, err), CV_STORE_STALE);
    ck_assert_int_eq(cv_evals_busy(ev, WB), 1);
    cv_evals_destroy(ev);
}
END_TEST

START_TEST(a_worker_fault_goes_to_another_worker) {
    char err[CV_ERRLEN];
    cv_evals_t *ev = NULL;
    memset(&sent, 0, sizeof sent);
    ck_assert_int_eq(cv_evals_create(&ev, NULL, err), 0);
    add_task(ev, 7, 1);
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 1);
    cv_msg_evaluation_t a = {.job_id = 7, .error = "out of memory", .job_fault = 0};
    memcpy(a.lease, sent.lease, sizeof a.lease);
    ck_assert_int_eq(cv_evals_on_answer(ev, NULL, WA, "a", &a, err), 0);
    ck_assert_int_eq(cv_evals_busy(ev, WA), 0);
    ck_assert_int_eq(cv_evals_pending(ev, 7), 1);
    ck_assert_int_eq(cv_evals_assign(ev, WB, NULL, "b", fake_send), 1);
    cv_evals_destroy(ev);
}
END_TEST

/* The stored form is whole or NULL: with every allocation failing in turn, never a partial
 * result that would then be served as cached. */
START_TEST(a_result_is_never_built_partially) {
    const int64_t ids[] = {4, 9, 2};
    long k = 0;
    char *text = NULL;
    for (;; k++) {
        cv_test_cjson_fail_after(k);
        text = cv_eval_result_json(NULL, 0.875, 0.3, 80, 3, ids, 3);
        cv_test_cjson_restore();
        if (text) break;
        ck_assert_int_lt(k, 1000);
    }
    ck_assert_int_gt(k, 5); /* some allocations did fail on the way */
    ck_assert_str_eq(text, "{\"test_accuracy\":0.875,\"test_error\":0.125,\"test_cost\":0.3,"
                           "\"examples\":80,\"ensemble\":3,\"trials\":[4,9,2]}");
    cJSON_free(text);
    for (k = 0;; k++) {
        cv_test_cjson_fail_after(k);
        text = cv_eval_result_json("dataset.csv: no such file", 0, 0, 0, 2, ids, 2);
        cv_test_cjson_restore();
        if (text) break;
        ck_assert_int_lt(k, 1000);
    }
    ck_assert_str_eq(text, "{\"error\":\"dataset.csv: no such file\",\"ensemble\":2,"
                           "\"trials\":[4,9]}");
    cJSON_free(text);
}
END_TEST

START_TEST(an_importance_task_is_queued_once_per_count_and_sent_seeded_with_the_job) {
    char err[CV_ERRLEN];
    cv_evals_t *ev = NULL;
    memset(&imp_sent, 0, sizeof imp_sent);
    ck_assert_int_eq(cv_evals_create(&ev, NULL, err), 0);
    ck_assert_int_eq(add_importance(ev, 4, 10, 0.5), 0);
    ck_assert_int_eq(add_importance(ev, 4, 10, 0.5), 1);                /* waiting: not again */
    ck_assert_int_eq(cv_evals_pending(ev, 4), 0);                       /* not an evaluation */
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 0); /* no sender yet */
    cv_evals_set_importance_send(ev, fake_send_importance);
    ck_assert_int_eq(add_importance(ev, 4, 12, 7.0), 0); /* newer count: replaces the rows */
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 1);
    ck_assert_int_eq(imp_sent.calls, 1);
    ck_assert_int_eq(imp_sent.job_id, 4);
    ck_assert_int_eq(imp_sent.seed, 4);
    ck_assert_uint_eq(imp_sent.n, 12);
    ck_assert_uint_eq(imp_sent.p, 2);
    ck_assert_double_eq(imp_sent.y0, 7.0);
    ck_assert_int_eq(cv_evals_busy(ev, WA), 1);
    ck_assert_int_eq(add_importance(ev, 4, 12, 7.0), 1);                /* running: not again */
    ck_assert_int_eq(cv_evals_assign(ev, WB, NULL, "b", fake_send), 0); /* nothing else waits */
    ck_assert_ptr_null(cv_evals_importance(ev, 4, 12));
    cv_evals_destroy(ev);
}
END_TEST

START_TEST(an_answer_is_kept_for_its_count_with_the_most_important_first) {
    char err[CV_ERRLEN];
    cv_evals_t *ev = NULL;
    memset(&imp_sent, 0, sizeof imp_sent);
    ck_assert_int_eq(cv_evals_create(&ev, NULL, err), 0);
    cv_evals_set_importance_send(ev, fake_send_importance);
    ck_assert_int_eq(add_importance(ev, 4, 10, 0.5), 0);
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 1);
    cv_msg_importance_result_t a = {
        .job_id = 4, .p = 2, .fraction = {0.0625, 0.75}, .importance = {0.0769, 0.9231}};
    snprintf(a.lease, sizeof a.lease, "%s", "0123456789abcdef0123456789abcdef");
    ck_assert_int_eq(cv_evals_on_importance(ev, WA, "a", &a, 1700000000.5, err), CV_STORE_STALE);
    ck_assert_ptr_nonnull(strstr(err, "worker a answered an importance task of job 4"));
    snprintf(a.lease, sizeof a.lease, "%s", imp_sent.lease);
    ck_assert_int_eq(cv_evals_on_importance(ev, WB, "b", &a, 1700000000.5, err), CV_STORE_STALE);
    ck_assert_int_eq(cv_evals_on_importance(ev, WA, "a", &a, 1700000000.5, err), 0);
    ck_assert_int_eq(cv_evals_busy(ev, WA), 0);
    ck_assert_ptr_null(cv_evals_importance(ev, 4, 11));
    ck_assert_ptr_null(cv_evals_importance(ev, 5, 10));
    const char *kept = cv_evals_importance(ev, 4, 10);
    ck_assert_ptr_nonnull(kept);
    ck_assert_str_eq(kept, "{\"job\":4,\"trials\":10,\"parameters\":[{\"name\":\"epsilon\","
                           "\"scale\":\"log\",\"importance\":0.9231,\"fraction\":0.75},"
                           "{\"name\":\"learning_rate\",\"scale\":\"log\",\"importance\":"
                           "0.0769,\"fraction\":0.0625}],\"interactions\":0.1875,"
                           "\"computed_at\":1700000000.5}");
    ck_assert_int_eq(add_importance(ev, 4, 12, 0.5), 0); /* more trials: computed again */
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 1);
    cv_evals_forget_importance(ev, 4); /* the job is deleted */
    ck_assert_ptr_null(cv_evals_importance(ev, 4, 10));
    snprintf(a.lease, sizeof a.lease, "%s", imp_sent.lease);
    ck_assert_int_eq(cv_evals_on_importance(ev, WA, "a", &a, 1700000001, err), 0);
    ck_assert_int_eq(cv_evals_busy(ev, WA), 0);
    ck_assert_ptr_null(cv_evals_importance(ev, 4, 12)); /* not kept for a deleted job */
    cv_evals_destroy(ev);
}
END_TEST

START_TEST(a_lost_or_failing_worker_passes_the_importance_task_on_then_it_is_dropped) {
    char err[CV_ERRLEN];
    cv_evals_t *ev = NULL;
    memset(&imp_sent, 0, sizeof imp_sent);
    ck_assert_int_eq(cv_evals_create(&ev, NULL, err), 0);
    cv_evals_set_importance_send(ev, fake_send_importance);
    ck_assert_int_eq(add_importance(ev, 4, 10, 0.5), 0);
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 1);
    cv_evals_worker_left(ev, NULL, WA);
    ck_assert_int_eq(cv_evals_busy(ev, WA), 0);
    ck_assert_int_eq(cv_evals_assign(ev, WB, NULL, "b", fake_send), 1); /* attempt 2 */
    cv_msg_importance_result_t a = {.job_id = 4, .error = "out of memory"};
    snprintf(a.lease, sizeof a.lease, "%s", imp_sent.lease);
    ck_assert_int_eq(cv_evals_on_importance(ev, WB, "b", &a, 0, err), 0);
    ck_assert_int_eq(cv_evals_assign(ev, WA, NULL, "a", fake_send), 1); /* attempt 3 */
    cv_evals_worker_left(ev, NULL, WA);
    ck_assert_int_eq(cv_evals_assign(ev, WB, NULL, "b", fake_send), 0); /* dropped */
    ck_assert_int_eq(imp_sent.calls, 3);
    ck_assert_ptr_null(cv_evals_importance(ev, 4, 10));
    ck_assert_int_eq(add_importance(ev, 4, 10, 0.5), 0); /* asked again: queued again */
    cv_evals_destroy(ev);
}
END_TEST

static Suite *evaluation_suite(void) {
    Suite *s = suite_create("evaluation");
    TCase *tc = tcase_create("queue");
    tcase_add_test(tc, an_idle_worker_gets_the_oldest_evaluation_under_a_fresh_lease);
    tcase_add_test(tc, a_failed_send_leaves_the_evaluation_waiting);
    tcase_add_test(tc, a_worker_that_leaves_hands_its_evaluation_back_first_in_line);
    tcase_add_test(tc, a_worker_fault_goes_to_another_worker);
    tcase_add_test(tc, a_result_is_never_built_partially);
    tcase_add_test(tc, an_importance_task_is_queued_once_per_count_and_sent_seeded_with_the_job);
    tcase_add_test(tc, an_answer_is_kept_for_its_count_with_the_most_important_first);
    tcase_add_test(tc, a_lost_or_failing_worker_passes_the_importance_task_on_then_it_is_dropped);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(evaluation_suite)
