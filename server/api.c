/* HTTP routes of the coordinator; see api.h and schemas/api.md. This file holds the API's
 * lifecycle, the token check, the helpers the other api_*.c files share (api_internal.h), the
 * routes that only hand a request on (health, stats, history, ask/tell) and the route table
 * with its dispatch. The routes themselves live in api_reads.c (GET reads on the thread pool),
 * api_jobs.c (job and trial writes), api_evaluate.c (test-set evaluation and model files) and
 * api_importance.c (parameter importance). */
#include "server/api.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/hash.h"
#include "server/api_asktell.h"
#include "server/api_history.h"
#include "server/api_internal.h"
#include "server/metrics.h"
#include "server/read_pool.h"

int cv_api_create(cv_api_t **out, uv_loop_t *loop, cv_sched_t *sched, cv_store_t *ro,
                  const char *token, const cv_log_t *log, char *err) {
    cv_api_t *api = calloc(1, sizeof *api);
    if (!api || (token && *token && !(api->token = strdup(token)))) {
        free(api);
        return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    api->loop = loop, api->sched = sched, api->ro = ro, api->log = log;
    api->waiting_end = &api->waiting;
    *out = api;
    return 0;
}

int cv_api_open_readers(cv_api_t *api, const char *db_path, int n, char *err) {
    if (api->readers) return cv_errf(err, CV_EINVAL, "the API's readers are already open");
    int rc = cv_read_pool_create(&api->readers, db_path, n, err);
    if (rc == 0) rc = cv_history_create(&api->history, api->loop, db_path, err);
    if (rc == 0) api->max_active = n;
    return rc;
}

void cv_api_destroy(cv_api_t *api) {
    if (!api) return;
    cv_read_pool_destroy(api->readers);
    cv_history_destroy(api->history);
    free(api->token);
    free(api);
}

int cv_api_idle(const cv_api_t *api) {
    return api->evals == NULL && api->model_reads == 0 && api->submissions == NULL &&
           api->reads == 0 && (!api->history || cv_history_idle(api->history));
}

void cv_api_stop(cv_api_t *api) {
    api->stopping = 1;
    for (submission_t *sub = api->submissions; sub; sub = sub->next)
        cv_dataset_check_cancel(sub->check);
}

/* Compares a presented token with the configured one in time independent of where they differ. */
static int token_ok(const cv_api_t *api, const char *authorization) {
    if (!api->token) return 1;
    static const char prefix[] = "Bearer ";
    if (!authorization || strncmp(authorization, prefix, sizeof prefix - 1)) return 0;
    return cv_secret_equal(api->token, authorization + sizeof prefix - 1);
}

/* Reads an unsigned integer path segment; returns -1 when it is not one. */
int64_t api_parse_id(const char *s, const char **rest) {
    int64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*p - '0');
    }
    *rest = p;
    return v;
}

/* ---- rounds as users count them --------------------------------------------------------- */

/* The store numbers a job's rounds from 0; everything the API answers numbers them from 1, like
 * the log and the CLI. These convert a reply's tree in place, just before it is sent. */
void api_round_to_user(cJSON *obj) {
    cJSON *r = cJSON_GetObjectItemCaseSensitive(obj, "round");
    if (cJSON_IsNumber(r)) cJSON_SetNumberValue(r, r->valuedouble + 1);
}

/* api_round_to_user on every element of an array (trials, jobs, rounds). */
void api_rounds_to_user(cJSON *array) {
    cJSON *item;
    cJSON_ArrayForEach(item, array) api_round_to_user(item);
}

/* A job as cv_store_job_get builds it: its round, its rounds and its best trial's round. */
void api_job_rounds_to_user(cJSON *job) {
    api_round_to_user(job);
    api_rounds_to_user(cJSON_GetObjectItemCaseSensitive(job, "rounds"));
    api_round_to_user(cJSON_GetObjectItemCaseSensitive(job, "best"));
}

/* ---- routing ----------------------------------------------------------------------------
 * One table of routes, Redis-command-table style: a path pattern and a handler per method. A
 * pattern is literal segments, {id} (a decimal job or trial id) and {worker} (a worker id: 1 to
 * 64 bytes without '/'). Every route but a public one asks for the API token first. */

typedef void (*route_fn_t)(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                           cv_http_response_t *res);

typedef struct {
    const char *pattern;
    const char *allowed; /* the methods it answers, as the 405 says them */
    int public;          /* 1: answered without the API token */
    route_fn_t get, post, del;
} route_t;

