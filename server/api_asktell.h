/* Ask/tell over HTTP (schemas/api.md): POST /v1/jobs/{id}/ask hands a client the next trial of
 * an "ask" job under a lease, POST /v1/trials/{id}/report takes one epoch's metrics and answers
 * continue or stop, POST /v1/trials/{id}/tell takes the result. The bodies are parsed by
 * server/ask_body.h; the leases are the scheduler's (cv_sched_ask and its kin). Every answer
 * that acknowledges a write is deferred until that write is committed.
 *
 * Threads: every function here is called on the loop's thread. */
#ifndef CV_API_ASKTELL_H
#define CV_API_ASKTELL_H

#include <stdint.h>

#include "server/http.h"
#include "server/scheduler.h"

/* Answers d (taken over) with the stored trial trial_id, as GET /v1/trials/{id} does; userdata
 * is the caller's (the API). */
typedef void (*cv_asktell_answer_trial_fn)(void *userdata, int64_t trial_id, cv_http_deferred_t *d);

/* POST /v1/jobs/{job_id}/ask. */
void cv_asktell_ask(cv_sched_t *sched, int64_t job_id, const cv_http_request_t *req,
                    cv_http_response_t *res);
/* POST /v1/trials/{trial_id}/report. */
void cv_asktell_report(cv_sched_t *sched, int64_t trial_id, const cv_http_request_t *req,
                       cv_http_response_t *res);
/* POST /v1/trials/{trial_id}/tell: once the result is committed, answer_trial(userdata, ...)
 * gives the stored trial. */
void cv_asktell_tell(cv_sched_t *sched, int64_t trial_id, const cv_http_request_t *req,
                     cv_http_response_t *res, cv_asktell_answer_trial_fn answer_trial,
                     void *userdata);

#endif
