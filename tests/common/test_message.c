/* Unit tests of the worker protocol messages (common/message.c): every message survives
 * build → encode → frame decode → parse with its fields intact, and every kind of refusal the
 * schema implies (unknown type, missing field, wrong type, bad lease or hash, out-of-range
 * number, unknown field) is refused with a reason naming the field. Refused messages are written
 * here as JSON text, independently of the builders. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/message.h"
#include "testutil.h"

static const char *const LEASE = "0123456789abcdef0123456789abcdef";
static const char *const HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/* Encodes msg (consumed), checks the frame header, decodes the frame and parses it into out. */
static void round_trip(cJSON *msg, cv_msg_t *out) {
    char err[CV_ERRLEN] = "";
    unsigned char *buf = NULL;
    size_t len = 0;
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_eq(cv_msg_encode(msg, &buf, &len, err), 0);
    cJSON_Delete(msg);
    ck_assert_uint_gt(len, CV_FRAME_HEADER_SIZE);
    size_t n = len - CV_FRAME_HEADER_SIZE;
    ck_assert_uint_eq(buf[0], (n >> 24) & 0xff);
    ck_assert_uint_eq(buf[1], (n >> 16) & 0xff);
    ck_assert_uint_eq(buf[2], (n >> 8) & 0xff);
    ck_assert_uint_eq(buf[3], n & 0xff);
    ck_assert_uint_eq(buf[4], CV_FRAME_JSON);
    ck_assert_uint_eq(buf[5] | buf[6] | buf[7], 0);
    ck_assert_ptr_null(memchr(buf + CV_FRAME_HEADER_SIZE, '\n', n)); /* compact text */

    cv_frame_decoder_t dec;
    cv_frame_t frame;
    size_t used = 0;
    cv_frame_decoder_init(&dec);
    ck_assert_int_eq(cv_frame_decode(&dec, buf, len, &used, &frame, err), CV_FRAME_READY);
    ck_assert_uint_eq(used, len);
    int rc = cv_msg_parse((const char *)frame.payload, frame.len, out, err);
    ck_assert_msg(rc == 0, "parse failed: %s", err);
    ck_assert_ptr_nonnull(out->root);
    cv_frame_decoder_finish(&dec);
    free(buf);
}

/* Parses text and expects code with a reason holding every given word (NULL-terminated). */
static void expect_refused(const char *text, int code, ...) {
    char err[CV_ERRLEN] = "";
    cv_msg_t msg;
    memset(&msg, 0x5a, sizeof msg);
    int rc = cv_msg_parse(text, strlen(text), &msg, err);
    ck_assert_msg(rc == code, "%s: expected %d, got %d (%s)", text, code, rc, err);
    ck_assert_ptr_null(msg.root);
    ck_assert_int_eq(msg.type, CV_MSG_NONE);
    va_list ap;
    va_start(ap, code);
    for (const char *w = va_arg(ap, const char *); w; w = va_arg(ap, const char *))
        ck_assert_msg(strstr(err, w) != NULL, "reason \"%s\" lacks \"%s\"", err, w);
    va_end(ap);
}

static void expect_accepted(const char *text, cv_msg_type_t type) {
    char err[CV_ERRLEN] = "";
    cv_msg_t msg;
    int rc = cv_msg_parse(text, strlen(text), &msg, err);
    ck_assert_msg(rc == 0, "%s: refused: %s", text, err);
    ck_assert_int_eq(msg.type, type);
    cv_msg_finish(&msg);
}

/* cv_msg_trial of a trial message filled from the arguments (n_decide_at is kept as given, so
 * that a count over CV_MSG_DECIDE_MAX reaches the builder; only the first entries are copied). */
static cJSON *build_trial(int64_t trial_id, int64_t job_id, const char *lease, const cJSON *spec,
                          const cv_msg_file_t *files, size_t n_files, const int *decide_at,
                          size_t n_decide_at, char *err) {
    cv_msg_trial_t t = {.trial_id = trial_id, .job_id = job_id, .spec = spec};
    snprintf(t.lease, sizeof t.lease, "%s", lease);
    for (size_t i = 0; i < n_files && i < CV_MSG_FILES_MAX; i++)
        t.files[i] = files[i];
    for (size_t i = 0; i < n_decide_at && i < CV_MSG_DECIDE_MAX; i++)
        t.decide_at[i] = decide_at[i];
    t.n_files = n_files;
    t.n_decide_at = n_decide_at;
    return cv_msg_trial(&t, err);
}

/* A completed trial's result, as the trainer fills it. */
static cv_trial_result_t completed_result(void) {
    cv_trial_result_t r = {.status = CV_TRIAL_COMPLETED,
                           .best_epoch = 3,
                           .epochs_run = 5,
                           .best = {.epoch = 3,
                                    .train_error = 0.125,
                                    .dev_error = 0.25,
                                    .train_cost = 0.3,
                                    .train_cost_reg = 0.31,
                                    .dev_cost = 0.5},
                           .diagnosis = {.kind = CV_DIAG_HIGH_VARIANCE,
                                         .name = "high_variance",
                                         .avoidable_bias = 0.1,
                                         .variance = 0.125,
                                         .remedy = "more data"},
                           .examples_per_second = 1000,
                           .seconds = 2.5,
                           .m_train = 600,
                           .n_params = 354};
    return r;
}

/* A failed trial's result: no metrics, the reason, whose fault. */
static cv_trial_result_t failed_result(const char *reason, int job_fault) {
    cv_trial_result_t r = {.status = CV_TRIAL_FAILED,
                           .examples_per_second = NAN,
                           .seconds = NAN,
                           .job_fault = job_fault};
    snprintf(r.error, sizeof r.error, "%s", reason);
    return r;
}

/* ---- round trips -------------------------------------------------------------------------- */

START_TEST(hello_round_trips_with_token_and_leases) {
    cv_msg_hello_t h = {.worker_id = "gpu-box.7:a_b",
                        .version = "0.1.0",
                        .threads = 4,
                        .host = "gpu-box",
                        .token = "s3cret",
                        .has_token = 1,
                        .n_leases = 2};
    h.leases[0].trial_id = 12;
    strcpy(h.leases[0].lease, LEASE);
    h.leases[1].trial_id = 9007199254740992LL;
    strcpy(h.leases[1].lease, "ffffffffffffffffffffffffffffffff");
    char err[CV_ERRLEN] = "";
    cv_msg_t m;
    round_trip(cv_msg_hello(&h, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_HELLO);
    ck_assert_str_eq(m.hello.worker_id, "gpu-box.7:a_b");
    ck_assert_str_eq(m.hello.version, "0.1.0");
    ck_assert_int_eq(m.hello.threads, 4);
    ck_assert_str_eq(m.hello.host, "gpu-box");
    ck_assert_int_eq(m.hello.has_token, 1);
    ck_assert_str_eq(m.hello.token, "s3cret");
    ck_assert_uint_eq(m.hello.n_leases, 2);
    ck_assert_int_eq(m.hello.leases[0].trial_id, 12);
    ck_assert_str_eq(m.hello.leases[0].lease, LEASE);
    ck_assert_int_eq(m.hello.leases[1].trial_id, 9007199254740992LL);
    cv_msg_finish(&m);
    ck_assert_ptr_null(m.root);
}
END_TEST

START_TEST(hello_without_token_or_leases_omits_them) {
    cv_msg_hello_t h = {.worker_id = "w1", .version = "", .threads = 1, .host = ""};
    char err[CV_ERRLEN] = "";
    cJSON *o = cv_msg_hello(&h, err);
    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "token"));
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "leases"));
    cv_msg_t m;
    round_trip(o, &m);
    ck_assert_int_eq(m.hello.has_token, 0);
    ck_assert_uint_eq(m.hello.n_leases, 0);
    cv_msg_finish(&m);
}
END_TEST

