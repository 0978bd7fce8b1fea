/* HTTP routes of the coordinator; see api.h and schemas/api.md. */
#include "server/api.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/importance.h"
#include "common/importance_rows.h"
#include "common/json.h"
#include "common/message.h"
#include "common/trial_spec.h"
#include "server/api_asktell.h"
#include "server/api_history.h"
#include "server/evaluation.h"
#include "server/job_spec.h"
#include "server/metrics.h"
#include "server/read_pool.h"

#define MAX_ENSEMBLE CV_MSG_MODELS_MAX

/* Answers with a void responder and leaves the handler. */
#define REPLY(call) \
    do {        \
        call;   \
        return; \
    } while (0)

/* What a matched pattern captured. */
typedef struct {
    int64_t id;                           /* {id} */
    char worker[CV_MSG_WORKER_ID_MAX + 1]; /* {worker} */
} route_args_t;

/* A test-set evaluation being prepared on the thread pool: its model and dataset files are
 * hashed there, then it goes to a worker (server/evaluation.h). */
typedef struct eval {
    uv_work_t work;
    cv_api_t *api;
    cv_eval_task_t task;               /* job_id, k, spec_json (owned), and the files the work
                                          fills in */
    int count;                         /* models */
    char paths[MAX_ENSEMBLE][1024];    /* the model files on this host */
    int64_t trial_ids[MAX_ENSEMBLE];
    char data_paths[CV_MSG_FILES_MAX][1024]; /* the spec's dataset files, as files[] */
    int rc;                            /* outcome of the work: non-zero, the job's data or models
                                          cannot be read (err says which) */
    char err[CV_ERRLEN];
    struct eval *next;
} eval_t;

/* A job submission whose datasets are being checked on the thread pool. */
typedef struct submission {
    cv_api_t *api;
    cv_http_deferred_t *answer;       /* the POST /v1/jobs waiting for the check */
    char *text;                       /* the job spec (owned) */
    size_t len;
    cv_dataset_check_t *check;        /* owned */
    struct submission *next;
} submission_t;
/* Pagination of the list routes (schemas/api.md). */
#define PAGE_DEFAULT 100  /* rows of a page when the request names no limit */
#define PAGE_MAX     1000 /* largest limit a request may ask for */
#define CURSOR_MAX   256  /* bytes of a cursor, with its terminator */

/* Which page of a list a request asks for; read on the loop from the query string. */
typedef struct {
    int64_t limit;           /* rows, 1..PAGE_MAX */
    int has_cursor;          /* 1 when the request continues a list */
    char cursor[CURSOR_MAX]; /* the next_cursor of the previous page, as given */
} page_t;

typedef struct read_op read_op_t;

/* A route's query: runs on a thread-pool thread with a borrowed read-only store, and returns the
 * HTTP status with the reply in *reply (owned by the caller), or an error status with the
 * reason in err and *reply NULL. */
typedef int (*read_fn_t)(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err);

/* One GET route's store read, run and rendered on the thread pool, answered by a deferred
 * response on the loop. */
struct read_op {
    uv_work_t work;
    cv_api_t *api;
    cv_http_deferred_t *deferred; /* NULL when the answer had to be given at once */
    read_fn_t run;
    int64_t id;      /* the job or trial the route names */
    int64_t running; /* GET job: trials running now (the scheduler's, read on the loop) */
    int best;        /* trials: 1 for order=best, 0 for order=number */
    page_t page;     /* list routes */
    cv_sched_worker_view_t *views; /* workers: the scheduler's live view, copied on the loop;
                                      owned, one block with the ids it points to */
    size_t n_views;
    cv_metrics_snapshot_t *metrics; /* GET /metrics: the figures taken on the loop, owned */
    cv_importance_task_t *imp; /* GET importance: the task the read built, owned (its frame
                                  too) */
    void (*settle)(read_op_t *op); /* loop: may change status and answer after the read */
    const char *answer;            /* settle's answer instead of text (borrowed), or NULL */
    int status;      /* HTTP status of the answer */
    char *text;      /* the answer rendered (cJSON's allocator), NULL when out of memory */
    char *plain;     /* a text route's answer (malloc'd) instead of text, with its type */
    const char *content_type;
    char err[CV_ERRLEN];
    read_op_t *next; /* the next read waiting for a turn */
};

