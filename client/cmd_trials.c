/* The client's trial commands: best and trials (tables of a job's trials) and trial (one
 * trial's detail and learning curve). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/commands_internal.h"
#include "client/format.h"
#include "client/table.h"
#include "common/err.h"
#include "common/json.h"

#define CURVE_ROWS_MAX 20 /* learning-curve rows shown before thinning */

/* 1 when some trial gives the parameter a value that is not a number: its column reads better
 * aligned left. */
static int param_is_text(const cJSON *trials, const char *name) {
    const cJSON *trial;
    cJSON_ArrayForEach(trial, trials) {
        const cJSON *v = cv_cli_field(cv_cli_field(trial, "params"), name);
        if (v && !cJSON_IsNumber(v) && !cJSON_IsNull(v)) return 1;
    }
    return 0;
}

/* Prints trials as a table: ranked (best first, with the objective) or listed (with number,
 * round and status). Parameter columns follow the job's space. */
static int print_trial_table(cv_cli_t *cli, const cJSON *job, const cJSON *trials,
                             trial_table_kind_t kind, char *err) {
    static const char *const ranked[] = {"RANK", "TRIAL", "OBJECTIVE"};
    static const char *const listed[] = {"TRIAL", "NUMBER", "ROUND", "STATUS"};
    static const char *const metrics[] = {"DEV_ERROR", "DEV_COST", "TRAIN_ERROR", "EPOCHS",
                                          "DIAGNOSIS"};
    char buf[CV_FMT_CELL];
    const char *objective = cv_cli_job_objective(job);
    const cJSON *trial;
    param_names_t params;
    size_t lead = kind == TRIALS_RANKED ? 3 : 4, col;

    if (cJSON_GetArraySize(trials) == 0) {
        const char *status = cv_cli_field_str(job, "status", "running");
        if (kind == TRIALS_RANKED && strcmp(status, "running") != 0)
            fprintf(cli->out, "no completed trials: the job %s%s%s\n", status,
                    cJSON_IsString(cv_cli_field(job, "error")) ? ": " : "",
                    cv_cli_field_str(job, "error", ""));
        else
            fprintf(cli->out, kind == TRIALS_RANKED ? "no completed trials yet\n" : "no trials\n");
        return 0;
    }
    cv_cli_collect_param_names(job, trials, &params);
    cv_table_t *t = cv_table_create();
    if (!t) return cv_errf(err, CV_ENOMEM, "out of memory");
    for (size_t i = 0; i < lead; i++) {
        const char *h = kind == TRIALS_RANKED ? ranked[i] : listed[i];
        cv_table_add_column(t, h, strcmp(h, "STATUS") ? CV_TABLE_RIGHT : CV_TABLE_LEFT);
    }
    for (size_t i = 0; i < 5; i++)
        cv_table_add_column(t, metrics[i], i < 4 ? CV_TABLE_RIGHT : CV_TABLE_LEFT);
    for (size_t i = 0; i < params.n; i++)
        cv_table_add_column(t, params.names[i],
                            param_is_text(trials, params.names[i]) ? CV_TABLE_LEFT
                                                                   : CV_TABLE_RIGHT);

    int rank = 0;
    cJSON_ArrayForEach(trial, trials) {
        cv_table_add_row(t);
        col = 0;
        if (kind == TRIALS_RANKED) {
            cv_table_setf(t, col++, "%d", ++rank);
            cv_table_set(t, col++, cv_fmt_number(cv_cli_field(trial, "id"), buf, sizeof buf));
            cv_table_set(t, col++,
                         cv_fmt_number(cv_cli_trial_objective(trial, objective), buf, sizeof buf));
        } else {
            cv_table_set(t, col++, cv_fmt_number(cv_cli_field(trial, "id"), buf, sizeof buf));
            cv_table_set(t, col++, cv_fmt_number(cv_cli_field(trial, "number"), buf, sizeof buf));
            cv_table_set(t, col++, cv_fmt_number(cv_cli_field(trial, "round"), buf, sizeof buf));
            cv_table_set(t, col++, cv_cli_field_str(trial, "status", "?"));
        }
        cv_table_set(t, col++, cv_fmt_number(cv_cli_field(trial, "dev_error"), buf, sizeof buf));
        cv_table_set(t, col++, cv_fmt_number(cv_cli_field(trial, "dev_cost"), buf, sizeof buf));
        cv_table_set(t, col++, cv_fmt_number(cv_cli_field(trial, "train_error"), buf, sizeof buf));
        cv_table_set(t, col++, cv_fmt_number(cv_cli_field(trial, "epochs_run"), buf, sizeof buf));
        cv_table_set(t, col++, cv_fmt_diagnosis(cv_cli_field(trial, "diagnosis"), buf, sizeof buf));
        for (size_t i = 0; i < params.n; i++)
            cv_table_set(t, col++,
                         cv_fmt_value(cv_cli_field(cv_cli_field(trial, "params"), params.names[i]),
                                      buf, sizeof buf));
    }
    if (kind == TRIALS_RANKED) fprintf(cli->out, "objective: %s (smaller is better)\n", objective);
    int rc = cv_table_print(t, cli->out, 0);
    if (rc < 0) rc = cv_errf(err, rc, "cannot print the trial table: %s", cv_strerror(rc));
    cv_table_destroy(t);
    const cJSON *top = cJSON_GetArrayItem(trials, 0);
    if (rc == 0 && kind == TRIALS_RANKED && cJSON_IsString(cv_cli_field(top, "model_path")))
        fprintf(cli->out,
                "model of trial %.0f: %s (on the coordinator; caviar model %.0f -o FILE "
                "downloads it)\n",
                cv_cli_field_num(top, "id", 0), cv_cli_field_str(top, "model_path", ""),
                cv_cli_field_num(top, "id", 0));
    return rc;
}

