/* The client's model commands: model (download a trial's model file), evaluate (the test-set
 * score of a job's best trial or ensemble) and export (a job's trials as CSV). */
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
#include "client/optuna_export.h"
#include "client/table.h"
#include "common/err.h"
#include "common/json.h"

#define EVALUATE_MS (30L * 60 * 1000) /* evaluation trains nothing, but reads the test set */

#define MODEL_MS (5L * 60 * 1000) /* a model download: the file is read, then sent */

/* Writes len bytes to path ("-": stdout, refused when it is a terminal). */
static int write_file(cv_cli_t *cli, const char *path, const char *data, size_t len, char *err) {
    int to_stdout = strcmp(path, "-") == 0;
    if (to_stdout && isatty(fileno(cli->out)))
        return cv_errf(err, CV_CLI_EUSAGE, "a model is binary: give -o FILE, or redirect stdout");
    FILE *f = to_stdout ? cli->out : fopen(path, "wb");
    if (!f) return cv_errf(err, CV_EIO, "%s: %s", path, strerror(errno));
    size_t n = fwrite(data, 1, len, f);
    int failed = n != len || (to_stdout ? fflush(f) != 0 : fclose(f) != 0);
    if (failed && !to_stdout && n != len) fclose(f);
    if (failed)
        return cv_errf(err, CV_EIO, "%s: write failed: %s", to_stdout ? "stdout" : path,
                       strerror(errno));
    return 0;
}

int cv_cmd_model(cv_cli_t *cli, int argc, char **argv, char *err) {
    char path[PATH_TEXT_MAX], fallback[64];
    const char *output = NULL, *pos[1];
    size_t n_pos;
    int64_t id;
    cv_http_reply_t reply;
    const cv_arg_opt_t opts[] = {{"--output", "-o", CV_ARG_STRING, &output, 0, 0}};
    int rc = cv_cli_parse_args(argc, argv, opts, 1, pos, 1, 1, &n_pos, "trial ID", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "trial ID", &id, err);
    if (rc < 0) return rc;
    if (!output) {
        snprintf(fallback, sizeof fallback, "trial-%" PRId64 ".model", id);
        output = fallback;
    }
    snprintf(path, sizeof path, "/v1/trials/%" PRId64 "/model", id);
    rc = cv_http_request(cli->http, "GET", path, NULL, 0, MODEL_MS, &reply, err);
    if (rc < 0) return rc;
    if (reply.status != 200) {
        const char *message = cv_http_reply_error(&reply);
        rc = message ? cv_errf(err, CV_CLI_EHTTP, "%s (HTTP %ld)", message, reply.status)
                     : cv_errf(err, CV_CLI_EHTTP, "GET %s: the server answered HTTP %ld", path,
                               reply.status);
    } else {
        rc = write_file(cli, output, reply.body, reply.body_len, err);
        if (rc == 0 && strcmp(output, "-") != 0)
            fprintf(stderr, "wrote the model of trial %" PRId64 " (%zu bytes) to %s\n", id,
                    reply.body_len, output);
    }
    cv_http_reply_finish(&reply);
    return rc;
}

/* Asks for the test-set evaluation of a job's best trial (or top-k ensemble; 0: whatever the
 * job was scored with, else the best trial) and prints it. The server scores a job's test set
 * once: asking for another ensemble size than the stored one is refused with its reason. */
