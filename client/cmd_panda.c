/* Panda mode from a shell: `caviar nudge TRIAL field=value ...` sends new hyperparameter values
 * to a running trial (POST /v1/trials/{id}/nudge), and `caviar panda SPEC.json` runs one long
 * trial (a job with nothing to search and one trial), shows its learning curve and its nudges as
 * it trains, and on Ctrl-C stops it at its next epoch boundary keeping its best epoch. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/commands_internal.h"
#include "common/err.h"
#include "common/json.h"

#define NUDGE_WORDS_MAX 32         /* field=value words of one nudge */
#define SPEC_FILE_MAX   (1u << 20) /* bytes of a trial spec file */

/* Reads one FIELD=VALUE word into obj: the value is JSON (a number, a boolean, a quoted string,
 * an array), or else taken as a string. Reasons name the field. */
static int add_assignment(cJSON *obj, const char *word, char *err) {
    const char *eq = strchr(word, '=');
    if (eq == NULL || eq == word)
        return cv_errf(err, CV_CLI_EUSAGE, "nudge: \"%s\": expected FIELD=VALUE", word);
    char field[64];
    size_t n = (size_t)(eq - word);
    if (n >= sizeof field) return cv_errf(err, CV_CLI_EUSAGE, "nudge: field name too long");
    memcpy(field, word, n);
    field[n] = '\0';
    const char *text = eq + 1;
    if (*text == '\0') return cv_errf(err, CV_CLI_EUSAGE, "%s: no value after =", field);
    if (cJSON_GetObjectItemCaseSensitive(obj, field))
        return cv_errf(err, CV_CLI_EUSAGE, "%s: given twice", field);
    cJSON *value = cJSON_ParseWithOpts(text, NULL, 1);
    if (value == NULL) value = cJSON_CreateString(text);
    if (value == NULL || !cJSON_AddItemToObject(obj, field, value)) {
        cJSON_Delete(value);
        return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    return 0;
}

/* POSTs the nudge body (JSON text) to trial id; on success *seq is its number. */
static int post_nudge(cv_cli_t *cli, int64_t id, const char *body, int64_t *seq, char *err) {
    char path[PATH_TEXT_MAX];
    cv_http_reply_t reply;
    snprintf(path, sizeof path, "/v1/trials/%" PRId64 "/nudge", id);
    int rc = cv_cli_api(cli, "POST", path, body, strlen(body), 0, &reply, err);
    if (rc < 0) return rc;
    *seq = (int64_t)cv_cli_field_num(reply.json, "seq", 0);
    if (cli->json) cv_cli_print_raw(cli, &reply);
    cv_http_reply_finish(&reply);
    return 0;
}

/* nudge TRIAL FIELD=VALUE...: new values for a running trial, applied at its next epoch. */
int cv_cmd_nudge(cv_cli_t *cli, int argc, char **argv, char *err) {
    const char *pos[1 + NUDGE_WORDS_MAX];
    size_t n_pos = 0;
    int64_t id = 0, seq = 0;
    int rc = cv_cli_parse_args(argc, argv, NULL, 0, pos, 2, 1 + NUDGE_WORDS_MAX, &n_pos,
                               "TRIAL FIELD=VALUE...", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "TRIAL", &id, err);
    if (rc < 0) return rc;
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL) return cv_errf(err, CV_ENOMEM, "out of memory");
    for (size_t i = 1; rc == 0 && i < n_pos; i++)
        rc = add_assignment(obj, pos[i], err);
    char *body = rc == 0 ? cJSON_PrintUnformatted(obj) : NULL;
    if (rc == 0 && body == NULL) rc = cv_errf(err, CV_ENOMEM, "out of memory");
    if (rc == 0) rc = post_nudge(cli, id, body, &seq, err);
    if (rc == 0 && !cli->json)
        fprintf(cli->out,
                "trial %" PRId64 ": nudge %" PRId64 " sent %s; it takes effect at the "
                "next epoch\n",
                id, seq, body);
    cJSON_free(body);
    cJSON_Delete(obj);
    return rc;
}

/* Reads the trial spec file at path into the job a panda run submits: the spec as the job's
 * trial, nothing to search, one trial, and a time budget only when max_seconds > 0. *text is
 * the job's JSON (the caller frees it with cJSON_free). */
