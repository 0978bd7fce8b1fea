/* What the client's commands share (commands_internal.h): JSON field access, requests to the
 * API (schemas/api.md) with paging, fetching a job, and the formatters several commands use. */
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

#define CURSOR_TEXT_MAX 256 /* bytes of a list cursor the server gives, with its NUL */

/* Borrowed member of obj, or NULL. */
const cJSON *cv_cli_field(const cJSON *obj, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* A member's string, or fallback. Borrowed. */
const char *cv_cli_field_str(const cJSON *obj, const char *name, const char *fallback) {
    const cJSON *v = cv_cli_field(obj, name);
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

/* A member's number, or fallback. */
double cv_cli_field_num(const cJSON *obj, const char *name, double fallback) {
    const cJSON *v = cv_cli_field(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

/* Parses the words of a command; any failure is a usage error. */
int cv_cli_parse_args(int argc, char **argv, const cv_arg_opt_t *opts, size_t n_opts,
                      const char **pos, size_t min_pos, size_t max_pos, size_t *n_pos,
                      const char *what, char *err) {
    int rc = cv_args_parse(argc, argv, opts, n_opts, pos, min_pos, max_pos, n_pos, what, err);
    return rc < 0 ? CV_CLI_EUSAGE : 0;
}

/* Reads a positive id; a malformed one is a usage error. */
int cv_cli_parse_id(const char *text, const char *what, int64_t *id, char *err) {
    return cv_args_parse_id(text, what, id, err) < 0 ? CV_CLI_EUSAGE : 0;
}

/* Sends a request and requires a 2xx answer whose body is a JSON object. On success *reply holds
 * it (the caller finishes it); on failure *reply is empty and the reason is the server's own
 * message (CV_CLI_EHTTP) or the transport's (codes of cv_http_request, CV_EFORMAT). */
int cv_cli_api(cv_cli_t *cli, const char *method, const char *path, const char *body,
               size_t body_len, long timeout_ms, cv_http_reply_t *reply, char *err) {
    int rc = cv_http_request(cli->http, method, path, body, body_len, timeout_ms, reply, err);
    if (rc < 0) return rc;
    if (reply->status < 200 || reply->status > 299) {
        const char *message = cv_http_reply_error(reply);
        if (message)
            rc = cv_errf(err, CV_CLI_EHTTP, "%s (HTTP %ld)", message, reply->status);
        else
            rc = cv_errf(err, CV_CLI_EHTTP, "%s %s: the server answered HTTP %ld: %.200s", method,
                         path, reply->status, reply->body);
        cv_http_reply_finish(reply);
        return rc;
    }
    if (!cJSON_IsObject(reply->json)) {
        rc = cv_errf(err, CV_EFORMAT, "%s %s: the answer is not a JSON object: %.200s", method,
                     path, reply->body);
        cv_http_reply_finish(reply);
        return rc;
    }
    return 0;
}

/* GET path; see cv_cli_api(). */
int cv_cli_api_get(cv_cli_t *cli, const char *path, cv_http_reply_t *reply, char *err) {
    return cv_cli_api(cli, "GET", path, NULL, 0, 0, reply, err);
}

#define LIST_PAGE 1000 /* rows asked for per page of a list: the server's largest page */

/* Moves every element of page's array key onto the end of all; returns how many. */
static int list_append(cJSON *all, cJSON *page, const char *key) {
    cJSON *from = cJSON_GetObjectItemCaseSensitive(page, key), *item;
    int n = 0;
    while (cJSON_IsArray(from) && (item = cJSON_DetachItemFromArray(from, 0))) {
        cJSON_AddItemToArray(all, item);
        n++;
    }
    return n;
}

/* GET path (a list route; it may already hold a query) and the pages after it, following
 * next_cursor, until the list ends or skip + max rows are gathered (max <= 0: all of them).
 * On success *reply is the first page grown into the whole answer: its array `key` holds the
 * rows after the first skip, its next_cursor is null, and its body is that JSON (what --json
 * prints). Errors as cv_cli_api(). */
int cv_cli_api_get_list(cv_cli_t *cli, const char *path, const char *key, int64_t skip, int64_t max,
                        cv_http_reply_t *reply, char *err) {
    char page_path[PATH_TEXT_MAX + CURSOR_TEXT_MAX];
    const char *sep = strchr(path, '?') ? "&" : "?";
    int64_t want = max > 0 ? skip + max : 0;
    snprintf(page_path, sizeof page_path, "%s%slimit=%" PRId64, path, sep,
             want > 0 && want < LIST_PAGE ? want : LIST_PAGE);
    int rc = cv_cli_api_get(cli, page_path, reply, err);
    if (rc < 0) return rc;
    cJSON *all = cJSON_GetObjectItemCaseSensitive(reply->json, key);
    if (!cJSON_IsArray(all)) return 0; /* the caller reports the missing array */
    int64_t n = cJSON_GetArraySize(all);
    int changed = 0;
    for (;;) {
        const char *cursor =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply->json, "next_cursor"));
        if (!cursor || (want > 0 && n >= want) || *cli->stop) break;
        if (strlen(cursor) >= CURSOR_TEXT_MAX) {
            rc = cv_errf(err, CV_EFORMAT, "GET %s: the server's cursor is too long", path);
            goto fail;
        }
        cv_http_reply_t page;
        int64_t rows = want > 0 && want - n < LIST_PAGE ? want - n : LIST_PAGE;
        snprintf(page_path, sizeof page_path, "%s%slimit=%" PRId64 "&after=%s", path, sep, rows,
                 cursor);
        rc = cv_cli_api_get(cli, page_path, &page, err);
        if (rc < 0) goto fail;
        n += list_append(all, page.json, key);
        cJSON *next = cJSON_DetachItemFromObjectCaseSensitive(page.json, "next_cursor");
        cJSON_Delete(cJSON_DetachItemFromObjectCaseSensitive(reply->json, "next_cursor"));
        if (!next) next = cJSON_CreateNull();
        if (next) cJSON_AddItemToObject(reply->json, "next_cursor", next);
        cv_http_reply_finish(&page);
        changed = 1;
    }
    for (; want > 0 && n > want; n--, changed = 1)
        cJSON_DeleteItemFromArray(all, (int)n - 1);
    for (int64_t i = 0; i < skip && n > 0; i++, n--, changed = 1)
        cJSON_DeleteItemFromArray(all, 0);
    if (cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply->json, "next_cursor"))) {
        cJSON_ReplaceItemInObjectCaseSensitive(reply->json, "next_cursor", cJSON_CreateNull());
        changed = 1;
    }
    if (changed) {
        char *text = cJSON_PrintUnformatted(reply->json);
        size_t len = text ? strlen(text) : 0;
        char *body = text ? malloc(len + 1) : NULL;
        if (!body) {
            cJSON_free(text);
            rc = cv_errf(err, CV_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(body, text, len + 1);
        cJSON_free(text);
        free(reply->body);
        reply->body = body;
        reply->body_len = len;
    }
    return 0;

fail:
    cv_http_reply_finish(reply);
    return rc;
}

/* Prints an answer's body as the server sent it, ending with a newline. */
int cv_cli_print_raw(cv_cli_t *cli, const cv_http_reply_t *reply) {
    fputs(reply->body, cli->out);
    if (reply->body_len == 0 || reply->body[reply->body_len - 1] != '\n') fputc('\n', cli->out);
    return ferror(cli->out) ? CV_EIO : 0;
}

/* Replaces obj[key] when it holds JSON as text (some columns may be served that way) with the
 * parsed value, so that everything after can borrow from one tree. Leaves it alone otherwise. */
void cv_cli_normalize_json_text(cJSON *obj, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v)) return;
    cJSON *parsed = cv_json_parse(v->valuestring, strlen(v->valuestring), NULL);
    if (parsed && !cJSON_ReplaceItemInObjectCaseSensitive(obj, key, parsed)) cJSON_Delete(parsed);
}