static void get_health(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                         cv_http_response_t *res) {
    (void)api, (void)a, (void)req;
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddStringToObject(o, "status", "ok") ||
              !cJSON_AddStringToObject(o, "version", CV_VERSION))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}

static void get_stats(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res) {
    (void)a, (void)req;
    cv_sched_stats_t st;
    cv_sched_stats(api->sched, &st);
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "results_committed", (double)st.results) ||
              !cJSON_AddNumberToObject(o, "commits", (double)st.commits) ||
              !cJSON_AddNumberToObject(o, "commit_latency_p50_ms", 1e3 * st.latency_p50) ||
              !cJSON_AddNumberToObject(o, "commit_latency_p99_ms", 1e3 * st.latency_p99) ||
              !cJSON_AddNumberToObject(o, "commit_latency_max_ms", 1e3 * st.latency_max))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}

static void get_history(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res) {
    if (!api->history) REPLY(cv_http_json_error(res, 500, "the API has no store readers"));
    cv_history_get(api->history, a->id, req->query, res);
}

/* ---- ask/tell (server/api_asktell.c) ----------------------------------------------------- */

static void post_ask(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                     cv_http_response_t *res) {
    cv_asktell_ask(api->sched, a->id, req, res);
}

static void post_report(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res) {
    cv_asktell_report(api->sched, a->id, req, res);
}

static void post_tell(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                      cv_http_response_t *res) {
    cv_asktell_tell(api->sched, a->id, req, res, api_answer_trial, api);
}

static const route_t routes[] = {
    {"/v1/health", "GET", 1, get_health, NULL, NULL},
    {"/v1/jobs", "GET or POST", 0, api_get_jobs, api_post_job, NULL},
    {"/v1/stats", "GET", 0, get_stats, NULL, NULL},
    {"/v1/workers", "GET", 0, api_get_workers, NULL, NULL},
    {"/v1/workers/{worker}/release", "POST", 0, NULL, api_release_worker, NULL},
    {"/v1/trials/{id}", "GET", 0, api_get_trial, NULL, NULL},
    {"/v1/trials/{id}/model", "GET", 0, api_get_trial_model, NULL, NULL},
    {"/v1/trials/{id}/nudge", "POST", 0, NULL, api_nudge_trial, NULL},
    {"/v1/trials/{id}/report", "POST", 0, NULL, post_report, NULL},
    {"/v1/trials/{id}/tell", "POST", 0, NULL, post_tell, NULL},
    {"/v1/jobs/{id}", "GET or DELETE", 0, api_get_job, NULL, api_delete_job},
    {"/v1/jobs/{id}/trials", "GET", 0, api_get_trials, NULL, NULL},
    {"/v1/jobs/{id}/history", "GET", 0, get_history, NULL, NULL},
    {"/v1/jobs/{id}/importance", "GET", 0, api_get_importance, NULL, NULL},
    {"/v1/jobs/{id}/cancel", "POST", 0, NULL, api_cancel_job, NULL},
    {"/v1/jobs/{id}/extend", "POST", 0, NULL, api_extend_job, NULL},
    {"/v1/jobs/{id}/evaluate", "POST", 0, NULL, api_evaluate_job, NULL},
    {"/v1/jobs/{id}/ask", "POST", 0, NULL, post_ask, NULL},
    {"/metrics", "GET", 0, api_get_metrics, NULL, NULL},
};

#define N_ROUTES (sizeof routes / sizeof *routes)

/* An answer's tag (cv_http_response_t.tag): 0 for no route, 1 + route · 4 + method for a
 * route, and -1 - method for a static file of the dashboard. */
static const char *const tag_methods[] = {"GET", "POST", "DELETE", "other"};

/* The index of method in tag_methods. */
static int tag_method(const char *m) {
    return !strcmp(m, "GET") ? 0 : !strcmp(m, "POST") ? 1 : !strcmp(m, "DELETE") ? 2 : 3;
}

int cv_api_static_tag(const char *method) {
    return -1 - tag_method(method);
}

void cv_api_on_answered(void *userdata, int tag, int status) {
    cv_api_t *api = userdata;
    if (tag < 0) {
        cv_metrics_http_count(&api->answered, "static", tag_methods[(-1 - tag) % 4], status);
        return;
    }
    size_t route = tag > 0 ? (size_t)(tag - 1) / 4 : N_ROUTES;
    cv_metrics_http_count(&api->answered, route < N_ROUTES ? routes[route].pattern : "other",
                          tag > 0 ? tag_methods[(tag - 1) % 4] : "other", status);
}