struct cv_api {
    uv_loop_t *loop;
    cv_sched_t *sched;
    cv_store_t *ro;
    cv_read_pool_t *readers; /* connections of the thread-pool reads */
    cv_history_t *history;   /* GET /v1/jobs/{id}/history: its own reads (api_history.h) */
    char *token;
    const cv_log_t *log;
    eval_t *evals;                    /* in flight */
    int model_reads;                  /* model files being read on the thread pool */
    submission_t *submissions;        /* dataset checks in flight */
    int stopping;                     /* cv_api_stop was called: no more jobs are accepted */
    unsigned reads;                   /* read_op_t in flight, waiting ones included */
    int active;                       /* of them, on the thread pool: at most max_active */
    int max_active;                   /* one per reader connection */
    read_op_t *waiting;               /* reads waiting for a turn, oldest first */
    read_op_t **waiting_end;          /* where the next waiting read goes */
    cv_metrics_http_table_t answered; /* HTTP answers by route, method and status (/metrics) */
};

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
static int64_t parse_id(const char *s, const char **rest) {
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

static void store_error(cv_http_response_t *res, int rc, const char *what, const char *err) {
    if (rc == CV_STORE_NOT_FOUND) cv_http_json_error(res, 404, "%s not found", what);
    else cv_http_json_error(res, 500, "%s", err);
}

/* {key: value} with value taken over. */
static cJSON *wrap(const char *key, cJSON *value) {
    cJSON *o = value ? cJSON_CreateObject() : NULL;
    if (o && !cJSON_AddItemToObject(o, key, value)) {
        cJSON_Delete(o);
        return NULL;
    }
    if (!o) cJSON_Delete(value);
    return o;
}

/* ---- rounds as users count them --------------------------------------------------------- */

/* The store numbers a job's rounds from 0; everything the API answers numbers them from 1, like
 * the log and the CLI. These convert a reply's tree in place, just before it is sent. */
static void round_to_user(cJSON *obj) {
    cJSON *r = cJSON_GetObjectItemCaseSensitive(obj, "round");
    if (cJSON_IsNumber(r)) cJSON_SetNumberValue(r, r->valuedouble + 1);
}

/* round_to_user on every element of an array (trials, jobs, rounds). */
static void rounds_to_user(cJSON *array) {
    cJSON *item;
    cJSON_ArrayForEach(item, array) round_to_user(item);
}

/* A job as cv_store_job_get builds it: its round, its rounds and its best trial's round. */
static void job_rounds_to_user(cJSON *job) {
    round_to_user(job);
    rounds_to_user(cJSON_GetObjectItemCaseSensitive(job, "rounds"));
    round_to_user(cJSON_GetObjectItemCaseSensitive(job, "best"));
}

/* Adds "rounds_planned", the number of rounds of the job's schedule (refine.rounds, or the
 * default schedule job_spec.h describes), and "search", its sampler and pruner with the settings
 * in effect (defaults filled in), read from its stored spec. Left out when the stored spec no
 * longer parses. Returns 0 or CV_ENOMEM. */
static int add_schedule(cJSON *job) {
    char err[CV_ERRLEN];
    cv_job_spec_t spec;
    if (cv_job_spec_from_json(&spec, cJSON_GetObjectItemCaseSensitive(job, "spec"), err)) return 0;
    void *sampler = NULL, *pruner = NULL;
    cJSON *search = cJSON_AddObjectToObject(job, "search"), *settings = NULL;
    int rc = search && cJSON_AddNumberToObject(job, "rounds_planned", (double)spec.n_rounds) &&
                     cJSON_AddStringToObject(search, "sampler", spec.sampler->name) &&
                     cJSON_AddStringToObject(search, "pruner", spec.pruner->name)
                 ? 0
                 : CV_ENOMEM;
    if (rc == 0 && spec.sampler->create(&sampler, spec.sampler_settings, err) == 0 &&
        (!(settings = cJSON_AddObjectToObject(search, spec.sampler->name)) ||
         spec.sampler->describe(sampler, settings)))
        rc = CV_ENOMEM;
    if (rc == 0 && spec.pruner->create(&pruner, spec.pruner_settings, err) == 0 &&
        (!(settings = cJSON_AddObjectToObject(search, spec.pruner->name)) ||
         spec.pruner->describe(pruner, settings)))
        rc = CV_ENOMEM;
    /* A fresh pruner has seen nothing: what it decided is the job's "rungs", from the store. */
    cJSON_DeleteItemFromObjectCaseSensitive(settings, "rungs");
    cJSON_DeleteItemFromObjectCaseSensitive(settings, "rung_count");
    spec.sampler->destroy(sampler);
    spec.pruner->destroy(pruner);
    cv_job_spec_finish(&spec);
    return rc;
}

/* ---- reads on the thread pool ---------------------------------------------------------- */

/* Frees a read and what it owns. */
static void read_free(read_op_t *op) {
    if (op->imp) {
        free(op->imp->frame);
        free(op->imp);
    }
    free(op->metrics);
    free(op->plain);
    free(op->views);
    free(op);
}

static void after_read(uv_work_t *work, int status);

/* Thread pool: borrows a store, runs the route's query and renders the answer as text, so that
 * the loop only copies bytes out. */
static void read_work(uv_work_t *work) {
    read_op_t *op = work->data;
    cJSON *reply = NULL;
    cv_store_t *store = cv_read_pool_acquire(op->api->readers);
    op->status = op->run(op, store, &reply, op->err);
    cv_read_pool_release(op->api->readers, store);
    if (op->plain) return; /* a text route rendered its answer itself */
    if (!reply) {
        reply = cJSON_CreateObject();
        if (reply && !cJSON_AddStringToObject(reply, "error", op->err)) {
            cJSON_Delete(reply);
            reply = NULL;
        }
    }
    op->text = reply ? cJSON_PrintUnformatted(reply) : NULL;
    cJSON_Delete(reply);
}

/* Queues waiting reads on the thread pool while fewer than max_active run there. At most one
 * per reader connection runs at once, so that reads neither hold thread-pool threads waiting
 * for a connection nor take every core from the loop; the others wait here, in order. */
static void read_next(cv_api_t *api) {
    while (api->active < api->max_active && api->waiting) {
        read_op_t *op = api->waiting;
        api->waiting = op->next;
        if (!api->waiting) api->waiting_end = &api->waiting;
        api->active++;
        if (uv_queue_work(api->loop, &op->work, read_work, after_read) == 0) continue;
        api->active--;
        api->reads--;
        cv_http_response_t res = {0};
        cv_http_json_error(&res, 500, "cannot queue the query");
        cv_http_deferred_finish(op->deferred, &res);
        read_free(op);
    }
}

/* Loop: starts the next waiting read, then gives this one's deferred answer. */
static void after_read(uv_work_t *work, int status) {
    read_op_t *op = work->data;
    cv_api_t *api = op->api;
    api->active--;
    api->reads--;
    read_next(api);
    if (!status && op->settle && op->text) op->settle(op);
    if (op->deferred) {
        cv_http_response_t res = {0};
        if (status)
            cv_http_json_error(&res, 503, "the query was cancelled");
        else if (op->plain)
            cv_http_respond_text(&res, op->status, op->content_type, op->plain,
                                 strlen(op->plain));
        else if (op->answer)
            cv_http_respond_text(&res, op->status, "application/json", op->answer,
                                 strlen(op->answer));
        else if (!op->text)
            cv_http_json_error(&res, 500, "out of memory");
        else
            cv_http_respond_text(&res, op->status, "application/json", op->text, strlen(op->text));
        cv_http_deferred_finish(op->deferred, &res);
    }
    cJSON_free(op->text);
    read_free(op);
}

/* Runs op (taken over) on the thread pool, now or when its turn comes, and answers res from its
 * result later. */
static void start_read(cv_api_t *api, read_op_t *op, cv_http_response_t *res) {
    op->api = api;
    op->work.data = op;
    if (!api->readers) {
        read_free(op);
        REPLY(cv_http_json_error(res, 500, "the API has no store readers"));
    }
    if (api->active < api->max_active && !api->waiting) {
        if (uv_queue_work(api->loop, &op->work, read_work, after_read)) {
            read_free(op);
            REPLY(cv_http_json_error(res, 500, "cannot queue the query"));
        }
        api->active++;
        api->reads++;
        /* Queued first: when the promise cannot be made, the answer is given now and the
         * query's result is dropped by after_read. */
        op->deferred = cv_http_defer(res);
        if (!op->deferred) cv_http_json_error(res, 500, "out of memory");
        return;
    }
    op->deferred = cv_http_defer(res);
    if (!op->deferred) {
        read_free(op);
        REPLY(cv_http_json_error(res, 500, "out of memory"));
    }
    api->reads++;
    *api->waiting_end = op;
    api->waiting_end = &op->next;
}

/* A new read of route `run`, or NULL (then res holds a 500). */
static read_op_t *read_new(read_fn_t run, cv_http_response_t *res) {
    read_op_t *op = calloc(1, sizeof *op);
    if (!op)
        cv_http_json_error(res, 500, "out of memory");
    else
        op->run = run;
    return op;
}

/* Reads limit and the cursor (`after` or its synonym `cursor`) of a list request. Returns 0, or
 * -1 with a 400 in res. */
static int page_parse(const char *query, page_t *page, cv_http_response_t *res) {
    char num[32], other[CURSOR_MAX];
    page->limit = PAGE_DEFAULT;
    if (cv_http_query_get(query, "limit", num, sizeof num)) {
        char *end = NULL;
        long long v = strtoll(num, &end, 10);
        if (!num[0] || *end || v < 1 || v > PAGE_MAX) {
            cv_http_json_error(res, 400, "limit: must be an integer in [1, %d], got \"%s\"",
                               PAGE_MAX, num);
            return -1;
        }
        page->limit = v;
    }
    if (cv_http_query_get(query, "offset", num, sizeof num)) {
        cv_http_json_error(res, 400,
                           "offset: not supported; pass after=<next_cursor> of the "
                           "previous page");
        return -1;
    }
    int a = cv_http_query_get(query, "after", page->cursor, sizeof page->cursor);
    int c = cv_http_query_get(query, "cursor", other, sizeof other);
    if (a && c && strcmp(page->cursor, other)) {
        cv_http_json_error(res, 400, "after and cursor: give one cursor, not two different ones");
        return -1;
    }
    if (c && !a) memcpy(page->cursor, other, sizeof other);
    page->has_cursor = a || c;
    if (page->has_cursor && !page->cursor[0]) {
        cv_http_json_error(res, 400,
                           "after: must be the next_cursor of the previous page, got "
                           "an empty one");
        return -1;
    }
    return 0;
}

/* Parses a cursor holding one decimal integer >= 0. */
static int cursor_int(const char *cursor, int64_t *out) {
    const char *rest = NULL;
    int64_t v = parse_id(cursor, &rest);
    if (v < 0 || *rest) return -1;
    *out = v;
    return 0;
}

/* The 400 answer to a cursor this list did not give out. */
static int bad_cursor(const read_op_t *op, char *err) {
    cv_errf(err, CV_EINVAL,
            "after: \"%.64s\" is not a cursor of this list (pass the "
            "next_cursor of the previous page as it is)",
            op->page.cursor);
    return 400;
}

/* rows was fetched with limit + 1: drops the extra row and returns the last kept one, the key
 * of the next page, or NULL at the end of the list. */
static const cJSON *page_trim(cJSON *rows, int64_t limit) {
    if (cJSON_GetArraySize(rows) <= limit) return NULL;
    cJSON_DeleteItemFromArray(rows, (int)limit);
    return cJSON_GetArrayItem(rows, (int)limit - 1);
}

/* {key: rows, "next_cursor": cursor or null}, rows taken over. NULL when out of memory. */
static cJSON *page_reply(const char *key, cJSON *rows, const char *cursor, char *err) {
    cJSON *o = wrap(key, rows);
    if (o && !(cursor ? cJSON_AddStringToObject(o, "next_cursor", cursor)
                      : cJSON_AddNullToObject(o, "next_cursor"))) {
        cJSON_Delete(o);
        o = NULL;
    }
    if (!o) cv_errf(err, CV_ENOMEM, "out of memory");
    return o;
}

/* The status of a failed store query (404 for an unknown job or trial). */
static int read_error(int rc, const char *what, char *err) {
    if (rc == CV_STORE_NOT_FOUND) {
        cv_errf(err, CV_EINVAL, "%s not found", what);
        return 404;
    }
    return 500;
}

/* The number field of a row, as the integer it holds. */
static int64_t row_int(const cJSON *row, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static int read_jobs(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err) {
    int64_t after = 0;
    char cursor[32];
    if (op->page.has_cursor && cursor_int(op->page.cursor, &after)) return bad_cursor(op, err);
    cJSON *jobs = NULL;
    int rc = cv_store_jobs_list(store, after, op->page.limit + 1, &jobs, err);
    if (rc) return read_error(rc, "jobs", err);
    const cJSON *last = page_trim(jobs, op->page.limit);
    if (last) snprintf(cursor, sizeof cursor, "%lld", (long long)row_int(last, "id"));
    rounds_to_user(jobs);
    *reply = page_reply("jobs", jobs, last ? cursor : NULL, err);
    return *reply ? 200 : 500;
}

static int read_job(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err) {
    cJSON *job = NULL;
    int rc = cv_store_job_get(store, op->id, &job, err);
    if (rc) return read_error(rc, "job", err);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(job, "spec");
    const cJSON *budget = cJSON_GetObjectItemCaseSensitive(spec, "budget");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(budget, "max_trials");
    if (!cJSON_AddNumberToObject(job, "max_trials", cJSON_IsNumber(max) ? max->valuedouble : 0) ||
        !cJSON_AddNumberToObject(job, "running", (double)op->running) || add_schedule(job)) {
        cJSON_Delete(job);
        cv_errf(err, CV_ENOMEM, "out of memory");
        return 500;
    }
    job_rounds_to_user(job);
    *reply = job;
    return 200;
}

/* The value of a lowercase hex digit, or -1. */
static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A ranked page's cursor: the ranking key of its last row (cv_store_rank_key_t), the two
 * measures as the 64 bits of their doubles in hex so that the next page resumes exactly after
 * this row: "<value>.<second>.<n_params or x when unknown>.<number>". */
static void rank_cursor(const cJSON *row, const char *key, const char *other, char *out,
                        size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(row, other);
    const cJSON *np = cJSON_GetObjectItemCaseSensitive(row, "n_params");
    double value = v->valuedouble, second = cJSON_IsNumber(w) ? w->valuedouble : INFINITY;
    char size[24] = "x"; /* x: no size known, which ranks last */
    if (cJSON_IsNumber(np)) snprintf(size, sizeof size, "%lld", (long long)np->valuedouble);
    uint64_t a, b;
    memcpy(&a, &value, sizeof a);
    memcpy(&b, &second, sizeof b);
    snprintf(out, cap, "%016llx.%016llx.%s.%lld", (unsigned long long)a, (unsigned long long)b,
             size, (long long)row_int(row, "number"));
}

/* Reads 16 hex digits followed by '.' at *p into a double; advances *p. Returns 0 or -1. */
static int hex_double(const char **p, double *out) {
    uint64_t bits = 0;
    for (int i = 0; i < 16; i++) {
        int d = hex_digit((*p)[i]);
        if (d < 0) return -1;
        bits = bits << 4 | (uint64_t)d;
    }
    if ((*p)[16] != '.') return -1;
    memcpy(out, &bits, sizeof *out);
    *p += 17;
    return 0;
}

static int rank_cursor_parse(const char *cursor, cv_store_rank_key_t *key) {
    const char *p = cursor, *dot;
    if (hex_double(&p, &key->value) || hex_double(&p, &key->second)) return -1;
    if (!(dot = strchr(p, '.')) || dot - p > 20) return -1;
    char np[24];
    memcpy(np, p, (size_t)(dot - p));
    np[dot - p] = '\0';
    if (!strcmp(np, "x")) key->n_params = INT64_MAX;
    else if (cursor_int(np, &key->n_params)) return -1;
    if (cursor_int(dot + 1, &key->number)) return -1;
    return isfinite(key->value) && !isnan(key->second) ? 0 : -1;
}

static int read_trials(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err) {
    char cursor[64];
    cJSON *trials = NULL;
    int rc;
    if (op->best) {
        cv_store_rank_key_t after;
        cv_store_objective_t objective = CV_STORE_OBJ_DEV_ERROR;
        if (op->page.has_cursor && rank_cursor_parse(op->page.cursor, &after))
            return bad_cursor(op, err);
        rc = cv_store_trials_ranked(store, op->id, op->page.has_cursor ? &after : NULL,
                                    op->page.limit + 1, &objective, &trials, err);
        if (rc) return read_error(rc, "job", err);
        const cJSON *last = page_trim(trials, op->page.limit);
        int by_cost = objective == CV_STORE_OBJ_DEV_COST;
        const char *key = by_cost ? "dev_cost" : "dev_error";
        const cJSON *v = last ? cJSON_GetObjectItemCaseSensitive(last, key) : NULL;
        if (cJSON_IsNumber(v))
            rank_cursor(last, key, by_cost ? "dev_error" : "dev_cost", cursor, sizeof cursor);
        rounds_to_user(trials);
        *reply = page_reply("trials", trials, cJSON_IsNumber(v) ? cursor : NULL, err);
        return *reply ? 200 : 500;
    }
    int64_t after = -1;
    if (op->page.has_cursor && cursor_int(op->page.cursor, &after)) return bad_cursor(op, err);
    rc = cv_store_trials_list(store, op->id, after, op->page.limit + 1, &trials, err);
    if (rc) return read_error(rc, "job", err);
    const cJSON *last = page_trim(trials, op->page.limit);
    if (last) snprintf(cursor, sizeof cursor, "%lld", (long long)row_int(last, "number"));
    rounds_to_user(trials);
    *reply = page_reply("trials", trials, last ? cursor : NULL, err);
    return *reply ? 200 : 500;
}

/* Appends one nudge to the array ctx as {seq, values, epoch (null until applied),
 * created_at, applied_at}. */
static int nudge_to_json(void *ctx, const cv_store_nudge_t *n) {
    cJSON *o = cJSON_CreateObject(), *values = NULL;
    if (!o || !cJSON_AddItemToArray(ctx, o)) { /* from here the array owns o */
        cJSON_Delete(o);
        return CV_ENOMEM;
    }
    values = cJSON_Parse(n->values_json);
    if (!values || !cJSON_AddItemToObject(o, "values", values)) {
        cJSON_Delete(values);
        return CV_ENOMEM;
    }
    int applied = n->epoch > 0;
    int ok = cJSON_AddNumberToObject(o, "seq", (double)n->seq) &&
             (applied ? cJSON_AddNumberToObject(o, "epoch", n->epoch) != NULL
                      : cJSON_AddNullToObject(o, "epoch") != NULL) &&
             cJSON_AddNumberToObject(o, "created_at", n->created_at) &&
             (applied ? cJSON_AddNumberToObject(o, "applied_at", n->applied_at) != NULL
                      : cJSON_AddNullToObject(o, "applied_at") != NULL);
    return ok ? 0 : CV_ENOMEM;
}

static int read_trial(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err) {
    int rc = cv_store_trial_get(store, op->id, reply, err);
    if (rc) return read_error(rc, "trial", err);
    round_to_user(*reply);
    cJSON *nudges = cJSON_AddArrayToObject(*reply, "nudges");
    if (!nudges) return cv_errf(err, CV_ENOMEM, "out of memory"), 500;
    rc = cv_store_nudges_each(store, op->id, nudge_to_json, nudges, NULL, err);
    if (rc == CV_ENOMEM) cv_errf(err, rc, "out of memory");
    return rc ? 500 : 200;
}

/* The live view of worker id among views[0..n): the connection running a trial, else the one
 * heard from last. NULL when the worker is not connected. */
static const cv_sched_worker_view_t *live_worker(const cv_sched_worker_view_t *views, size_t n,
                                                 const char *id) {
    const cv_sched_worker_view_t *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(views[i].id, id)) continue;
        if (!found || (views[i].trial_id && !found->trial_id) ||
            (!views[i].trial_id == !found->trial_id && views[i].last_seen > found->last_seen))
            found = &views[i];
    }
    return found;
}

