/* Store throughput: how many trial results per second server/store records when the coordinator
 * commits them in groups of 1, 10, 100 and 1000, with synchronous=FULL and NORMAL, on a real
 * file in a temporary directory (argv[1], else $TMPDIR, else /tmp - put it on the disk the
 * coordinator will use: a tmpfs makes fsync free).
 *
 * Each figure times only cv_store_begin, the cv_store_put_result calls and cv_store_commit; the
 * trials are created and leased beforehand. Reference: >= 10,000 results/s in groups of 100
 * with synchronous=FULL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "server/store.h"

#define REFERENCE_PER_SECOND 10000.0 /* results/s at batch 100, synchronous=FULL */

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Creates a job with n trials and leases them all; ids (caller-owned, n) receive their ids. */
static int prepare(cv_store_t *s, int n, int64_t *ids, char *err) {
    int64_t job = 0;
    char key[32], params[48];
    const cv_store_job_plan_t plan = {"random", "none", 1};
    int ret = cv_store_job_create(s, "bench", CV_STORE_OBJ_DEV_ERROR, "{}", &plan, NULL, 0.0, &job,
                                  err);
    if (ret == 0) ret = cv_store_begin(s, err);
    for (int i = 0; ret == 0 && i < n; i++) {
        snprintf(key, sizeof key, "lr=%d", i);
        snprintf(params, sizeof params, "{\"learning_rate\":%d}", i);
        cv_store_new_trial_t t = {
            .number = i, .round = 0, .params = params, .config_key = key, .spec = params};
        ret = cv_store_trials_add(s, job, &t, 1, 0.0, &ids[i], err);
        if (ret == 0) ret = cv_store_trial_start(s, ids[i], "bench-worker", "lease", 1.0, err);
    }
    if (ret == 0) return cv_store_commit(s, err);
    cv_store_rollback(s, NULL);
    return ret;
}

/* Stores n results in groups of batch and writes the rate into *per_second. */
static int run_case(const char *dir, int normal, int batch, int n, double *per_second, char *err) {
    char path[1200], side[1300];
    snprintf(path, sizeof path, "%s/bench-%s-%d.db", dir, normal ? "normal" : "full", batch);
    cv_store_options_t opt = {.synchronous_normal = normal};
    cv_store_t *s = NULL;
    int64_t *ids = calloc((size_t)n, sizeof *ids);
    int ret = ids ? cv_store_open_with(path, &opt, &s, err)
                  : cv_errf(err, CV_ENOMEM, "bench: out of memory");
    if (ret == 0) ret = prepare(s, n, ids, err);
    if (ret != 0) goto done;

    double t0 = seconds_now();
    for (int i = 0; ret == 0 && i < n; i += batch) {
        ret = cv_store_begin(s, err);
        for (int j = i; ret == 0 && j < i + batch && j < n; j++) {
            cv_store_result_t r = {.status = CV_STORE_TRIAL_COMPLETED,
                                   .dev_error = 0.1 + j * 1e-6,
                                   .dev_cost = 0.3,
                                   .train_error = 0.05,
                                   .train_cost = 0.2,
                                   .train_cost_reg = 0.21,
                                   .best_epoch = 9,
                                   .epochs_run = 10,
                                   .diagnosis = "variance",
                                   .examples_per_second = 50000.0,
                                   .model_path = "/var/lib/caviar/models/trial.bin"};
            ret = cv_store_put_result(s, ids[j], "lease", &r, 2.0, err);
        }
        if (ret == 0) ret = cv_store_commit(s, err);
    }
    *per_second = n / (seconds_now() - t0);

done:
    cv_store_close(s);
    free(ids);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    return ret;
}

int main(int argc, char **argv) {
    static const int batches[] = {1, 10, 100, 1000};
    static const int totals[] = {1000, 10000, 50000, 100000}; /* results timed per batch size */
    const char *base = argc > 1 ? argv[1] : getenv("TMPDIR");
    char dir[1024], err[CV_ERRLEN] = "";
    snprintf(dir, sizeof dir, "%s/caviar-store-bench-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        return EXIT_FAILURE;
    }
    printf("store_bench: results stored per second, database in %s\n", dir);
    printf("%-12s %6s %10s %14s\n", "synchronous", "batch", "results", "results/s");
    int status = EXIT_SUCCESS;
    double full_100 = 0.0;
    for (int normal = 0; normal <= 1 && status == EXIT_SUCCESS; normal++) {
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            double rate = 0.0;
            if (run_case(dir, normal, batches[b], totals[b], &rate, err) != 0) {
                fprintf(stderr, "store_bench: %s\n", err);
                status = EXIT_FAILURE;
                break;
            }
            printf("%-12s %6d %10d %14.0f\n", normal ? "NORMAL" : "FULL", batches[b], totals[b],
                   rate);
            if (!normal && batches[b] == 100) full_100 = rate;
        }
    }
    rmdir(dir);
    if (status == EXIT_SUCCESS)
        printf("reference: >= %.0f results/s at batch 100, FULL; measured %.0f (%s)\n",
               REFERENCE_PER_SECOND, full_100, full_100 >= REFERENCE_PER_SECOND ? "met" : "MISSED");
    return status;
}
