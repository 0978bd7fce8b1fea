/* caviar importance: how much of a job's objective each searched parameter explains, computed
 * here from the job's completed trials by functional ANOVA on a random forest
 * (common/importance.h), each parameter in the coordinate it was sampled on. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/commands_internal.h"
#include "common/err.h"
#include "common/importance.h"
#include "common/importance_rows.h"
#include "common/space.h"

/* One parameter's answer, for sorting. */
typedef struct {
    const cv_space_param_t *param;
    double importance, fraction;
} ranked_t;

static int by_importance(const void *a, const void *b) {
    double u = ((const ranked_t *)a)->importance, v = ((const ranked_t *)b)->importance;
    return (u < v) - (u > v);
}

static void print_importance(cv_cli_t *cli, int64_t id, ranked_t *r, size_t p, size_t n) {
    double explained = 0;
    for (size_t d = 0; d < p; d++)
        explained += r[d].fraction;
    if (cli->json) {
        fprintf(cli->out, "{\"job\": %" PRId64 ", \"trials\": %zu, \"parameters\": [", id, n);
        for (size_t d = 0; d < p; d++)
            fprintf(cli->out,
                    "%s{\"name\": \"%s\", \"scale\": \"%s\", \"importance\": %.17g, "
                    "\"fraction\": %.17g}",
                    d ? ", " : "", r[d].param->name, cv_importance_scale_name(r[d].param), r[d].importance,
                    r[d].fraction);
        fprintf(cli->out, "], \"interactions\": %.17g}\n", explained < 1 ? 1 - explained : 0);
        return;
    }
    fprintf(cli->out, "importance of each parameter in job %" PRId64 " (%zu completed trials):\n",
            id, n);
    fprintf(cli->out, "%-18s %-13s %10s %9s\n", "PARAMETER", "SCALE", "IMPORTANCE", "VARIANCE");
    for (size_t d = 0; d < p; d++)
        fprintf(cli->out, "%-18s %-13s %10.3f %8.1f%%\n", r[d].param->name, cv_importance_scale_name(r[d].param),
                r[d].importance, 100 * r[d].fraction);
    fprintf(cli->out,
            "VARIANCE: the share of the objective's variance the parameter explains alone; "
            "interactions explain %.1f%%\n",
            100 * (explained < 1 ? 1 - explained : 0));
}

int cv_cmd_importance(cv_cli_t *cli, int argc, char **argv, char *err) {
    char path[PATH_TEXT_MAX];
    const char *pos[1];
    size_t n_pos;
    int64_t id;
    cv_http_reply_t job, answer;
    cv_space_t space;
    int rc = cv_cli_parse_args(argc, argv, NULL, 0, pos, 1, 1, &n_pos, "JOB", err);
    if (rc == 0) rc = cv_cli_parse_id(pos[0], "JOB", &id, err);
    if (rc < 0) return rc;
    rc = cv_cli_fetch_job(cli, id, &job, err);
    if (rc < 0) return rc;
    const cJSON *spec_space = cv_cli_field(cv_cli_field(job.json, "spec"), "space");
    if (!cJSON_IsObject(spec_space) || cJSON_GetArraySize(spec_space) == 0) {
        rc = cv_errf(err, CV_EINVAL, "job %" PRId64 " searches no parameter", id);
        goto out_job;
    }
    if ((rc = cv_space_from_json_open(&space, spec_space, err)) < 0) goto out_job;
    snprintf(path, sizeof path, "/v1/jobs/%" PRId64 "/trials?order=number", id);
    if ((rc = cv_cli_api_get_list(cli, path, "trials", 0, 0, &answer, err)) < 0) goto out_job;
    cJSON *trials = cv_cli_answer_trials(&answer);
    size_t rows = (size_t)cJSON_GetArraySize(trials), p = space.n_params;
    double *x = malloc((rows ? rows : 1) * p * sizeof *x),
           *y = malloc((rows ? rows : 1) * sizeof *y);
    double lo[CV_SPACE_MAX_PARAMS], hi[CV_SPACE_MAX_PARAMS], fraction[CV_SPACE_MAX_PARAMS],
        importance[CV_SPACE_MAX_PARAMS];
    if (!x || !y) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory for %zu trials", rows);
        goto out_data;
    }
    size_t n = cv_importance_rows(&space, trials, cv_cli_job_objective(job.json), x, y);
    if (n < 2) {
        rc =
            cv_errf(err, CV_EINVAL,
                    "importance needs at least 2 completed trials; job %" PRId64 " has %zu", id, n);
        goto out_data;
    }
    cv_importance_bounds(&space, lo, hi);
    cv_importance_config_t config = cv_importance_defaults((uint64_t)id);
    rc = cv_importance_fanova(x, y, n, p, lo, hi, &config, fraction, importance, err);
    if (rc == 0) {
        ranked_t r[CV_SPACE_MAX_PARAMS];
        for (size_t d = 0; d < p; d++)
            r[d] = (ranked_t){&space.params[d], importance[d], fraction[d]};
        qsort(r, p, sizeof *r, by_importance);
        print_importance(cli, id, r, p, n);
    }
out_data:
    free(y);
    free(x);
    cv_http_reply_finish(&answer);
out_job:
    cv_http_reply_finish(&job);
    return rc;
}