/* Paths below these prefixes that match no route are answered "no route <path>"; a prefix
 * ending in {id} only when what follows it is not an id. Anything else is "no route <method>
 * <path>". */
static const char *const subtrees[] = {"/v1/workers/", "/v1/trials/", "/v1/jobs/{id}"};

/* Matches path against pattern; returns 1 with a filled in, or 0. A trailing {id} matches only
 * the id segment's start (the rest of the path may be anything) when prefix is 1. */
static int route_match(const char *pattern, const char *path, int prefix, route_args_t *a) {
    const char *pat = pattern, *p = path, *rest;
    while (*pat) {
        if (!strncmp(pat, "{id}", 4)) {
            if ((a->id = api_parse_id(p, &rest)) < 0) return 0;
            p = rest, pat += 4;
        } else if (!strncmp(pat, "{worker}", 8)) {
            size_t n = strcspn(p, "/");
            if (n == 0 || n >= sizeof a->worker) return 0;
            memcpy(a->worker, p, n);
            a->worker[n] = '\0';
            p += n, pat += 8;
        } else if (*pat++ != *p++) {
            return 0;
        }
    }
    return prefix || *p == '\0';
}

/* An answer held until what its request wrote is on disk. */
typedef struct {
    cv_http_deferred_t *answer;
    cv_http_response_t res; /* its body owned here until it goes */
} durable_answer_t;

static void give_durable(void *ctx, int committed, int stop) {
    (void)stop;
    durable_answer_t *w = ctx;
    if (committed) {
        cv_http_deferred_finish(w->answer, &w->res);
    } else {
        cJSON_Delete(w->res.json);
        free(w->res.text);
        cv_http_response_t failed = {0};
        cv_http_json_error(&failed, 500, "the store failed before this was on disk; it may be "
                           "lost");
        cv_http_deferred_finish(w->answer, &failed);
    }
    free(w);
}

void api_answer_durable(cv_api_t *api, cv_http_deferred_t *answer, cv_http_response_t *res) {
    durable_answer_t *w = NULL;
    if (res->failed || cv_sched_all_durable(api->sched) || !(w = calloc(1, sizeof *w))) {
        if (answer) cv_http_deferred_finish(answer, res); /* else the server sends res now */
        return;
    }
    w->res = *res;
    w->res.deferred = NULL;
    if (!answer) { /* the body moves to w before res is deferred (which clears it) */
        res->json = NULL, res->text = NULL, res->text_len = 0;
        if (!(answer = cv_http_defer(res))) { /* out of memory: answered now after all */
            *res = w->res;
            free(w);
            return;
        }
    }
    w->answer = answer;
    if (cv_sched_after_commit(api->sched, give_durable, w)) { /* out of memory: now */
        cv_http_response_t now = w->res;
        free(w);
        cv_http_deferred_finish(answer, &now);
    }
}

void cv_api_on_request(void *userdata, const cv_http_request_t *req, cv_http_response_t *res) {
    cv_api_t *api = userdata;
    const char *m = req->method, *p = req->path;
    route_args_t args;
    const route_t *r = NULL;
    for (size_t i = 0; !r && i < N_ROUTES; i++)
        if (route_match(routes[i].pattern, p, 0, &args)) r = &routes[i];
    if (r) res->tag = 1 + (int)(r - routes) * 4 + tag_method(m);
    if ((!r || !r->public) && !token_ok(api, req->authorization))
        REPLY(cv_http_json_error(res, 401, "missing or wrong API token"));
    if (r) {
        route_fn_t fn = !strcmp(m, "GET")      ? r->get
                        : !strcmp(m, "POST")   ? r->post
                        : !strcmp(m, "DELETE") ? r->del
                                               : NULL;
        if (!fn) REPLY(cv_http_json_error(res, 405, "use %s on %s", r->allowed, p));
        fn(api, &args, req, res);
        /* A write is answered once it is on disk (what reads see is committed already). */
        if (fn != r->get && !res->deferred) api_answer_durable(api, NULL, res);
        return;
    }
    for (size_t i = 0; i < sizeof subtrees / sizeof *subtrees; i++) {
        const char *t = subtrees[i];
        int below = strstr(t, "{id}") ? !strncmp(p, t, (size_t)(strstr(t, "{id}") - t)) &&
                                            !route_match(t, p, 1, &args)
                                      : !strncmp(p, t, strlen(t));
        if (below) REPLY(cv_http_json_error(res, 404, "no route %s", p));
    }
    cv_http_json_error(res, 404, "no route %s %s", m, p);
}
