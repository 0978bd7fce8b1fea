/* The client's overview commands: status (the job list, or one job's detail) and workers
 * (the pool, and releasing a quarantined worker). */
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

/* Trial statuses in lifecycle order, as the API names them. */
static const char *const TRIAL_STATUSES[] = {"queued", "running",  "completed", "pruned",
                                             "failed", "diverged", "lost",      "cancelled"};

/* One row of the job list: the list entry, completed by the job's detail when it could be
 * fetched (detail may be NULL). */
static void job_row(cv_table_t *t, const cJSON *entry, const cJSON *detail) {
    char buf[CV_FMT_CELL];
    const cJSON *job = detail ? detail : entry;
    const char *objective = cv_cli_job_objective(job);
    double max = cv_cli_job_max_trials(job);
    cv_table_add_row(t);
    cv_table_set(t, 0, cv_fmt_number(cv_cli_field(entry, "id"), buf, sizeof buf));
    cv_table_set(t, 1, cv_cli_field_str(entry, "name", "-"));
    cv_table_set(t, 2, cv_cli_field_str(job, "status", "?"));
    cv_table_set(t, 3, cv_cli_format_round(job, buf, sizeof buf));
    if (!detail) return;
    if (max >= 0)
        cv_table_setf(t, 4, "%.0f/%.0f", cv_cli_count_of(job, "completed"), max);
    else
        cv_table_setf(t, 4, "%.0f", cv_cli_count_of(job, "completed"));
    cv_table_setf(t, 5, "%.0f", cv_cli_field_num(job, "running", cv_cli_count_of(job, "running")));
    cv_table_setf(t, 6, "%.0f", cv_cli_count_of(job, "queued"));
    cv_table_setf(t, 7, "%.0f",
                  cv_cli_count_of(job, "failed") + cv_cli_count_of(job, "diverged") +
                      cv_cli_count_of(job, "lost"));
    cv_table_set(t, 8, objective);
    cv_table_set(t, 9,
                 cv_fmt_number(cv_cli_trial_objective(cv_cli_field(job, "best"), objective), buf,
                               sizeof buf));
}

