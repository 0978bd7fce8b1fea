/* The client's job commands: submit (reading a job file and resolving its dataset paths),
 * watch, cancel, delete and extend. */
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

#define JOB_FILE_MAX (1u << 20)       /* bytes of a job spec; the server refuses larger bodies */
#define SUBMIT_MS    (2L * 60 * 1000) /* submission samples and commits the first round */

/* The dataset fields of a job's trial that name files (trial.dataset.<field>). */
static const char *const DATASET_FILE_FIELDS[] = {"csv",    "test_csv",    "images",
                                                  "labels", "test_images", "test_labels"};

/* The absolute directory of the file at path, canonical when it can be resolved, into dir (cap
 * bytes). */
static int spec_directory(const char *path, char *dir, size_t cap, char *err) {
    char given[PATH_MAX], cwd[PATH_MAX], resolved[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int n;
    if (!slash)
        n = snprintf(given, sizeof given, ".");
    else if (slash == path)
        n = snprintf(given, sizeof given, "/");
    else
        n = snprintf(given, sizeof given, "%.*s", (int)(slash - path), path);
    if (n < 0 || (size_t)n >= sizeof given)
        return cv_errf(err, CV_ERANGE, "%s: path too long", path);
    if (realpath(given, resolved))
        n = snprintf(dir, cap, "%s", resolved);
    else if (given[0] == '/')
        n = snprintf(dir, cap, "%s", given);
    else if (getcwd(cwd, sizeof cwd))
        n = snprintf(dir, cap, "%s/%s", cwd, given);
    else
        return cv_errf(err, CV_EIO, "cannot read the working directory: %s", strerror(errno));
    if (n < 0 || (size_t)n >= cap) return cv_errf(err, CV_ERANGE, "%s: path too long", path);
    return 0;
}

/* Makes the relative dataset paths of a job spec (trial.dataset.csv, test_csv, images, labels,
 * test_images, test_labels) relative to the directory of the spec file at path, the way a user
 * reads them, instead of to caviard's working directory. Absolute paths are left as they are.
 * Sets *changed when a path was rewritten. tree is modified in place. */
int cv_cli_resolve_dataset_paths(cJSON *tree, const char *path, int *changed, char *err) {
    char dir[PATH_MAX], joined[2 * PATH_MAX];
    cJSON *ds = cJSON_GetObjectItemCaseSensitive(cv_cli_field(tree, "trial"), "dataset");
    *changed = 0;
    if (!cJSON_IsObject(ds)) return 0;
    for (size_t i = 0; i < sizeof DATASET_FILE_FIELDS / sizeof DATASET_FILE_FIELDS[0]; i++) {
        const cJSON *v = cv_cli_field(ds, DATASET_FILE_FIELDS[i]);
        if (!cJSON_IsString(v) || !v->valuestring[0] || v->valuestring[0] == '/') continue;
        if (!*changed) {
            int rc = spec_directory(path, dir, sizeof dir, err);
            if (rc < 0) return rc;
        }
        const char *given = v->valuestring;
        while (given[0] == '.' && given[1] == '/') /* "./data.csv" reads better without "./" */
            given += 2;
        int n = snprintf(joined, sizeof joined, "%s%s%s", dir,
                         dir[strlen(dir) - 1] == '/' ? "" : "/", given);
        if (n < 0 || (size_t)n >= sizeof joined)
            return cv_errf(err, CV_ERANGE, "trial.dataset.%s: path too long",
                           DATASET_FILE_FIELDS[i]);
        cJSON *abs = cJSON_CreateString(joined);
        if (!abs || !cJSON_ReplaceItemInObjectCaseSensitive(ds, DATASET_FILE_FIELDS[i], abs)) {
            cJSON_Delete(abs);
            return cv_errf(err, CV_ENOMEM, "out of memory");
        }
        *changed = 1;
    }
    return 0;
}

/* Reads a job spec file whole after checking it is a JSON object, and makes its relative
 * dataset paths relative to the file's directory (cv_cli_resolve_dataset_paths). On success *text
 * holds the spec to send (malloc'd; the caller frees it) and *len its length. */
int cv_cli_read_job_file(const char *path, char **text, size_t *len, char *err) {
    int rc = 0, changed = 0;
    cJSON *tree = NULL;
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return cv_errf(err, CV_EIO, "%s: %s", path, strerror(errno));
    char *buf = malloc(JOB_FILE_MAX + 1);
    if (!buf) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory reading %s", path);
        goto out;
    }
    size_t n = fread(buf, 1, JOB_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = cv_errf(err, CV_EIO, "%s: read failed: %s", path, strerror(errno));
        goto out;
    }
    if (n > JOB_FILE_MAX) {
        rc = cv_errf(err, CV_ERANGE, "%s: larger than %u bytes, the server's limit", path,
                     JOB_FILE_MAX);
        goto out;
    }
    buf[n] = '\0';
    char why[CV_ERRLEN];
    rc = cv_json_decode(buf, n, &tree, why);
    if (rc < 0) {
        rc = cv_errf(err, rc, "%s: %s", path, why);
        goto out;
    }
    if (!cJSON_IsObject(tree)) {
        rc = cv_errf(err, CV_EFORMAT, "%s: a job spec must be a JSON object", path);
        goto out;
    }
    rc = cv_cli_resolve_dataset_paths(tree, path, &changed, why);
    if (rc < 0) {
        rc = cv_errf(err, rc, "%s: %s", path, why);
        goto out;
    }
    if (changed) {
        char *printed = cJSON_PrintUnformatted(tree);
        size_t plen = printed ? strlen(printed) : 0;
        if (!printed || plen > JOB_FILE_MAX) {
            cJSON_free(printed);
            rc = printed ? cv_errf(err, CV_ERANGE,
                                   "%s: larger than %u bytes with its dataset "
                                   "paths made absolute",
                                   path, JOB_FILE_MAX)
                         : cv_errf(err, CV_ENOMEM, "out of memory reading %s", path);
            goto out;
        }
        memcpy(buf, printed, plen + 1);
        cJSON_free(printed);
        n = plen;
    }
    *text = buf;
    *len = n;
    buf = NULL;
out:
    cJSON_Delete(tree);
    free(buf);
    fclose(f);
    return rc;
}