/* Adds what the scheduler knows of a stored worker row: connected, state (idle, running,
 * quarantined or disconnected), trial_id and job_id (null when idle), the external trainers it
 * offers ([] when none or disconnected), and last_seen from its last message when it is
 * connected. Returns 0 or CV_ENOMEM. */
static int add_live_fields(cJSON *row, const cv_sched_worker_view_t *live) {
    const char *state = "disconnected";
    const cJSON *flag = cJSON_GetObjectItemCaseSensitive(row, "quarantined");
    int quarantined = cJSON_IsNumber(flag) && flag->valueint != 0;
    if (live && live->trial_id) state = "running";
    else if (live && (live->quarantined || quarantined)) state = "quarantined";
    else if (live) state = "idle";
    cJSON *trial = live && live->trial_id ? cJSON_CreateNumber((double)live->trial_id)
                                          : cJSON_CreateNull();
    cJSON *job = live && live->job_id ? cJSON_CreateNumber((double)live->job_id)
                                      : cJSON_CreateNull();
    int ok = trial && job && cJSON_AddItemToObject(row, "trial_id", trial);
    if (!ok) cJSON_Delete(trial);
    ok = ok && cJSON_AddItemToObject(row, "job_id", job);
    if (!ok) cJSON_Delete(job);
    ok = ok && cJSON_AddBoolToObject(row, "connected", live != NULL) &&
         cJSON_AddStringToObject(row, "state", state);
    cJSON *trainers = ok ? cJSON_AddArrayToObject(row, "trainers") : NULL;
    ok = trainers != NULL;
    for (size_t i = 0; ok && live && i < live->n_trainers; i++) {
        cJSON *name = cJSON_CreateString(live->trainers[i]);
        ok = name && cJSON_AddItemToArray(trainers, name);
        if (!ok) cJSON_Delete(name);
    }
    if (ok && live) {
        cJSON *seen = cJSON_GetObjectItemCaseSensitive(row, "last_seen");
        if (cJSON_IsNumber(seen) && live->last_seen > seen->valuedouble)
            cJSON_SetNumberValue(seen, live->last_seen);
    }
    return ok ? 0 : CV_ENOMEM;
}