/* `caviar status` without a job: every job as a table row. */
static int print_job_list(cv_cli_t *cli, char *err) {
    static const char *const headers[] = {"ID",      "NAME",   "STATUS", "ROUND",     "COMPLETED",
                                          "RUNNING", "QUEUED", "FAILED", "OBJECTIVE", "BEST"};
    static const int right[] = {1, 0, 0, 1, 1, 1, 1, 1, 0, 1};
    cv_http_reply_t list;
    const cJSON *entry;
    int rc = cv_cli_api_get_list(cli, "/v1/jobs", "jobs", 0, 0, &list, err);
    if (rc < 0) return rc;
    if (cli->json) {
        rc = cv_cli_print_raw(cli, &list);
        cv_http_reply_finish(&list);
        return rc;
    }
    const cJSON *jobs = cv_cli_field(list.json, "jobs");
    if (cJSON_GetArraySize(jobs) == 0) {
        fprintf(cli->out, "no jobs\n");
        cv_http_reply_finish(&list);
        return 0;
    }
    cv_table_t *t = cv_table_create();
    if (!t) {
        cv_http_reply_finish(&list);
        return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        cv_table_add_column(t, headers[i], right[i] ? CV_TABLE_RIGHT : CV_TABLE_LEFT);
    cJSON_ArrayForEach(entry, jobs) {
        cv_http_reply_t detail;
        const cJSON *id = cv_cli_field(entry, "id");
        /* Counts and the best trial are only in a job's detail: one more request per job. */
        int got = cJSON_IsNumber(id) &&
                  cv_cli_fetch_job(cli, (int64_t)id->valuedouble, &detail, NULL) == 0;
        job_row(t, entry, got ? detail.json : NULL);
        if (got) cv_http_reply_finish(&detail);
        if (*cli->stop) break;
    }
    rc = cv_table_print(t, cli->out, 0);
    if (rc < 0) rc = cv_errf(err, rc, "cannot print the job table: %s", cv_strerror(rc));
    cv_table_destroy(t);
    cv_http_reply_finish(&list);
    return rc;
}

/* Prints "  key        value" lines of a detail view. */
static void detail_line(FILE *out, const char *key, const char *value) {
    fprintf(out, "  %-10s %s\n", key, value);
}

/* A region's parameter as "[min, max]" or "{a 0.70, b 0.30}". */
static void format_region_param(const cJSON *p, char *buf, size_t cap) {
    char lo[CV_FMT_CELL], hi[CV_FMT_CELL];
    const cJSON *weights = cv_cli_field(p, "weights"), *w;
    if (cJSON_IsNumber(cv_cli_field(p, "min")) || cJSON_IsNumber(cv_cli_field(p, "max"))) {
        snprintf(buf, cap, "[%s, %s]", cv_fmt_number(cv_cli_field(p, "min"), lo, sizeof lo),
                 cv_fmt_number(cv_cli_field(p, "max"), hi, sizeof hi));
        return;
    }
    if (!cJSON_IsObject(weights)) {
        cv_fmt_value(p, buf, cap);
        return;
    }
    size_t n = (size_t)snprintf(buf, cap, "{");
    cJSON_ArrayForEach(w, weights) {
        if (n >= cap) break;
        n += (size_t)snprintf(buf + n, cap - n, "%s%s %.2f", n > 1 ? ", " : "", w->string,
                              cJSON_IsNumber(w) ? w->valuedouble : 0.0);
    }
    if (n < cap) snprintf(buf + n, cap - n, "}");
}

/* The counts of a job as "12 completed, 2 running, ..." (non-zero ones, in lifecycle order). */
static void format_counts(const cJSON *job, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof TRIAL_STATUSES / sizeof TRIAL_STATUSES[0] && n < cap; i++) {
        double c = cv_cli_count_of(job, TRIAL_STATUSES[i]);
        if (c > 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s%.0f %s", n ? ", " : "", c,
                                  TRIAL_STATUSES[i]);
    }
    double max = cv_cli_job_max_trials(job);
    if (n == 0) n = (size_t)snprintf(buf, cap, "none yet");
    if (n < cap && max >= 0) snprintf(buf + n, cap - n, " (max %.0f)", max);
}

/* The params of a trial as "name value, name value". */
static void format_params_inline(const cJSON *trial, char *buf, size_t cap) {
    char v[CV_FMT_CELL];
    const cJSON *p;
    size_t n = 0;
    buf[0] = '\0';
    cJSON_ArrayForEach(p, cv_cli_field(trial, "params")) {
        if (n >= cap) break;
        n += (size_t)snprintf(buf + n, cap - n, "%s%s %s", n ? ", " : "", p->string,
                              cv_fmt_value(p, v, sizeof v));
    }
}