int cv_cli_evaluate_job(cv_cli_t *cli, int64_t id, int64_t ensemble, char *err) {
    char path[PATH_TEXT_MAX], body[64] = "", line[512];
    cv_http_reply_t reply;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/evaluate", id);
    int len =
        ensemble > 0 ? snprintf(body, sizeof body, "{\"ensemble\": %" PRId64 "}", ensemble) : 0;
    int rc =
        cv_cli_api(cli, "POST", path, len ? body : NULL, (size_t)len, EVALUATE_MS, &reply, err);
    if (rc < 0) return rc;
    /* 202: the evaluation runs in the background; its result lands in the job's test_result. */
    for (double waited = 0; reply.status == 202 && !*cli->stop; waited += 0.2) {
        cv_http_reply_t job;
        cv_http_reply_finish(&reply);
        if (waited > EVALUATE_MS / 1000.0)
            return cv_errf(err, CV_EIO, "the evaluation of job %" PRId64 " did not finish", id);
        cv_cli_sleep_unless_stopped(cli, 0.2);
        if ((rc = cv_cli_fetch_job(cli, id, &job, err)) < 0) return rc;
        cJSON *result = cJSON_DetachItemFromObjectCaseSensitive(job.json, "test_result");
        if (cJSON_IsObject(result)) {
            cJSON_Delete(job.json);
            job.json = result;
            job.status = 200;
            result = NULL;
        } else {
            job.status = 202; /* not there yet: keep polling */
        }
        cJSON_Delete(result);
        reply = job;
    }
    if (!cli->json && cJSON_IsString(cv_cli_field(reply.json, "error"))) {
        rc = cv_errf(err, CV_EINVAL, "evaluation failed: %s",
                     cv_cli_field(reply.json, "error")->valuestring);
    } else if (cli->json) {
        rc = cv_cli_print_raw(cli, &reply);
    } else if (!cJSON_IsNumber(cv_cli_field(reply.json, "test_accuracy"))) {
        rc = cv_errf(err, CV_EFORMAT, "the evaluation answer has no test_accuracy");
    } else {
        cv_cli_format_test_result(reply.json, line, sizeof line);
        fprintf(cli->out, "%s%s\n", line,
                cJSON_IsTrue(cv_cli_field(reply.json, "cached")) ? " [stored result]" : "");
    }
    cv_http_reply_finish(&reply);
    return rc;
}