/* normalize_json_text on "params" of every trial of an array. */
static void normalize_trials(cJSON *trials) {
    cJSON *t;
    cJSON_ArrayForEach(t, trials) cv_cli_normalize_json_text(t, "params");
}

/* Reads the "trials" array of an answer, normalized. NULL when absent. */
cJSON *cv_cli_answer_trials(cv_http_reply_t *reply) {
    cJSON *trials = cJSON_GetObjectItemCaseSensitive(reply->json, "trials");
    if (!cJSON_IsArray(trials)) return NULL;
    normalize_trials(trials);
    return trials;
}

/* Fetches one job's detail, normalized (spec, region, best's params). */
int cv_cli_fetch_job(cv_cli_t *cli, int64_t id, cv_http_reply_t *reply, char *err) {
    char path[PATH_TEXT_MAX];
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64, id);
    int rc = cv_cli_api_get(cli, path, reply, err);
    if (rc < 0) return rc;
    cv_cli_normalize_json_text(reply->json, "spec");
    cv_cli_normalize_json_text(reply->json, "region");
    cv_cli_normalize_json_text(reply->json, "test_result");
    cJSON *best = cJSON_GetObjectItemCaseSensitive(reply->json, "best");
    if (cJSON_IsObject(best)) cv_cli_normalize_json_text(best, "params");
    return 0;
}

