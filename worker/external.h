/* External trainers: a trial of a job whose trainer is a program this worker offers
 * (caviar-worker --trainer NAME=COMMAND) runs that program instead of the built-in trainer.
 *
 * For each trial the command runs as `/bin/sh -c COMMAND` in a fresh, empty working directory
 * under runs_dir, in its own process group, with stdin from /dev/null. No argument is built from
 * a parameter: the parameters reach it as params.json in that directory and as environment
 * variables (CAVIAR_PARAMS_FILE, CAVIAR_PARAM_<NAME>, CAVIAR_TRIAL_ID, CAVIAR_JOB_ID,
 * CAVIAR_EPOCHS, CAVIAR_WORKDIR; the worker's own CAVIAR_* variables, its token among them, are
 * not passed on). Its stdout lines are read as metric lines (worker/metric_line.h), each report
 * handed to on_epoch as built-in epochs are (with seconds, when the line does not give it, the
 * wall time since the previous report or the start); the last 2 KiB of its stderr are kept for the error
 * of a failed trial.
 *
 * A trial's end, as cv_trial_result_t:
 *   exit 0 with at least one report   COMPLETED with the best report (the lowest value of the
 *                                     job's objective; a report without it ranks after those
 *                                     with it, by the other), or the final line's metrics when
 *                                     it printed one
 *   exit 0 without one                FAILED "the program reported no metric"
 *   exit N / signal S                 FAILED "exit status N" / "killed by signal S", stderr tail
 *   a malformed metric line           FAILED naming the stdout line; the program is stopped
 *   --trainer-timeout reached         FAILED naming the limit; the program is stopped
 *   on_epoch or poll says PRUNE       PRUNED with the best report so far; the program is stopped
 *   on_epoch or poll says STOP        STOPPED; the program is stopped
 * Stopping: SIGTERM to the process group, SIGKILL grace seconds later; once the program's shell
 * has exited, whatever is left of its group is killed. The child gets PR_SET_PDEATHSIG SIGKILL
 * (the program dies with the worker), and each running group is recorded in runs_dir as
 * <working dir>.pgid, so that a worker that died anyway ends it at its next start
 * (cv_external_reap). The working directory is removed when the trial ends. */
#ifndef CV_WORKER_EXTERNAL_H
#define CV_WORKER_EXTERNAL_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "common/err.h"
#include "common/log.h"
#include "common/message.h"
#include "common/result.h"
#include "worker/trainer.h"

#define CV_TRAINER_GRACE_DEFAULT 5.0    /* seconds between SIGTERM and SIGKILL */
#define CV_TRAINER_STDERR_TAIL   2048   /* bytes of stderr kept */

/* One --trainer NAME=COMMAND. */
typedef struct {
    char name[CV_MSG_TRAINER_MAX + 1]; /* [A-Za-z0-9_.-]{1,64} */
    const char *command;               /* borrowed: run by /bin/sh -c, non-empty */
} cv_trainer_def_t;

/* Reads text "NAME=COMMAND" into def (command borrowed from text). Returns 0, or CV_EINVAL with
 * err saying which part is wrong. */
int cv_trainer_def_parse(const char *text, cv_trainer_def_t *def, char *err);

/* Asked about every 100 ms while the program runs: a cv_epoch_verdict_t. */
typedef int (*cv_external_poll_fn)(void *userdata);

typedef struct {
    const char *command;   /* the trainer's command */
    const char *runs_dir;  /* parent of the working directories and pgid records; created */
    double grace;          /* seconds between SIGTERM and SIGKILL, > 0 */
    double timeout;        /* seconds the program may run; 0: no limit */
    int by_dev_cost;       /* 1: the best report has the lowest dev_cost (the job's objective),
                              0: the lowest dev_error */
    int64_t trial_id, job_id;
    cv_on_epoch_fn on_epoch;   /* each report, with NAN for the metrics it did not give */
    cv_external_poll_fn poll;  /* may be NULL */
    void *userdata;            /* for both */
} cv_external_options_t;

/* Runs one trial of spec (the trial text: every parameter and "trainer"; borrowed) through the
 * program and fills res. Returns 0 whenever res says how it ended (FAILED included, with the
 * reason in res->error) and a negative code with err set when the program could not be started
 * (res is then FAILED with the same reason). Call from a thread that may block; signals should
 * be blocked in it (the child unblocks them). */
int cv_external_run(const cJSON *spec, const cv_external_options_t *opts, cv_trial_result_t *res,
                    char *err);

/* At a worker's start: ends (SIGKILL) every process group recorded in runs_dir by an earlier
 * run of this worker that is still alive (recorded during this boot), and removes the working
 * directories and records left there. Returns the number of groups signalled, or a negative code
 * with err set when runs_dir cannot be read (a missing one is empty). */
int cv_external_reap(const char *runs_dir, const cv_log_t *log, char *err);

#endif