static int panda_job_text(const char *path, const char *name, double max_seconds, char **text,
                          char *err) {
    char why[CV_ERRLEN];
    cJSON *spec = NULL;
    int changed = 0;
    int rc = cv_json_decode_file(path, SPEC_FILE_MAX, &spec, err);
    if (rc < 0) return rc;
    if (!cJSON_IsObject(spec)) {
        cJSON_Delete(spec);
        return cv_errf(err, CV_EFORMAT, "%s: a trial spec must be a JSON object", path);
    }
    cJSON *job = cJSON_CreateObject(), *budget = NULL;
    if (job && cJSON_AddStringToObject(job, "name", name) &&
        cJSON_AddItemToObject(job, "trial", spec)) {
        spec = NULL; /* the job owns it */
        budget = cJSON_CreateObject();
    }
    if (!budget || !cJSON_AddItemToObject(job, "budget", budget) ||
        !cJSON_AddObjectToObject(job, "space") ||
        !cJSON_AddNumberToObject(budget, "max_trials", 1) ||
        !cJSON_AddNumberToObject(budget, "max_parallel", 1) ||
        (max_seconds > 0 && !cJSON_AddNumberToObject(budget, "max_seconds", max_seconds))) {
        if (budget && !cJSON_GetObjectItemCaseSensitive(job, "budget")) cJSON_Delete(budget);
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto out;
    }
    rc = cv_cli_resolve_dataset_paths(job, path, &changed, why);
    if (rc < 0) {
        rc = cv_errf(err, rc, "%s: %s", path, why);
        goto out;
    }
    *text = cJSON_PrintUnformatted(job);
    if (*text == NULL) rc = cv_errf(err, CV_ENOMEM, "out of memory");
out:
    cJSON_Delete(spec);
    cJSON_Delete(job);
    return rc;
}

/* Waits for the job's one trial to exist; *trial gets its id. */
static int panda_trial_id(cv_cli_t *cli, int64_t job, int64_t *trial, char *err) {
    char path[PATH_TEXT_MAX];
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/trials?limit=1", job);
    while (!*cli->stop) {
        cv_http_reply_t reply;
        int rc = cv_cli_api_get(cli, path, &reply, err);
        if (rc < 0) return rc;
        const cJSON *first = cJSON_GetArrayItem(cv_cli_field(reply.json, "trials"), 0);
        *trial = (int64_t)cv_cli_field_num(first, "id", 0);
        cv_http_reply_finish(&reply);
        if (*trial > 0) return 0;
        cv_cli_sleep_unless_stopped(cli, 0.2);
    }
    return cv_errf(err, CV_ESTOPPED, "interrupted");
}

/* What one panda view has shown so far. */
typedef struct {
    int64_t epochs_shown; /* curve points printed */
    int64_t nudges_shown; /* nudges whose epoch was printed, in seq order */
    int64_t last_epoch;   /* the latest epoch of the curve */
} panda_view_t;

/* Prints the curve points and applied nudges of trial t not shown yet. */
static void panda_show(cv_cli_t *cli, const cJSON *t, panda_view_t *v) {
    const cJSON *p, *n;
    cJSON_ArrayForEach(p, cv_cli_field(t, "curve")) {
        int64_t e = (int64_t)cv_cli_field_num(p, "epoch", 0);
        if (e > v->last_epoch) v->last_epoch = e;
        if (e <= v->epochs_shown) continue;
        v->epochs_shown = e;
        fprintf(cli->out,
                "epoch %6" PRId64 "  train_cost %.4f  dev_cost %.4f  train_error %.4f  "
                "dev_error %.4f  learning_rate %.4g\n",
                e, cv_cli_field_num(p, "train_cost", NAN), cv_cli_field_num(p, "dev_cost", NAN),
                cv_cli_field_num(p, "train_error", NAN), cv_cli_field_num(p, "dev_error", NAN),
                cv_cli_field_num(p, "learning_rate", NAN));
    }
    cJSON_ArrayForEach(n, cv_cli_field(t, "nudges")) {
        int64_t seq = (int64_t)cv_cli_field_num(n, "seq", 0);
        double epoch = cv_cli_field_num(n, "epoch", NAN);
        if (seq <= v->nudges_shown || !isfinite(epoch)) continue;
        char *values = cJSON_PrintUnformatted(cv_cli_field(n, "values"));
        fprintf(cli->out, "nudge %" PRId64 " took effect at epoch %.0f: %s\n", seq, epoch,
                values ? values : "");
        cJSON_free(values);
        v->nudges_shown = seq;
    }
    fflush(cli->out);
}