/* The job's objective name ("dev_error" unless the job says otherwise). Borrowed. */
const char *cv_cli_job_objective(const cJSON *job) {
    const char *name = cv_cli_field_str(job, "objective", NULL);
    if (!name) name = cv_cli_field_str(cv_cli_field(job, "spec"), "objective", "dev_error");
    return name;
}

/* The value a trial scores on the job's objective. */
const cJSON *cv_cli_trial_objective(const cJSON *trial, const char *objective) {
    const cJSON *v = cv_cli_field(trial, "objective");
    return cJSON_IsNumber(v) ? v : cv_cli_field(trial, objective);
}

static void add_param_name(param_names_t *p, const char *name) {
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0) return;
    if (p->n < MAX_PARAM_COLUMNS) p->names[p->n++] = name;
}

void cv_cli_collect_param_names(const cJSON *job, const cJSON *trials, param_names_t *p) {
    const cJSON *item, *trial;
    p->n = 0;
    cJSON_ArrayForEach(item, cv_cli_field(cv_cli_field(job, "spec"), "space"))
        add_param_name(p, item->string);
    cJSON_ArrayForEach(trial, trials) {
        cJSON_ArrayForEach(item, cv_cli_field(trial, "params")) add_param_name(p, item->string);
    }
}

/* Sleeps for seconds, in short steps so that a stop request is noticed quickly. */
void cv_cli_sleep_unless_stopped(const cv_cli_t *cli, double seconds) {
    while (seconds > 0 && !*cli->stop) {
        double step = seconds < 0.1 ? seconds : 0.1;
        struct timespec ts = {0, (long)(step * 1e9)};
        nanosleep(&ts, NULL);
        seconds -= step;
    }
}

/* Sums counts of the given statuses. */
double cv_cli_count_of(const cJSON *job, const char *status) {
    return cv_cli_field_num(cv_cli_field(job, "counts"), status, 0);
}

/* "2/3": the current round out of the rounds the job plans, or "2" alone when the server does
 * not say how many it plans. Rounds count from 1 in the API as here. */
char *cv_cli_format_round(const cJSON *job, char *buf, size_t cap) {
    const cJSON *round = cv_cli_field(job, "round");
    double planned = cv_cli_field_num(job, "rounds_planned", -1);
    if (planned < 0) {
        int n = cJSON_GetArraySize(
            cv_cli_field(cv_cli_field(cv_cli_field(job, "spec"), "refine"), "rounds"));
        planned = n > 0 ? n : -1;
    }
    if (!cJSON_IsNumber(round))
        snprintf(buf, cap, "-");
    else if (planned > 0)
        snprintf(buf, cap, "%.0f/%.0f", round->valuedouble, planned);
    else
        snprintf(buf, cap, "%.0f", round->valuedouble);
    return buf;
}

/* The job's trial budget, from max_trials or the spec. */
double cv_cli_job_max_trials(const cJSON *job) {
    double max = cv_cli_field_num(job, "max_trials", -1);
    if (max < 0)
        max = cv_cli_field_num(cv_cli_field(cv_cli_field(job, "spec"), "budget"), "max_trials", -1);
    return max;
}

/* Prints a stored test result: "accuracy 0.8812 (error ..., N examples, trial 17)". */
void cv_cli_format_test_result(const cJSON *r, char *buf, size_t cap) {
    char acc[CV_FMT_CELL], cost[CV_FMT_CELL], ids[256] = "";
    const cJSON *id;
    size_t n = 0;
    cJSON_ArrayForEach(id, cv_cli_field(r, "trials")) {
        if (n < sizeof ids)
            n += (size_t)snprintf(ids + n, sizeof ids - n, "%s%.0f", n ? ", " : "",
                                  cJSON_IsNumber(id) ? id->valuedouble : 0.0);
    }
    snprintf(buf, cap, "test accuracy %s (test cost %s, %.0f examples, %s %s)",
             cv_fmt_number_digits(cv_cli_field(r, "test_accuracy"), 4, acc, sizeof acc),
             cv_fmt_number(cv_cli_field(r, "test_cost"), cost, sizeof cost),
             cv_cli_field_num(r, "examples", 0),
             cJSON_GetArraySize(cv_cli_field(r, "trials")) > 1 ? "ensemble of trials" : "trial",
             ids[0] ? ids : "?");
}