/* Worker ids are hex-encoded in cursors, so that a cursor is one word in a query string. */
static int read_workers(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err) {
    char after[CURSOR_MAX / 2], cursor[CURSOR_MAX];
    size_t n = strlen(op->page.cursor);
    if (op->page.has_cursor) {
        if (n % 2 || n / 2 >= sizeof after) return bad_cursor(op, err);
        for (size_t i = 0; i < n / 2; i++) {
            int hi = hex_digit(op->page.cursor[2 * i]), lo = hex_digit(op->page.cursor[2 * i + 1]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0) return bad_cursor(op, err);
            after[i] = (char)(hi << 4 | lo);
        }
        after[n / 2] = '\0';
    }
    cJSON *workers = NULL;
    int rc = cv_store_workers_list(store, op->page.has_cursor ? after : NULL, op->page.limit + 1,
                                   &workers, err);
    if (rc) return read_error(rc, "workers", err);
    const cJSON *last = page_trim(workers, op->page.limit);
    const char *id =
        last ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "id")) : NULL;
    if (id) {
        size_t len = strlen(id);
        if (2 * len >= sizeof cursor) len = sizeof cursor / 2 - 1;
        for (size_t i = 0; i < len; i++)
            snprintf(cursor + 2 * i, 3, "%02x", (unsigned char)id[i]);
        cursor[2 * len] = '\0';
    }
    const cJSON *row;
    cJSON_ArrayForEach(row, workers) {
        const char *wid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "id"));
        if (add_live_fields((cJSON *)row, wid ? live_worker(op->views, op->n_views, wid) : NULL)) {
            cJSON_Delete(workers);
            cv_errf(err, CV_ENOMEM, "out of memory");
            return 500;
        }
    }
    *reply = page_reply("workers", workers, id ? cursor : NULL, err);
    return *reply ? 200 : 500;
}

/* ---- GET routes ------------------------------------------------------------------------- */

static void get_jobs(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                     cv_http_response_t *res) {
    (void)a;
    const char *query = req->query;
    read_op_t *op = read_new(read_jobs, res);
    if (!op) return;
    if (page_parse(query, &op->page, res)) {
        read_free(op);
        return;
    }
    start_read(api, op, res);
}

static void get_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                    cv_http_response_t *res) {
    (void)req;
    int64_t id = a->id;
    read_op_t *op = read_new(read_job, res);
    if (!op) return;
    op->id = id;
    op->running = cv_sched_running(api->sched, id);
    start_read(api, op, res);
}

static void get_trials(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                       cv_http_response_t *res) {
    int64_t id = a->id;
    const char *query = req->query;
    char order[16] = "number";
    cv_http_query_get(query, "order", order, sizeof order);
    if (strcmp(order, "best") && strcmp(order, "number"))
        REPLY(cv_http_json_error(res, 400, "order: must be \"best\" or \"number\", got \"%s\"",
                                 order));
    read_op_t *op = read_new(read_trials, res);
    if (!op) return;
    op->id = id;
    op->best = !strcmp(order, "best");
    if (page_parse(query, &op->page, res)) {
        read_free(op);
        return;
    }
    start_read(api, op, res);
}

static void get_trial(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                      cv_http_response_t *res) {
    (void)req;
    int64_t id = a->id;
    read_op_t *op = read_new(read_trial, res);
    if (!op) return;
    op->id = id;
    start_read(api, op, res);
}

/* Copies the scheduler's view of its connected workers into op (ids included), for the read to
 * merge on the thread pool. Returns 0 or CV_ENOMEM. */
static int copy_worker_views(const cv_api_t *api, read_op_t *op) {
    size_t n = cv_sched_workers_view(api->sched, NULL, 0);
    if (!n) return 0;
    cv_sched_worker_view_t *views = malloc(n * (sizeof *views + CV_MSG_WORKER_ID_MAX + 1));
    if (!views) return CV_ENOMEM;
    n = cv_sched_workers_view(api->sched, views, n);
    char *ids = (char *)(views + n);
    for (size_t i = 0; i < n; i++) {
        char *id = ids + i * (CV_MSG_WORKER_ID_MAX + 1);
        snprintf(id, CV_MSG_WORKER_ID_MAX + 1, "%s", views[i].id);
        views[i].id = id;
    }
    op->views = views;
    op->n_views = n;
    return 0;
}

static void get_workers(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res) {
    (void)a;
    const char *query = req->query;
    read_op_t *op = read_new(read_workers, res);
    if (!op) return;
    if (copy_worker_views(api, op)) {
        read_free(op);
        REPLY(cv_http_json_error(res, 500, "out of memory"));
    }
    if (page_parse(query, &op->page, res)) {
        read_free(op);
        return;
    }
    start_read(api, op, res);
}

/* Stores a job whose datasets passed their check and answers 201 with it (or the error). */
static void create_job(cv_api_t *api, const char *text, size_t len,
                       const cv_dataset_check_t *check, cv_http_response_t *res) {
    char err[CV_ERRLEN];
    int64_t id = 0;
    int rc = cv_sched_submit_checked(api->sched, text, len, check, cv_clock_wall(), &id, err);
    if (rc == CV_EIO || rc == CV_ENOMEM) REPLY(cv_http_json_error(res, 500, "%s", err));
    if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
    cJSON *job = NULL;
    cJSON *out = cJSON_CreateObject();
    if (cv_store_job_get(api->ro, id, &job, err) == 0 && out) {
        job_rounds_to_user(job);
        if (!cJSON_AddNumberToObject(out, "id", (double)id) ||
            !cJSON_AddItemToObject(out, "job", job)) {
            cJSON_Delete(job);
            cJSON_Delete(out);
            REPLY(cv_http_json_error(res, 500, "job %lld was stored; out of memory answering",
                                     (long long)id));
        }
        REPLY(cv_http_respond_json(res, 201, out));
    }
    cJSON_Delete(job);
    cJSON_Delete(out);
    cv_http_json_error(res, 500, "job %lld was stored but cannot be read back: %s", (long long)id,
                       err);
}

/* A submission's datasets were checked (loop thread): the job is created, or refused with the
 * check's reason. */
