/* Ask/tell over HTTP: the three routes of api_asktell.h. */
#include "server/api_asktell.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/clock.h"
#include "common/err.h"
#include "server/ask_body.h"
#include "server/store.h"

/* Answers with a void responder and leaves the handler. */
#define REPLY(call)                                                                                \
    do {                                                                                           \
        call;                                                                                      \
        return;                                                                                    \
    } while (0)

/* Which answer a deferred request waits for. */
typedef enum { WAIT_ASK, WAIT_REPORT, WAIT_TELL } wait_kind_t;

/* A request whose answer waits for the commit of what it wrote (cv_sched_ask_done_fn). */
typedef struct {
    wait_kind_t kind;
    cv_http_deferred_t *d; /* the answer owed; NULL when it was given at once */
    int64_t trial_id;
    double lease_seconds;
    cv_sched_asked_t asked;                  /* ask: the trial handed out (its params owned) */
    cv_asktell_answer_trial_fn answer_trial; /* tell */
    void *userdata;
} waiting_t;

/* The error answer of a scheduler's refusal. */
static void refuse(cv_http_response_t *res, int rc, const char *what, const char *err) {
    if (rc == CV_STORE_NOT_FOUND)
        cv_http_json_error(res, 404, "%s not found", what);
    else if (rc == CV_STORE_STALE)
        cv_http_json_error(res, 409, "%s", err);
    else if (rc == CV_EINVAL || rc == CV_ERANGE)
        cv_http_json_error(res, 400, "%s", err);
    else
        cv_http_json_error(res, 500, "%s", err);
}

/* {"trial": {...}} of the trial handed out, or NULL when out of memory. */
static cJSON *asked_json(const cv_sched_asked_t *a) {
    cJSON *o = cJSON_CreateObject(), *t = cJSON_AddObjectToObject(o, "trial");
    cJSON *params = a->params ? cJSON_Parse(a->params) : NULL;
    if (!t || !params || !cJSON_AddNumberToObject(t, "id", (double)a->trial_id) ||
        !cJSON_AddNumberToObject(t, "number", a->number) ||
        !cJSON_AddNumberToObject(t, "job_id", (double)a->job_id) ||
        !cJSON_AddItemToObject(t, "params", params) ||
        !cJSON_AddNumberToObject(t, "epochs", a->epochs) ||
        !cJSON_AddStringToObject(t, "lease", a->lease) ||
        !cJSON_AddNumberToObject(t, "lease_seconds", a->lease_seconds)) {
        if (!cJSON_GetObjectItemCaseSensitive(t, "params")) cJSON_Delete(params);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The scheduler committed (or could not commit) what the request wrote: the answer goes. */
static void on_committed(void *ctx, int committed, int stop) {
    waiting_t *w = ctx;
    cv_http_response_t res = {0};
    if (!w->d) {
        /* answered at once (no memory for the promise) */
    } else if (!committed) {
        cv_http_json_error(&res, 500, "the store failed; nothing was stored");
    } else if (w->kind == WAIT_ASK) {
        cv_http_respond_json(&res, 200, asked_json(&w->asked));
    } else if (w->kind == WAIT_REPORT) {
        cJSON *o = cJSON_CreateObject();
        if (o && (!cJSON_AddStringToObject(o, "decision", stop ? "stop" : "continue") ||
                  !cJSON_AddNumberToObject(o, "lease_seconds", w->lease_seconds))) {
            cJSON_Delete(o);
            o = NULL;
        }
        cv_http_respond_json(&res, 200, o);
    } else {
        w->answer_trial(w->userdata, w->trial_id, w->d); /* the stored trial, read off the loop */
        w->d = NULL;
    }
    if (w->d) cv_http_deferred_finish(w->d, &res);
    free(w->asked.params);
    free(w);
}

/* Defers res until on_committed answers it. */
static void wait_for_commit(waiting_t *w, cv_http_response_t *res) {
    w->d = cv_http_defer(res);
    if (!w->d) cv_http_json_error(res, 500, "out of memory");
}

void cv_asktell_ask(cv_sched_t *sched, int64_t job_id, const cv_http_request_t *req,
                    cv_http_response_t *res) {
    char err[CV_ERRLEN];
    cv_ask_request_t body;
    if (cv_ask_parse_ask(req->body, req->body_len, &body, err))
        REPLY(cv_http_json_error(res, 400, "%s", err));
    waiting_t *w = calloc(1, sizeof *w);
    if (!w) REPLY(cv_http_json_error(res, 500, "out of memory"));
    w->kind = WAIT_ASK;
    int rc =
        cv_sched_ask(sched, job_id, body.client, cv_clock_wall(), &w->asked, on_committed, w, err);
    if (rc || !w->asked.trial_id) {
        if (rc) refuse(res, rc, "job", err);
        cJSON *o = rc ? NULL : cJSON_CreateObject();
        if (o && (!cJSON_AddNullToObject(o, "trial") ||
                  !cJSON_AddBoolToObject(o, "done", w->asked.done) ||
                  (!w->asked.done && !cJSON_AddNumberToObject(o, "retry_after", 1)))) {
            cJSON_Delete(o);
            o = NULL;
        }
        if (!rc) cv_http_respond_json(res, 200, o);
        free(w);
        return;
    }
    wait_for_commit(w, res);
}

void cv_asktell_report(cv_sched_t *sched, int64_t trial_id, const cv_http_request_t *req,
                       cv_http_response_t *res) {
    char err[CV_ERRLEN];
    cv_ask_report_t body;
    if (cv_ask_parse_report(req->body, req->body_len, &body, err))
        REPLY(cv_http_json_error(res, 400, "%s", err));
    waiting_t *w = calloc(1, sizeof *w);
    if (!w) REPLY(cv_http_json_error(res, 500, "out of memory"));
    w->kind = WAIT_REPORT;
    w->trial_id = trial_id;
    int rc = cv_sched_ask_report(sched, trial_id, body.lease, &body.epoch, cv_clock_wall(),
                                 on_committed, w, err);
    if (rc) {
        free(w);
        REPLY(refuse(res, rc, "trial", err));
    }
    w->lease_seconds = cv_sched_ask_lease_seconds(sched);
    wait_for_commit(w, res);
}

void cv_asktell_tell(cv_sched_t *sched, int64_t trial_id, const cv_http_request_t *req,
                     cv_http_response_t *res, cv_asktell_answer_trial_fn answer_trial,
                     void *userdata) {
    char err[CV_ERRLEN];
    cv_ask_tell_t *body = malloc(sizeof *body);
    waiting_t *w = calloc(1, sizeof *w);
    if (!body || !w) {
        free(body);
        free(w);
        REPLY(cv_http_json_error(res, 500, "out of memory"));
    }
    int rc = cv_ask_parse_tell(req->body, req->body_len, body, err);
    if (rc) {
        free(body);
        free(w);
        REPLY(cv_http_json_error(res, 400, "%s", err));
    }
    w->kind = WAIT_TELL;
    w->trial_id = trial_id;
    w->answer_trial = answer_trial;
    w->userdata = userdata;
    rc =
        cv_sched_ask_tell(sched, trial_id, body->lease, &body->best,
                          body->failed ? body->error : NULL, cv_clock_wall(), on_committed, w, err);
    free(body);
    if (rc) {
        free(w);
        REPLY(refuse(res, rc, "trial", err));
    }
    wait_for_commit(w, res);
}
