/* `caviar run`: the one-command search. It starts a private caviard (daemon.h), submits one
 * job, watches it, prints its best trials, its anytime curve and its test result, and stops the
 * daemon. */
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
#include "client/daemon.h"
#include "client/format.h"
#include "client/table.h"
#include "common/err.h"
#include "common/json.h"

#define START_TIMEOUT_S 60.0 /* seconds caviard may take to write its port file */
#define STOP_TIMEOUT_S  60.0 /* seconds caviard may take to exit after SIGTERM */

#define ANYTIME_ROWS 12 /* rows of the anytime curve at most: each a new best */

typedef struct {
    double at; /* seconds from the job's submission to the trial's end */
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
    int rc = cv_cli_api_get(cli, path, &job, err);
    if (rc < 0) return rc;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/trials", id);
    rc = cv_cli_api_get_list(cli, path, "trials", 0, 0, &trials, err);
    if (rc < 0) {
        cv_http_reply_finish(&job);
        return rc;
    }
    double t0 = cv_cli_field_num(job.json, "created_at", 0);
    const cJSON *list = cv_cli_field(trials.json, "trials"), *t;
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
        if (strcmp(cv_cli_field_str(t, "status", ""), "completed")) continue;
        pts[k++] = (anytime_point_t){cv_cli_field_num(t, "finished_at", NAN) - t0,
                                     cv_cli_field_num(t, "dev_error", NAN),
                                     (int64_t)cv_cli_field_num(t, "id", 0)};
    }
    qsort(pts, k, sizeof *pts, anytime_cmp);
    for (size_t i = 0; i < k; i++)
        if (m == 0 || pts[i].dev_error < pts[m - 1].dev_error) pts[m++] = pts[i];
    fprintf(cli->out, "\nanytime curve of job %" PRId64 " (best dev error against time):\n", id);
    size_t step = m > ANYTIME_ROWS ? (m + ANYTIME_ROWS - 1) / ANYTIME_ROWS : 1;
    for (size_t i = 0; i < m; i++)
        if (i % step == 0 || i + 1 == m)
            fprintf(cli->out, "  %7.1f s  %.4f  trial %" PRId64 "\n", pts[i].at, pts[i].dev_error,
                    pts[i].trial);
    const cJSON *u = cv_cli_field(job.json, "utilization");
    const cJSON *counts = cv_cli_field(job.json, "counts");
    snprintf(b, sizeof b, "%.1f%%", 100 * cv_cli_field_num(u, "fraction", NAN));
    fprintf(cli->out,
            "worker utilization %s (%.0f busy of %.0f available worker-seconds); %.0f "
            "trials completed, %.0f pruned\n",
            b, cv_cli_field_num(u, "busy_seconds", 0), cv_cli_field_num(u, "available_seconds", 0),
            cv_cli_field_num(counts, "completed", 0), cv_cli_field_num(counts, "pruned", 0));
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
    int rc = cv_cli_submit_file(cli, job_file, &id, err);
    if (rc < 0) return rc;
    rc = cv_cli_watch_job(cli, id, interval, err);
    if (rc == CV_ESTOPPED) {
        char ignored[CV_ERRLEN];
        fprintf(stderr, "caviar: interrupted; cancelling job %" PRId64 "\n", id);
        if (cv_cli_cancel_job(cli, id, ignored) < 0)
            fprintf(stderr, "caviar: cancel failed: %s\n", ignored);
        return cv_errf(err, CV_ESTOPPED, "interrupted; job %" PRId64 " cancelled", id);
    }
    if (rc < 0) return rc;
    if ((rc = print_anytime(cli, id, err)) < 0) return rc;
    fprintf(cli->out, "\nbest trials of job %" PRId64 ":\n", id);
    rc = cv_cli_show_trials(cli, id, "best", 5, 0, TRIALS_RANKED, err);
    if (rc < 0) return rc;
    if (*cli->stop) return cv_errf(err, CV_ESTOPPED, "interrupted before the evaluation");
    fputc('\n', cli->out);
    return cv_cli_evaluate_job(cli, id, ensemble, err);
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
    int rc = cv_cli_parse_args(argc, argv, opts, 8, pos, 1, 1, &n_pos, "JOB.json", err);
    if (rc < 0) return rc;
    /* Refuse an unreadable or malformed spec before starting anything. */
    rc = cv_cli_read_job_file(pos[0], &text, &len, err);
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