static void after_check(cv_dataset_check_t *check, void *userdata) {
    submission_t *sub = userdata;
    cv_api_t *api = sub->api;
    for (submission_t **p = &api->submissions; *p; p = &(*p)->next)
        if (*p == sub) {
            *p = sub->next;
            break;
        }
    char err[CV_ERRLEN];
    cv_http_response_t res = {0};
    int rc = cv_dataset_check_status(check, err);
    if (rc == CV_ESTOPPED || api->stopping)
        cv_http_json_error(&res, 503, "the coordinator is stopping; submit the job again later");
    else if (rc == CV_ENOMEM)
        cv_http_json_error(&res, 500, "%s", err);
    else if (rc)
        cv_http_json_error(&res, 400, "%s", err);
    else
        create_job(api, sub->text, sub->len, check, &res);
    cv_http_deferred_finish(sub->answer, &res);
    cv_dataset_check_destroy(check);
    free(sub->text);
    free(sub);
}

/* A valid job spec (text) naming an external trainer that no connected worker offers is refused
 * with 422 in res: nobody could train it. Returns 1 when refused (or out of memory: 500), 0 when
 * the job can go on (builtin, ask, or an offered trainer). A job already stored whose trainer's
 * workers all leave waits for one to come back. */
static int trainer_unoffered(const cv_api_t *api, const char *text, size_t len,
                             cv_http_response_t *res) {
    char err[CV_ERRLEN], offered[CV_ERRLEN / 2];
    cJSON *spec = NULL;
    if (cv_json_decode(text, len, &spec, err)) { /* the spec parsed a moment ago */
        cv_http_json_error(res, 500, "%s", err);
        return 1;
    }
    const cJSON *trainer = cJSON_GetObjectItemCaseSensitive(spec, CV_JOB_TRAINER_FIELD);
    int refused = cJSON_IsString(trainer) &&
                  strcmp(trainer->valuestring, "builtin") && strcmp(trainer->valuestring, "ask") &&
                  !cv_sched_trainer_offered(api->sched, trainer->valuestring, offered,
                                            sizeof offered);
    if (refused)
        cv_http_json_error(res, 422, "trainer: no connected worker offers \"%s\" (workers offer: "
                           "%s)", trainer->valuestring, offered);
    cJSON_Delete(spec);
    return refused;
}

/* POST /v1/jobs: the spec is validated here; its dataset files are checked (resolved, read,
 * hashed, their CSV labels scanned) on the thread pool, and the answer comes after. */
static void post_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                     cv_http_response_t *res) {
    (void)a;
    char err[CV_ERRLEN];
    if (api->stopping)
        REPLY(cv_http_json_error(res, 503, "the coordinator is stopping; submit the job again "
                                 "later"));
    cv_dataset_check_t *check = NULL;
    int rc = cv_sched_new_check(api->sched, req->body, req->body_len, &check, err);
    if (rc == CV_ENOMEM) REPLY(cv_http_json_error(res, 500, "%s", err));
    if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
    if (trainer_unoffered(api, req->body, req->body_len, res)) {
        cv_dataset_check_destroy(check);
        return;
    }
    submission_t *sub = calloc(1, sizeof *sub);
    if (sub) sub->text = malloc(req->body_len + 1);
    if (!sub || !sub->text) {
        if (sub) free(sub);
        cv_dataset_check_destroy(check);
        REPLY(cv_http_json_error(res, 500, "out of memory"));
    }
    memcpy(sub->text, req->body, req->body_len);
    sub->text[req->body_len] = '\0';
    sub->len = req->body_len;
    sub->api = api;
    sub->check = check;
    if (!(sub->answer = cv_http_defer(res))) {
        free(sub->text);
        free(sub);
        cv_dataset_check_destroy(check);
        REPLY(cv_http_json_error(res, 500, "out of memory"));
    }
    if (cv_dataset_check_start(check, api->loop, after_check, sub)) {
        cv_http_response_t now = {0};
        cv_http_json_error(&now, 500, "cannot start checking the datasets");
        cv_http_deferred_finish(sub->answer, &now);
        free(sub->text);
        free(sub);
        cv_dataset_check_destroy(check);
        return;
    }
    sub->next = api->submissions;
    api->submissions = sub;
}

/* POST /v1/workers/{id}/release: lifts the worker's quarantine. */
static void release_worker(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                           cv_http_response_t *res) {
    (void)req;
    const char *worker_id = a->worker;
    char err[CV_ERRLEN];
    int was = 0;
    int rc = cv_sched_worker_release(api->sched, worker_id, cv_clock_wall(), &was, err);
    if (rc == CV_STORE_NOT_FOUND)
        REPLY(cv_http_json_error(res, 404, "worker %s not found", worker_id));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddStringToObject(o, "id", worker_id) ||
              !cJSON_AddBoolToObject(o, "was_quarantined", was) ||
              !cJSON_AddBoolToObject(o, "quarantined", 0))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}

static void cancel_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                       cv_http_response_t *res) {
    (void)req;
    int64_t id = a->id;
    char err[CV_ERRLEN];
    int64_t n = 0;
    int rc = cv_sched_cancel(api->sched, id, cv_clock_wall(), &n, err);
    if (rc == CV_STORE_NOT_FOUND) REPLY(cv_http_json_error(res, 404, "job not found"));
    if (rc == CV_STORE_STALE)
        REPLY(cv_http_json_error(res, 409, "job %lld is no longer running", (long long)id));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "id", (double)id) ||
              !cJSON_AddStringToObject(o, "status", "cancelled") ||
              !cJSON_AddNumberToObject(o, "trials_cancelled", (double)n))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}

/* POST /v1/trials/{id}/nudge {field: value, ...}: new values for the hyperparameters of a
 * running trial, applied by its worker at the next epoch boundary (cv_sched_nudge). */
static void nudge_trial(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res) {
    char err[CV_ERRLEN];
    cJSON *body = NULL;
    int64_t seq = 0;
    int rc = req->body_len ? cv_json_decode(req->body, req->body_len, &body, err)
                           : cv_errf(err, CV_EINVAL,
                                     "nudge: the body must be a JSON object of "
                                     "new values");
    if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
    rc = cv_sched_nudge(api->sched, a->id, body, cv_clock_wall(), &seq, err);
    if (rc == CV_STORE_NOT_FOUND) {
        cJSON_Delete(body);
        REPLY(cv_http_json_error(res, 404, "trial not found"));
    }
    if (rc) {
        cJSON_Delete(body);
        REPLY(cv_http_json_error(res,
                                 rc == CV_STORE_STALE                 ? 409
                                 : rc == CV_EINVAL || rc == CV_ERANGE ? 400
                                                                      : 500,
                                 "%s", err));
    }
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "trial_id", (double)a->id) ||
              !cJSON_AddNumberToObject(o, "seq", (double)seq) ||
              !cJSON_AddItemToObject(o, "values", body))) {
        if (!cJSON_GetObjectItemCaseSensitive(o, "values")) cJSON_Delete(body);
        cJSON_Delete(o);
        o = NULL;
    } else if (!o) {
        cJSON_Delete(body);
    }
    cv_http_respond_json(res, 200, o);
}

/* DELETE /v1/jobs/{id}: the job's rows go in one transaction, then its models on the thread
 * pool (cv_sched_delete). */
static void delete_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                       cv_http_response_t *res) {
    (void)req;
    int64_t id = a->id;
    char err[CV_ERRLEN];
    int64_t n = 0;
    /* Its test result is about to be stored on the job. */
    int evaluating = cv_evals_pending(cv_sched_evals(api->sched), id) > 0;
    for (const eval_t *e = api->evals; e; e = e->next) evaluating |= e->task.job_id == id;
    if (evaluating)
        REPLY(cv_http_json_error(res, 409, "job %lld is being evaluated; delete it when the "
                                 "evaluation ends", (long long)id));
    int rc = cv_sched_delete(api->sched, id, &n, err);
    if (rc == CV_STORE_NOT_FOUND) REPLY(cv_http_json_error(res, 404, "job not found"));
    if (rc == CV_STORE_STALE)
        REPLY(cv_http_json_error(res, 409, "job %lld is running; cancel it first",
                                 (long long)id));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    cv_evals_forget_importance(cv_sched_evals(api->sched), id);
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "id", (double)id) ||
              !cJSON_AddBoolToObject(o, "deleted", 1) ||
              !cJSON_AddNumberToObject(o, "trials_deleted", (double)n))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}

/* POST /v1/jobs/{id}/extend {"max_trials": N}: a completed job runs again with a larger budget
 * (cv_sched_extend). */
