/* Ask/tell from a shell: `caviar ask JOB` leases the next trial of an ask job and prints it as
 * one line of JSON (id, lease, params, ...), `caviar report TRIAL --lease L epoch=3 dev_error=...`
 * sends one epoch's metrics and prints the pruner's decision (continue, exit 0; stop, exit 3),
 * and `caviar tell TRIAL --lease L dev_error=... dev_cost=...` (or --failed REASON) stores the
 * result (schemas/api.md, "Ask/tell"). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/commands_internal.h"
#include "common/err.h"

#define METRIC_WORDS_MAX 16 /* NAME=NUMBER words of one report or tell */
#define ASK_RETRY_MAX    30 /* seconds between asks at most, whatever retry_after says */

/* Reads one NAME=NUMBER word into obj as a JSON number; the server checks the names. */
static int add_metric(cJSON *obj, const char *word, char *err) {
    const char *eq = strchr(word, '=');
    if (eq == NULL || eq == word)
        return cv_errf(err, CV_CLI_EUSAGE, "\"%s\": expected NAME=NUMBER (dev_error=0.1)", word);
    char name[64];
    size_t n = (size_t)(eq - word);
    if (n >= sizeof name) return cv_errf(err, CV_CLI_EUSAGE, "%.20s...: name too long", word);
    memcpy(name, word, n);
    name[n] = '\0';
    char *end = NULL;
    double v = strtod(eq + 1, &end);
    if (eq[1] == '\0' || *end != '\0' || !isfinite(v))
        return cv_errf(err, CV_CLI_EUSAGE, "%s: must be a number, got \"%s\"", name, eq + 1);
    if (cJSON_GetObjectItemCaseSensitive(obj, name))
        return cv_errf(err, CV_CLI_EUSAGE, "%s: given twice", name);
    return cJSON_AddNumberToObject(obj, name, v) ? 0 : cv_errf(err, CV_ENOMEM, "out of memory");
}

/* POSTs obj (borrowed) to path; on success *reply holds the answer (the caller finishes it). */
static int post_json(cv_cli_t *cli, const char *path, const cJSON *obj, cv_http_reply_t *reply,
                     char *err) {
    char *body = cJSON_PrintUnformatted(obj);
    if (body == NULL) return cv_errf(err, CV_ENOMEM, "out of memory");
    int rc = cv_cli_api(cli, "POST", path, body, strlen(body), 0, reply, err);
    cJSON_free(body);
    return rc;
}

/* ask JOB [--client NAME] [--no-wait]: waits (as the server's retry_after says) until the job
 * hands out a trial, and prints it. A job that will have no more trials ends with CV_CLI_ESTOP
 * (exit 3); with --no-wait, so does a job with none to hand out now. */
