/* The client's commands (declared in commands.h): each parses its words, asks the server
 * (schemas/api.md) and renders the answer as text, or prints the answer's JSON with --json.
 * `caviar run` also starts and stops a private caviard (daemon.h). */
#include "client/commands.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/args.h"
#include "client/daemon.h"
#include "client/format.h"
#include "client/optuna_export.h"
#include "client/table.h"
#include "common/err.h"
#include "common/json.h"

#define JOB_FILE_MAX      (1u << 20) /* bytes of a job spec; the server refuses larger bodies */
#define PATH_TEXT_MAX     256        /* bytes of a request path with its query */
#define CURSOR_TEXT_MAX   256        /* bytes of a list cursor the server gives, with its NUL */
#define MAX_PARAM_COLUMNS 64         /* parameter columns shown; a space has at most 24 */
#define CURVE_ROWS_MAX    20         /* learning-curve rows shown before thinning */
#define EVALUATE_MS       (30L * 60 * 1000) /* evaluation trains nothing, but reads the test set */
#define SUBMIT_MS         (2L * 60 * 1000)  /* submission samples and commits the first round */
#define START_TIMEOUT_S   60.0              /* seconds caviard may take to write its port file */
#define STOP_TIMEOUT_S    60.0              /* seconds caviard may take to exit after SIGTERM */

/* Trial statuses in lifecycle order, as the API names them. */
static const char *const TRIAL_STATUSES[] = {"queued", "running",  "completed", "pruned",
                                             "failed", "diverged", "lost",      "cancelled"};

/* ---- Shared helpers ------------------------------------------------------------------- */

