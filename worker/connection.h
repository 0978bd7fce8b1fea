/* The worker's side of the coordinator protocol: `caviar-worker --connect HOST:PORT`.
 *
 * One main thread owns the TCP socket and a poll() loop: it reads frames, validates every message
 * with cv_msg_parse, answers the coordinator, sends heartbeats, resolves a trial's dataset files
 * (the spec's path, the local cache, or dataset_get) and streams model files. A trial trains in
 * one training thread, which reports each epoch and its end through a mutex-protected outbox that
 * the main thread drains (a pipe wakes the loop), and which polls an atomic stop flag after every
 * epoch. Only the main thread writes to the socket.
 *
 * A trial's life on the worker:
 *
 *     trial ─▶ PREPARING ──(files resolved, spec parsed)──▶ TRAINING ──▶ result sent ──▶ ack
 *                  │   (dataset_get / dataset + data)          │                │
 *                  └──(bad spec, missing data)──▶ failed result┘           UNACKED until ack
 *
 * A stop message (or a welcome that does not reattach the trial) abandons it in any state: the
 * training thread stops at its next epoch end and nothing more is sent for it. A result stays
 * UNACKED, with its model file, until an ack names its trial: after a reconnection hello.leases
 * lists it, and it is sent again when welcome reattaches it, dropped otherwise.
 *
 * SIGTERM or SIGINT (the caller's stop flag) hands the trial held back to the coordinator as a
 * `stopped` result, which puts it back in the queue without counting the attempt, and waits up to
 * 3 s for the acknowledgements of the results sent before exiting.
 *
 * Pruning: a trial may name epochs (trial.decide_at) after which the training thread, once the
 * epoch's progress is in the outbox, waits for the coordinator's decision before it trains on:
 * stop ends the trial as `pruned` (a result with the best epoch's metrics and model, like a
 * completed one), go-on lets it train on. A decision to stop that arrives while the thread does
 * not wait prunes the trial at its next epoch end. The wait is bounded: no wait while the worker
 * is not welcomed, the wait ends when the connection drops, and at most decision_wait seconds
 * otherwise; a stop message, SIGTERM or a lost lease end it at once.
 *
 * Reconnection: after a failed connect or a lost connection the worker waits 0.1 s, doubling up
 * to 10 s, each wait jittered by ±50%; a welcome resets the wait. Training continues while
 * disconnected (progress is dropped, the result kept). */
#ifndef CV_CONNECTION_H
#define CV_CONNECTION_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "worker/external.h"

#define CV_DECISION_WAIT     30.0   /* seconds the training thread waits for a decision at most */
#define CV_DECISION_WAIT_MAX 3600.0 /* largest decision_wait accepted */

/* Settings of one worker process. Every pointer is borrowed for the duration of cv_conn_run. */
typedef struct {
    const char *host;            /* coordinator host name or address */
    const char *port;            /* port number or service name */
    const char *worker_id;       /* hello.worker_id: [A-Za-z0-9._:-]{1,64} */
    const char *version;         /* hello.version: the worker's release */
    const char *hostname;        /* hello.host */
    const char *token;           /* hello.token, or NULL to send none */
    int threads;                 /* hello.threads, 1..1024 (BLAS threads are the caller's) */
    const char *cache_dir;       /* dataset cache, created when first needed; NULL: no cache */
    const char *tmp_dir;         /* directory for model files while they are unacknowledged */
    int noop;                    /* 1: answer every trial at once with cv_conn_noop_dev_error */
    int once;                    /* 1: return after the first connection ends */
    int fail_trials;             /* test hook: 1 reports every trial failed without training
                                    (caviar-worker sets it from CAVIAR_WORKER_FAIL_TRIALS=1) */
    double decision_wait;        /* seconds a trial waits for a decision at a decide_at epoch,
                                    in (0, CV_DECISION_WAIT_MAX]; 0 means CV_DECISION_WAIT
                                    (caviar-worker reads CAVIAR_WORKER_DECISION_WAIT, a test
                                    hook) */
    const cv_trainer_def_t *trainers; /* the external trainers offered (hello.trainers) */
    size_t n_trainers;           /* at most CV_MSG_TRAINERS_MAX, distinct names */
    double trainer_grace;        /* seconds from SIGTERM to SIGKILL when a program is stopped */
    double trainer_timeout;      /* seconds a program may run; 0: no limit */
    const char *runs_dir;        /* the programs' working directories and process-group records
                                    (worker/external.h); needed when n_trainers > 0 */
    volatile sig_atomic_t *stop; /* set non-zero by the caller's signal handler: return */
    const cv_log_t *log;         /* may be NULL */
} cv_conn_options_t;

/* Runs the worker until *opts->stop becomes non-zero (returns 0 once the training thread, if
 * any, has stopped at its next epoch end), reconnecting forever. With opts->once it returns
 * after the first connection ends: 0 when the coordinator closed it, CV_EIO with err set when
 * the connection could not be made, CV_EFORMAT when the coordinator broke the protocol and
 * CV_ESTOPPED when it refused the worker with an error message. Other negative codes report a
 * setup failure (no pipe, no memory). */
int cv_conn_run(const cv_conn_options_t *opts, char *err);

/* Splits "HOST:PORT" or "[IPV6]:PORT" into host (host_cap bytes) and port (port_cap bytes).
 * Returns 0 or CV_EINVAL with err naming the problem. */
int cv_conn_parse_address(const char *text, char *host, size_t host_cap, char *port,
                          size_t port_cap, char *err);

/* The synthetic dev error a --noop worker reports: min(1, |log10(learning_rate) + 2.5| / 10)
 * + 0.001 × (trial_id mod 7), clamped to 1 so that it stays a fraction. A learning rate that
 * is not a positive finite number counts as the spec default 1e-3. */
double cv_conn_noop_dev_error(double learning_rate, int64_t trial_id);

#endif