int cv_cmd_ask(cv_cli_t *cli, int argc, char **argv, char *err) {
    const char *pos[1], *client = NULL;
    size_t n_pos = 0;
    int no_wait = 0;
    int64_t id = 0;
    const cv_arg_opt_t opts[] = {{"--client", NULL, CV_ARG_STRING, &client, 0, 0},
                                 {"--no-wait", NULL, CV_ARG_FLAG, &no_wait, 0, 0}};
    int rc = cv_cli_parse_args(argc, argv, opts, 2, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL || (client && !cJSON_AddStringToObject(obj, "client", client))) {
        cJSON_Delete(obj);
        return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    char path[PATH_TEXT_MAX];
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/ask", id);
    for (;;) {
        cv_http_reply_t reply;
        if ((rc = post_json(cli, path, obj, &reply, err)) < 0) break;
        const cJSON *trial = cv_cli_field(reply.json, "trial");
        int done = cJSON_IsTrue(cv_cli_field(reply.json, "done"));
        double wait = cv_cli_field_num(reply.json, "retry_after", 1);
        char *text = cJSON_IsObject(trial) ? cJSON_PrintUnformatted(trial) : NULL;
        if (text) {
            if (cli->json)
                cv_cli_print_raw(cli, &reply);
            else
                fprintf(cli->out, "%s\n", text);
        }
        cJSON_free(text);
        int got = cJSON_IsObject(trial);
        cv_http_reply_finish(&reply);
        if (got) break;
        if (done || no_wait) {
            rc = cv_errf(err, CV_CLI_ESTOP, "job %" PRId64 " has %s", id,
                         done ? "ended: it has no more trials" : "no trial to hand out now");
            break;
        }
        cv_cli_sleep_unless_stopped(cli, wait > 0 && wait < ASK_RETRY_MAX ? wait : 1);
        if (*cli->stop) {
            rc = cv_errf(err, CV_ESTOPPED, "interrupted while waiting for a trial");
            break;
        }
    }
    cJSON_Delete(obj);
    return rc;
}

/* The body of a report or a tell: {"lease": lease, ...the NAME=NUMBER words}. */
static int metrics_body(const char *lease, const char **words, size_t n, cJSON **out, char *err) {
    cJSON *obj = cJSON_CreateObject();
    int rc = obj && cJSON_AddStringToObject(obj, "lease", lease)
                 ? 0
                 : cv_errf(err, CV_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = add_metric(obj, words[i], err);
    if (rc)
        cJSON_Delete(obj);
    else
        *out = obj;
    return rc;
}

/* report TRIAL --lease L epoch=E dev_error=X dev_cost=Y [...]: prints continue (0) or stop
 * (CV_CLI_ESTOP, exit 3). */
int cv_cmd_report(cv_cli_t *cli, int argc, char **argv, char *err) {
    const char *pos[1 + METRIC_WORDS_MAX], *lease = NULL;
    size_t n_pos = 0;
    int64_t id = 0;
    const cv_arg_opt_t opts[] = {{"--lease", NULL, CV_ARG_STRING, &lease, 0, 0}};
    int rc = cv_cli_parse_args(argc, argv, opts, 1, pos, 2, 1 + METRIC_WORDS_MAX, &n_pos,
                               "TRIAL NAME=NUMBER...", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "TRIAL", &id, err);
    if (rc == 0 && !lease) rc = cv_errf(err, CV_CLI_EUSAGE, "--lease: is required");
    cJSON *obj = NULL;
    if (rc == 0) rc = metrics_body(lease, pos + 1, n_pos - 1, &obj, err);
    if (rc < 0) return rc;
    char path[PATH_TEXT_MAX];
    snprintf(path, sizeof path, "/v1/trials/%" PRId64 "/report", id);
    cv_http_reply_t reply;
    rc = post_json(cli, path, obj, &reply, err);
    cJSON_Delete(obj);
    if (rc < 0) return rc;
    const char *decision = cv_cli_field_str(reply.json, "decision", "continue");
    int stop = strcmp(decision, "stop") == 0;
    if (cli->json)
        cv_cli_print_raw(cli, &reply);
    else
        fprintf(cli->out, "%s\n", stop ? "stop" : "continue");
    cv_http_reply_finish(&reply);
    return stop ? cv_errf(err, CV_CLI_ESTOP,
                          "trial %" PRId64 " is pruned: stop training and "
                          "tell its result",
                          id)
                : 0;
}

/* tell TRIAL --lease L dev_error=X dev_cost=Y [...] | --failed REASON: prints the trial's
 * stored status. */
int cv_cmd_tell(cv_cli_t *cli, int argc, char **argv, char *err) {
    const char *pos[1 + METRIC_WORDS_MAX], *lease = NULL, *failed = NULL;
    size_t n_pos = 0;
    int64_t id = 0;
    const cv_arg_opt_t opts[] = {{"--lease", NULL, CV_ARG_STRING, &lease, 0, 0},
                                 {"--failed", NULL, CV_ARG_STRING, &failed, 0, 0}};
    int rc = cv_cli_parse_args(argc, argv, opts, 2, pos, 1, 1 + METRIC_WORDS_MAX, &n_pos,
                               "TRIAL NAME=NUMBER... | TRIAL --failed REASON", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "TRIAL", &id, err);
    if (rc == 0 && !lease) rc = cv_errf(err, CV_CLI_EUSAGE, "--lease: is required");
    if (rc == 0 && failed && n_pos > 1)
        rc = cv_errf(err, CV_CLI_EUSAGE, "--failed takes no metrics (a failed trial has none)");
    if (rc == 0 && !failed && n_pos < 2)
        rc = cv_errf(err, CV_CLI_EUSAGE,
                     "the metrics (dev_error=X dev_cost=Y) or --failed "
                     "REASON are required");
    cJSON *obj = NULL;
    if (rc == 0) rc = metrics_body(lease, pos + 1, n_pos - 1, &obj, err);
    if (rc < 0) return rc;
    if (!cJSON_AddStringToObject(obj, "status", failed ? "failed" : "completed") ||
        (failed && !cJSON_AddStringToObject(obj, "error", failed))) {
        cJSON_Delete(obj);
        return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    char path[PATH_TEXT_MAX];
    snprintf(path, sizeof path, "/v1/trials/%" PRId64 "/tell", id);
    cv_http_reply_t reply;
    rc = post_json(cli, path, obj, &reply, err);
    cJSON_Delete(obj);
    if (rc < 0) return rc;
    if (cli->json)
        cv_cli_print_raw(cli, &reply);
    else
        fprintf(cli->out, "trial %" PRId64 " %s\n", id,
                cv_cli_field_str(reply.json, "status", "stored"));
    cv_http_reply_finish(&reply);
    return 0;
}