int cv_cmd_evaluate(cv_cli_t *cli, int argc, char **argv, char *err) {
    int64_t ensemble = 0, id; /* 0: not given */
    const char *pos[1];
    size_t n_pos;
    const cv_arg_opt_t opts[] = {{"--ensemble", "-e", CV_ARG_INT, &ensemble, 1, 16}};
    int rc = cv_cli_parse_args(argc, argv, opts, 1, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    return cv_cli_evaluate_job(cli, id, ensemble, err);
}

/* Writes trials as CSV: identity columns, one column per parameter, then the metrics. */
static void write_trials_csv(FILE *f, const cJSON *job, const cJSON *trials) {
    static const char *const head[] = {"id", "number", "round", "status", "attempts"};
    static const char *const tail[] = {
        "dev_error",  "dev_cost",   "train_error", "train_cost",          "train_cost_reg",
        "best_epoch", "epochs_run", "diagnosis",   "examples_per_second", "error"};
    char buf[1024];
    const cJSON *trial;
    param_names_t params;
    cv_cli_collect_param_names(job, trials, &params);
    size_t n_head = sizeof head / sizeof head[0], n_tail = sizeof tail / sizeof tail[0];

    for (size_t i = 0; i < n_head; i++)
        fprintf(f, "%s%s", i ? "," : "", head[i]);
    for (size_t i = 0; i < params.n; i++) {
        fputc(',', f);
        cv_fmt_csv_field(f, params.names[i]);
    }
    for (size_t i = 0; i < n_tail; i++)
        fprintf(f, ",%s", tail[i]);
    fputs("\r\n", f);
    cJSON_ArrayForEach(trial, trials) {
        for (size_t i = 0; i < n_head; i++) {
            if (i) fputc(',', f);
            cv_fmt_csv_field(f, cv_fmt_value_exact(cv_cli_field(trial, head[i]), buf, sizeof buf));
        }
        for (size_t i = 0; i < params.n; i++) {
            fputc(',', f);
            cv_fmt_csv_field(
                f, cv_fmt_value_exact(cv_cli_field(cv_cli_field(trial, "params"), params.names[i]),
                                      buf, sizeof buf));
        }
        for (size_t i = 0; i < n_tail; i++) {
            const cJSON *v = cv_cli_field(trial, tail[i]);
            fputc(',', f);
            if (strcmp(tail[i], "diagnosis") == 0 && cJSON_IsObject(v))
                cv_fmt_csv_field(f, cv_fmt_diagnosis(v, buf, sizeof buf));
            else
                cv_fmt_csv_field(f, cv_fmt_value_exact(v, buf, sizeof buf));
        }
        fputs("\r\n", f);
    }
}

/* Adds to each trial row the "curve" of its GET /v1/trials/{id} answer, for the Optuna export's
 * intermediate values. */
static int attach_curves(cv_cli_t *cli, cJSON *trials, char *err) {
    cJSON *trial;
    cJSON_ArrayForEach(trial, trials) {
        char path[PATH_TEXT_MAX];
        cv_http_reply_t detail;
        const cJSON *id = cv_cli_field(trial, "id");
        if (!cJSON_IsNumber(id)) return cv_errf(err, CV_EFORMAT, "a trial row has no \"id\"");
        snprintf(path, sizeof path, "/v1/trials/%.0f", id->valuedouble);
        int rc = cv_cli_api_get(cli, path, &detail, err);
        if (rc < 0) return rc;
        cJSON *curve = cJSON_DetachItemFromObjectCaseSensitive(detail.json, "curve");
        cv_http_reply_finish(&detail);
        if (curve && !cJSON_AddItemToObject(trial, "curve", curve)) {
            cJSON_Delete(curve);
            return cv_errf(err, CV_ENOMEM, "out of memory reading the curves");
        }
    }
    return 0;
}

int cv_cmd_export(cv_cli_t *cli, int argc, char **argv, char *err) {
    char path[PATH_TEXT_MAX];
    int csv = 0;
    const char *output = "-", *optuna = NULL, *study = NULL, *pos[1];
    size_t n_pos;
    int64_t id;
    cv_http_reply_t job, answer;
    FILE *f = NULL;
    const cv_arg_opt_t opts[] = {
        {"--csv", NULL, CV_ARG_FLAG, &csv, 0, 0},
        {"--output", "-o", CV_ARG_STRING, &output, 0, 0},
        {"--optuna", NULL, CV_ARG_STRING, &optuna, 0, 0},
        {"--study", NULL, CV_ARG_STRING, &study, 0, 0},
    };
    int rc = cv_cli_parse_args(argc, argv, opts, 4, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "JOB", &id, err);
    if (rc == 0 && optuna && (csv || strcmp(output, "-") != 0))
        rc = cv_errf(err, CV_CLI_EUSAGE, "--optuna FILE writes a study; it takes no --csv or -o");
    if (rc == 0 && study && !optuna)
        rc = cv_errf(err, CV_CLI_EUSAGE, "--study names the study of --optuna FILE");
    if (rc < 0) return rc;
    rc = cv_cli_fetch_job(cli, id, &job, err);
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/trials?order=number", id);
    rc = cv_cli_api_get_list(cli, path, "trials", 0, 0, &answer, err);
    if (rc < 0) goto out_job;
    cJSON *trials = cv_cli_answer_trials(&answer);
    if (!trials && (!cli->json || optuna)) {
        rc = cv_errf(err, CV_EFORMAT, "GET %s: the answer has no \"trials\" array", path);
        goto out_answer;
    }
    if (optuna) {
        rc = attach_curves(cli, trials, err);
        if (rc == 0) rc = cv_optuna_export(optuna, study, job.json, trials, err);
        if (rc == 0)
            fprintf(stderr, "wrote %d trials to %s as Optuna study \"%s\"\n",
                    cJSON_GetArraySize(trials), optuna,
                    study ? study : cJSON_GetStringValue(cv_cli_field(job.json, "name")));
        goto out_answer;
    }
    int to_stdout = strcmp(output, "-") == 0;
    f = to_stdout ? cli->out : fopen(output, "w");
    if (!f) {
        rc = cv_errf(err, CV_EIO, "%s: %s", output, strerror(errno));
        goto out_answer;
    }
    if (cli->json) {
        fputs(answer.body, f);
        fputc('\n', f);
    } else {
        write_trials_csv(f, job.json, trials);
    }
    if (to_stdout ? fflush(f) != 0 || ferror(f) : fclose(f) != 0)
        rc = cv_errf(err, CV_EIO, "%s: write failed: %s", to_stdout ? "stdout" : output,
                     strerror(errno));
    else if (!to_stdout)
        fprintf(stderr, "wrote %d trials to %s\n", cJSON_GetArraySize(trials), output);
out_answer:
    cv_http_reply_finish(&answer);
out_job:
    cv_http_reply_finish(&job);
    return rc;
}