/* The one-line progress summary of a job that watch redraws. */
static void format_progress(const cJSON *job, int64_t id, char *line, size_t cap) {
    char round[32], best[CV_FMT_CELL], max[32], value[CV_FMT_CELL];
    const char *objective = cv_cli_job_objective(job);
    const cJSON *best_trial = cv_cli_field(job, "best");
    double failed = cv_cli_count_of(job, "failed") + cv_cli_count_of(job, "diverged") +
                    cv_cli_count_of(job, "lost");
    double running = cv_cli_field_num(job, "running", cv_cli_count_of(job, "running"));
    double max_trials = cv_cli_job_max_trials(job);
    if (max_trials >= 0)
        snprintf(max, sizeof max, "%.0f", max_trials);
    else
        snprintf(max, sizeof max, "?");
    if (cJSON_IsObject(best_trial))
        snprintf(best, sizeof best, "best %s %s (trial %.0f)", objective,
                 cv_fmt_number(cv_cli_trial_objective(best_trial, objective), value, sizeof value),
                 cv_cli_field_num(best_trial, "id", 0));
    else
        snprintf(best, sizeof best, "no result yet");
    int n = snprintf(line, cap, "job %" PRId64 " %s  round %s  %.0f/%s completed  %.0f running", id,
                     cv_cli_field_str(job, "status", "?"),
                     cv_cli_format_round(job, round, sizeof round),
                     cv_cli_count_of(job, "completed"), max, running);
    if (n > 0 && (size_t)n < cap && cv_cli_count_of(job, "pruned") > 0)
        n += snprintf(line + n, cap - (size_t)n, "  %.0f pruned", cv_cli_count_of(job, "pruned"));
    if (n > 0 && (size_t)n < cap && failed > 0)
        n += snprintf(line + n, cap - (size_t)n, "  %.0f failed", failed);
    if (n > 0 && (size_t)n < cap) snprintf(line + n, cap - (size_t)n, "  %s", best);
}

/* "  about 3 min left": the time a running job still needs at the rate its trials finished so
 * far (finished trials over the time since the job was created), or "" before the first trial
 * finished or when the server gives no budget. */
static void format_time_left(const cJSON *job, char *buf, size_t cap) {
    double finished = cv_cli_count_of(job, "completed") + cv_cli_count_of(job, "pruned") +
                      cv_cli_count_of(job, "failed") + cv_cli_count_of(job, "diverged") +
                      cv_cli_count_of(job, "lost");
    double max_trials = cv_cli_job_max_trials(job),
           created = cv_cli_field_num(job, "created_at", -1);
    double elapsed = (double)time(NULL) - created, left;
    buf[0] = '\0';
    if (strcmp(cv_cli_field_str(job, "status", ""), "running") != 0 || finished < 1 ||
        created < 0 || elapsed <= 0 || max_trials <= finished)
        return;
    left = (max_trials - finished) * elapsed / finished;
    if (left < 90)
        snprintf(buf, cap, "  about %.0f s left", ceil(left));
    else if (left < 90 * 60)
        snprintf(buf, cap, "  about %.0f min left", round(left / 60));
    else
        snprintf(buf, cap, "  about %.0f h %02.0f min left", floor(left / 3600),
                 floor(fmod(left, 3600) / 60));
}

