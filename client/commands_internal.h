/* What the files implementing the client's commands share, included by them only:
 *
 *     cmd_common.c  JSON field access, requests to the API with paging, job fetching and the
 *                   small formatters several commands use
 *     cmd_jobs.c    submit, watch, cancel, delete, extend (and reading a job file)
 *     cmd_status.c  status (the job list and one job's detail) and workers
 *     cmd_trials.c  best, trials, trial
 *     cmd_models.c  model, evaluate, export (CSV, or an Optuna study by optuna_export.c)
 *     cmd_run.c     run: a private caviard, one job, its best trials and test result
 *     cmd_importance.c  importance: fANOVA of the completed trials, computed here
 *     cmd_panda.c   nudge and panda: steer one running trial, babysit one long trial
 *     cmd_asktell.c ask, report, tell: train the trials of an ask job from a shell script
 *
 * main() finds each command in its table (client/main.c) and calls the cv_cmd_* function
 * declared in commands.h. */
#ifndef CV_CLIENT_COMMANDS_INTERNAL_H
#define CV_CLIENT_COMMANDS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "client/args.h"
#include "client/commands.h"
#include "client/http_client.h"

#define PATH_TEXT_MAX     256 /* bytes of a request path with its query */
#define MAX_PARAM_COLUMNS 64  /* parameter columns shown; a space has at most 24 */

/* Which table show_trials prints: the best trials ranked, or trials in the order asked. */
typedef enum { TRIALS_RANKED, TRIALS_LISTED } trial_table_kind_t;

/* Parameter names for columns: the job's space in its order, then any other names the trials
 * carry. Names are borrowed from job and trials. */
typedef struct {
    const char *names[MAX_PARAM_COLUMNS];
    size_t n;
} param_names_t;

/* ---- cmd_common.c ---- */

/* Borrowed member of obj, or NULL. */
const cJSON *cv_cli_field(const cJSON *obj, const char *name);

/* A member's string, or fallback. Borrowed. */
const char *cv_cli_field_str(const cJSON *obj, const char *name, const char *fallback);

/* A member's number, or fallback. */
double cv_cli_field_num(const cJSON *obj, const char *name, double fallback);

/* Parses the words of a command; any failure is a usage error. */
int cv_cli_parse_args(int argc, char **argv, const cv_arg_opt_t *opts, size_t n_opts,
                      const char **pos, size_t min_pos, size_t max_pos, size_t *n_pos,
                      const char *what, char *err);

/* Reads a positive id; a malformed one is a usage error. */
int cv_cli_parse_id(const char *text, const char *what, int64_t *id, char *err);

/* Sends a request and requires a 2xx answer whose body is a JSON object. On success *reply holds
 * it (the caller finishes it); on failure *reply is empty and the reason is the server's own
 * message (CV_CLI_EHTTP) or the transport's (codes of cv_http_request, CV_EFORMAT). */
int cv_cli_api(cv_cli_t *cli, const char *method, const char *path, const char *body,
               size_t body_len, long timeout_ms, cv_http_reply_t *reply, char *err);

/* GET path; see cv_cli_api(). */
int cv_cli_api_get(cv_cli_t *cli, const char *path, cv_http_reply_t *reply, char *err);

/* GET path (a list route; it may already hold a query) and the pages after it, following
 * next_cursor, until the list ends or skip + max rows are gathered (max <= 0: all of them).
 * On success *reply is the first page grown into the whole answer: its array `key` holds the
 * rows after the first skip, its next_cursor is null, and its body is that JSON (what --json
 * prints). Errors as cv_cli_api(). */
int cv_cli_api_get_list(cv_cli_t *cli, const char *path, const char *key, int64_t skip,
                        int64_t max, cv_http_reply_t *reply, char *err);

/* Prints an answer's body as the server sent it, ending with a newline. */
int cv_cli_print_raw(cv_cli_t *cli, const cv_http_reply_t *reply);