static void extend_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                       cv_http_response_t *res) {
    int64_t id = a->id;
    static const char *const fields[] = {"max_trials"};
    char err[CV_ERRLEN];
    cJSON *body = NULL;
    int64_t n = 0;
    int rc = req->body_len ? cv_json_decode(req->body, req->body_len, &body, err)
                           : cv_errf(err, CV_EINVAL, "max_trials: is required");
    if (rc == 0 && !cJSON_IsObject(body))
        rc = cv_errf(err, CV_EINVAL, "the body must be a JSON object {\"max_trials\": N}");
    if (rc == 0) rc = cv_json_check_fields(body, NULL, fields, 1, err);
    const cJSON *m = rc == 0 ? cJSON_GetObjectItemCaseSensitive(body, "max_trials") : NULL;
    if (rc == 0 && !m) rc = cv_errf(err, CV_EINVAL, "max_trials: is required");
    if (rc == 0) rc = cv_json_get_int(m, "max_trials", 1, CV_JOB_MAX_TRIALS, &n, err);
    cJSON_Delete(body);
    if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
    int round = 0;
    rc = cv_sched_extend(api->sched, id, n, cv_clock_wall(), &round, err);
    if (rc == CV_STORE_NOT_FOUND) REPLY(cv_http_json_error(res, 404, "job not found"));
    if (rc == CV_STORE_STALE) REPLY(cv_http_json_error(res, 409, "%s", err));
    if (rc == CV_EINVAL) REPLY(cv_http_json_error(res, 400, "%s", err));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "id", (double)id) ||
              !cJSON_AddStringToObject(o, "status", "running") ||
              !cJSON_AddNumberToObject(o, "max_trials", (double)n) ||
              !cJSON_AddNumberToObject(o, "round", round + 1))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 200, o);
}

/* ---- evaluation ------------------------------------------------------------------------- */

/* The dataset path fields of a trial spec (the keys of a files object). */
static const char *const data_fields[] = {"images", "labels", "test_images",
                                          "test_labels", "csv", "test_csv"};

/* Thread pool: the SHA-256 and size of every dataset file the best trial's spec names and of
 * every model, for the worker to fetch them by hash. */
static void eval_work(uv_work_t *work) {
    eval_t *e = work->data;
    cv_eval_task_t *t = &e->task;
    cJSON *spec = cJSON_Parse(t->spec_json);
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(spec, "dataset");
    char err[CV_ERRLEN];
    uint64_t bytes = 0;
    if (!cJSON_IsObject(ds)) {
        e->rc = cv_errf(e->err, CV_EINVAL, "the best trial's spec has no dataset object");
        goto cleanup;
    }
    for (size_t i = 0; i < sizeof data_fields / sizeof *data_fields; i++) {
        const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ds,
                                                                                 data_fields[i]));
        if (!path) continue;
        cv_msg_file_t *f = &t->files[t->n_files];
        if ((e->rc = cv_sha256_file(path, f->hash, &bytes, err))) {
            (void)cv_errf(e->err, e->rc, "dataset.%s: %s", data_fields[i], err);
            goto cleanup;
        }
        snprintf(f->field, sizeof f->field, "%s", data_fields[i]);
        snprintf(e->data_paths[t->n_files], sizeof e->data_paths[0], "%s", path);
        f->bytes = (int64_t)bytes;
        t->n_files++;
    }
    for (int i = 0; i < e->count; i++) {
        cv_msg_model_t *m = &t->models[i];
        if ((e->rc = cv_sha256_file(e->paths[i], m->hash, &bytes, err))) {
            (void)cv_errf(e->err, e->rc, "the model of trial %lld: %s",
                          (long long)e->trial_ids[i], err);
            goto cleanup;
        }
        m->trial_id = e->trial_ids[i];
        m->bytes = (int64_t)bytes;
    }
    t->n_models = (size_t)e->count;
cleanup:
    cJSON_Delete(spec);
}

/* Loop thread: the prepared evaluation waits for a worker; one whose files cannot be read has
 * its failure stored against the job at once. */
static void after_eval(uv_work_t *work, int status) {
    eval_t *e = work->data;
    cv_api_t *api = e->api;
    char err[CV_ERRLEN];
    for (eval_t **p = &api->evals; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    int rc = status ? cv_errf(e->err, CV_EIO, "evaluation cancelled") : e->rc;
    for (size_t i = 0; rc == 0 && i < e->task.n_files; i++)
        rc = cv_sched_serve_file(api->sched, e->task.files[i].hash, e->data_paths[i], e->err);
    for (size_t i = 0; rc == 0 && i < e->task.n_models; i++)
        rc = cv_sched_serve_file(api->sched, e->task.models[i].hash, e->paths[i], e->err);
    if (rc == 0) rc = cv_evals_add(cv_sched_evals(api->sched), &e->task, e->err);
    if (rc) {
        char *text = cv_eval_result_json(e->err, 0, 0, 0, e->task.k, e->trial_ids,
                                         (size_t)e->count);
        if (!text || cv_sched_store_test_result(api->sched, e->task.job_id, text, err))
            cv_log(api->log, CV_LOG_ERROR, "job %lld: cannot store the test result: %s",
                   (long long)e->task.job_id, text ? err : "out of memory");
        else
            cv_log(api->log, CV_LOG_INFO, "job %lld test evaluation: %s",
                   (long long)e->task.job_id, text);
        cJSON_free(text);
    }
    cJSON_free(e->task.spec_json); /* NULL when the queue took it */
    free(e);
}

/* The ensemble size a stored test result was asked for: its "ensemble", or the number of its
 * models for a result stored before that field existed. */
static int stored_ensemble(const cJSON *test) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(test, "ensemble");
    if (cJSON_IsNumber(k)) return k->valueint;
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(test, "trials"));
}

/* The 409 for asking a job's test set again with another ensemble size than the one it was (or
 * is being) scored with: the test set is scored once per job. */
static void scored_once(cv_http_response_t *res, int64_t id, const char *verb, int k) {
    char with[64];
    if (k == 1) snprintf(with, sizeof with, "the best trial alone");
    else snprintf(with, sizeof with, "an ensemble of %d", k);
    cv_http_json_error(res, 409, "the test set of job %lld %s scored with %s; it is scored once "
                       "per job so that it stays an unbiased estimate", (long long)id, verb, with);
}

/* 202 {"status": "evaluating"}, or 500 when out of memory. */
static void reply_evaluating(cv_http_response_t *res) {
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "status", "evaluating")) {
        cJSON_Delete(o);
        o = NULL;
    }
    cv_http_respond_json(res, 202, o);
}

static void evaluate_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                         cv_http_response_t *res) {
    int64_t id = a->id;
    char err[CV_ERRLEN];
    int k = 1, k_given = 0;
    if (req->body_len) {
        cJSON *body = NULL;
        int rc = cv_json_decode(req->body, req->body_len, &body, err);
        if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(body, "ensemble");
        int64_t v = 1;
        rc = e ? cv_json_get_int(e, "ensemble", 1, MAX_ENSEMBLE, &v, err) : 0;
        cJSON_Delete(body);
        if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
        k = (int)v;
        k_given = e != NULL;
    }
    cJSON *job = NULL;
    int rc = cv_store_job_get(api->ro, id, &job, err);
    if (rc) REPLY(store_error(res, rc, "job", err));
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job, "status"));
    cJSON *test = cJSON_DetachItemFromObjectCaseSensitive(job, "test_result");
    int running = status && !strcmp(status, "running");
    cJSON_Delete(job);
    /* Once: a stored result is the answer. A stored failure (the test set could not be read,
     * the daemon stopped mid-way) is not a result, so asking again starts a new evaluation. */
    if (test && cJSON_IsObject(test) && !cJSON_GetObjectItemCaseSensitive(test, "error")) {
        int stored = stored_ensemble(test);
        if (k_given && k != stored) {
            cJSON_Delete(test);
            REPLY(scored_once(res, id, "was already", stored));
        }
        if (!cJSON_AddBoolToObject(test, "cached", 1)) {
            cJSON_Delete(test);
            test = NULL;
        }
        REPLY(cv_http_respond_json(res, 200, test));
    }
    cJSON_Delete(test);
    if (running)
        REPLY(cv_http_json_error(res, 409, "job %lld is still running; evaluate it when it ends",
                                  (long long)id));
    int pending = cv_evals_pending(cv_sched_evals(api->sched), id);
    for (eval_t *e = api->evals; e && !pending; e = e->next)
        if (e->task.job_id == id) pending = e->task.k;
    if (pending) {
        if (k_given && k != pending) REPLY(scored_once(res, id, "is being", pending));
        REPLY(reply_evaluating(res));
    }
    eval_t *e = calloc(1, sizeof *e);
    if (!e) REPLY(cv_http_json_error(res, 500, "out of memory"));
    e->api = api, e->task.job_id = id, e->task.k = k;
    e->count = cv_sched_best_models(api->sched, id, k, e->paths, e->trial_ids,
                                    &e->task.spec_json, err);
    if (e->count <= 0) {
        int failed = e->count < 0;
        free(e);
        if (failed) REPLY(cv_http_json_error(res, 500, "%s", err));
        REPLY(cv_http_json_error(res, 409, "job %lld has no completed trial with a model",
                                  (long long)id));
    }
    e->work.data = e;
    if (uv_queue_work(api->loop, &e->work, eval_work, after_eval)) {
        cJSON_free(e->task.spec_json);
        free(e);
        REPLY(cv_http_json_error(res, 500, "cannot start the evaluation"));
    }
    e->next = api->evals;
    api->evals = e;
    reply_evaluating(res);
}

