/* The coordinator's worker port: a libuv TCP listener where workers connect and stay connected.
 * It decodes frames, validates every message (common/message.h), authenticates hellos, receives
 * model files, serves dataset files by hash, closes connections that go silent past the lease,
 * and hands everything else to the scheduler, whose requests it carries out (cv_sched_ops_t). */
#ifndef CV_WORKER_SERVER_H
#define CV_WORKER_SERVER_H

#include <uv.h>

#include "common/log.h"
#include "server/scheduler.h"

typedef struct {
    double heartbeat_seconds; /* how often workers send a heartbeat (2 s) */
    double lease_seconds;     /* silence after which a worker is presumed lost (10 s) */
    const char *token;        /* worker token required in hello; NULL or "" for none */
    const char *data_dir;     /* model files are received under <data_dir>/tmp */
    unsigned max_connections; /* workers connected at once (4096) */
} cv_worker_server_config_t;

typedef struct cv_worker_server cv_worker_server_t;

/* The operations the scheduler calls; their conn argument is a connection of this server. */
cv_sched_ops_t cv_worker_server_ops(void);

/* Creates the listener on host:port (0 = ephemeral) and starts accepting. sched may be NULL at
 * creation and set with cv_worker_server_attach before the loop runs (the scheduler needs the
 * ops first). The caller owns the result and closes it with cv_worker_server_close. */
int cv_worker_server_create(cv_worker_server_t **out, uv_loop_t *loop, const char *host, int port,
                            const cv_worker_server_config_t *config, const cv_log_t *log,
                            char *err);
void cv_worker_server_attach(cv_worker_server_t *ws, cv_sched_t *sched);
int cv_worker_server_port(const cv_worker_server_t *ws);
/* Number of workers connected (past hello). */
unsigned cv_worker_server_workers(const cv_worker_server_t *ws);
/* Writes what every connection queued during this loop iteration, one write per connection.
 * Call once per iteration, after the scheduler's flush. */
void cv_worker_server_flush(cv_worker_server_t *ws);
/* Closes connections silent for longer than the lease. Call about once a second. */
void cv_worker_server_check(cv_worker_server_t *ws, double now);
/* Closes the listener and every connection (their trials go back to the queue) and frees the
 * server in libuv close callbacks. Accepts NULL. */
void cv_worker_server_close(cv_worker_server_t *ws);

#endif