/* Replaces obj[key] when it holds JSON as text (some columns may be served that way) with the
 * parsed value, so that everything after can borrow from one tree. Leaves it alone otherwise. */
void cv_cli_normalize_json_text(cJSON *obj, const char *key);

/* Reads the "trials" array of an answer, normalized. NULL when absent. Borrowed from reply. */
cJSON *cv_cli_answer_trials(cv_http_reply_t *reply);

/* Fetches one job's detail, normalized (spec, region, best's params). */
int cv_cli_fetch_job(cv_cli_t *cli, int64_t id, cv_http_reply_t *reply, char *err);

/* The job's objective name ("dev_error" unless the job says otherwise). Borrowed. */
const char *cv_cli_job_objective(const cJSON *job);

/* The value a trial scores on the job's objective. Borrowed. */
const cJSON *cv_cli_trial_objective(const cJSON *trial, const char *objective);

/* Fills p with the parameter names of job's space, then those only trials carry. */
void cv_cli_collect_param_names(const cJSON *job, const cJSON *trials, param_names_t *p);

/* Sleeps for seconds, in short steps so that a stop request is noticed quickly. */
void cv_cli_sleep_unless_stopped(const cv_cli_t *cli, double seconds);

/* Sums counts of the given statuses. */
double cv_cli_count_of(const cJSON *job, const char *status);

/* "2/3": the current round out of the rounds the job plans, or "2" alone when the server does
 * not say how many it plans. Rounds count from 1 in the API as here. Returns buf. */
char *cv_cli_format_round(const cJSON *job, char *buf, size_t cap);

/* The job's trial budget, from max_trials or the spec. */
double cv_cli_job_max_trials(const cJSON *job);

/* Prints a stored test result: "accuracy 0.8812 (error ..., N examples, trial 17)". */
void cv_cli_format_test_result(const cJSON *r, char *buf, size_t cap);

/* ---- cmd_jobs.c ---- */

/* Reads a job spec file whole after checking it is a JSON object, and makes its relative
 * dataset paths relative to the file's directory. On success *text holds the spec to send
 * (malloc'd; the caller frees it) and *len its length. */
int cv_cli_read_job_file(const char *path, char **text, size_t *len, char *err);

/* Polls a job until it is no longer running, showing progress on cli->out: redrawn in place on
 * a terminal, one line per change otherwise (one JSON line per change with --json). 0 when the
 * job completed, CV_CLI_EJOB when it ended otherwise, CV_ESTOPPED when interrupted. */
int cv_cli_watch_job(cv_cli_t *cli, int64_t id, double interval, char *err);

/* Makes the relative dataset paths of a job spec tree (trial.dataset.*) relative to the
 * directory of the file at path, in place; *changed says whether one was rewritten. */
int cv_cli_resolve_dataset_paths(cJSON *tree, const char *path, int *changed, char *err);

/* Posts a job spec file; on success *id is the new job's id. */
int cv_cli_submit_file(cv_cli_t *cli, const char *path, int64_t *id, char *err);

/* Cancels a job and reports how many trials were cancelled. */
int cv_cli_cancel_job(cv_cli_t *cli, int64_t id, char *err);

/* ---- cmd_trials.c ---- */

/* Fetches a job and a page of its trials, then prints them (or the trials' JSON). */
int cv_cli_show_trials(cv_cli_t *cli, int64_t id, const char *order, int64_t limit,
                       int64_t offset, trial_table_kind_t kind, char *err);

/* ---- cmd_models.c ---- */

/* Asks for the test-set evaluation of a job's best trial (or top-k ensemble; 0: whatever the
 * job was scored with, else the best trial) and prints it. The server scores a job's test set
 * once: asking for another ensemble size than the stored one is refused with its reason. */
int cv_cli_evaluate_job(cv_cli_t *cli, int64_t id, int64_t ensemble, char *err);

#endif