/* Asks trial id to stop at its next epoch boundary, keeping its best epoch: a nudge of epochs
 * to the epochs it has run. */
static int panda_stop(cv_cli_t *cli, int64_t id, const panda_view_t *v, char *err) {
    char body[64];
    int64_t seq = 0;
    snprintf(body, sizeof body, "{\"epochs\":%" PRId64 "}", v->last_epoch > 0 ? v->last_epoch : 1);
    int rc = post_nudge(cli, id, body, &seq, err);
    if (rc == 0 && !cli->json)
        fprintf(cli->out,
                "stopping trial %" PRId64 " at its next epoch boundary; its best epoch "
                "is kept (Ctrl-C again to cancel the job)\n",
                id);
    return rc;
}

/* panda SPEC.json [--name NAME] [--max-seconds S] [--interval S]: one long trial, watched. */
int cv_cmd_panda(cv_cli_t *cli, int argc, char **argv, char *err) {
    const char *pos[1], *name = "panda";
    size_t n_pos;
    double max_seconds = 0, interval = 1.0;
    const cv_arg_opt_t opts[] = {
        {"--name", NULL, CV_ARG_STRING, &name, 0, 0},
        {"--max-seconds", NULL, CV_ARG_NUMBER, &max_seconds, 1, 1e9},
        {"--interval", NULL, CV_ARG_NUMBER, &interval, 0.05, 3600},
    };
    char *text = NULL, path[PATH_TEXT_MAX];
    int64_t job = 0, trial = 0;
    int stopping = 0;
    panda_view_t view = {0};
    cv_http_reply_t reply;
    int rc = cv_cli_parse_args(argc, argv, opts, 3, pos, 1, 1, &n_pos, "SPEC.json", err);
    if (rc == 0) rc = panda_job_text(pos[0], name, max_seconds, &text, err);
    if (rc == 0) rc = cv_cli_api(cli, "POST", "/v1/jobs", text, strlen(text), 0, &reply, err);
    cJSON_free(text);
    if (rc < 0) return rc;
    job = (int64_t)cv_cli_field_num(reply.json, "id", 0);
    cv_http_reply_finish(&reply);
    if ((rc = panda_trial_id(cli, job, &trial, err)) < 0) return rc;
    fprintf(cli->out,
            "panda: job %" PRId64 ", trial %" PRId64 ". Nudge it from another shell: "
            "caviar nudge %" PRId64 " learning_rate=3e-4; stop it: Ctrl-C here, or caviar nudge "
            "%" PRId64 " epochs=N\n",
            job, trial, trial, trial);
    for (;;) {
        if (*cli->stop) {
            *cli->stop = 0;
            if (stopping) {
                char why[CV_ERRLEN];
                if (cv_cli_cancel_job(cli, job, why) < 0)
                    return cv_errf(err, CV_ESTOPPED,
                                   "interrupted; job %" PRId64 " could not be "
                                   "cancelled: %s",
                                   job, why);
                return cv_errf(err, CV_ESTOPPED, "interrupted: job %" PRId64 " cancelled", job);
            }
            stopping = 1;
            if ((rc = panda_stop(cli, trial, &view, err)) < 0) return rc;
        }
        /* Only the curve points not shown yet: a poll reads what is new, however long the
         * curve has grown. */
        snprintf(path, sizeof path, "/v1/trials/%" PRId64 "?curve_after=%" PRId64, trial,
                 view.epochs_shown);
        if ((rc = cv_cli_api_get(cli, path, &reply, err)) < 0) return rc;
        panda_show(cli, reply.json, &view);
        const char *status = cv_cli_field_str(reply.json, "status", "");
        if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0) {
            fprintf(cli->out,
                    "trial %" PRId64 " %s after %.0f epochs: best epoch %.0f, dev_error "
                    "%.4f, dev_cost %.4f; its model: caviar model %" PRId64 "\n",
                    trial, status, cv_cli_field_num(reply.json, "epochs_run", 0),
                    cv_cli_field_num(reply.json, "best_epoch", 0),
                    cv_cli_field_num(reply.json, "dev_error", NAN),
                    cv_cli_field_num(reply.json, "dev_cost", NAN), trial);
            rc = strcmp(status, "completed") == 0
                     ? 0
                     : cv_errf(err, CV_CLI_EJOB, "trial %" PRId64 " %s", trial, status);
            cv_http_reply_finish(&reply);
            return rc;
        }
        cv_http_reply_finish(&reply);
        cv_cli_sleep_unless_stopped(cli, interval);
    }
}