START_TEST(hello_round_trips_trainers_and_refuses_bad_names) {
    cv_msg_hello_t h = {.worker_id = "w1", .version = "", .threads = 1, .host = "",
                        .n_trainers = 2};
    strcpy(h.trainers[0], "torch");
    strcpy(h.trainers[1], "sim-2.1_b");
    char err[CV_ERRLEN] = "";
    cv_msg_t m;
    round_trip(cv_msg_hello(&h, err), &m);
    ck_assert_uint_eq(m.hello.n_trainers, 2);
    ck_assert_str_eq(m.hello.trainers[0], "torch");
    ck_assert_str_eq(m.hello.trainers[1], "sim-2.1_b");
    cv_msg_finish(&m);
#define HELLO "{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"w\",\"version\":\"\"," \
              "\"threads\":1,\"host\":\"\","
    expect_refused(HELLO "\"trainers\":[\"ok\",\"x; rm\"]}", CV_EINVAL,
                   "hello: trainers[1]: must match [A-Za-z0-9_.-]{1,64}", "\"x; rm\"", NULL);
    expect_refused(HELLO "\"trainers\":[\"a\",\"a\"]}", CV_EINVAL,
                   "hello: trainers[1]: repeats trainers[0]", NULL);
    expect_refused(HELLO "\"trainers\":\"a\"}", CV_EINVAL, "hello: trainers: must be an array",
                   NULL);
#undef HELLO
    ck_assert_int_eq(cv_msg_trainer_name_ok("a.b_c-9"), 1);
    ck_assert_int_eq(cv_msg_trainer_name_ok(""), 0);
    ck_assert_int_eq(cv_msg_trainer_name_ok("a/b"), 0);
}
END_TEST

START_TEST(trial_objective_round_trips_and_is_absent_by_default) {
    cJSON *spec = cJSON_Parse("{\"lr\":0.1,\"trainer\":\"torch\"}");
    cv_msg_trial_t t = {.trial_id = 3, .job_id = 2, .spec = spec,
                        .objective = CV_MSG_OBJECTIVE_DEV_COST};
    strcpy(t.lease, LEASE);
    char err[CV_ERRLEN] = "";
    cv_msg_t m;
    round_trip(cv_msg_trial(&t, err), &m);
    ck_assert_int_eq(m.trial.objective, CV_MSG_OBJECTIVE_DEV_COST);
    cv_msg_finish(&m);
    t.objective = CV_MSG_OBJECTIVE_NONE;
    cJSON *o = cv_msg_trial(&t, err);
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "objective"));
    round_trip(o, &m);
    ck_assert_int_eq(m.trial.objective, CV_MSG_OBJECTIVE_NONE);
    cv_msg_finish(&m);
    cJSON_Delete(spec);
    expect_refused("{\"type\":\"trial\",\"trial_id\":1,\"job_id\":1,\"lease\":\"0123456789abcdef0123456789abcdef\","
                   "\"spec\":{},\"files\":{},\"objective\":\"accuracy\"}",
                   CV_EINVAL, "trial: objective: must be one of", NULL);
}
END_TEST

START_TEST(progress_sends_unknown_metrics_as_null) {
    cv_epoch_t e = {.epoch = 3, .dev_error = 0.25, .dev_cost = NAN, .train_cost = NAN,
                    .train_cost_reg = NAN, .train_error = NAN, .learning_rate = NAN,
                    .seconds = NAN, .examples_per_second = NAN};
    char err[CV_ERRLEN] = "";
    cJSON *o = cv_msg_progress(5, LEASE, &e, err);
    ck_assert_ptr_nonnull(o);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "epoch"), "dev_cost")));
    cv_msg_t m;
    round_trip(o, &m);
    ck_assert_double_eq(m.progress.metrics.dev_error, 0.25);
    ck_assert(isnan(m.progress.metrics.dev_cost));
    ck_assert(isnan(m.progress.metrics.learning_rate));
    cv_msg_finish(&m);
    e.dev_error = NAN;
    ck_assert_ptr_null(cv_msg_progress(5, LEASE, &e, err));
    ck_assert_msg(strstr(err, "dev_error and dev_cost cannot both be null") != NULL, "%s", err);
}
END_TEST

START_TEST(heartbeat_round_trips_as_its_type_alone) {
    char err[CV_ERRLEN] = "";
    cJSON *o = cv_msg_heartbeat(err);
    char *text = cJSON_PrintUnformatted(o);
    ck_assert_str_eq(text, "{\"type\":\"heartbeat\"}");
    cJSON_free(text);
    cv_msg_t m;
    round_trip(o, &m);
    ck_assert_int_eq(m.type, CV_MSG_HEARTBEAT);
    cv_msg_finish(&m);
}
END_TEST