/* `caviar status JOB`: one job in detail. */
static void print_job_detail(cv_cli_t *cli, int64_t id, const cJSON *job) {
    char buf[1024], round[32], value[CV_FMT_CELL];
    const char *objective = cv_cli_job_objective(job);
    const cJSON *best = cv_cli_field(job, "best"), *p;
    FILE *out = cli->out;

    fprintf(out, "job %" PRId64 ": %s\n", id, cv_cli_field_str(job, "name", "(unnamed)"));
    detail_line(out, "status", cv_cli_field_str(job, "status", "?"));
    detail_line(out, "objective", objective);
    cv_cli_format_round(job, round, sizeof round);
    detail_line(out, "round", round);
    format_counts(job, buf, sizeof buf);
    detail_line(out, "trials", buf);
    detail_line(out, "created", cv_fmt_time(cv_cli_field(job, "created_at"), value, sizeof value));
    if (cJSON_IsNumber(cv_cli_field(job, "finished_at")))
        detail_line(out, "finished",
                    cv_fmt_time(cv_cli_field(job, "finished_at"), value, sizeof value));
    const char *key = "region";
    cJSON_ArrayForEach(p, cv_cli_field(job, "region")) {
        char range[512];
        format_region_param(p, range, sizeof range);
        snprintf(buf, sizeof buf, "%s %s", p->string, range);
        detail_line(out, key, buf);
        key = "";
    }
    if (cJSON_IsObject(best)) {
        char dev_cost[CV_FMT_CELL], train[CV_FMT_CELL], diag[CV_FMT_CELL];
        snprintf(buf, sizeof buf, "trial %.0f: %s %s, dev_cost %s, train_error %s, %s epochs, %s",
                 cv_cli_field_num(best, "id", 0), objective,
                 cv_fmt_number(cv_cli_trial_objective(best, objective), value, sizeof value),
                 cv_fmt_number(cv_cli_field(best, "dev_cost"), dev_cost, sizeof dev_cost),
                 cv_fmt_number(cv_cli_field(best, "train_error"), train, sizeof train),
                 cv_fmt_number(cv_cli_field(best, "epochs_run"), round, sizeof round),
                 cv_fmt_diagnosis(cv_cli_field(best, "diagnosis"), diag, sizeof diag));
        detail_line(out, "best", buf);
        format_params_inline(best, buf, sizeof buf);
        detail_line(out, "", buf);
    } else {
        detail_line(out, "best", "no completed trial yet");
    }
    if (cJSON_IsObject(cv_cli_field(job, "test_result"))) {
        cv_cli_format_test_result(cv_cli_field(job, "test_result"), buf, sizeof buf);
        detail_line(out, "test", buf);
    }
    if (cJSON_GetArraySize(cv_cli_field(job, "quarantined_workers")) > 0) {
        size_t n = 0;
        buf[0] = '\0';
        cJSON_ArrayForEach(p, cv_cli_field(job, "quarantined_workers")) {
            if (n < sizeof buf)
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? ", " : "",
                                      cv_cli_field_str(p, "worker_id", "?"));
        }
        if (n < sizeof buf)
            snprintf(buf + n, sizeof buf - n, " (they get no trials; see caviar workers)");
        detail_line(out, "quarantine", buf);
    }
    if (cJSON_IsString(cv_cli_field(job, "error")))
        detail_line(out, "error", cv_cli_field_str(job, "error", ""));
}

int cv_cmd_status(cv_cli_t *cli, int argc, char **argv, char *err) {
    const char *pos[1];
    size_t n_pos;
    int64_t id;
    cv_http_reply_t reply;
    int rc = cv_cli_parse_args(argc, argv, NULL, 0, pos, 0, 1, &n_pos, "JOB", err);
    if (rc < 0) return rc;
    if (n_pos == 0) return print_job_list(cli, err);
    rc = cv_cli_parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    rc = cv_cli_fetch_job(cli, id, &reply, err);
    if (rc < 0) return rc;
    if (cli->json)
        rc = cv_cli_print_raw(cli, &reply);
    else
        print_job_detail(cli, id, reply.json);
    cv_http_reply_finish(&reply);
    return rc;
}

