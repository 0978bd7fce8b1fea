/* dump_messages: the C side of tests/common/test_message_schema.py.
 *   dump_messages            prints one example of every protocol message, built by
 *                            common/message.c, as one compact JSON line each
 *   dump_messages --check    reads JSON messages from stdin, one per line, and prints for each
 *                            "ok <type>" or "refused <reason>" as cv_msg_parse judges it
 * The Python test validates the examples against schemas/worker-messages.schema.json and compares
 * the C verdicts with the schema's. Exits 1 when a builder fails or input cannot be read. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/message.h"

#define LEASE "0123456789abcdef0123456789abcdef"
#define HASH  "0d2a4b3c9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b"

/* Prints msg (consumed) as one line; returns 0, or 1 when it is NULL. */
static int emit(cJSON *msg, const char *what, const char *err) {
    if (msg == NULL) {
        fprintf(stderr, "dump_messages: %s: %s\n", what, err);
        return 1;
    }
    char *text = cJSON_PrintUnformatted(msg);
    cJSON_Delete(msg);
    if (text == NULL) return 1;
    puts(text);
    cJSON_free(text);
    return 0;
}

static int dump(void) {
    char err[CV_ERRLEN] = "";
    int failed = 0;

    cv_msg_hello_t h = {.worker_id = "box-1.lan:4242",
                        .version = "0.1.0",
                        .threads = 8,
                        .host = "box-1.lan",
                        .token = "secret",
                        .has_token = 1,
                        .n_leases = 2};
    h.leases[0].trial_id = 41;
    memcpy(h.leases[0].lease, LEASE, sizeof LEASE);
    h.leases[1].trial_id = 42;
    memcpy(h.leases[1].lease, LEASE, sizeof LEASE);
    h.n_trainers = 2;
    memcpy(h.trainers[0], "torch", sizeof "torch");
    memcpy(h.trainers[1], "sim-2.1_b", sizeof "sim-2.1_b");
    failed |= emit(cv_msg_hello(&h, err), "hello", err);
    cv_msg_hello_t bare = {.worker_id = "w", .version = "", .threads = 1, .host = ""};
    failed |= emit(cv_msg_hello(&bare, err), "hello without options", err);

    failed |= emit(cv_msg_heartbeat(err), "heartbeat", err);

    cv_epoch_t e = {.epoch = 3,
                    .train_cost = 0.41,
                    .train_cost_reg = 0.43,
                    .dev_cost = 0.47,
                    .train_error = 0.12,
                    .dev_error = 0.15,
                    .learning_rate = 0.01,
                    .seconds = 0.2,
                    .examples_per_second = 30000};
    failed |= emit(cv_msg_progress(42, LEASE, &e, err), "progress", err);

    cv_trial_result_t done = {.status = CV_TRIAL_COMPLETED,
                              .best_epoch = 3,
                              .epochs_run = 5,
                              .best = {.epoch = 3,
                                       .train_error = 0.12,
                                       .dev_error = 0.15,
                                       .train_cost = 0.41,
                                       .train_cost_reg = 0.43,
                                       .dev_cost = 0.47},
                              .examples_per_second = 30000,
                              .seconds = 1.5,
                              .m_train = 600,
                              .m_dev = 200,
                              .m_test = 200,
                              .n_params = 354,
                              .diagnosis = {.kind = CV_DIAG_COLLAPSED,
                                            .name = "collapsed",
                                            .avoidable_bias = 0.1,
                                            .variance = 0.03,
                                            .remedy = "lower the learning rate",
                                            .explanation = "the network predicts no better than "
                                                           "chance"}};
    failed |= emit(cv_msg_result(42, LEASE, &done, 2048, 3735928559u, err), "result", err);
    cv_trial_result_t bad = {.status = CV_TRIAL_FAILED,
                             .examples_per_second = NAN,
                             .error = "dataset.csv: no such file"};
    failed |= emit(cv_msg_result(43, LEASE, &bad, 0, 0, err), "failed result", err);
    cv_trial_result_t diverged = {.status = CV_TRIAL_DIVERGED,
                                  .best_epoch = 1,
                                  .epochs_run = 2,
                                  .best = {.epoch = 1,
                                           .train_error = NAN,
                                           .dev_error = 0.5,
                                           .train_cost = NAN,
                                           .train_cost_reg = NAN,
                                           .dev_cost = 0.69},
                                  .examples_per_second = NAN,
                                  .seconds = NAN,
                                  .diverged_epoch = 2,
                                  .error = "the cost became NaN"};
    failed |= emit(cv_msg_result(44, LEASE, &diverged, 100, 7, err), "diverged result", err);
    cv_trial_result_t pruned = done;
    pruned.status = CV_TRIAL_PRUNED;
    pruned.best_epoch = pruned.epochs_run = 2;
    pruned.diagnosis = (cv_diagnosis_t){.kind = CV_DIAG_HIGH_BIAS,
                                        .name = "high_bias",
                                        .avoidable_bias = 0.2,
                                        .variance = 0.05,
                                        .remedy = "a bigger network"};
    failed |= emit(cv_msg_result(45, LEASE, &pruned, 2048, 11, err), "pruned result", err);

    failed |= emit(cv_msg_dataset_get(HASH, err), "dataset_get", err);

    const int64_t ids[] = {41, 42};
    failed |= emit(cv_msg_welcome(5, 30, ids, 2, err), "welcome", err);
    failed |= emit(cv_msg_welcome(0.5, 2.5, NULL, 0, err), "welcome without leases", err);

    cJSON *spec =
        cJSON_Parse("{\"dataset\":{\"format\":\"csv\",\"csv\":\"examples/data/moons.csv\","
                    "\"label_column\":\"label\",\"classes\":2},\"split\":{\"train\":0.6,"
                    "\"dev\":0.2,\"test\":0.2},\"hidden_units\":[8],\"activation\":"
                    "\"tanh\",\"learning_rate\":0.01,\"epochs\":3,\"seed\":3}");
    cv_msg_file_t files[1] = {{.field = "csv", .bytes = 25000}};
    memcpy(files[0].hash, HASH, sizeof HASH);
    cv_msg_trial_t trial = {
        .trial_id = 42, .job_id = 7, .lease = LEASE, .spec = spec, .n_files = 1};
    trial.files[0] = files[0];
    failed |= emit(cv_msg_trial(&trial, err), "trial", err);
    cv_msg_trial_t decided = trial;
    decided.trial_id = 45;
    decided.decide_at[0] = 1, decided.decide_at[1] = 2, decided.decide_at[2] = 5;
    decided.n_decide_at = 3;
    failed |= emit(cv_msg_trial(&decided, err), "trial with decide_at", err);
    cJSON *program = cJSON_Parse("{\"lr\":0.01,\"epochs\":6,\"arch\":\"resnet\",\"seed\":3,"
                                 "\"trainer\":\"torch\"}");
    cv_msg_trial_t external = {.trial_id = 46, .job_id = 8, .lease = LEASE, .spec = program,
                               .objective = CV_MSG_OBJECTIVE_DEV_COST};
    failed |= emit(cv_msg_trial(&external, err), "trial of an external trainer", err);
    cJSON_Delete(program);
    cv_msg_model_t models[2] = {{.trial_id = 42, .bytes = 2048}, {.trial_id = 45, .bytes = 2048}};
    memcpy(models[0].hash, HASH, sizeof HASH);
    memcpy(models[1].hash, HASH, sizeof HASH);
    failed |= emit(cv_msg_evaluate(7, LEASE, spec, files, 1, models, 2, err), "evaluate", err);
    cJSON_Delete(spec);
    cv_msg_evaluation_t scored = {.job_id = 7, .lease = LEASE, .test_accuracy = 0.9475,
                                  .test_cost = 0.21, .examples = 400};
    failed |= emit(cv_msg_evaluation(&scored, err), "evaluation", err);
    cv_msg_evaluation_t refused = {.job_id = 7, .lease = LEASE, .error = "the split has no test set",
                                   .job_fault = 1};
    failed |= emit(cv_msg_evaluation(&refused, err), "failed evaluation", err);
    const double x[] = {-3.0, 0.5, -1.5, 1.0, -2.25, 0.0}, y[] = {0.31, 0.12, 0.2};
    const double lo[] = {-4.0, -0.5}, hi[] = {-1.0, 1.5};
    failed |= emit(cv_msg_importance(7, LEASE, 7, x, y, 3, 2, lo, hi, err), "importance", err);
    cv_msg_importance_result_t figures = {.job_id = 7,
                                          .lease = LEASE,
                                          .p = 2,
                                          .fraction = {0.75, 0.05},
                                          .importance = {0.9375, 0.0625}};
    failed |= emit(cv_msg_importance_result(&figures, err), "importance_result", err);
    cv_msg_importance_result_t none = {.job_id = 7, .lease = LEASE, .error = "out of memory"};
    failed |= emit(cv_msg_importance_result(&none, err), "failed importance_result", err);

    failed |= emit(cv_msg_ack(42, 1, err), "ack", err);
    failed |= emit(cv_msg_ack(43, 0, err), "stale ack", err);
    failed |= emit(cv_msg_stop(42, err), "stop", err);
    failed |= emit(cv_msg_dataset(HASH, 25000, err), "dataset", err);
    failed |= emit(cv_msg_error("unknown token", err), "error", err);
    failed |= emit(cv_msg_decision(45, 2, 1, err), "decision", err);
    failed |= emit(cv_msg_decision(45, 1, 0, err), "decision to go on", err);
    cJSON *values = cJSON_Parse("{\"learning_rate\":0.0003,\"keep_prob\":0.9}");
    failed |= emit(cv_msg_nudge(45, 1, values, 0, err), "nudge", err);
    failed |= emit(cv_msg_nudge(45, 2, values, 7, err), "nudge again at its epoch", err);
    cJSON_Delete(values);
    failed |= emit(cv_msg_nudged(45, LEASE, 2, 7, err), "nudged", err);
    return failed;
}

static int check(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char err[CV_ERRLEN] = "";
        cv_msg_t msg;
        if (cv_msg_parse(line, (size_t)n, &msg, err) == 0)
            printf("ok %s\n", cv_msg_type_name(msg.type));
        else
            printf("refused %s\n", err);
        cv_msg_finish(&msg);
    }
    free(line);
    return ferror(stdin) ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--check") == 0) return check();
    return dump();
}