START_TEST(progress_round_trips_every_metric) {
    cv_epoch_t e = {.epoch = 7,
                    .train_cost = 0.5,
                    .train_cost_reg = 0.625,
                    .dev_cost = 0.75,
                    .train_error = 0.125,
                    .dev_error = 0.25,
                    .learning_rate = 0.001,
                    .seconds = 1.5,
                    .examples_per_second = 4096};
    char err[CV_ERRLEN] = "";
    cv_msg_t m;
    round_trip(cv_msg_progress(5, LEASE, &e, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_PROGRESS);
    ck_assert_int_eq(m.progress.trial_id, 5);
    ck_assert_str_eq(m.progress.lease, LEASE);
    ck_assert_int_eq(m.progress.metrics.epoch, 7);
    ck_assert_double_eq(m.progress.metrics.train_cost, 0.5);
    ck_assert_double_eq(m.progress.metrics.train_cost_reg, 0.625);
    ck_assert_double_eq(m.progress.metrics.dev_cost, 0.75);
    ck_assert_double_eq(m.progress.metrics.train_error, 0.125);
    ck_assert_double_eq(m.progress.metrics.dev_error, 0.25);
    ck_assert_double_eq(m.progress.metrics.learning_rate, 0.001);
    ck_assert_double_eq(m.progress.metrics.seconds, 1.5);
    ck_assert_double_eq(m.progress.metrics.examples_per_second, 4096);
    cv_msg_finish(&m);
}
END_TEST

START_TEST(result_round_trips_and_keeps_extra_result_members) {
    char err[CV_ERRLEN] = "";
    cv_trial_result_t r = completed_result();
    cv_msg_t m;
    round_trip(cv_msg_result(3, LEASE, &r, 1234, 4294967295u, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_RESULT);
    ck_assert_int_eq(m.result.trial_id, 3);
    ck_assert_str_eq(m.result.lease, LEASE);
    ck_assert_int_eq(m.result.model_bytes, 1234);
    ck_assert_uint_eq(m.result.model_crc32, 4294967295u);
    ck_assert_int_eq(m.result.result.status, CV_TRIAL_COMPLETED);
    ck_assert_int_eq(m.result.result.best_epoch, 3);
    ck_assert_int_eq(m.result.result.epochs_run, 5);
    ck_assert_double_eq(m.result.result.best.dev_error, 0.25);
    ck_assert_double_eq(m.result.result.best.dev_cost, 0.5);
    ck_assert_double_eq(cJSON_GetObjectItem(m.result.object, "m_train")->valuedouble, 600);
    cv_msg_finish(&m);
}
END_TEST

START_TEST(result_struct_round_trips_member_by_member) {
    char err[CV_ERRLEN] = "";
    cv_trial_result_t r = completed_result();
    r.status = CV_TRIAL_DIVERGED;
    r.diverged_epoch = 4;
    r.m_dev = 200;
    r.m_test = 100;
    r.tested = 1;
    r.test_error = 0.375;
    r.test_cost = 0.75;
    r.diagnosis.human_error = 0.0625;
    r.diagnosis.human_error_given = 1;
    snprintf(r.diagnosis.explanation, sizeof r.diagnosis.explanation, "dev error 25%%");
    snprintf(r.error, sizeof r.error, "the cost became NaN at epoch 4");
    cv_msg_t m;
    round_trip(cv_msg_result(3, LEASE, &r, 0, 0, err), &m);
    const cv_trial_result_t *got = &m.result.result;
    ck_assert_int_eq(got->status, CV_TRIAL_DIVERGED);
    ck_assert_int_eq(got->best_epoch, 3);
    ck_assert_int_eq(got->best.epoch, 3);
    ck_assert_int_eq(got->epochs_run, 5);
    ck_assert_int_eq(got->diverged_epoch, 4);
    ck_assert_double_eq(got->best.train_error, 0.125);
    ck_assert_double_eq(got->best.dev_error, 0.25);
    ck_assert_double_eq(got->best.train_cost, 0.3);
    ck_assert_double_eq(got->best.train_cost_reg, 0.31);
    ck_assert_double_eq(got->best.dev_cost, 0.5);
    ck_assert_double_eq(got->examples_per_second, 1000);
    ck_assert_double_eq(got->seconds, 2.5);
    ck_assert_uint_eq(got->m_train, 600);
    ck_assert_uint_eq(got->m_dev, 200);
    ck_assert_uint_eq(got->m_test, 100);
    ck_assert_uint_eq(got->n_params, 354);
    ck_assert_int_eq(got->tested, 1);
    ck_assert_double_eq(got->test_error, 0.375);
    ck_assert_double_eq(got->test_cost, 0.75);
    ck_assert_int_eq(got->diagnosis.kind, CV_DIAG_HIGH_VARIANCE);
    ck_assert_str_eq(got->diagnosis.name, "high_variance");
    ck_assert_double_eq(got->diagnosis.avoidable_bias, 0.1);
    ck_assert_double_eq(got->diagnosis.variance, 0.125);
    ck_assert_double_eq(got->diagnosis.human_error, 0.0625);
    ck_assert_int_eq(got->diagnosis.human_error_given, 1);
    ck_assert_str_eq(got->diagnosis.remedy, "more data");
    ck_assert_str_eq(got->diagnosis.explanation, "dev error 25%");
    ck_assert_str_eq(got->error, "the cost became NaN at epoch 4");
    ck_assert_int_eq(got->job_fault, 0);
    ck_assert_ptr_null(cJSON_GetObjectItem(m.result.object, "fault")); /* not failed */
    cv_msg_finish(&m);
}
END_TEST

START_TEST(failed_result_with_null_metrics_round_trips_as_nan) {
    char err[CV_ERRLEN] = "";
    cv_trial_result_t r = failed_result("no such file", 0);
    cv_msg_t m;
    round_trip(cv_msg_result(4, LEASE, &r, 0, 0, err), &m);
    ck_assert_int_eq(m.result.result.status, CV_TRIAL_FAILED);
    ck_assert(isnan(m.result.result.best.dev_error));
    ck_assert(isnan(m.result.result.best.dev_cost));
    ck_assert_str_eq(cJSON_GetObjectItem(m.result.object, "error")->valuestring, "no such file");
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(m.result.object, "diagnosis"));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(m.result.object, "diagnosis")));
    ck_assert_ptr_null(m.result.result.diagnosis.name);
    cv_msg_finish(&m);
}
END_TEST

START_TEST(result_fault_names_job_or_worker) {
    char err[CV_ERRLEN] = "";
    cv_trial_result_t r = failed_result("bad label", 1);
    cv_msg_t m;
    round_trip(cv_msg_result(4, LEASE, &r, 0, 0, err), &m);
    ck_assert_str_eq(cJSON_GetObjectItem(m.result.object, "fault")->valuestring, "job");
    ck_assert_int_eq(m.result.result.job_fault, 1);
    cv_msg_finish(&m);
    r = failed_result("disk full", 0);
    round_trip(cv_msg_result(4, LEASE, &r, 0, 0, err), &m);
    ck_assert_str_eq(cJSON_GetObjectItem(m.result.object, "fault")->valuestring, "worker");
    ck_assert_int_eq(m.result.result.job_fault, 0);
    cv_msg_finish(&m);
    expect_refused("{\"type\":\"result\",\"trial_id\":4,"
                   "\"lease\":\"0123456789abcdef0123456789abcdef\","
                   "\"model_bytes\":0,\"model_crc32\":0,\"result\":{\"status\":\"failed\","
                   "\"best_epoch\":0,\"epochs_run\":0,\"dev_error\":null,\"dev_cost\":null,"
                   "\"fault\":\"nobody\"}}",
                   CV_EINVAL, "result.fault", "\"nobody\"", NULL);
}
END_TEST