/* Borrowed member of obj, or NULL. */
static const cJSON *field(const cJSON *obj, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* A member's string, or fallback. Borrowed. */
static const char *field_str(const cJSON *obj, const char *name, const char *fallback) {
    const cJSON *v = field(obj, name);
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

/* A member's number, or fallback. */
static double field_num(const cJSON *obj, const char *name, double fallback) {
    const cJSON *v = field(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

/* Parses the words of a command; any failure is a usage error. */
static int parse_args(int argc, char **argv, const cv_arg_opt_t *opts, size_t n_opts,
                      const char **pos, size_t min_pos, size_t max_pos, size_t *n_pos,
                      const char *what, char *err) {
    int rc = cv_args_parse(argc, argv, opts, n_opts, pos, min_pos, max_pos, n_pos, what, err);
    return rc < 0 ? CV_CLI_EUSAGE : 0;
}

/* Reads a positive id; a malformed one is a usage error. */
static int parse_id(const char *text, const char *what, int64_t *id, char *err) {
    return cv_args_parse_id(text, what, id, err) < 0 ? CV_CLI_EUSAGE : 0;
}

/* Sends a request and requires a 2xx answer whose body is a JSON object. On success *reply holds
 * it (the caller finishes it); on failure *reply is empty and the reason is the server's own
 * message (CV_CLI_EHTTP) or the transport's (codes of cv_http_request, CV_EFORMAT). */
static int api(cv_cli_t *cli, const char *method, const char *path, const char *body,
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

/* GET path; see api(). */
static int api_get(cv_cli_t *cli, const char *path, cv_http_reply_t *reply, char *err) {
    return api(cli, "GET", path, NULL, 0, 0, reply, err);
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
 * prints). Errors as api(). */
static int api_get_list(cv_cli_t *cli, const char *path, const char *key, int64_t skip, int64_t max,
                        cv_http_reply_t *reply, char *err) {
    char page_path[PATH_TEXT_MAX + CURSOR_TEXT_MAX];
    const char *sep = strchr(path, '?') ? "&" : "?";
    int64_t want = max > 0 ? skip + max : 0;
    snprintf(page_path, sizeof page_path, "%s%slimit=%" PRId64, path, sep,
             want > 0 && want < LIST_PAGE ? want : LIST_PAGE);
    int rc = api_get(cli, page_path, reply, err);
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
        rc = api_get(cli, page_path, &page, err);
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
static int print_raw(cv_cli_t *cli, const cv_http_reply_t *reply) {
    fputs(reply->body, cli->out);
    if (reply->body_len == 0 || reply->body[reply->body_len - 1] != '\n') fputc('\n', cli->out);
    return ferror(cli->out) ? CV_EIO : 0;
}

/* Replaces obj[key] when it holds JSON as text (some columns may be served that way) with the
 * parsed value, so that everything after can borrow from one tree. Leaves it alone otherwise. */
static void normalize_json_text(cJSON *obj, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v)) return;
    cJSON *parsed = cv_json_parse(v->valuestring, strlen(v->valuestring), NULL);
    if (parsed && !cJSON_ReplaceItemInObjectCaseSensitive(obj, key, parsed)) cJSON_Delete(parsed);
}

/* normalize_json_text on "params" of every trial of an array. */
static void normalize_trials(cJSON *trials) {
    cJSON *t;
    cJSON_ArrayForEach(t, trials) normalize_json_text(t, "params");
}

/* Reads the "trials" array of an answer, normalized. NULL when absent. */
static cJSON *answer_trials(cv_http_reply_t *reply) {
    cJSON *trials = cJSON_GetObjectItemCaseSensitive(reply->json, "trials");
    if (!cJSON_IsArray(trials)) return NULL;
    normalize_trials(trials);
    return trials;
}

/* Fetches one job's detail, normalized (spec, region, best's params). */
static int fetch_job(cv_cli_t *cli, int64_t id, cv_http_reply_t *reply, char *err) {
    char path[PATH_TEXT_MAX];
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64, id);
    int rc = api_get(cli, path, reply, err);
    if (rc < 0) return rc;
    normalize_json_text(reply->json, "spec");
    normalize_json_text(reply->json, "region");
    normalize_json_text(reply->json, "test_result");
    cJSON *best = cJSON_GetObjectItemCaseSensitive(reply->json, "best");
    if (cJSON_IsObject(best)) normalize_json_text(best, "params");
    return 0;
}

/* The job's objective name ("dev_error" unless the job says otherwise). Borrowed. */
static const char *job_objective(const cJSON *job) {
    const char *name = field_str(job, "objective", NULL);
    if (!name) name = field_str(field(job, "spec"), "objective", "dev_error");
    return name;
}

/* The value a trial scores on the job's objective. */
static const cJSON *trial_objective(const cJSON *trial, const char *objective) {
    const cJSON *v = field(trial, "objective");
    return cJSON_IsNumber(v) ? v : field(trial, objective);
}

/* Parameter names for columns: the job's space in its order, then any other names the trials
 * carry. Names are borrowed from job and trials. */
typedef struct {
    const char *names[MAX_PARAM_COLUMNS];
    size_t n;
} param_names_t;

static void add_param_name(param_names_t *p, const char *name) {
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0) return;
    if (p->n < MAX_PARAM_COLUMNS) p->names[p->n++] = name;
}

static void collect_param_names(const cJSON *job, const cJSON *trials, param_names_t *p) {
    const cJSON *item, *trial;
    p->n = 0;
    cJSON_ArrayForEach(item, field(field(job, "spec"), "space")) add_param_name(p, item->string);
    cJSON_ArrayForEach(trial, trials) {
        cJSON_ArrayForEach(item, field(trial, "params")) add_param_name(p, item->string);
    }
}

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
static int resolve_dataset_paths(cJSON *tree, const char *path, int *changed, char *err) {
    char dir[PATH_MAX], joined[2 * PATH_MAX];
    cJSON *ds = cJSON_GetObjectItemCaseSensitive(field(tree, "trial"), "dataset");
    *changed = 0;
    if (!cJSON_IsObject(ds)) return 0;
    for (size_t i = 0; i < sizeof DATASET_FILE_FIELDS / sizeof DATASET_FILE_FIELDS[0]; i++) {
        const cJSON *v = field(ds, DATASET_FILE_FIELDS[i]);
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
 * dataset paths relative to the file's directory (resolve_dataset_paths). On success *text
 * holds the spec to send (malloc'd; the caller frees it) and *len its length. */
static int read_job_file(const char *path, char **text, size_t *len, char *err) {
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
    rc = resolve_dataset_paths(tree, path, &changed, why);
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

/* Sleeps for seconds, in short steps so that a stop request is noticed quickly. */
static void sleep_unless_stopped(const cv_cli_t *cli, double seconds) {
    while (seconds > 0 && !*cli->stop) {
        double step = seconds < 0.1 ? seconds : 0.1;
        struct timespec ts = {0, (long)(step * 1e9)};
        nanosleep(&ts, NULL);
        seconds -= step;
    }
}

/* ---- Jobs ----------------------------------------------------------------------------- */

/* Sums counts of the given statuses. */
static double count_of(const cJSON *job, const char *status) {
    return field_num(field(job, "counts"), status, 0);
}

/* "2/3": the current round out of the rounds the job plans, or "2" alone when the server does
 * not say how many it plans. Rounds count from 1 in the API as here. */
static char *format_round(const cJSON *job, char *buf, size_t cap) {
    const cJSON *round = field(job, "round");
    double planned = field_num(job, "rounds_planned", -1);
    if (planned < 0) {
        int n = cJSON_GetArraySize(field(field(field(job, "spec"), "refine"), "rounds"));
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
static double job_max_trials(const cJSON *job) {
    double max = field_num(job, "max_trials", -1);
    if (max < 0) max = field_num(field(field(job, "spec"), "budget"), "max_trials", -1);
    return max;
}

/* The one-line progress summary of a job that watch redraws. */
static void format_progress(const cJSON *job, int64_t id, char *line, size_t cap) {
    char round[32], best[CV_FMT_CELL], max[32], value[CV_FMT_CELL];
    const char *objective = job_objective(job);
    const cJSON *best_trial = field(job, "best");
    double failed = count_of(job, "failed") + count_of(job, "diverged") + count_of(job, "lost");
    double running = field_num(job, "running", count_of(job, "running"));
    double max_trials = job_max_trials(job);
    if (max_trials >= 0)
        snprintf(max, sizeof max, "%.0f", max_trials);
    else
        snprintf(max, sizeof max, "?");
    if (cJSON_IsObject(best_trial))
        snprintf(best, sizeof best, "best %s %s (trial %.0f)", objective,
                 cv_fmt_number(trial_objective(best_trial, objective), value, sizeof value),
                 field_num(best_trial, "id", 0));
    else
        snprintf(best, sizeof best, "no result yet");
    int n = snprintf(line, cap, "job %" PRId64 " %s  round %s  %.0f/%s completed  %.0f running", id,
                     field_str(job, "status", "?"), format_round(job, round, sizeof round),
                     count_of(job, "completed"), max, running);
    if (n > 0 && (size_t)n < cap && count_of(job, "pruned") > 0)
        n += snprintf(line + n, cap - (size_t)n, "  %.0f pruned", count_of(job, "pruned"));
    if (n > 0 && (size_t)n < cap && failed > 0)
        n += snprintf(line + n, cap - (size_t)n, "  %.0f failed", failed);
    if (n > 0 && (size_t)n < cap) snprintf(line + n, cap - (size_t)n, "  %s", best);
}

/* "  about 3 min left": the time a running job still needs at the rate its trials finished so
 * far (finished trials over the time since the job was created), or "" before the first trial
 * finished or when the server gives no budget. */
static void format_time_left(const cJSON *job, char *buf, size_t cap) {
    double finished = count_of(job, "completed") + count_of(job, "pruned") +
                      count_of(job, "failed") + count_of(job, "diverged") + count_of(job, "lost");
    double max_trials = job_max_trials(job), created = field_num(job, "created_at", -1);
    double elapsed = (double)time(NULL) - created, left;
    buf[0] = '\0';
    if (strcmp(field_str(job, "status", ""), "running") != 0 || finished < 1 || created < 0 ||
        elapsed <= 0 || max_trials <= finished)
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
static int watch_job(cv_cli_t *cli, int64_t id, double interval, char *err) {
    char line[512], last[512] = "", left[64];
    char *last_json = NULL; /* the previous answer with --json (cJSON-allocated, owned) */
    int tty = isatty(fileno(cli->out)), rc;
    for (;;) {
        cv_http_reply_t reply;
        rc = fetch_job(cli, id, &reply, err);
        if (rc < 0) break;
        const char *status = field_str(reply.json, "status", "?");
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
                             cJSON_IsString(field(reply.json, "error")) ? ": " : "",
                             field_str(reply.json, "error", ""));
            cv_http_reply_finish(&reply);
            break;
        }
        cv_http_reply_finish(&reply);
        sleep_unless_stopped(cli, interval);
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
static int submit_file(cv_cli_t *cli, const char *path, int64_t *id, char *err) {
    char *text;
    size_t len;
    cv_http_reply_t reply;
    int rc = read_job_file(path, &text, &len, err);
    if (rc < 0) return rc;
    rc = api(cli, "POST", "/v1/jobs", text, len, SUBMIT_MS, &reply, err);
    free(text);
    if (rc < 0) return rc;
    const cJSON *v = field(reply.json, "id");
    if (!cJSON_IsNumber(v) || v->valuedouble < 1) {
        cv_http_reply_finish(&reply);
        return cv_errf(err, CV_EFORMAT, "the server accepted the job but its answer has no id");
    }
    *id = (int64_t)v->valuedouble;
    rc = cli->json ? print_raw(cli, &reply) : 0;
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
    int rc = parse_args(argc, argv, opts, 2, pos, 1, 1, &n_pos, "JOB.json", err);
    if (rc < 0) return rc;
    rc = submit_file(cli, pos[0], &id, err);
    if (rc < 0 || !watch) return rc;
    return watch_job(cli, id, interval, err);
}

/* One row of the job list: the list entry, completed by the job's detail when it could be
 * fetched (detail may be NULL). */
static void job_row(cv_table_t *t, const cJSON *entry, const cJSON *detail) {
    char buf[CV_FMT_CELL];
    const cJSON *job = detail ? detail : entry;
    const char *objective = job_objective(job);
    double max = job_max_trials(job);
    cv_table_add_row(t);
    cv_table_set(t, 0, cv_fmt_number(field(entry, "id"), buf, sizeof buf));
    cv_table_set(t, 1, field_str(entry, "name", "-"));
    cv_table_set(t, 2, field_str(job, "status", "?"));
    cv_table_set(t, 3, format_round(job, buf, sizeof buf));
    if (!detail) return;
    if (max >= 0)
        cv_table_setf(t, 4, "%.0f/%.0f", count_of(job, "completed"), max);
    else
        cv_table_setf(t, 4, "%.0f", count_of(job, "completed"));
    cv_table_setf(t, 5, "%.0f", field_num(job, "running", count_of(job, "running")));
    cv_table_setf(t, 6, "%.0f", count_of(job, "queued"));
    cv_table_setf(t, 7, "%.0f",
                  count_of(job, "failed") + count_of(job, "diverged") + count_of(job, "lost"));
    cv_table_set(t, 8, objective);
    cv_table_set(t, 9,
                 cv_fmt_number(trial_objective(field(job, "best"), objective), buf, sizeof buf));
}

/* `caviar status` without a job: every job as a table row. */
static int print_job_list(cv_cli_t *cli, char *err) {
    static const char *const headers[] = {"ID",      "NAME",   "STATUS", "ROUND",     "COMPLETED",
                                          "RUNNING", "QUEUED", "FAILED", "OBJECTIVE", "BEST"};
    static const int right[] = {1, 0, 0, 1, 1, 1, 1, 1, 0, 1};
    cv_http_reply_t list;
    const cJSON *entry;
    int rc = api_get_list(cli, "/v1/jobs", "jobs", 0, 0, &list, err);
    if (rc < 0) return rc;
    if (cli->json) {
        rc = print_raw(cli, &list);
        cv_http_reply_finish(&list);
        return rc;
    }
    const cJSON *jobs = field(list.json, "jobs");
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
        const cJSON *id = field(entry, "id");
        /* Counts and the best trial are only in a job's detail: one more request per job. */
        int got =
            cJSON_IsNumber(id) && fetch_job(cli, (int64_t)id->valuedouble, &detail, NULL) == 0;
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
    const cJSON *weights = field(p, "weights"), *w;
    if (cJSON_IsNumber(field(p, "min")) || cJSON_IsNumber(field(p, "max"))) {
        snprintf(buf, cap, "[%s, %s]", cv_fmt_number(field(p, "min"), lo, sizeof lo),
                 cv_fmt_number(field(p, "max"), hi, sizeof hi));
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
        double c = count_of(job, TRIAL_STATUSES[i]);
        if (c > 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s%.0f %s", n ? ", " : "", c,
                                  TRIAL_STATUSES[i]);
    }
    double max = job_max_trials(job);
    if (n == 0) n = (size_t)snprintf(buf, cap, "none yet");
    if (n < cap && max >= 0) snprintf(buf + n, cap - n, " (max %.0f)", max);
}

/* The params of a trial as "name value, name value". */
static void format_params_inline(const cJSON *trial, char *buf, size_t cap) {
    char v[CV_FMT_CELL];
    const cJSON *p;
    size_t n = 0;
    buf[0] = '\0';
    cJSON_ArrayForEach(p, field(trial, "params")) {
        if (n >= cap) break;
        n += (size_t)snprintf(buf + n, cap - n, "%s%s %s", n ? ", " : "", p->string,
                              cv_fmt_value(p, v, sizeof v));
    }
}

/* Prints a stored test result: "accuracy 0.8812 (error ..., N examples, trial 17)". */
static void format_test_result(const cJSON *r, char *buf, size_t cap) {
    char acc[CV_FMT_CELL], cost[CV_FMT_CELL], ids[256] = "";
    const cJSON *id;
    size_t n = 0;
    cJSON_ArrayForEach(id, field(r, "trials")) {
        if (n < sizeof ids)
            n += (size_t)snprintf(ids + n, sizeof ids - n, "%s%.0f", n ? ", " : "",
                                  cJSON_IsNumber(id) ? id->valuedouble : 0.0);
    }
    snprintf(buf, cap, "test accuracy %s (test cost %s, %.0f examples, %s %s)",
             cv_fmt_number_digits(field(r, "test_accuracy"), 4, acc, sizeof acc),
             cv_fmt_number(field(r, "test_cost"), cost, sizeof cost), field_num(r, "examples", 0),
             cJSON_GetArraySize(field(r, "trials")) > 1 ? "ensemble of trials" : "trial",
             ids[0] ? ids : "?");
}

/* `caviar status JOB`: one job in detail. */
static void print_job_detail(cv_cli_t *cli, int64_t id, const cJSON *job) {
    char buf[1024], round[32], value[CV_FMT_CELL];
    const char *objective = job_objective(job);
    const cJSON *best = field(job, "best"), *p;
    FILE *out = cli->out;

    fprintf(out, "job %" PRId64 ": %s\n", id, field_str(job, "name", "(unnamed)"));
    detail_line(out, "status", field_str(job, "status", "?"));
    detail_line(out, "objective", objective);
    format_round(job, round, sizeof round);
    detail_line(out, "round", round);
    format_counts(job, buf, sizeof buf);
    detail_line(out, "trials", buf);
    detail_line(out, "created", cv_fmt_time(field(job, "created_at"), value, sizeof value));
    if (cJSON_IsNumber(field(job, "finished_at")))
        detail_line(out, "finished", cv_fmt_time(field(job, "finished_at"), value, sizeof value));
    const char *key = "region";
    cJSON_ArrayForEach(p, field(job, "region")) {
        char range[512];
        format_region_param(p, range, sizeof range);
        snprintf(buf, sizeof buf, "%s %s", p->string, range);
        detail_line(out, key, buf);
        key = "";
    }
    if (cJSON_IsObject(best)) {
        char dev_cost[CV_FMT_CELL], train[CV_FMT_CELL], diag[CV_FMT_CELL];
        snprintf(buf, sizeof buf, "trial %.0f: %s %s, dev_cost %s, train_error %s, %s epochs, %s",
                 field_num(best, "id", 0), objective,
                 cv_fmt_number(trial_objective(best, objective), value, sizeof value),
                 cv_fmt_number(field(best, "dev_cost"), dev_cost, sizeof dev_cost),
                 cv_fmt_number(field(best, "train_error"), train, sizeof train),
                 cv_fmt_number(field(best, "epochs_run"), round, sizeof round),
                 cv_fmt_diagnosis(field(best, "diagnosis"), diag, sizeof diag));
        detail_line(out, "best", buf);
        format_params_inline(best, buf, sizeof buf);
        detail_line(out, "", buf);
    } else {
        detail_line(out, "best", "no completed trial yet");
    }
    if (cJSON_IsObject(field(job, "test_result"))) {
        format_test_result(field(job, "test_result"), buf, sizeof buf);
        detail_line(out, "test", buf);
    }
    if (cJSON_GetArraySize(field(job, "quarantined_workers")) > 0) {
        size_t n = 0;
        buf[0] = '\0';
        cJSON_ArrayForEach(p, field(job, "quarantined_workers")) {
            if (n < sizeof buf)
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? ", " : "",
                                      field_str(p, "worker_id", "?"));
        }
        if (n < sizeof buf)
            snprintf(buf + n, sizeof buf - n, " (they get no trials; see caviar workers)");
        detail_line(out, "quarantine", buf);
    }
    if (cJSON_IsString(field(job, "error"))) detail_line(out, "error", field_str(job, "error", ""));
}

int cv_cmd_status(cv_cli_t *cli, int argc, char **argv, char *err) {
    const char *pos[1];
    size_t n_pos;
    int64_t id;
    cv_http_reply_t reply;
    int rc = parse_args(argc, argv, NULL, 0, pos, 0, 1, &n_pos, "JOB", err);
    if (rc < 0) return rc;
    if (n_pos == 0) return print_job_list(cli, err);
    rc = parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    rc = fetch_job(cli, id, &reply, err);
    if (rc < 0) return rc;
    if (cli->json)
        rc = print_raw(cli, &reply);
    else
        print_job_detail(cli, id, reply.json);
    cv_http_reply_finish(&reply);
    return rc;
}

/* ---- Trials --------------------------------------------------------------------------- */

typedef enum { TRIALS_RANKED, TRIALS_LISTED } trial_table_kind_t;

/* 1 when some trial gives the parameter a value that is not a number: its column reads better
 * aligned left. */
static int param_is_text(const cJSON *trials, const char *name) {
    const cJSON *trial;
    cJSON_ArrayForEach(trial, trials) {
        const cJSON *v = field(field(trial, "params"), name);
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
    const char *objective = job_objective(job);
    const cJSON *trial;
    param_names_t params;
    size_t lead = kind == TRIALS_RANKED ? 3 : 4, col;

    if (cJSON_GetArraySize(trials) == 0) {
        const char *status = field_str(job, "status", "running");
        if (kind == TRIALS_RANKED && strcmp(status, "running") != 0)
            fprintf(cli->out, "no completed trials: the job %s%s%s\n", status,
                    cJSON_IsString(field(job, "error")) ? ": " : "",
                    field_str(job, "error", ""));
        else
            fprintf(cli->out, kind == TRIALS_RANKED ? "no completed trials yet\n" : "no trials\n");
        return 0;
    }
    collect_param_names(job, trials, &params);
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
            cv_table_set(t, col++, cv_fmt_number(field(trial, "id"), buf, sizeof buf));
            cv_table_set(t, col++,
                         cv_fmt_number(trial_objective(trial, objective), buf, sizeof buf));
        } else {
            cv_table_set(t, col++, cv_fmt_number(field(trial, "id"), buf, sizeof buf));
            cv_table_set(t, col++, cv_fmt_number(field(trial, "number"), buf, sizeof buf));
            cv_table_set(t, col++, cv_fmt_number(field(trial, "round"), buf, sizeof buf));
            cv_table_set(t, col++, field_str(trial, "status", "?"));
        }
        cv_table_set(t, col++, cv_fmt_number(field(trial, "dev_error"), buf, sizeof buf));
        cv_table_set(t, col++, cv_fmt_number(field(trial, "dev_cost"), buf, sizeof buf));
        cv_table_set(t, col++, cv_fmt_number(field(trial, "train_error"), buf, sizeof buf));
        cv_table_set(t, col++, cv_fmt_number(field(trial, "epochs_run"), buf, sizeof buf));
        cv_table_set(t, col++, cv_fmt_diagnosis(field(trial, "diagnosis"), buf, sizeof buf));
        for (size_t i = 0; i < params.n; i++)
            cv_table_set(
                t, col++,
                cv_fmt_value(field(field(trial, "params"), params.names[i]), buf, sizeof buf));
    }
    if (kind == TRIALS_RANKED) fprintf(cli->out, "objective: %s (smaller is better)\n", objective);
    int rc = cv_table_print(t, cli->out, 0);
    if (rc < 0) rc = cv_errf(err, rc, "cannot print the trial table: %s", cv_strerror(rc));
    cv_table_destroy(t);
    const cJSON *top = cJSON_GetArrayItem(trials, 0);
    if (rc == 0 && kind == TRIALS_RANKED && cJSON_IsString(field(top, "model_path")))
        fprintf(cli->out,
                "model of trial %.0f: %s (on the coordinator; caviar model %.0f -o FILE "
                "downloads it)\n",
                field_num(top, "id", 0), field_str(top, "model_path", ""), field_num(top, "id", 0));
    return rc;
}

/* Fetches a job and a page of its trials, then prints them (or the trials' JSON). */
static int show_trials(cv_cli_t *cli, int64_t id, const char *order, int64_t limit, int64_t offset,
                       trial_table_kind_t kind, char *err) {
    char path[PATH_TEXT_MAX];
    cv_http_reply_t job, answer;
    int rc = fetch_job(cli, id, &job, err);
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/trials?order=%s", id, order);
    rc = api_get_list(cli, path, "trials", offset, limit, &answer, err);
    if (rc < 0) {
        cv_http_reply_finish(&job);
        return rc;
    }
    cJSON *trials = answer_trials(&answer);
    if (cli->json)
        rc = print_raw(cli, &answer);
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
    int rc = parse_args(argc, argv, opts, 1, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    return show_trials(cli, id, "best", k, 0, TRIALS_RANKED, err);
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
    int rc = parse_args(argc, argv, opts, 3, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    if (strcmp(order, "best") != 0 && strcmp(order, "number") != 0)
        return cv_errf(err, CV_CLI_EUSAGE, "--order: must be best or number, got \"%s\"", order);
    return show_trials(cli, id, order, limit, offset,
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
    const cJSON *curve = field(trial, "curve"), *point;
    int n = cJSON_GetArraySize(curve), i = 0;
    double best = field_num(trial, "best_epoch", -1);
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
        double epoch = field_num(point, "epoch", i);
        if (i % step == 0 || i == n - 1 || epoch == best) {
            cv_table_add_row(t);
            cv_table_setf(t, 0, "%s%.0f", epoch == best ? "*" : "", epoch);
            for (size_t c = 0; c < 7; c++)
                cv_table_set(t, c + 1, cv_fmt_number(field(point, cols[c]), buf, sizeof buf));
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

/* `caviar trial ID` in text. */
static int print_trial_detail(cv_cli_t *cli, int64_t id, const cJSON *trial, char *err) {
    static const char *const metrics[] = {"dev_error",  "dev_cost",           "train_error",
                                          "train_cost", "train_cost_reg",     "best_epoch",
                                          "epochs_run", "examples_per_second"};
    char buf[CV_FMT_CELL];
    const cJSON *p, *diag = field(trial, "diagnosis");
    FILE *out = cli->out;
    double attempts = field_num(trial, "attempts", 0), round = field_num(trial, "round", 0);

    fprintf(out, "trial %" PRId64 " (job %.0f, number %.0f, round %.0f): %s, %.0f attempt%s", id,
            field_num(trial, "job_id", 0), field_num(trial, "number", 0), round,
            field_str(trial, "status", "?"), attempts, attempts == 1 ? "" : "s");
    if (cJSON_IsString(field(trial, "worker_id")))
        fprintf(out, ", worker %s", field_str(trial, "worker_id", ""));
    fputc('\n', out);
    fprintf(out, "params\n");
    cJSON_ArrayForEach(p, field(trial, "params"))
        fprintf(out, "  %-20s %s\n", p->string, cv_fmt_value_exact(p, buf, sizeof buf));
    fprintf(out, "metrics\n");
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
        fprintf(out, "  %-20s %s\n", metrics[i],
                cv_fmt_number_digits(field(trial, metrics[i]), 6, buf, sizeof buf));
    if (cJSON_IsObject(diag)) {
        char bias[CV_FMT_CELL], var[CV_FMT_CELL];
        fprintf(out, "diagnosis  %s (avoidable bias %s, variance %s)\n",
                cv_fmt_diagnosis(diag, buf, sizeof buf),
                cv_fmt_number(field(diag, "avoidable_bias"), bias, sizeof bias),
                cv_fmt_number(field(diag, "variance"), var, sizeof var));
        if (cJSON_IsString(field(diag, "remedy")))
            fprintf(out, "  %s\n", field_str(diag, "remedy", ""));
    } else {
        fprintf(out, "diagnosis  %s\n", cv_fmt_diagnosis(diag, buf, sizeof buf));
    }
    if (cJSON_IsString(field(trial, "error")))
        fprintf(out, "error      %s\n", field_str(trial, "error", ""));
    if (cJSON_IsString(field(trial, "model_path")))
        fprintf(out,
                "model      %s (on the coordinator; caviar model %" PRId64 " -o FILE "
                "downloads it)\n",
                field_str(trial, "model_path", ""), id);
    else
        fprintf(out, "model      none%s\n",
                strcmp(field_str(trial, "status", ""), "completed") == 0 ||
                        strcmp(field_str(trial, "status", ""), "pruned") == 0
                    ? ""
                    : " (only completed and pruned trials keep their model)");
    return print_curve(cli, trial, err);
}

int cv_cmd_trial(cv_cli_t *cli, int argc, char **argv, char *err) {
    char path[PATH_TEXT_MAX];
    const char *pos[1];
    size_t n_pos;
    int64_t id;
    cv_http_reply_t reply;
    int rc = parse_args(argc, argv, NULL, 0, pos, 1, 1, &n_pos, "trial ID", err);
    if (rc == 0) rc = parse_id(pos[0], "trial ID", &id, err);
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "/v1/trials/%" PRId64, id);
    rc = api_get(cli, path, &reply, err);
    if (rc < 0) return rc;
    normalize_json_text(reply.json, "params");
    if (cli->json)
        rc = print_raw(cli, &reply);
    else
        rc = print_trial_detail(cli, id, reply.json, err);
    cv_http_reply_finish(&reply);
    return rc;
}

/* ---- Models --------------------------------------------------------------------------- */

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
    int rc = parse_args(argc, argv, opts, 1, pos, 1, 1, &n_pos, "trial ID", err);
    if (rc == 0) rc = parse_id(pos[0], "trial ID", &id, err);
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

/* ---- Watching, cancelling, evaluating ------------------------------------------------- */

int cv_cmd_watch(cv_cli_t *cli, int argc, char **argv, char *err) {
    double interval = 1.0;
    const char *pos[1];
    size_t n_pos;
    int64_t id;
    const cv_arg_opt_t opts[] = {{"--interval", "-i", CV_ARG_NUMBER, &interval, 0.05, 3600}};
    int rc = parse_args(argc, argv, opts, 1, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    return watch_job(cli, id, interval, err);
}

/* Sends `method` to /v1/jobs/<id><suffix> and reports "job N <done> (K trials <done>)", K from
 * the reply's field "trials_<done>". */
static int job_action(cv_cli_t *cli, int64_t id, const char *method, const char *suffix,
                      const char *done, char *err) {
    char path[PATH_TEXT_MAX], count[64];
    cv_http_reply_t reply;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "%s", id, suffix);
    snprintf(count, sizeof count, "trials_%s", done);
    int rc = api(cli, method, path, NULL, 0, 0, &reply, err);
    if (rc < 0) return rc;
    if (cli->json)
        rc = print_raw(cli, &reply);
    else
        fprintf(cli->out, "job %" PRId64 " %s (%.0f trials %s)\n", id, done,
                field_num(reply.json, count, 0), done);
    cv_http_reply_finish(&reply);
    return rc;
}

/* Cancels a job and reports how many trials were cancelled. */
static int cancel_job(cv_cli_t *cli, int64_t id, char *err) {
    return job_action(cli, id, "POST", "/cancel", "cancelled", err);
}

int cv_cmd_cancel(cv_cli_t *cli, int argc, char **argv, char *err) {
    const char *pos[1];
    size_t n_pos;
    int64_t id;
    int rc = parse_args(argc, argv, NULL, 0, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    return cancel_job(cli, id, err);
}

/* Deletes a job that is not running, with its trials and models. */
int cv_cmd_delete(cv_cli_t *cli, int argc, char **argv, char *err) {
    const char *pos[1];
    size_t n_pos;
    int64_t id;
    int rc = parse_args(argc, argv, NULL, 0, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    return job_action(cli, id, "DELETE", "", "deleted", err);
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
    int rc = parse_args(argc, argv, opts, 3, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = parse_id(pos[0], "JOB", &id, err);
    if (rc == 0 && max_trials == 0)
        rc = cv_errf(err, CV_CLI_EUSAGE, "extend: --max-trials N is required");
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/extend", id);
    int len = snprintf(body, sizeof body, "{\"max_trials\":%" PRId64 "}", max_trials);
    rc = api(cli, "POST", path, body, (size_t)len, 0, &reply, err);
    if (rc < 0) return rc;
    if (cli->json)
        rc = print_raw(cli, &reply);
    else
        fprintf(cli->out, "job %" PRId64 " extended to %.0f trials: round %.0f runs\n", id,
                field_num(reply.json, "max_trials", 0), field_num(reply.json, "round", 0));
    cv_http_reply_finish(&reply);
    if (rc < 0 || !watch) return rc;
    fflush(cli->out);
    return watch_job(cli, id, interval, err);
}

/* Asks for the test-set evaluation of a job's best trial (or top-k ensemble; 0: whatever the
 * job was scored with, else the best trial) and prints it. The server scores a job's test set
 * once: asking for another ensemble size than the stored one is refused with its reason. */
static int evaluate_job(cv_cli_t *cli, int64_t id, int64_t ensemble, char *err) {
    char path[PATH_TEXT_MAX], body[64] = "", line[512];
    cv_http_reply_t reply;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/evaluate", id);
    int len =
        ensemble > 0 ? snprintf(body, sizeof body, "{\"ensemble\": %" PRId64 "}", ensemble) : 0;
    int rc = api(cli, "POST", path, len ? body : NULL, (size_t)len, EVALUATE_MS, &reply, err);
    if (rc < 0) return rc;
    /* 202: the evaluation runs in the background; its result lands in the job's test_result. */
    for (double waited = 0; reply.status == 202 && !*cli->stop; waited += 0.2) {
        cv_http_reply_t job;
        cv_http_reply_finish(&reply);
        if (waited > EVALUATE_MS / 1000.0)
            return cv_errf(err, CV_EIO, "the evaluation of job %" PRId64 " did not finish", id);
        sleep_unless_stopped(cli, 0.2);
        if ((rc = fetch_job(cli, id, &job, err)) < 0) return rc;
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
    if (!cli->json && cJSON_IsString(field(reply.json, "error"))) {
        rc = cv_errf(err, CV_EINVAL, "evaluation failed: %s",
                     field(reply.json, "error")->valuestring);
    } else if (cli->json) {
        rc = print_raw(cli, &reply);
    } else if (!cJSON_IsNumber(field(reply.json, "test_accuracy"))) {
        rc = cv_errf(err, CV_EFORMAT, "the evaluation answer has no test_accuracy");
    } else {
        format_test_result(reply.json, line, sizeof line);
        fprintf(cli->out, "%s%s\n", line,
                cJSON_IsTrue(field(reply.json, "cached")) ? " [stored result]" : "");
    }
    cv_http_reply_finish(&reply);
    return rc;
}

int cv_cmd_evaluate(cv_cli_t *cli, int argc, char **argv, char *err) {
    int64_t ensemble = 0, id; /* 0: not given */
    const char *pos[1];
    size_t n_pos;
    const cv_arg_opt_t opts[] = {{"--ensemble", "-e", CV_ARG_INT, &ensemble, 1, 16}};
    int rc = parse_args(argc, argv, opts, 1, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    return evaluate_job(cli, id, ensemble, err);
}

/* ---- Export and workers --------------------------------------------------------------- */

/* Writes trials as CSV: identity columns, one column per parameter, then the metrics. */
static void write_trials_csv(FILE *f, const cJSON *job, const cJSON *trials) {
    static const char *const head[] = {"id", "number", "round", "status", "attempts"};
    static const char *const tail[] = {
        "dev_error",  "dev_cost",   "train_error", "train_cost",          "train_cost_reg",
        "best_epoch", "epochs_run", "diagnosis",   "examples_per_second", "error"};
    char buf[1024];
    const cJSON *trial;
    param_names_t params;
    collect_param_names(job, trials, &params);
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
            cv_fmt_csv_field(f, cv_fmt_value_exact(field(trial, head[i]), buf, sizeof buf));
        }
        for (size_t i = 0; i < params.n; i++) {
            fputc(',', f);
            cv_fmt_csv_field(f, cv_fmt_value_exact(field(field(trial, "params"), params.names[i]),
                                                   buf, sizeof buf));
        }
        for (size_t i = 0; i < n_tail; i++) {
            const cJSON *v = field(trial, tail[i]);
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
        const cJSON *id = field(trial, "id");
        if (!cJSON_IsNumber(id)) return cv_errf(err, CV_EFORMAT, "a trial row has no \"id\"");
        snprintf(path, sizeof path, "/v1/trials/%.0f", id->valuedouble);
        int rc = api_get(cli, path, &detail, err);
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
    int rc = parse_args(argc, argv, opts, 4, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = parse_id(pos[0], "JOB", &id, err);
    if (rc == 0 && optuna && (csv || strcmp(output, "-") != 0))
        rc = cv_errf(err, CV_CLI_EUSAGE, "--optuna FILE writes a study; it takes no --csv or -o");
    if (rc == 0 && study && !optuna)
        rc = cv_errf(err, CV_CLI_EUSAGE, "--study names the study of --optuna FILE");
    if (rc < 0) return rc;
    rc = fetch_job(cli, id, &job, err);
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/trials?order=number", id);
    rc = api_get_list(cli, path, "trials", 0, 0, &answer, err);
    if (rc < 0) goto out_job;
    cJSON *trials = answer_trials(&answer);
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
                    study ? study : cJSON_GetStringValue(field(job.json, "name")));
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

/* POST /v1/workers/{id}/release: lifts a worker's quarantine and says what changed. */
static int release_worker(cv_cli_t *cli, const char *worker_id, char *err) {
    char path[PATH_TEXT_MAX];
    cv_http_reply_t reply;
    if (!*worker_id || strlen(worker_id) > 64)
        return cv_errf(err, CV_CLI_EUSAGE, "--release: a worker id has 1 to 64 characters");
    for (const char *c = worker_id; *c; c++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-", *c))
            return cv_errf(err, CV_CLI_EUSAGE, "--release: \"%s\" is not a worker id "
                           "(letters, digits, '.', '_', ':' and '-')", worker_id);
    snprintf(path, sizeof path, "/v1/workers/%s/release", worker_id);
    int rc = api(cli, "POST", path, NULL, 0, 0, &reply, err);
    if (rc < 0) return rc;
    if (cli->json)
        rc = print_raw(cli, &reply);
    else if (cJSON_IsTrue(field(reply.json, "was_quarantined")))
        fprintf(cli->out, "worker %s released from quarantine: it gets trials again\n", worker_id);
    else
        fprintf(cli->out, "worker %s was not quarantined\n", worker_id);
    cv_http_reply_finish(&reply);
    return rc;
}

/* A worker's state word: the API's "state" (idle, running, quarantined, disconnected). */
static const char *worker_state(const cJSON *w) {
    const char *state = field_str(w, "state", NULL);
    if (state) return state;
    if (cJSON_IsTrue(field(w, "quarantined")) || field_num(w, "quarantined", 0) == 1)
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
    int rc = parse_args(argc, argv, opts, 1, pos, 0, 0, &n_pos, "", err);
    if (rc < 0) return rc;
    if (release) return release_worker(cli, release, err);
    rc = api_get_list(cli, "/v1/workers", "workers", 0, 0, &reply, err);
    if (rc < 0) return rc;
    const cJSON *workers = field(reply.json, "workers");
    if (cli->json) {
        rc = print_raw(cli, &reply);
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
        cv_table_set(t, 0, cv_fmt_value(field(w, "id"), buf, sizeof buf));
        cv_table_set(t, 1, cv_fmt_value(field(w, "host"), buf, sizeof buf));
        cv_table_set(t, 2, cv_fmt_value(field(w, "version"), buf, sizeof buf));
        cv_table_set(t, 3, cv_fmt_number(field(w, "threads"), buf, sizeof buf));
        cv_table_set(t, 4, worker_state(w));
        cv_table_set(t, 5, cv_fmt_number(field(w, "job_id"), buf, sizeof buf));
        cv_table_set(t, 6, cv_fmt_number(field(w, "trial_id"), buf, sizeof buf));
        cv_table_set(t, 7, cv_fmt_number(field(w, "trials_done"), buf, sizeof buf));
        cv_table_set(t, 8, cv_fmt_number(field(w, "consecutive_failures"), buf, sizeof buf));
        cv_table_set(t, 9, format_ago(field(w, "last_seen"), buf, sizeof buf));
    }
    rc = cv_table_print(t, cli->out, 0);
    if (rc < 0) rc = cv_errf(err, rc, "cannot print the worker table: %s", cv_strerror(rc));
    cv_table_destroy(t);
out:
    cv_http_reply_finish(&reply);
    return rc;
}

/* ---- run: the one-command search ------------------------------------------------------ */

#define ANYTIME_ROWS 12 /* rows of the anytime curve at most: each a new best */

typedef struct {
    double at;        /* seconds from the job's submission to the trial's end */
    double dev_error;
    int64_t trial;
} anytime_point_t;

static int anytime_cmp(const void *x, const void *y) {
    const anytime_point_t *a = x, *b = y;
    return (a->at > b->at) - (a->at < b->at);
}

/* Prints a finished job's anytime curve, the best dev error against wall time since its
 * submission (each completed trial that improved on the best so far, in the order they ended,
 * thinned to ANYTIME_ROWS), then its worker utilization and how many trials the pruner
 * stopped. */
static int print_anytime(cv_cli_t *cli, int64_t id, char *err) {
    char path[PATH_TEXT_MAX], b[32];
    cv_http_reply_t job, trials;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64, id);
    int rc = api_get(cli, path, &job, err);
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/trials", id);
    rc = api_get_list(cli, path, "trials", 0, 0, &trials, err);
    if (rc < 0) {
        cv_http_reply_finish(&job);
        return rc;
    }
    double t0 = field_num(job.json, "created_at", 0);
    const cJSON *list = field(trials.json, "trials"), *t;
    anytime_point_t *pts = NULL;
    size_t n = (size_t)cJSON_GetArraySize(list), k = 0, m = 0;
    /* The completed trials in the order they ended; each that beat all before it is a row, kept
     * at the front of the same array. */
    pts = calloc(n ? n : 1, sizeof *pts);
    if (!pts) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(t, list) {
        if (strcmp(field_str(t, "status", ""), "completed")) continue;
        pts[k++] = (anytime_point_t){field_num(t, "finished_at", NAN) - t0,
                                     field_num(t, "dev_error", NAN),
                                     (int64_t)field_num(t, "id", 0)};
    }
    qsort(pts, k, sizeof *pts, anytime_cmp);
    for (size_t i = 0; i < k; i++)
        if (m == 0 || pts[i].dev_error < pts[m - 1].dev_error) pts[m++] = pts[i];
    fprintf(cli->out, "\nanytime curve of job %" PRId64 " (best dev error against time):\n", id);
    size_t step = m > ANYTIME_ROWS ? (m + ANYTIME_ROWS - 1) / ANYTIME_ROWS : 1;
    for (size_t i = 0; i < m; i++)
        if (i % step == 0 || i + 1 == m)
            fprintf(cli->out, "  %7.1f s  %.4f  trial %" PRId64 "\n", pts[i].at,
                    pts[i].dev_error, pts[i].trial);
    const cJSON *u = field(job.json, "utilization");
    const cJSON *counts = field(job.json, "counts");
    snprintf(b, sizeof b, "%.1f%%", 100 * field_num(u, "fraction", NAN));
    fprintf(cli->out, "worker utilization %s (%.0f busy of %.0f available worker-seconds); %.0f "
            "trials completed, %.0f pruned\n", b, field_num(u, "busy_seconds", 0),
            field_num(u, "available_seconds", 0), field_num(counts, "completed", 0),
            field_num(counts, "pruned", 0));
out:
    free(pts);
    cv_http_reply_finish(&trials);
    cv_http_reply_finish(&job);
    return rc < 0 ? rc : 0;
}

/* What `caviar run` does once its daemon listens: submit, watch, report, evaluate. On
 * interruption the job is cancelled. */
static int run_search(cv_cli_t *cli, const char *job_file, double interval, int64_t ensemble,
                      char *err) {
    int64_t id;
    int rc = submit_file(cli, job_file, &id, err);
    if (rc < 0) return rc;
    rc = watch_job(cli, id, interval, err);
    if (rc == CV_ESTOPPED) {
        char ignored[CV_ERRLEN];
        fprintf(stderr, "caviar: interrupted; cancelling job %" PRId64 "\n", id);
        if (cancel_job(cli, id, ignored) < 0)
            fprintf(stderr, "caviar: cancel failed: %s\n", ignored);
        return cv_errf(err, CV_ESTOPPED, "interrupted; job %" PRId64 " cancelled", id);
    }
    if (rc < 0) return rc;
    if ((rc = print_anytime(cli, id, err)) < 0) return rc;
    fprintf(cli->out, "\nbest trials of job %" PRId64 ":\n", id);
    rc = show_trials(cli, id, "best", 5, 0, TRIALS_RANKED, err);
    if (rc < 0) return rc;
    if (*cli->stop) return cv_errf(err, CV_ESTOPPED, "interrupted before the evaluation");
    fputc('\n', cli->out);
    return evaluate_job(cli, id, ensemble, err);
}

int cv_cmd_run(cv_cli_t *cli, int argc, char **argv, char *err) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t workers = cpus > 0 ? cpus : 1, ensemble = 0; /* 0: not given */
    int keep = 0;
    double interval = 1.0;
    const char *pos[1], *log_path = "caviard.log";
    char url[64], why[CV_ERRLEN], *text;
    size_t n_pos, len;
    cv_daemon_options_t d_opts = {.db = "caviar.db", .data_dir = "caviar-data"};
    cv_daemon_t daemon;
    cv_http_client_t *http = NULL, *saved = cli->http;
    const cv_arg_opt_t opts[] = {
        {"--workers", "-j", CV_ARG_INT, &workers, 0, 4096},
        {"--db", NULL, CV_ARG_STRING, &d_opts.db, 0, 0},
        {"--data-dir", NULL, CV_ARG_STRING, &d_opts.data_dir, 0, 0},
        {"--ensemble", "-e", CV_ARG_INT, &ensemble, 1, 16},
        {"--keep", NULL, CV_ARG_FLAG, &keep, 0, 0},
        {"--caviard", NULL, CV_ARG_STRING, &d_opts.caviard, 0, 0},
        {"--log", NULL, CV_ARG_STRING, &log_path, 0, 0},
        {"--interval", "-i", CV_ARG_NUMBER, &interval, 0.05, 3600},
    };
    int rc = parse_args(argc, argv, opts, 8, pos, 1, 1, &n_pos, "JOB.json", err);
    if (rc < 0) return rc;
    /* Refuse an unreadable or malformed spec before starting anything. */
    rc = read_job_file(pos[0], &text, &len, err);
    if (rc < 0) return rc;
    free(text);

    /* The daemon reads its API token from CAVIAR_TOKEN: make it the one we send. */
    if (cli->token && cli->token[0] && setenv("CAVIAR_TOKEN", cli->token, 1) != 0)
        return cv_errf(err, CV_ENOMEM, "cannot pass the token to caviard: %s", strerror(errno));
    d_opts.workers = (long)workers;
    d_opts.keep = keep;
    d_opts.log_path = strcmp(log_path, "-") == 0 ? NULL : log_path;
    rc = cv_daemon_start(&daemon, &d_opts, err);
    if (rc < 0) return rc;
    fprintf(stderr, "caviar: started %s (pid %ld, %" PRId64 " workers, db %s, log %s)\n",
            daemon.path, (long)daemon.pid, workers, d_opts.db,
            d_opts.log_path ? log_path : "stderr");
    rc = cv_daemon_wait_port(&daemon, START_TIMEOUT_S, cli->stop, err);
    if (rc < 0) {
        if (rc != CV_ESTOPPED && d_opts.log_path) {
            size_t n = strlen(err);
            snprintf(err + n, CV_ERRLEN - n, " (see %s)", log_path);
        }
        goto stop;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d", daemon.port);
    rc = cv_http_client_create(url, cli->token, &http, err);
    if (rc < 0) goto stop;
    cli->http = http;
    rc = run_search(cli, pos[0], interval, ensemble, err);
    cli->http = saved;
    if (rc < 0 && rc != CV_ESTOPPED && cv_daemon_exited(&daemon)) {
        char how[64];
        cv_daemon_describe_exit(&daemon, how, sizeof how);
        size_t n = strlen(err);
        snprintf(err + n, CV_ERRLEN - n, "; caviard %s (see %s)", how,
                 d_opts.log_path ? log_path : "its output");
    }
stop:
    if (keep && !cv_daemon_exited(&daemon)) {
        fprintf(stderr, "caviar: caviard keeps running at %s (pid %ld); stop it with kill %ld\n",
                daemon.port ? url : "?", (long)daemon.pid, (long)daemon.pid);
    } else {
        /* When it died on its own, the failure it caused already says so. */
        int died = cv_daemon_exited(&daemon);
        int stopped = cv_daemon_stop(&daemon, STOP_TIMEOUT_S, why);
        if (stopped < 0 && rc == 0)
            rc = cv_errf(err, stopped, "%s", why);
        else if (stopped < 0 && !died)
            fprintf(stderr, "caviar: %s\n", why);
    }
    cv_http_client_destroy(http);
    cv_daemon_finish(&daemon);
    return rc;
}