/* ---- model files ------------------------------------------------------------------------ */

#define MODEL_MAX_BYTES (64u << 20) /* a model larger than this is not served (the CLI's limit) */

/* One model file read on the thread pool for GET /v1/trials/{id}/model. */
typedef struct {
    uv_work_t work;
    cv_api_t *api;
    cv_http_deferred_t *deferred; /* the answer owed */
    int64_t trial_id;
    char path[1024];              /* the stored model_path */
    char *data;                   /* the file's bytes (owned), NULL until read */
    size_t len;
    int missing;                  /* 1: the file does not exist */
    char err[CV_ERRLEN];          /* why it could not be read */
} model_read_t;

/* Thread pool: reads the whole model file into r->data. */
static void model_read_work(uv_work_t *work) {
    model_read_t *r = work->data;
    struct stat st;
    FILE *f = fopen(r->path, "rb");
    if (!f) {
        r->missing = errno == ENOENT;
        (void)cv_errf(r->err, CV_EIO, "%s: %s", r->path, strerror(errno));
        return;
    }
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > MODEL_MAX_BYTES) {
        (void)cv_errf(r->err, CV_EIO, "%s: not a regular file of at most %u bytes", r->path,
                      MODEL_MAX_BYTES);
    } else if (!(r->data = malloc((size_t)st.st_size + 1))) {
        (void)cv_errf(r->err, CV_EIO, "out of memory reading %s", r->path);
    } else if ((r->len = fread(r->data, 1, (size_t)st.st_size, f)) != (size_t)st.st_size) {
        (void)cv_errf(r->err, CV_EIO, "%s: read failed", r->path);
        free(r->data);
        r->data = NULL;
    }
    fclose(f);
}

/* Loop thread: answers with the bytes, or says why there are none. No answer is owed when
 * cv_http_defer failed (the request was answered with a 500 at once). */
static void after_model_read(uv_work_t *work, int status) {
    model_read_t *r = work->data;
    r->api->model_reads--;
    if (r->deferred) {
        cv_http_response_t res;
        memset(&res, 0, sizeof res);
        if (status == 0 && r->data)
            cv_http_respond_text(&res, 200, "application/octet-stream", r->data, r->len);
        else if (status == 0 && r->missing)
            cv_http_json_error(&res, 404, "the model file of trial %lld is gone from the data "
                               "directory (%s)", (long long)r->trial_id, r->path);
        else
            cv_http_json_error(&res, 500, "cannot read the model of trial %lld: %s",
                               (long long)r->trial_id, status ? "cancelled" : r->err);
        cv_http_deferred_finish(r->deferred, &res);
    }
    free(r->data);
    free(r);
}

/* GET /v1/trials/{id}/model: the model file of a finished trial, read off the loop thread. */
static void get_trial_model(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                            cv_http_response_t *res) {
    (void)req;
    int64_t id = a->id;
    char err[CV_ERRLEN];
    cJSON *t = NULL;
    int rc = cv_store_trial_get(api->ro, id, &t, err);
    if (rc == CV_STORE_NOT_FOUND) REPLY(cv_http_json_error(res, 404, "trial %lld not found",
                                                           (long long)id));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "model_path"));
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "status"));
    if (!path || !*path) {
        int open = status && (!strcmp(status, "queued") || !strcmp(status, "running"));
        cv_http_json_error(res, 404, "trial %lld has no model: %s", (long long)id,
                           open ? "it has not finished yet"
                                : "it did not complete (only completed and pruned trials "
                                  "keep one)");
        cJSON_Delete(t);
        return;
    }
    model_read_t *r = calloc(1, sizeof *r);
    if (!r || strlen(path) >= sizeof r->path) {
        cv_http_json_error(res, 500, "%s", r ? "the model path is too long" : "out of memory");
        free(r);
        cJSON_Delete(t);
        return;
    }
    snprintf(r->path, sizeof r->path, "%s", path);
    cJSON_Delete(t);
    r->api = api, r->trial_id = id, r->work.data = r;
    if (uv_queue_work(api->loop, &r->work, model_read_work, after_model_read)) {
        free(r);
        REPLY(cv_http_json_error(res, 500, "cannot start reading the model of trial %lld",
                                 (long long)id));
    }
    api->model_reads++;
    /* The work only touches the file's fields; the answer is owed from here on. */
    if (!(r->deferred = cv_http_defer(res)))
        cv_http_json_error(res, 500, "out of memory"); /* after_model_read then answers nobody */
}

/* ---- workers ---------------------------------------------------------------------------- */

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

/* Thread pool: the trial counts from the store, then the exposition text of every figure. */
static int read_metrics(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err) {
    read_op_t *w = (read_op_t *)op; /* the op is this read's own until after_read */
    int rc = cv_store_trial_counts(store, w->metrics->trials, err);
    if (rc) return 500;
    w->plain = cv_metrics_render(w->metrics);
    w->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (!w->plain) {
        cv_errf(err, CV_ENOMEM, "out of memory");
        return 500;
    }
    *reply = NULL;
    return 200;
}

static void get_metrics(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res) {
    (void)a, (void)req;
    read_op_t *op = read_new(read_metrics, res);
    if (!op) return;
    op->metrics = calloc(1, sizeof *op->metrics + sizeof api->answered);
    if (!op->metrics) {
        read_free(op);
        REPLY(cv_http_json_error(res, 500, "out of memory"));
    }
    cv_sched_stats(api->sched, &op->metrics->sched);
    cv_metrics_http_table_t *copy = (cv_metrics_http_table_t *)(op->metrics + 1);
    *copy = api->answered;
    op->metrics->http = copy;
    start_read(api, op, res);
}

/* ---- importance ------------------------------------------------------------------------ */

/* Thread pool: the job's completed trials as rows (op->imp) and the 202 reply that goes out
 * unless the loop finds figures for that many trials. 404 for an unknown job, 409 for fewer
 * than 2 completed trials. Jobs with more completed trials than the forest uses
 * (CV_IMPORTANCE_MAX_TRIALS) send that many rows, evenly spaced in trial order, so that the
 * task fits a frame. */