START_TEST(dataset_get_round_trips) {
    char err[CV_ERRLEN] = "";
    cv_msg_t m;
    round_trip(cv_msg_dataset_get(HASH, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_DATASET_GET);
    ck_assert_str_eq(m.dataset_get_hash, HASH);
    cv_msg_finish(&m);
}
END_TEST

START_TEST(welcome_round_trips) {
    char err[CV_ERRLEN] = "";
    const int64_t ids[] = {4, 99};
    cv_msg_t m;
    round_trip(cv_msg_welcome(2.5, 30, ids, 2, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_WELCOME);
    ck_assert_double_eq(m.welcome.heartbeat_seconds, 2.5);
    ck_assert_double_eq(m.welcome.lease_seconds, 30);
    ck_assert_uint_eq(m.welcome.n_reattached, 2);
    ck_assert_int_eq(m.welcome.reattached[0], 4);
    ck_assert_int_eq(m.welcome.reattached[1], 99);
    cv_msg_finish(&m);

    round_trip(cv_msg_welcome(1, 1, NULL, 0, err), &m);
    ck_assert_uint_eq(m.welcome.n_reattached, 0);
    cv_msg_finish(&m);
}
END_TEST

START_TEST(trial_round_trips_and_its_spec_can_be_taken) {
    char err[CV_ERRLEN] = "";
    cJSON *spec = cJSON_Parse("{\"dataset\":{\"format\":\"csv\",\"csv\":\"d.csv\"},\"epochs\":2}");
    cv_msg_file_t files[2] = {{.field = "csv", .bytes = 1000}, {.field = "test_csv", .bytes = 0}};
    strcpy(files[0].hash, HASH);
    strcpy(files[1].hash, HASH);
    cv_msg_t m;
    round_trip(build_trial(8, 2, LEASE, spec, files, 2, NULL, 0, err), &m);
    cJSON_Delete(spec);
    ck_assert_int_eq(m.type, CV_MSG_TRIAL);
    ck_assert_int_eq(m.trial.trial_id, 8);
    ck_assert_int_eq(m.trial.job_id, 2);
    ck_assert_str_eq(m.trial.lease, LEASE);
    ck_assert_uint_eq(m.trial.n_files, 2);
    ck_assert_str_eq(m.trial.files[0].field, "csv");
    ck_assert_str_eq(m.trial.files[0].hash, HASH);
    ck_assert_int_eq(m.trial.files[0].bytes, 1000);
    ck_assert_str_eq(m.trial.files[1].field, "test_csv");
    ck_assert_int_eq(m.trial.files[1].bytes, 0);
    ck_assert_uint_eq(m.trial.n_decide_at, 0);
    ck_assert_ptr_null(cJSON_GetObjectItem(m.root, "decide_at")); /* left out when empty */

    cJSON *taken = cv_msg_take_object(&m);
    ck_assert_ptr_nonnull(taken);
    ck_assert_ptr_null(m.trial.spec);
    ck_assert_ptr_null(cv_msg_take_object(&m)); /* only once */
    cv_msg_finish(&m);                          /* the spec now outlives the message */
    ck_assert_int_eq((int)cJSON_GetObjectItem(taken, "epochs")->valuedouble, 2);
    cJSON_Delete(taken);
}
END_TEST

START_TEST(ack_stop_dataset_and_error_round_trip) {
    char err[CV_ERRLEN] = "";
    cv_msg_t m;
    round_trip(cv_msg_ack(6, 1, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_ACK);
    ck_assert_int_eq(m.ack.trial_id, 6);
    ck_assert_int_eq(m.ack.stored, 1);
    cv_msg_finish(&m);
    round_trip(cv_msg_ack(6, 0, err), &m);
    ck_assert_int_eq(m.ack.stored, 0);
    cv_msg_finish(&m);

    round_trip(cv_msg_stop(17, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_STOP);
    ck_assert_int_eq(m.stop.trial_id, 17);
    cv_msg_finish(&m);

    round_trip(cv_msg_dataset(HASH, 5000000000LL, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_DATASET);
    ck_assert_str_eq(m.dataset.hash, HASH);
    ck_assert_int_eq(m.dataset.bytes, 5000000000LL);
    cv_msg_finish(&m);

    round_trip(cv_msg_error("bad token", err), &m);
    ck_assert_int_eq(m.type, CV_MSG_ERROR);
    ck_assert_str_eq(m.error.message, "bad token");
    cv_msg_finish(&m);
}
END_TEST

START_TEST(validate_borrows_the_callers_tree) {
    char err[CV_ERRLEN] = "";
    cJSON *o = cv_msg_stop(3, err);
    cv_msg_t m;
    ck_assert_int_eq(cv_msg_validate(o, &m, err), 0);
    ck_assert_ptr_null(m.root);
    ck_assert_ptr_null(cv_msg_take_object(&m));
    cv_msg_finish(&m); /* frees nothing: o is still the caller's */
    ck_assert_str_eq(cJSON_GetObjectItem(o, "type")->valuestring, "stop");
    cJSON_Delete(o);
    cv_msg_finish(NULL);
}
END_TEST

START_TEST(type_names_match_the_wire) {
    ck_assert_str_eq(cv_msg_type_name(CV_MSG_DATASET_GET), "dataset_get");
    ck_assert_str_eq(cv_msg_type_name(CV_MSG_ERROR), "error");
    ck_assert_str_eq(cv_msg_type_name((cv_msg_type_t)99), "none");
    ck_assert_str_eq(cv_trial_status_name(CV_TRIAL_STOPPED), "stopped");
}
END_TEST

/* ---- refusals ----------------------------------------------------------------------------- */

START_TEST(unknown_or_missing_type_is_refused) {
    expect_refused("{\"type\":\"hullo\"}", CV_EINVAL, "type", "unknown message type", "\"hullo\"",
                   NULL);
    expect_refused("{\"type\":\"none\"}", CV_EINVAL, "unknown message type", NULL);
    expect_refused("{\"trial_id\":1}", CV_EINVAL, "type: required field is missing", NULL);
    expect_refused("{\"type\":7}", CV_EINVAL, "type: must be a string, got 7", NULL);
    expect_refused("[1,2]", CV_EINVAL, "must be an object, got array", NULL);
}
END_TEST

START_TEST(malformed_json_is_a_format_error) {
    expect_refused("{\"type\":\"heartbeat\"", CV_EFORMAT, "invalid JSON", NULL);
    expect_refused("{\"type\":\"heartbeat\"} {}", CV_EFORMAT, "after the value", NULL);
}
END_TEST

START_TEST(missing_required_fields_are_named) {
    expect_refused("{\"type\":\"hello\",\"protocol\":1,\"version\":\"1\",\"threads\":1,"
                   "\"host\":\"h\"}",
                   CV_EINVAL, "hello: worker_id: required field is missing", NULL);
    expect_refused("{\"type\":\"ack\",\"trial_id\":1}", CV_EINVAL,
                   "ack: stored: required field is missing", NULL);
    expect_refused("{\"type\":\"result\",\"trial_id\":1,\"lease\":\"0123456789abcdef0123456789abc"
                   "def\",\"result\":{\"status\":\"completed\",\"best_epoch\":1,\"epochs_run\":1,"
                   "\"dev_error\":0.1},\"model_bytes\":0,\"model_crc32\":0}",
                   CV_EINVAL, "result: result.dev_cost: required field is missing", NULL);
    expect_refused("{\"type\":\"welcome\",\"protocol\":1,\"heartbeat_seconds\":5,"
                   "\"lease_seconds\":30}",
                   CV_EINVAL, "welcome: reattached: required field is missing", NULL);
}
END_TEST

START_TEST(wrong_json_types_are_named) {
    expect_refused("{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"w\",\"version\":\"1\","
                   "\"threads\":\"4\",\"host\":\"h\"}",
                   CV_EINVAL, "hello: threads: must be an integer in [1, 1024], got \"4\"", NULL);
    expect_refused("{\"type\":\"ack\",\"trial_id\":1,\"stored\":1}", CV_EINVAL,
                   "ack: stored: must be a boolean, got 1", NULL);
    expect_refused("{\"type\":\"stop\",\"trial_id\":2.5}", CV_EINVAL,
                   "stop: trial_id: must be an integer >= 1, got 2.5", NULL);
    expect_refused("{\"type\":\"error\",\"message\":null}", CV_EINVAL,
                   "error: message: must be a string, got null", NULL);
    expect_refused("{\"type\":\"trial\",\"trial_id\":1,\"job_id\":1,\"lease\":\"0123456789abcdef"
                   "0123456789abcdef\",\"spec\":[],\"files\":{}}",
                   CV_EINVAL, "trial: spec: must be an object, got array", NULL);
}
END_TEST

START_TEST(bad_leases_and_hashes_are_refused) {
    expect_refused("{\"type\":\"progress\",\"trial_id\":1,\"lease\":\"0123456789ABCDEF0123456789"
                   "abcdef\",\"epoch\":{}}",
                   CV_EINVAL, "progress: lease: must be 32 lowercase hex digits", "ABCDEF", NULL);
    expect_refused("{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"w\",\"version\":\"1\","
                   "\"threads\":1,\"host\":\"h\",\"leases\":[{\"trial_id\":3,\"lease\":\"abc\"}]}",
                   CV_EINVAL, "hello: leases[0].lease: must be 32 lowercase hex digits", NULL);
    expect_refused("{\"type\":\"dataset_get\",\"hash\":\"9f86d081\"}", CV_EINVAL,
                   "dataset_get: hash: must be 64 lowercase hex digits, got \"9f86d081\"", NULL);
    expect_refused("{\"type\":\"trial\",\"trial_id\":1,\"job_id\":1,\"lease\":\"0123456789abcdef"
                   "0123456789abcdef\",\"spec\":{},\"files\":{\"csv\":{\"hash\":\"xyz\","
                   "\"bytes\":3}}}",
                   CV_EINVAL, "trial: files.csv.hash: must be 64 lowercase hex digits", NULL);
}
END_TEST

START_TEST(out_of_range_metrics_are_refused) {
    const char *head = "{\"type\":\"result\",\"trial_id\":1,\"lease\":\"0123456789abcdef0123456789"
                       "abcdef\",\"model_bytes\":0,\"model_crc32\":0,\"result\":{\"status\":"
                       "\"completed\",\"best_epoch\":1,\"epochs_run\":1,\"dev_cost\":0.5,"
                       "\"dev_error\":";
    char text[512];
    snprintf(text, sizeof text, "%s\"x\"}}", head);
    expect_refused(text, CV_EINVAL,
                   "result.dev_error: must be a number in [0, 1] or null, got \"x\"", NULL);
    snprintf(text, sizeof text, "%s1.5}}", head);
    expect_refused(text, CV_ERANGE, "result.dev_error: must be a number in [0, 1] or null, got 1.5",
                   NULL);
    snprintf(text, sizeof text, "%s-0.25}}", head);
    expect_refused(text, CV_ERANGE, "result.dev_error", "got -0.25", NULL);
    snprintf(text, sizeof text, "%s1e999}}", head); /* cJSON reads it as infinity */
    expect_refused(text, CV_ERANGE, "result.dev_error", NULL);
    snprintf(text, sizeof text, "%s1}}", head);
    expect_accepted(text, CV_MSG_RESULT);
    snprintf(text, sizeof text, "%snull}}", head);
    expect_accepted(text, CV_MSG_RESULT);
}
END_TEST

START_TEST(null_progress_metrics_are_unknown_but_not_both_dev_ones) {
    char err[CV_ERRLEN] = "";
    cv_msg_t m;
    const char *known_dev_error =
        "{\"type\":\"progress\",\"trial_id\":1,\"lease\":\"0123456789abcdef0123456789abcdef\","
        "\"epoch\":{\"epoch\":1,\"train_cost\":null,\"train_cost_reg\":null,\"dev_cost\":null,"
        "\"train_error\":null,\"dev_error\":0.5,\"learning_rate\":null,\"seconds\":null,"
        "\"examples_per_second\":null}}";
    ck_assert_int_eq(cv_msg_parse(known_dev_error, strlen(known_dev_error), &m, err), 0);
    ck_assert_double_eq(m.progress.metrics.dev_error, 0.5);
    ck_assert(isnan(m.progress.metrics.dev_cost));
    ck_assert(isnan(m.progress.metrics.learning_rate));
    cv_msg_finish(&m);
    expect_refused("{\"type\":\"progress\",\"trial_id\":1,\"lease\":\"0123456789abcdef0123456789"
                   "abcdef\",\"epoch\":{\"epoch\":1,\"train_cost\":1,\"train_cost_reg\":1,"
                   "\"dev_cost\":null,\"train_error\":0,\"dev_error\":null,\"learning_rate\":0.1,"
                   "\"seconds\":0,\"examples_per_second\":0}}",
                   CV_EINVAL, "progress: epoch: dev_error and dev_cost cannot both be null", NULL);
    expect_refused("{\"type\":\"progress\",\"trial_id\":1,\"lease\":\"0123456789abcdef0123456789"
                   "abcdef\",\"epoch\":{\"epoch\":1,\"train_cost\":1,\"train_cost_reg\":1,"
                   "\"dev_cost\":1,\"train_error\":0,\"dev_error\":0,\"learning_rate\":0,"
                   "\"seconds\":0,\"examples_per_second\":0}}",
                   CV_ERANGE, "progress: epoch.learning_rate: must be a number > 0 or null, got 0",
                   NULL);
}
END_TEST

START_TEST(integers_outside_their_range_are_refused) {
    expect_refused("{\"type\":\"stop\",\"trial_id\":0}", CV_ERANGE,
                   "stop: trial_id: must be an integer >= 1, got 0", NULL);
    expect_refused("{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"w\",\"version\":\"1\","
                   "\"threads\":1025,\"host\":\"h\"}",
                   CV_ERANGE, "hello: threads", "1025", NULL);
    expect_refused("{\"type\":\"hello\",\"protocol\":2,\"worker_id\":\"w\",\"version\":\"1\","
                   "\"threads\":1,\"host\":\"h\"}",
                   CV_EINVAL, "hello: protocol: must be 1, got 2", NULL);
    expect_refused("{\"type\":\"result\",\"trial_id\":1,\"lease\":\"0123456789abcdef0123456789"
                   "abcdef\",\"model_bytes\":0,\"model_crc32\":4294967296,\"result\":{\"status\":"
                   "\"completed\",\"best_epoch\":1,\"epochs_run\":1,\"dev_cost\":0.5,"
                   "\"dev_error\":0.5}}",
                   CV_ERANGE, "result: model_crc32: must be an integer in [0, 4294967295]", NULL);
    expect_refused("{\"type\":\"welcome\",\"protocol\":1,\"heartbeat_seconds\":0,"
                   "\"lease_seconds\":30,\"reattached\":[]}",
                   CV_ERANGE, "welcome: heartbeat_seconds: must be a number > 0, got 0", NULL);
    expect_refused("{\"type\":\"welcome\",\"protocol\":1,\"heartbeat_seconds\":1,"
                   "\"lease_seconds\":30,\"reattached\":[1,-2]}",
                   CV_ERANGE, "welcome: reattached[1]", NULL);
}
END_TEST

START_TEST(unknown_fields_are_refused_where_the_schema_closes_objects) {
    expect_refused("{\"type\":\"heartbeat\",\"load\":3}", CV_EINVAL,
                   "heartbeat: unknown field \"load\"", NULL);
    expect_refused("{\"type\":\"progress\",\"trial_id\":1,\"lease\":\"0123456789abcdef0123456789"
                   "abcdef\",\"epoch\":{\"epoch\":1,\"colour\":2}}",
                   CV_EINVAL, "progress: epoch: unknown field \"colour\"", NULL);
    expect_refused("{\"type\":\"trial\",\"trial_id\":1,\"job_id\":1,\"lease\":\"0123456789abcdef"
                   "0123456789abcdef\",\"spec\":{},\"files\":{\"weights\":{}}}",
                   CV_EINVAL, "trial: files: unknown field \"weights\"", NULL);
    expect_refused("{\"type\":\"ack\",\"trial_id\":1,\"stored\":true,\"trial_id\":2}", CV_EINVAL,
                   "ack: field \"trial_id\" given twice", NULL);
    expect_refused("{\"type\":\"result\",\"trial_id\":1,\"lease\":\"0123456789abcdef0123456789"
                   "abcdef\",\"model_bytes\":0,\"model_crc32\":0,\"result\":{\"status\":"
                   "\"completed\",\"best_epoch\":1,\"epochs_run\":1,\"dev_cost\":0.5,"
                   "\"dev_error\":0.5,\"diagnosis\":{\"name\":\"fine\",\"avoidable_bias\":0,"
                   "\"variance\":0,\"remedy\":\"\",\"mood\":1}}}",
                   CV_EINVAL, "result: result.diagnosis: unknown field \"mood\"", NULL);
}
END_TEST

#define RESULT_HEAD                                                                                \
    "{\"type\":\"result\",\"trial_id\":1,\"lease\":\"0123456789abcdef0123456789abcdef\","          \
    "\"model_bytes\":0,\"model_crc32\":0,\"result\":{\"status\":\"completed\",\"best_epoch\":1,"   \
    "\"epochs_run\":1,\"dev_cost\":0.5,\"dev_error\":0.5,"

START_TEST(diagnosis_verdicts_and_optional_members_are_checked) {
    expect_accepted(RESULT_HEAD "\"n_params\":354,\"diagnosis\":{\"name\":\"collapsed\","
                                "\"avoidable_bias\":0.9,\"variance\":0,\"remedy\":\"lower it\","
                                "\"human_error_assumed\":0,\"human_error_given\":false,"
                                "\"explanation\":\"chance level\"}}}",
                    CV_MSG_RESULT);
    expect_accepted(RESULT_HEAD "\"diagnosis\":{\"name\":\"learning_rate_too_high\","
                                "\"avoidable_bias\":0.1,\"variance\":0,\"remedy\":\"r\"}}}",
                    CV_MSG_RESULT);
    expect_refused(RESULT_HEAD "\"diagnosis\":{\"name\":\"bored\",\"avoidable_bias\":0.1,"
                               "\"variance\":0,\"remedy\":\"r\"}}}",
                   CV_EINVAL, "result.diagnosis.name", NULL);
    expect_refused(RESULT_HEAD "\"diagnosis\":{\"name\":\"fine\",\"avoidable_bias\":0.1,"
                               "\"variance\":0,\"remedy\":\"r\",\"human_error_assumed\":1.5}}}",
                   CV_ERANGE, "result.diagnosis.human_error_assumed", NULL);
    expect_refused(RESULT_HEAD "\"diagnosis\":{\"name\":\"fine\",\"avoidable_bias\":0.1,"
                               "\"variance\":0,\"remedy\":\"r\",\"human_error_given\":1}}}",
                   CV_EINVAL, "result.diagnosis.human_error_given", NULL);
    expect_refused(RESULT_HEAD "\"n_params\":-3}}", CV_ERANGE, "result.n_params", NULL);
}
END_TEST

START_TEST(worker_id_must_match_its_pattern) {
    expect_refused("{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"a b\",\"version\":\"1\","
                   "\"threads\":1,\"host\":\"h\"}",
                   CV_EINVAL, "hello: worker_id: must match [A-Za-z0-9._:-]{1,64}, got \"a b\"",
                   NULL);
    expect_refused("{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"\",\"version\":\"1\","
                   "\"threads\":1,\"host\":\"h\"}",
                   CV_EINVAL, "hello: worker_id", NULL);
}
END_TEST

START_TEST(string_limits_count_characters_not_bytes) {
    /* 64 two-byte characters are 128 bytes and still within version's 64 characters. */
    char text[1024], version[256] = "";
    for (int i = 0; i < 64; i++)
        strcat(version, "\xc3\xa9");
    snprintf(text, sizeof text,
             "{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"w\","
             "\"version\":\"%s\",\"threads\":1,\"host\":\"h\"}",
             version);
    expect_accepted(text, CV_MSG_HELLO);
    strcat(version, "x");
    snprintf(text, sizeof text,
             "{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"w\","
             "\"version\":\"%s\",\"threads\":1,\"host\":\"h\"}",
             version);
    expect_refused(text, CV_ERANGE, "hello: version: must be at most 64 characters, got 65", NULL);
}
END_TEST

START_TEST(hello_strings_must_be_utf8_without_nul) {
    /* On the wire: the decoder names the field and the byte. */
    expect_refused("{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"w\",\"version\":\"1\","
                   "\"threads\":1,\"host\":\"h\xc0\xae\"}",
                   CV_EFORMAT, "host: invalid UTF-8 in a string at byte 80", NULL);
    expect_refused(
        "{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"w\",\"version\":\"1\\u0000x\","
        "\"threads\":1,\"host\":\"h\"}",
        CV_EFORMAT, "version: \\u0000 (a NUL character) in a string at byte 57", NULL);
    expect_refused(
        "{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"w\",\"version\":\"\xed\xa0\x80\","
        "\"threads\":1,\"host\":\"h\"}",
        CV_EFORMAT, "version: invalid UTF-8", NULL);
    /* A tree built in memory is checked by the validator itself. */
    char err[CV_ERRLEN] = "";
    cv_msg_t msg;
    cJSON *hello = cJSON_Parse("{\"type\":\"hello\",\"protocol\":1,\"worker_id\":\"w\","
                               "\"version\":\"1\",\"threads\":1,\"host\":\"h\"}");
    ck_assert_ptr_nonnull(hello);
    ck_assert_ptr_nonnull(cJSON_SetValuestring(cJSON_GetObjectItem(hello, "host"), "ab\xf8"));
    ck_assert_int_eq(cv_msg_validate(hello, &msg, err), CV_EINVAL);
    ck_assert_str_eq(err, "hello: host: must be UTF-8 text, and byte 2 is not");
    cJSON_Delete(hello);
}
END_TEST

START_TEST(too_many_leases_or_reattached_ids_are_refused) {
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "{\"type\":\"welcome\",\"protocol\":1,"
                     "\"heartbeat_seconds\":1,\"lease_seconds\":1,\"reattached\":[1");
    for (int i = 2; i <= 17; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, ",%d", i);
    snprintf(text + n, sizeof text - (size_t)n, "]}");
    expect_refused(text, CV_ERANGE, "welcome: reattached: must hold at most 16", NULL);

    cv_msg_hello_t h = {
        .worker_id = "w", .version = "1", .threads = 1, .host = "h", .n_leases = 17};
    char err[CV_ERRLEN] = "";
    ck_assert_ptr_null(cv_msg_hello(&h, err));
    ck_assert_ptr_nonnull(strstr(err, "hello: leases: must hold at most 16"));
}
END_TEST

START_TEST(builders_refuse_what_the_peer_would_refuse) {
    char err[CV_ERRLEN] = "";
    ck_assert_ptr_null(cv_msg_stop(0, err));
    ck_assert_ptr_nonnull(strstr(err, "stop: trial_id"));
    cv_epoch_t e = {.epoch = 1, .learning_rate = 0.1, .dev_error = NAN, .dev_cost = NAN};
    ck_assert_ptr_null(cv_msg_progress(1, LEASE, &e, err));
    ck_assert_ptr_nonnull(strstr(err, "progress: epoch: dev_error and dev_cost"));
    ck_assert_ptr_null(cv_msg_progress(1, "NOT-A-LEASE", &e, err));
    ck_assert_ptr_nonnull(strstr(err, "progress: lease"));
    ck_assert_ptr_null(cv_msg_result(1, LEASE, NULL, 0, 0, err));
    ck_assert_ptr_nonnull(strstr(err, "result: result: required field is missing"));
    cv_msg_hello_t h = {.worker_id = "has space", .version = "1", .threads = 1, .host = "h"};
    ck_assert_ptr_null(cv_msg_hello(&h, err));
    ck_assert_ptr_nonnull(strstr(err, "hello: worker_id"));
    cv_msg_file_t f = {.field = "weights", .bytes = 1};
    strcpy(f.hash, HASH);
    cJSON *spec = cJSON_CreateObject();
    ck_assert_ptr_null(build_trial(1, 1, LEASE, spec, &f, 1, NULL, 0, err));
    ck_assert_ptr_nonnull(strstr(err, "trial: files: unknown field \"weights\""));
    const int backwards[] = {3, 2};
    ck_assert_ptr_null(build_trial(1, 1, LEASE, spec, NULL, 0, backwards, 2, err));
    ck_assert_ptr_nonnull(strstr(err, "trial: decide_at[1]: must be above the epoch before it"));
    int many[CV_MSG_DECIDE_MAX + 1];
    for (int i = 0; i <= CV_MSG_DECIDE_MAX; i++)
        many[i] = i + 1;
    ck_assert_ptr_null(build_trial(1, 1, LEASE, spec, NULL, 0, many, CV_MSG_DECIDE_MAX + 1, err));
    ck_assert_ptr_nonnull(strstr(err, "trial: decide_at: must hold at most 32 epochs, got 33"));
    ck_assert_ptr_null(cv_msg_decision(1, 0, 1, err));
    ck_assert_ptr_nonnull(strstr(err, "decision: epoch: must be an integer in [1, 100000], got 0"));
    cJSON_Delete(spec);
}
END_TEST

START_TEST(dataset_builder_refuses_bad_hashes_and_sizes) {
    char err[CV_ERRLEN] = "";
    cJSON *ok = cv_msg_ack(1, 1, err);
    ck_assert_ptr_nonnull(ok);
    cJSON_Delete(ok);
    ck_assert_ptr_null(cv_msg_dataset("zz", 1, err));
    ck_assert_ptr_nonnull(strstr(err, "dataset: hash"));
    ck_assert_ptr_null(cv_msg_dataset(HASH, -1, err));
    ck_assert_ptr_nonnull(strstr(err, "dataset: bytes: must be an integer >= 0, got -1"));
}
END_TEST

START_TEST(trial_decide_at_round_trips) {
    char err[CV_ERRLEN] = "";
    cJSON *spec = cJSON_Parse("{\"epochs\":40}");
    const int at[] = {1, 2, 10, 100000};
    cv_msg_t m;
    round_trip(build_trial(9, 3, LEASE, spec, NULL, 0, at, 4, err), &m);
    cJSON_Delete(spec);
    ck_assert_int_eq(m.type, CV_MSG_TRIAL);
    ck_assert_uint_eq(m.trial.n_decide_at, 4);
    ck_assert_int_eq(m.trial.decide_at[0], 1);
    ck_assert_int_eq(m.trial.decide_at[1], 2);
    ck_assert_int_eq(m.trial.decide_at[2], 10);
    ck_assert_int_eq(m.trial.decide_at[3], 100000);
    cv_msg_finish(&m);
}
END_TEST

START_TEST(decision_round_trips_both_verdicts) {
    char err[CV_ERRLEN] = "";
    cv_msg_t m;
    round_trip(cv_msg_decision(12, 3, 1, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_DECISION);
    ck_assert_int_eq(m.decision.trial_id, 12);
    ck_assert_int_eq(m.decision.epoch, 3);
    ck_assert_int_eq(m.decision.stop, 1);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(m.root, "stop")));
    cv_msg_finish(&m);
    round_trip(cv_msg_decision(12, 5, 0, err), &m);
    ck_assert_int_eq(m.decision.epoch, 5);
    ck_assert_int_eq(m.decision.stop, 0);
    cv_msg_finish(&m);
    ck_assert_str_eq(cv_msg_type_name(CV_MSG_DECISION), "decision");
}
END_TEST

START_TEST(nudge_and_nudged_round_trip) {
    char err[CV_ERRLEN] = "";
    cv_msg_t m;
    cJSON *values = cJSON_Parse("{\"learning_rate\":0.0003,\"keep_prob\":[0.9,0.8]}");
    round_trip(cv_msg_nudge(12, 2, values, 0, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_NUDGE);
    ck_assert_int_eq(m.nudge.trial_id, 12);
    ck_assert_int_eq(m.nudge.seq, 2);
    ck_assert_int_eq(m.nudge.at_epoch, 0);
    ck_assert(cJSON_Compare(m.nudge.values, values, 1));
    ck_assert_ptr_null(cJSON_GetObjectItem(m.root, "at_epoch"));
    cv_msg_finish(&m);
    round_trip(cv_msg_nudge(12, 3, values, 40, err), &m);
    ck_assert_int_eq(m.nudge.at_epoch, 40);
    cv_msg_finish(&m);
    round_trip(cv_msg_nudged(12, LEASE, 3, 41, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_NUDGED);
    ck_assert_int_eq(m.nudged.trial_id, 12);
    ck_assert_str_eq(m.nudged.lease, LEASE);
    ck_assert_int_eq(m.nudged.seq, 3);
    ck_assert_int_eq(m.nudged.epoch, 41);
    cv_msg_finish(&m);
    cJSON *empty = cJSON_CreateObject();
    ck_assert_ptr_null(cv_msg_nudge(12, 1, empty, 0, err));
    ck_assert_str_eq(err, "nudge: values: must be a non-empty object, got object");
    ck_assert_ptr_null(cv_msg_nudged(12, LEASE, 1, 0, err));
    ck_assert_ptr_nonnull(strstr(err, "nudged: epoch: must be an integer in [1, 100000], got 0"));
    cJSON_Delete(empty);
    cJSON_Delete(values);
    ck_assert_str_eq(cv_msg_type_name(CV_MSG_NUDGED), "nudged");
}
END_TEST

START_TEST(pruned_result_round_trips_with_its_best_epoch) {
    char err[CV_ERRLEN] = "";
    cv_trial_result_t r = completed_result();
    r.status = CV_TRIAL_PRUNED;
    cv_msg_t m;
    round_trip(cv_msg_result(3, LEASE, &r, 512, 9, err), &m);
    ck_assert_int_eq(m.result.result.status, CV_TRIAL_PRUNED);
    ck_assert_str_eq(cv_trial_status_name(m.result.result.status), "pruned");
    ck_assert_int_eq(m.result.result.best_epoch, 3);
    ck_assert_int_eq(m.result.result.epochs_run, 5);
    ck_assert_double_eq(m.result.result.best.dev_error, 0.25);
    ck_assert_int_eq(m.result.model_bytes, 512);
    cv_msg_finish(&m);
}
END_TEST

START_TEST(malformed_decisions_and_decide_at_are_named) {
    expect_refused("{\"type\":\"decision\",\"trial_id\":1,\"epoch\":2}", CV_EINVAL,
                   "decision: stop: required field is missing", NULL);
    expect_refused("{\"type\":\"decision\",\"trial_id\":1,\"stop\":true}", CV_EINVAL,
                   "decision: epoch: required field is missing", NULL);
    expect_refused("{\"type\":\"decision\",\"trial_id\":1,\"epoch\":2,\"stop\":\"yes\"}", CV_EINVAL,
                   "decision: stop: must be a boolean, got \"yes\"", NULL);
    expect_refused("{\"type\":\"decision\",\"trial_id\":1,\"epoch\":2.5,\"stop\":true}", CV_EINVAL,
                   "decision: epoch: must be an integer in [1, 100000], got 2.5", NULL);
    expect_refused("{\"type\":\"decision\",\"trial_id\":1,\"epoch\":0,\"stop\":true}", CV_ERANGE,
                   "decision: epoch", "got 0", NULL);
    expect_refused("{\"type\":\"decision\",\"trial_id\":0,\"epoch\":1,\"stop\":true}", CV_ERANGE,
                   "decision: trial_id", NULL);
    expect_refused("{\"type\":\"decision\",\"trial_id\":1,\"epoch\":1,\"stop\":true,"
                   "\"why\":1}",
                   CV_EINVAL, "decision", "\"why\"", NULL);
#define TRIAL_HEAD                                                                                 \
    "{\"type\":\"trial\",\"trial_id\":1,\"job_id\":1,\"lease\":"                                   \
    "\"0123456789abcdef0123456789abcdef\",\"spec\":{},\"files\":{},"
    expect_refused(TRIAL_HEAD "\"decide_at\":3}", CV_EINVAL,
                   "trial: decide_at: must be an array, got 3", NULL);
    expect_refused(TRIAL_HEAD "\"decide_at\":[1,0]}", CV_ERANGE,
                   "trial: decide_at[1]: must be an integer in [1, 100000], got 0", NULL);
    expect_refused(TRIAL_HEAD "\"decide_at\":[1,\"2\"]}", CV_EINVAL, "trial: decide_at[1]", "\"2\"",
                   NULL);
    expect_refused(TRIAL_HEAD "\"decide_at\":[2,2]}", CV_EINVAL,
                   "trial: decide_at[1]: must be above the epoch before it (2), got 2", NULL);
    expect_refused(TRIAL_HEAD "\"decide_at\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,"
                              "21,22,23,24,25,26,27,28,29,30,31,32,33]}",
                   CV_ERANGE, "trial: decide_at: must hold at most 32 epochs, got 33", NULL);
    expect_accepted(TRIAL_HEAD "\"decide_at\":[]}", CV_MSG_TRIAL);
#undef TRIAL_HEAD
    expect_refused("{\"type\":\"result\",\"trial_id\":4,"
                   "\"lease\":\"0123456789abcdef0123456789abcdef\","
                   "\"model_bytes\":0,\"model_crc32\":0,\"result\":{\"status\":\"prune\","
                   "\"best_epoch\":0,\"epochs_run\":0,\"dev_error\":null,\"dev_cost\":null}}",
                   CV_EINVAL, "result.status", "\"pruned\"", "\"prune\"", NULL);
}
END_TEST

START_TEST(importance_round_trips_rows_bounds_and_seed) {
    const double x[] = {-3.5, 0.25, -1.0, 1.0, -2.125, 0.0}, y[] = {0.3125, 0.1, 1e-300};
    const double lo[] = {-4.0, -0.5}, hi[] = {-1.0, 1.5};
    char err[CV_ERRLEN] = "";
    cv_msg_t m;
    round_trip(cv_msg_importance(12, LEASE, 9007199254740992LL, x, y, 3, 2, lo, hi, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_IMPORTANCE);
    ck_assert_int_eq(m.importance.job_id, 12);
    ck_assert_str_eq(m.importance.lease, LEASE);
    ck_assert_int_eq(m.importance.seed, 9007199254740992LL);
    ck_assert_uint_eq(m.importance.n, 3);
    ck_assert_uint_eq(m.importance.p, 2);
    double gx[6], gy[3], glo[2], ghi[2];
    cv_msg_importance_rows(&m.importance, gx, gy, glo, ghi);
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(gx[i], x[i]);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(gy[i], y[i]);
    ck_assert_double_eq(glo[0], -4.0);
    ck_assert_double_eq(ghi[1], 1.5);
    cv_msg_finish(&m);
}
END_TEST

START_TEST(importance_result_round_trips_figures_or_error) {
    char err[CV_ERRLEN] = "";
    cv_msg_importance_result_t r = {.job_id = 12,
                                    .p = 3,
                                    .fraction = {0.8, 0.05, 0},
                                    .importance = {0.9411764705882353, 0.0588235294117647, 0}};
    memcpy(r.lease, LEASE, sizeof r.lease);
    cv_msg_t m;
    round_trip(cv_msg_importance_result(&r, err), &m);
    ck_assert_int_eq(m.type, CV_MSG_IMPORTANCE_RESULT);
    ck_assert_uint_eq(m.importance_result.p, 3);
    ck_assert_ptr_null(m.importance_result.error);
    for (int d = 0; d < 3; d++) {
        ck_assert_double_eq(m.importance_result.fraction[d], r.fraction[d]);
        ck_assert_double_eq(m.importance_result.importance[d], r.importance[d]);
    }
    cv_msg_finish(&m);
    cv_msg_importance_result_t e = {.job_id = 12, .error = "no memory for the forest"};
    memcpy(e.lease, LEASE, sizeof e.lease);
    round_trip(cv_msg_importance_result(&e, err), &m);
    ck_assert_str_eq(m.importance_result.error, "no memory for the forest");
    ck_assert_uint_eq(m.importance_result.p, 0);
    cv_msg_finish(&m);
}
END_TEST

#define IMP_HEAD                                                                                   \
    "{\"type\":\"importance\",\"job_id\":3,\"lease\":\"0123456789abcdef0123456789abcdef\","

START_TEST(malformed_importance_tasks_and_answers_are_named) {
    expect_refused(IMP_HEAD "\"seed\":3,\"lo\":[0],\"hi\":[1],\"x\":[[0.5],[2]],\"y\":[1]}",
                   CV_ERANGE, "importance: y:", "2 to 100000", NULL);
    expect_refused(IMP_HEAD "\"seed\":3,\"lo\":[0,0],\"hi\":[1,1],\"x\":[[0.5,1],[2]],"
                            "\"y\":[1,2]}",
                   CV_ERANGE, "importance: x[1]:", "must hold 2 numbers, got 1", NULL);
    expect_refused(IMP_HEAD "\"seed\":3,\"lo\":[2],\"hi\":[1],\"x\":[[0.5],[2]],\"y\":[1,2]}",
                   CV_ERANGE, "importance: hi[0]:", "at least lo[0]", NULL);
    expect_refused(IMP_HEAD "\"seed\":3,\"lo\":[0],\"hi\":[1],\"x\":[[0.5],[\"2\"]],"
                            "\"y\":[1,2]}",
                   CV_EINVAL, "importance: x[1][0]:", "must be a number", NULL);
    expect_refused(IMP_HEAD "\"lo\":[0],\"hi\":[1],\"x\":[[0.5],[2]],\"y\":[1,2]}", CV_EINVAL,
                   "importance: seed:", "missing", NULL);
    expect_refused("{\"type\":\"importance_result\",\"job_id\":3,\"lease\":"
                   "\"0123456789abcdef0123456789abcdef\",\"fraction\":[0.5,1.5],"
                   "\"importance\":[0.25,0.75]}",
                   CV_ERANGE, "importance_result: fraction[1]:", "[0, 1]", NULL);
    expect_refused("{\"type\":\"importance_result\",\"job_id\":3,\"lease\":"
                   "\"0123456789abcdef0123456789abcdef\",\"fraction\":[0.5,0.5],"
                   "\"importance\":[1]}",
                   CV_ERANGE, "importance_result: importance:", "must hold 2 numbers", NULL);
}
END_TEST

static Suite *message_suite(void) {
    Suite *s = suite_create("message");
    TCase *rt = tcase_create("round_trip");
    tcase_add_test(rt, hello_round_trips_with_token_and_leases);
    tcase_add_test(rt, hello_without_token_or_leases_omits_them);
    tcase_add_test(rt, hello_round_trips_trainers_and_refuses_bad_names);
    tcase_add_test(rt, progress_sends_unknown_metrics_as_null);
    tcase_add_test(rt, trial_objective_round_trips_and_is_absent_by_default);
    tcase_add_test(rt, heartbeat_round_trips_as_its_type_alone);
    tcase_add_test(rt, progress_round_trips_every_metric);
    tcase_add_test(rt, result_round_trips_and_keeps_extra_result_members);
    tcase_add_test(rt, result_struct_round_trips_member_by_member);
    tcase_add_test(rt, result_fault_names_job_or_worker);
    tcase_add_test(rt, failed_result_with_null_metrics_round_trips_as_nan);
    tcase_add_test(rt, dataset_get_round_trips);
    tcase_add_test(rt, welcome_round_trips);
    tcase_add_test(rt, trial_round_trips_and_its_spec_can_be_taken);
    tcase_add_test(rt, ack_stop_dataset_and_error_round_trip);
    tcase_add_test(rt, validate_borrows_the_callers_tree);
    tcase_add_test(rt, type_names_match_the_wire);
    tcase_add_test(rt, trial_decide_at_round_trips);
    tcase_add_test(rt, decision_round_trips_both_verdicts);
    tcase_add_test(rt, nudge_and_nudged_round_trip);
    tcase_add_test(rt, pruned_result_round_trips_with_its_best_epoch);
    tcase_add_test(rt, importance_round_trips_rows_bounds_and_seed);
    tcase_add_test(rt, importance_result_round_trips_figures_or_error);
    suite_add_tcase(s, rt);
    TCase *bad = tcase_create("refusals");
    tcase_add_test(bad, unknown_or_missing_type_is_refused);
    tcase_add_test(bad, malformed_json_is_a_format_error);
    tcase_add_test(bad, missing_required_fields_are_named);
    tcase_add_test(bad, wrong_json_types_are_named);
    tcase_add_test(bad, bad_leases_and_hashes_are_refused);
    tcase_add_test(bad, out_of_range_metrics_are_refused);
    tcase_add_test(bad, null_progress_metrics_are_unknown_but_not_both_dev_ones);
    tcase_add_test(bad, integers_outside_their_range_are_refused);
    tcase_add_test(bad, unknown_fields_are_refused_where_the_schema_closes_objects);
    tcase_add_test(bad, diagnosis_verdicts_and_optional_members_are_checked);
    tcase_add_test(bad, worker_id_must_match_its_pattern);
    tcase_add_test(bad, string_limits_count_characters_not_bytes);
    tcase_add_test(bad, hello_strings_must_be_utf8_without_nul);
    tcase_add_test(bad, too_many_leases_or_reattached_ids_are_refused);
    tcase_add_test(bad, builders_refuse_what_the_peer_would_refuse);
    tcase_add_test(bad, dataset_builder_refuses_bad_hashes_and_sizes);
    tcase_add_test(bad, malformed_decisions_and_decide_at_are_named);
    tcase_add_test(bad, malformed_importance_tasks_and_answers_are_named);
    suite_add_tcase(s, bad);
    return s;
}

CV_TEST_MAIN(message_suite)