/* Polls a job until it is no longer running, showing progress on cli->out: redrawn in place on
 * a terminal, one line per change otherwise (one JSON line per change with --json). 0 when the
 * job completed, CV_CLI_EJOB when it ended otherwise, CV_ESTOPPED when interrupted. */
int cv_cli_watch_job(cv_cli_t *cli, int64_t id, double interval, char *err) {
    char line[512], last[512] = "", left[64];
    char *last_json = NULL; /* the previous answer with --json (cJSON-allocated, owned) */
    int tty = isatty(fileno(cli->out)), rc;
    for (;;) {
        cv_http_reply_t reply;
        rc = cv_cli_fetch_job(cli, id, &reply, err);
        if (rc < 0) break;
        const char *status = cv_cli_field_str(reply.json, "status", "?");
        if (cli->json) {
            char *text = cJSON_PrintUnformatted(reply.json);
            if (text && (!last_json || strcmp(text, last_json) != 0)) {
                fprintf(cli->out, "%s\n", text);
                cJSON_free(last_json);
                last_json = text;
            } else {
                cJSON_free(text);
            }
        } else {
            /* A new line only when the progress changed, not the estimate alone. */
            format_progress(reply.json, id, line, sizeof line);
            format_time_left(reply.json, left, sizeof left);
            if (tty)
                fprintf(cli->out, "\r%s%s\033[K", line, left);
            else if (strcmp(line, last) != 0)
                fprintf(cli->out, "%s%s\n", line, left);
            snprintf(last, sizeof last, "%s", line);
        }
        fflush(cli->out);
        if (strcmp(status, "running") != 0) {
            if (strcmp(status, "completed") == 0)
                rc = 0;
            else
                rc = cv_errf(err, CV_CLI_EJOB, "job %" PRId64 " ended %s%s%s", id, status,
                             cJSON_IsString(cv_cli_field(reply.json, "error")) ? ": " : "",
                             cv_cli_field_str(reply.json, "error", ""));
            cv_http_reply_finish(&reply);
            break;
        }
        cv_http_reply_finish(&reply);
        cv_cli_sleep_unless_stopped(cli, interval);
        if (*cli->stop) {
            rc = cv_errf(err, CV_ESTOPPED, "stopped watching job %" PRId64, id);
            break;
        }
    }
    if (tty && !cli->json && last[0]) fputc('\n', cli->out);
    cJSON_free(last_json);
    return rc;
}

/* Posts a job spec file; on success *id is the new job's id. */
int cv_cli_submit_file(cv_cli_t *cli, const char *path, int64_t *id, char *err) {
    char *text;
    size_t len;
    cv_http_reply_t reply;
    int rc = cv_cli_read_job_file(path, &text, &len, err);
    if (rc < 0) return rc;
    rc = cv_cli_api(cli, "POST", "/v1/jobs", text, len, SUBMIT_MS, &reply, err);
    free(text);
    if (rc < 0) return rc;
    const cJSON *v = cv_cli_field(reply.json, "id");
    if (!cJSON_IsNumber(v) || v->valuedouble < 1) {
        cv_http_reply_finish(&reply);
        return cv_errf(err, CV_EFORMAT, "the server accepted the job but its answer has no id");
    }
    *id = (int64_t)v->valuedouble;
    rc = cli->json ? cv_cli_print_raw(cli, &reply) : 0;
    if (!cli->json) fprintf(cli->out, "%" PRId64 "\n", *id);
    fflush(cli->out);
    cv_http_reply_finish(&reply);
    return rc;
}

int cv_cmd_submit(cv_cli_t *cli, int argc, char **argv, char *err) {
    int watch = 0;
    double interval = 1.0;
    const char *pos[1];
    size_t n_pos;
    int64_t id;
    const cv_arg_opt_t opts[] = {
        {"--watch", "-w", CV_ARG_FLAG, &watch, 0, 0},
        {"--interval", NULL, CV_ARG_NUMBER, &interval, 0.05, 3600},
    };
    int rc = cv_cli_parse_args(argc, argv, opts, 2, pos, 1, 1, &n_pos, "JOB.json", err);
    if (rc < 0) return rc;
    rc = cv_cli_submit_file(cli, pos[0], &id, err);
    if (rc < 0 || !watch) return rc;
    return cv_cli_watch_job(cli, id, interval, err);
}