/* POST /v1/workers/{id}/release: lifts a worker's quarantine and says what changed. */
static int release_worker(cv_cli_t *cli, const char *worker_id, char *err) {
    char path[PATH_TEXT_MAX];
    cv_http_reply_t reply;
    if (!*worker_id || strlen(worker_id) > 64)
        return cv_errf(err, CV_CLI_EUSAGE, "--release: a worker id has 1 to 64 characters");
    for (const char *c = worker_id; *c; c++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-", *c))
            return cv_errf(err, CV_CLI_EUSAGE,
                           "--release: \"%s\" is not a worker id "
                           "(letters, digits, '.', '_', ':' and '-')",
                           worker_id);
    snprintf(path, sizeof path, "/v1/workers/%s/release", worker_id);
    int rc = cv_cli_api(cli, "POST", path, NULL, 0, 0, &reply, err);
    if (rc < 0) return rc;
    if (cli->json)
        rc = cv_cli_print_raw(cli, &reply);
    else if (cJSON_IsTrue(cv_cli_field(reply.json, "was_quarantined")))
        fprintf(cli->out, "worker %s released from quarantine: it gets trials again\n", worker_id);
    else
        fprintf(cli->out, "worker %s was not quarantined\n", worker_id);
    cv_http_reply_finish(&reply);
    return rc;
}

/* A worker's state word: the API's "state" (idle, running, quarantined, disconnected). */
static const char *worker_state(const cJSON *w) {
    const char *state = cv_cli_field_str(w, "state", NULL);
    if (state) return state;
    if (cJSON_IsTrue(cv_cli_field(w, "quarantined")) || cv_cli_field_num(w, "quarantined", 0) == 1)
        return "quarantined";
    return "?";
}

/* How long ago a timestamp was, for a table: "4 s ago", "12 min ago", or the time itself when
 * it is more than an hour ago; "-" when missing. */
static char *format_ago(const cJSON *v, char *buf, size_t cap) {
    double age = cJSON_IsNumber(v) ? (double)time(NULL) - v->valuedouble : -1;
    if (!cJSON_IsNumber(v)) return cv_fmt_time(v, buf, cap);
    if (age < 1)
        snprintf(buf, cap, "just now");
    else if (age < 120)
        snprintf(buf, cap, "%.0f s ago", floor(age));
    else if (age < 3600)
        snprintf(buf, cap, "%.0f min ago", floor(age / 60));
    else
        cv_fmt_time(v, buf, cap);
    return buf;
}

int cv_cmd_workers(cv_cli_t *cli, int argc, char **argv, char *err) {
    static const char *const headers[] = {"ID",  "HOST",  "VERSION", "THREADS", "STATE",
                                          "JOB", "TRIAL", "DONE",    "FAILS",   "LAST_SEEN"};
    static const int right[] = {0, 0, 0, 1, 0, 1, 1, 1, 1, 0};
    char buf[CV_FMT_CELL];
    const char *pos[1];
    size_t n_pos;
    cv_http_reply_t reply;
    const cJSON *w;
    const char *release = NULL;
    const cv_arg_opt_t opts[] = {{"--release", NULL, CV_ARG_STRING, &release, 0, 0}};
    int rc = cv_cli_parse_args(argc, argv, opts, 1, pos, 0, 0, &n_pos, "", err);
    if (rc < 0) return rc;
    if (release) return release_worker(cli, release, err);
    rc = cv_cli_api_get_list(cli, "/v1/workers", "workers", 0, 0, &reply, err);
    if (rc < 0) return rc;
    const cJSON *workers = cv_cli_field(reply.json, "workers");
    if (cli->json) {
        rc = cv_cli_print_raw(cli, &reply);
        goto out;
    }
    if (cJSON_GetArraySize(workers) == 0) {
        fprintf(cli->out, "no workers\n");
        goto out;
    }
    cv_table_t *t = cv_table_create();
    if (!t) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        cv_table_add_column(t, headers[i], right[i] ? CV_TABLE_RIGHT : CV_TABLE_LEFT);
    cJSON_ArrayForEach(w, workers) {
        cv_table_add_row(t);
        cv_table_set(t, 0, cv_fmt_value(cv_cli_field(w, "id"), buf, sizeof buf));
        cv_table_set(t, 1, cv_fmt_value(cv_cli_field(w, "host"), buf, sizeof buf));
        cv_table_set(t, 2, cv_fmt_value(cv_cli_field(w, "version"), buf, sizeof buf));
        cv_table_set(t, 3, cv_fmt_number(cv_cli_field(w, "threads"), buf, sizeof buf));
        cv_table_set(t, 4, worker_state(w));
        cv_table_set(t, 5, cv_fmt_number(cv_cli_field(w, "job_id"), buf, sizeof buf));
        cv_table_set(t, 6, cv_fmt_number(cv_cli_field(w, "trial_id"), buf, sizeof buf));
        cv_table_set(t, 7, cv_fmt_number(cv_cli_field(w, "trials_done"), buf, sizeof buf));
        cv_table_set(t, 8, cv_fmt_number(cv_cli_field(w, "consecutive_failures"), buf, sizeof buf));
        cv_table_set(t, 9, format_ago(cv_cli_field(w, "last_seen"), buf, sizeof buf));
    }
    rc = cv_table_print(t, cli->out, 0);
    if (rc < 0) rc = cv_errf(err, rc, "cannot print the worker table: %s", cv_strerror(rc));
    cv_table_destroy(t);
out:
    cv_http_reply_finish(&reply);
    return rc;
}