/* Fetches a job and a page of its trials, then prints them (or the trials' JSON). */
int cv_cli_show_trials(cv_cli_t *cli, int64_t id, const char *order, int64_t limit, int64_t offset,
                       trial_table_kind_t kind, char *err) {
    char path[PATH_TEXT_MAX];
    cv_http_reply_t job, answer;
    int rc = cv_cli_fetch_job(cli, id, &job, err);
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/trials?order=%s", id, order);
    rc = cv_cli_api_get_list(cli, path, "trials", offset, limit, &answer, err);
    if (rc < 0) {
        cv_http_reply_finish(&job);
        return rc;
    }
    cJSON *trials = cv_cli_answer_trials(&answer);
    if (cli->json)
        rc = cv_cli_print_raw(cli, &answer);
    else if (!trials)
        rc = cv_errf(err, CV_EFORMAT, "GET %s: the answer has no \"trials\" array", path);
    else
        rc = print_trial_table(cli, job.json, trials, kind, err);
    cv_http_reply_finish(&answer);
    cv_http_reply_finish(&job);
    return rc;
}

int cv_cmd_best(cv_cli_t *cli, int argc, char **argv, char *err) {
    int64_t k = 5, id;
    const char *pos[1];
    size_t n_pos;
    const cv_arg_opt_t opts[] = {{"--top", "-k", CV_ARG_INT, &k, 1, 100000}};
    int rc = cv_cli_parse_args(argc, argv, opts, 1, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    return cv_cli_show_trials(cli, id, "best", k, 0, TRIALS_RANKED, err);
}

int cv_cmd_trials(cv_cli_t *cli, int argc, char **argv, char *err) {
    int64_t limit = 0, offset = 0, id;
    const char *order = "number", *pos[1];
    size_t n_pos;
    const cv_arg_opt_t opts[] = {
        {"--order", NULL, CV_ARG_STRING, &order, 0, 0},
        {"--limit", "-n", CV_ARG_INT, &limit, 1, 1e9},
        {"--offset", NULL, CV_ARG_INT, &offset, 0, 1e12},
    };
    int rc = cv_cli_parse_args(argc, argv, opts, 3, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    if (strcmp(order, "best") != 0 && strcmp(order, "number") != 0)
        return cv_errf(err, CV_CLI_EUSAGE, "--order: must be best or number, got \"%s\"", order);
    return cv_cli_show_trials(cli, id, order, limit, offset,
                              strcmp(order, "best") == 0 ? TRIALS_RANKED : TRIALS_LISTED, err);
}

/* The learning curve as a table, thinned to about CURVE_ROWS_MAX rows (the first, the last and
 * the best epoch are always kept; the best is marked with '*'). */
static int print_curve(cv_cli_t *cli, const cJSON *trial, char *err) {
    static const char *const cols[] = {"train_cost", "train_cost_reg", "dev_cost", "train_error",
                                       "dev_error",  "learning_rate",  "seconds"};
    static const char *const headers[] = {"TRAIN_COST", "TRAIN_COST_REG", "DEV_COST", "TRAIN_ERROR",
                                          "DEV_ERROR",  "LEARNING_RATE",  "SECONDS"};
    char buf[CV_FMT_CELL];
    const cJSON *curve = cv_cli_field(trial, "curve"), *point;
    int n = cJSON_GetArraySize(curve), i = 0;
    double best = cv_cli_field_num(trial, "best_epoch", -1);
    if (n == 0) {
        fprintf(cli->out, "curve: none recorded\n");
        return 0;
    }
    int step = (n + CURVE_ROWS_MAX - 1) / CURVE_ROWS_MAX;
    cv_table_t *t = cv_table_create();
    if (!t) return cv_errf(err, CV_ENOMEM, "out of memory");
    cv_table_add_column(t, "EPOCH", CV_TABLE_RIGHT);
    for (size_t c = 0; c < 7; c++)
        cv_table_add_column(t, headers[c], CV_TABLE_RIGHT);
    cJSON_ArrayForEach(point, curve) {
        double epoch = cv_cli_field_num(point, "epoch", i);
        if (i % step == 0 || i == n - 1 || epoch == best) {
            cv_table_add_row(t);
            cv_table_setf(t, 0, "%s%.0f", epoch == best ? "*" : "", epoch);
            for (size_t c = 0; c < 7; c++)
                cv_table_set(t, c + 1,
                             cv_fmt_number(cv_cli_field(point, cols[c]), buf, sizeof buf));
        }
        i++;
    }
    if (step > 1)
        fprintf(cli->out, "curve (every %d%s of %d epochs; * marks the best epoch)\n", step,
                step == 2   ? "nd"
                : step == 3 ? "rd"
                            : "th",
                n);
    else
        fprintf(cli->out, "curve (* marks the best epoch)\n");
    int rc = cv_table_print(t, cli->out, 2);
    if (rc < 0) rc = cv_errf(err, rc, "cannot print the curve: %s", cv_strerror(rc));
    cv_table_destroy(t);
    return rc;
}

/* The trial's nudges (panda mode), one line each: seq, the epoch it took effect at, values. */
static void print_nudges(FILE *out, const cJSON *trial) {
    const cJSON *n;
    if (cJSON_GetArraySize(cv_cli_field(trial, "nudges")) == 0) return;
    fprintf(out, "nudges\n");
    cJSON_ArrayForEach(n, cv_cli_field(trial, "nudges")) {
        char *values = cJSON_PrintUnformatted(cv_cli_field(n, "values"));
        double epoch = cv_cli_field_num(n, "epoch", 0);
        if (epoch > 0)
            fprintf(out, "  %.0f at epoch %.0f  %s\n", cv_cli_field_num(n, "seq", 0), epoch,
                    values ? values : "");
        else
            fprintf(out, "  %.0f not applied yet  %s\n", cv_cli_field_num(n, "seq", 0),
                    values ? values : "");
        cJSON_free(values);
    }
}

/* `caviar trial ID` in text. */
static int print_trial_detail(cv_cli_t *cli, int64_t id, const cJSON *trial, char *err) {
    static const char *const metrics[] = {"dev_error",  "dev_cost",           "train_error",
                                          "train_cost", "train_cost_reg",     "best_epoch",
                                          "epochs_run", "examples_per_second"};
    char buf[CV_FMT_CELL];
    const cJSON *p, *diag = cv_cli_field(trial, "diagnosis");
    FILE *out = cli->out;
    double attempts = cv_cli_field_num(trial, "attempts", 0),
           round = cv_cli_field_num(trial, "round", 0);

    fprintf(out, "trial %" PRId64 " (job %.0f, number %.0f, round %.0f): %s, %.0f attempt%s", id,
            cv_cli_field_num(trial, "job_id", 0), cv_cli_field_num(trial, "number", 0), round,
            cv_cli_field_str(trial, "status", "?"), attempts, attempts == 1 ? "" : "s");
    if (cJSON_IsString(cv_cli_field(trial, "worker_id")))
        fprintf(out, ", worker %s", cv_cli_field_str(trial, "worker_id", ""));
    fputc('\n', out);
    fprintf(out, "params\n");
    cJSON_ArrayForEach(p, cv_cli_field(trial, "params"))
        fprintf(out, "  %-20s %s\n", p->string, cv_fmt_value_exact(p, buf, sizeof buf));
    fprintf(out, "metrics\n");
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
        fprintf(out, "  %-20s %s\n", metrics[i],
                cv_fmt_number_digits(cv_cli_field(trial, metrics[i]), 6, buf, sizeof buf));
    if (cJSON_IsObject(diag)) {
        char bias[CV_FMT_CELL], var[CV_FMT_CELL];
        fprintf(out, "diagnosis  %s (avoidable bias %s, variance %s)\n",
                cv_fmt_diagnosis(diag, buf, sizeof buf),
                cv_fmt_number(cv_cli_field(diag, "avoidable_bias"), bias, sizeof bias),
                cv_fmt_number(cv_cli_field(diag, "variance"), var, sizeof var));
        if (cJSON_IsString(cv_cli_field(diag, "remedy")))
            fprintf(out, "  %s\n", cv_cli_field_str(diag, "remedy", ""));
    } else {
        fprintf(out, "diagnosis  %s\n", cv_fmt_diagnosis(diag, buf, sizeof buf));
    }
    if (cJSON_IsString(cv_cli_field(trial, "error")))
        fprintf(out, "error      %s\n", cv_cli_field_str(trial, "error", ""));
    if (cJSON_IsString(cv_cli_field(trial, "model_path")))
        fprintf(out,
                "model      %s (on the coordinator; caviar model %" PRId64 " -o FILE "
                "downloads it)\n",
                cv_cli_field_str(trial, "model_path", ""), id);
    else
        fprintf(out, "model      none%s\n",
                strcmp(cv_cli_field_str(trial, "status", ""), "completed") == 0 ||
                        strcmp(cv_cli_field_str(trial, "status", ""), "pruned") == 0
                    ? ""
                    : " (only completed and pruned trials keep their model)");
    print_nudges(out, trial);
    return print_curve(cli, trial, err);
}

int cv_cmd_trial(cv_cli_t *cli, int argc, char **argv, char *err) {
    char path[PATH_TEXT_MAX];
    const char *pos[1];
    size_t n_pos;
    int64_t id;
    cv_http_reply_t reply;
    int rc = cv_cli_parse_args(argc, argv, NULL, 0, pos, 1, 1, &n_pos, "trial ID", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "trial ID", &id, err);
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "/v1/trials/%" PRId64, id);
    rc = cv_cli_api_get(cli, path, &reply, err);
    if (rc < 0) return rc;
    cv_cli_normalize_json_text(reply.json, "params");
    if (cli->json)
        rc = cv_cli_print_raw(cli, &reply);
    else
        rc = print_trial_detail(cli, id, reply.json, err);
    cv_http_reply_finish(&reply);
    return rc;
}