int cv_cmd_watch(cv_cli_t *cli, int argc, char **argv, char *err) {
    double interval = 1.0;
    const char *pos[1];
    size_t n_pos;
    int64_t id;
    const cv_arg_opt_t opts[] = {{"--interval", "-i", CV_ARG_NUMBER, &interval, 0.05, 3600}};
    int rc = cv_cli_parse_args(argc, argv, opts, 1, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    return cv_cli_watch_job(cli, id, interval, err);
}

/* Sends `method` to /v1/jobs/<id><suffix> and reports "job N <done> (K trials <done>)", K from
 * the reply's field "trials_<done>". */
static int job_action(cv_cli_t *cli, int64_t id, const char *method, const char *suffix,
                      const char *done, char *err) {
    char path[PATH_TEXT_MAX], count[64];
    cv_http_reply_t reply;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "%s", id, suffix);
    snprintf(count, sizeof count, "trials_%s", done);
    int rc = cv_cli_api(cli, method, path, NULL, 0, 0, &reply, err);
    if (rc < 0) return rc;
    if (cli->json)
        rc = cv_cli_print_raw(cli, &reply);
    else
        fprintf(cli->out, "job %" PRId64 " %s (%.0f trials %s)\n", id, done,
                cv_cli_field_num(reply.json, count, 0), done);
    cv_http_reply_finish(&reply);
    return rc;
}

/* Cancels a job and reports how many trials were cancelled. */
int cv_cli_cancel_job(cv_cli_t *cli, int64_t id, char *err) {
    return job_action(cli, id, "POST", "/cancel", "cancelled", err);
}

/* Reads the words of a command that takes one job id and no options. */
static int parse_job_only(int argc, char **argv, int64_t *id, char *err) {
    const char *pos[1];
    size_t n_pos;
    int rc = cv_cli_parse_args(argc, argv, NULL, 0, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "JOB", id, err);
    return rc;
}

int cv_cmd_cancel(cv_cli_t *cli, int argc, char **argv, char *err) {
    int64_t id;
    int rc = parse_job_only(argc, argv, &id, err);
    return rc < 0 ? rc : cv_cli_cancel_job(cli, id, err);
}

/* Deletes a job that is not running, with its trials and models. */
int cv_cmd_delete(cv_cli_t *cli, int argc, char **argv, char *err) {
    int64_t id;
    int rc = parse_job_only(argc, argv, &id, err);
    return rc < 0 ? rc : job_action(cli, id, "DELETE", "", "deleted", err);
}

/* Extends a completed job to --max-trials trials: it runs again with a new round refined
 * around its best trials; --watch follows it until it ends. */
int cv_cmd_extend(cv_cli_t *cli, int argc, char **argv, char *err) {
    int watch = 0;
    double interval = 1.0;
    int64_t max_trials = 0, id;
    const char *pos[1];
    size_t n_pos;
    char path[PATH_TEXT_MAX], body[64];
    cv_http_reply_t reply;
    const cv_arg_opt_t opts[] = {
        {"--max-trials", "-n", CV_ARG_INT, &max_trials, 1, 100000},
        {"--watch", "-w", CV_ARG_FLAG, &watch, 0, 0},
        {"--interval", NULL, CV_ARG_NUMBER, &interval, 0.05, 3600},
    };
    int rc = cv_cli_parse_args(argc, argv, opts, 3, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "JOB", &id, err);
    if (rc == 0 && max_trials == 0)
        rc = cv_errf(err, CV_CLI_EUSAGE, "extend: --max-trials N is required");
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/extend", id);
    int len = snprintf(body, sizeof body, "{\"max_trials\":%" PRId64 "}", max_trials);
    rc = cv_cli_api(cli, "POST", path, body, (size_t)len, 0, &reply, err);
    if (rc < 0) return rc;
    if (cli->json)
        rc = cv_cli_print_raw(cli, &reply);
    else
        fprintf(cli->out, "job %" PRId64 " extended to %.0f trials: round %.0f runs\n", id,
                cv_cli_field_num(reply.json, "max_trials", 0),
                cv_cli_field_num(reply.json, "round", 0));
    cv_http_reply_finish(&reply);
    if (rc < 0 || !watch) return rc;
    fflush(cli->out);
    return cv_cli_watch_job(cli, id, interval, err);
}