static int read_importance(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err) {
    read_op_t *rw = (read_op_t *)op; /* the read owns its task; nothing else sees it yet */
    cJSON *job = NULL, *trials = NULL, *msg = NULL;
    double *x = NULL, *y = NULL, lo[CV_MSG_IMP_DIMS_MAX], hi[CV_MSG_IMP_DIMS_MAX];
    unsigned char bits[CV_MSG_LEASE_HEX / 2];
    cv_space_t space;
    int status = 500, rc = cv_store_job_get(store, op->id, &job, err);
    if (rc) return read_error(rc, "job", err);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(job, "spec");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(job, "objective");
    const cJSON *space_json = cJSON_GetObjectItemCaseSensitive(spec, "space");
    if (!cJSON_IsObject(space_json) || cJSON_GetArraySize(space_json) == 0) {
        cv_errf(err, CV_EINVAL, "job %lld searches no parameter", (long long)op->id);
        status = 409;
        goto out;
    }
    if (cv_space_from_json_open(&space, space_json, err) ||
        cv_store_trials_list(store, op->id, -1, 0, &trials, err))
        goto out;
    size_t rows = (size_t)cJSON_GetArraySize(trials), p = space.n_params, n;
    cv_importance_task_t *t = rw->imp = calloc(1, sizeof *t);
    if (!t || !(x = malloc((rows ? rows : 1) * p * sizeof *x)) ||
        !(y = malloc((rows ? rows : 1) * sizeof *y))) {
        cv_errf(err, CV_ENOMEM, "out of memory for %zu trials", rows);
        goto out;
    }
    n = cv_importance_rows(&space, trials, cJSON_IsString(obj) ? obj->valuestring : "dev_error", x,
                           y);
    if (n < 2) {
        cv_errf(err, CV_EINVAL, "importance needs at least 2 completed trials; job %lld has %zu",
                (long long)op->id, n);
        status = 409;
        goto out;
    }
    t->job_id = op->id, t->n = n, t->p = p;
    t->rows = n < CV_IMPORTANCE_MAX_TRIALS ? n : CV_IMPORTANCE_MAX_TRIALS;
    if (n > CV_IMPORTANCE_MAX_TRIALS) { /* evenly spaced rows, in place (i >= k) */
        for (size_t k = 0; k < CV_IMPORTANCE_MAX_TRIALS; k++) {
            size_t i = k * n / CV_IMPORTANCE_MAX_TRIALS;
            memmove(x + k * p, x + i * p, p * sizeof *x);
            y[k] = y[i];
        }
    }
    cv_importance_bounds(&space, lo, hi);
    for (size_t d = 0; d < p; d++) {
        snprintf(t->names[d], sizeof t->names[d], "%s", space.params[d].name);
        t->scales[d] = cv_importance_scale_name(&space.params[d]);
    }
    if (getrandom(bits, sizeof bits, 0) != (ssize_t)sizeof bits) {
        cv_errf(err, CV_EIO, "cannot draw a lease: %s", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < sizeof bits; i++)
        snprintf(t->lease + 2 * i, 3, "%02x", bits[i]);
    msg = cv_msg_importance(op->id, t->lease, op->id, x, y, t->rows, p, lo, hi, err);
    if (!msg || cv_msg_encode(msg, &t->frame, &t->frame_len, err)) goto out;
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddStringToObject(o, "status", "computing") &&
        cJSON_AddNumberToObject(o, "trials", (double)n)) {
        *reply = o;
        status = 202;
    } else {
        cJSON_Delete(o);
        cv_errf(err, CV_ENOMEM, "out of memory");
    }
out:
    cJSON_Delete(msg);
    free(y);
    free(x);
    cJSON_Delete(trials);
    cJSON_Delete(job);
    return status;
}

/* Loop: the figures kept for that many trials answer 200; otherwise the rows are queued for a
 * worker (once per count: cv_evals_add_importance) and the 202 stands. */
static void settle_importance(read_op_t *op) {
    cv_importance_task_t *t = op->imp;
    if (op->status != 202 || !t) return;
    cv_evals_t *ev = cv_sched_evals(op->api->sched);
    const char *kept = cv_evals_importance(ev, t->job_id, t->n);
    if (kept) {
        op->answer = kept;
        op->status = 200;
        return;
    }
    int rc = cv_evals_add_importance(ev, t, op->err);
    if (rc < 0) {
        op->answer = NULL;
        cJSON_free(op->text);
        op->text = NULL; /* answered 500: out of memory */
    }
}

static void get_importance(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                           cv_http_response_t *res) {
    (void)req;
    read_op_t *op = read_new(read_importance, res);
    if (!op) return;
    op->id = a->id;
    op->settle = settle_importance;
    start_read(api, op, res);
}

static void get_history(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                        cv_http_response_t *res) {
    if (!api->history) REPLY(cv_http_json_error(res, 500, "the API has no store readers"));
    cv_history_get(api->history, a->id, req->query, res);
}

/* ---- ask/tell (server/api_asktell.c) ----------------------------------------------------- */

/* The tell's answer once its result is committed: the stored trial, read on the thread pool as
 * GET /v1/trials/{id} reads it. Takes d over. */
static void answer_trial(void *userdata, int64_t trial_id, cv_http_deferred_t *d) {
    cv_api_t *api = userdata;
    read_op_t *op = calloc(1, sizeof *op);
    if (!op || !api->readers) {
        free(op);
        cv_http_response_t res = {0};
        cv_http_json_error(&res, 500, op ? "the API has no store readers" : "out of memory");
        cv_http_deferred_finish(d, &res);
        return;
    }
    op->api = api;
    op->work.data = op;
    op->run = read_trial;
    op->id = trial_id;
    op->deferred = d;
    api->reads++;
    *api->waiting_end = op;
    api->waiting_end = &op->next;
    read_next(api);
}

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
    cv_asktell_tell(api->sched, a->id, req, res, answer_trial, api);
}

static const route_t routes[] = {
    {"/v1/health", "GET", 1, get_health, NULL, NULL},
    {"/v1/jobs", "GET or POST", 0, get_jobs, post_job, NULL},
    {"/v1/stats", "GET", 0, get_stats, NULL, NULL},
    {"/v1/workers", "GET", 0, get_workers, NULL, NULL},
    {"/v1/workers/{worker}/release", "POST", 0, NULL, release_worker, NULL},
    {"/v1/trials/{id}", "GET", 0, get_trial, NULL, NULL},
    {"/v1/trials/{id}/model", "GET", 0, get_trial_model, NULL, NULL},
    {"/v1/trials/{id}/nudge", "POST", 0, NULL, nudge_trial, NULL},
    {"/v1/trials/{id}/report", "POST", 0, NULL, post_report, NULL},
    {"/v1/trials/{id}/tell", "POST", 0, NULL, post_tell, NULL},
    {"/v1/jobs/{id}", "GET or DELETE", 0, get_job, NULL, delete_job},
    {"/v1/jobs/{id}/trials", "GET", 0, get_trials, NULL, NULL},
    {"/v1/jobs/{id}/history", "GET", 0, get_history, NULL, NULL},
    {"/v1/jobs/{id}/importance", "GET", 0, get_importance, NULL, NULL},
    {"/v1/jobs/{id}/cancel", "POST", 0, NULL, cancel_job, NULL},
    {"/v1/jobs/{id}/extend", "POST", 0, NULL, extend_job, NULL},
    {"/v1/jobs/{id}/evaluate", "POST", 0, NULL, evaluate_job, NULL},
    {"/v1/jobs/{id}/ask", "POST", 0, NULL, post_ask, NULL},
    {"/metrics", "GET", 0, get_metrics, NULL, NULL},
};

#define N_ROUTES (sizeof routes / sizeof *routes)

/* An answer's tag (cv_http_response_t.tag): 0 for no route, else 1 + route · 4 + method. */
static const char *const tag_methods[] = {"GET", "POST", "DELETE", "other"};

void cv_api_on_answered(void *userdata, int tag, int status) {
    cv_api_t *api = userdata;
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
            if ((a->id = parse_id(p, &rest)) < 0) return 0;
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

void cv_api_on_request(void *userdata, const cv_http_request_t *req, cv_http_response_t *res) {
    cv_api_t *api = userdata;
    const char *m = req->method, *p = req->path;
    route_args_t args;
    const route_t *r = NULL;
    for (size_t i = 0; !r && i < N_ROUTES; i++)
        if (route_match(routes[i].pattern, p, 0, &args)) r = &routes[i];
    if (r) {
        int method = !strcmp(m, "GET") ? 0 : !strcmp(m, "POST") ? 1 : !strcmp(m, "DELETE") ? 2 : 3;
        res->tag = 1 + (int)(r - routes) * 4 + method;
    }
    if ((!r || !r->public) && !token_ok(api, req->authorization))
        REPLY(cv_http_json_error(res, 401, "missing or wrong API token"));
    if (r) {
        route_fn_t fn = !strcmp(m, "GET")      ? r->get
                        : !strcmp(m, "POST")   ? r->post
                        : !strcmp(m, "DELETE") ? r->del
                                               : NULL;
        if (!fn) REPLY(cv_http_json_error(res, 405, "use %s on %s", r->allowed, p));
        REPLY(fn(api, &args, req, res));
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
