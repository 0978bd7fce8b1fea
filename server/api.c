/* HTTP routes of the coordinator; see api.h and schemas/api.md. */
#include "server/api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/trial_spec.h"
#include "server/read_pool.h"
#include "worker/model_file.h"
#include "worker/trial_data.h"

#define MAX_ENSEMBLE 16

/* Answers with a void responder and leaves the handler. */
#define REPLY(call) \
    do {        \
        call;   \
        return; \
    } while (0)

/* One test-set evaluation on the thread pool. */
typedef struct eval {
    uv_work_t work;
    cv_api_t *api;
    int64_t job_id;
    int count;                        /* models */
    char paths[MAX_ENSEMBLE][1024];
    int64_t trial_ids[MAX_ENSEMBLE];
    char *spec_json;                  /* the best trial's spec: its split gives the test set */
    int rc;                           /* outcome of the work */
    double accuracy, cost;
    size_t examples;
    char err[CV_ERRLEN];
    struct eval *next;
} eval_t;

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
    int status;      /* HTTP status of the answer */
    char *text;      /* the answer rendered (cJSON's allocator), NULL when out of memory */
    char err[CV_ERRLEN];
    read_op_t *next; /* the next read waiting for a turn */
};

struct cv_api {
    uv_loop_t *loop;
    cv_sched_t *sched;
    cv_store_t *ro;
    cv_read_pool_t *readers; /* connections of the thread-pool reads */
    char *token;
    const cv_log_t *log;
    eval_t *evals;                    /* in flight */
    unsigned reads;                   /* read_op_t in flight, waiting ones included */
    int active;                       /* of them, on the thread pool: at most max_active */
    int max_active;                   /* one per reader connection */
    read_op_t *waiting;               /* reads waiting for a turn, oldest first */
    read_op_t **waiting_end;          /* where the next waiting read goes */
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
    if (rc == 0) api->max_active = n;
    return rc;
}

void cv_api_destroy(cv_api_t *api) {
    if (!api) return;
    cv_read_pool_destroy(api->readers);
    free(api->token);
    free(api);
}

int cv_api_idle(const cv_api_t *api) {
    return api->evals == NULL && api->reads == 0;
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

/* Value of key in a query string (no percent-decoding: our values are plain words and numbers).
 * Returns 1 and copies it into out when present. */
static int query_get(const char *query, const char *key, char *out, size_t cap) {
    size_t klen = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > klen && !strncmp(p, key, klen) && p[klen] == '=') {
            size_t vlen = len - klen - 1 < cap - 1 ? len - klen - 1 : cap - 1;
            memcpy(out, p + klen + 1, vlen);
            out[vlen] = '\0';
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
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

/* ---- reads on the thread pool ---------------------------------------------------------- */

static void after_read(uv_work_t *work, int status);

/* Thread pool: borrows a store, runs the route's query and renders the answer as text, so that
 * the loop only copies bytes out. */
static void read_work(uv_work_t *work) {
    read_op_t *op = work->data;
    cJSON *reply = NULL;
    cv_store_t *store = cv_read_pool_acquire(op->api->readers);
    op->status = op->run(op, store, &reply, op->err);
    cv_read_pool_release(op->api->readers, store);
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
        free(op);
    }
}

/* Loop: starts the next waiting read, then gives this one's deferred answer. */
static void after_read(uv_work_t *work, int status) {
    read_op_t *op = work->data;
    cv_api_t *api = op->api;
    api->active--;
    api->reads--;
    read_next(api);
    if (op->deferred) {
        cv_http_response_t res = {0};
        if (status)
            cv_http_json_error(&res, 503, "the query was cancelled");
        else if (!op->text)
            cv_http_json_error(&res, 500, "out of memory");
        else
            cv_http_respond_text(&res, op->status, "application/json", op->text, strlen(op->text));
        cv_http_deferred_finish(op->deferred, &res);
    }
    cJSON_free(op->text);
    free(op);
}

/* Runs op (taken over) on the thread pool, now or when its turn comes, and answers res from its
 * result later. */
static void start_read(cv_api_t *api, read_op_t *op, cv_http_response_t *res) {
    op->api = api;
    op->work.data = op;
    if (!api->readers) {
        free(op);
        REPLY(cv_http_json_error(res, 500, "the API has no store readers"));
    }
    if (api->active < api->max_active && !api->waiting) {
        if (uv_queue_work(api->loop, &op->work, read_work, after_read)) {
            free(op);
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
        free(op);
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
    if (query_get(query, "limit", num, sizeof num)) {
        char *end = NULL;
        long long v = strtoll(num, &end, 10);
        if (!num[0] || *end || v < 1 || v > PAGE_MAX) {
            cv_http_json_error(res, 400, "limit: must be an integer in [1, %d], got \"%s\"",
                               PAGE_MAX, num);
            return -1;
        }
        page->limit = v;
    }
    if (query_get(query, "offset", num, sizeof num)) {
        cv_http_json_error(res, 400,
                           "offset: not supported; pass after=<next_cursor> of the "
                           "previous page");
        return -1;
    }
    int a = query_get(query, "after", page->cursor, sizeof page->cursor);
    int c = query_get(query, "cursor", other, sizeof other);
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
        !cJSON_AddNumberToObject(job, "running", (double)op->running)) {
        cJSON_Delete(job);
        cv_errf(err, CV_ENOMEM, "out of memory");
        return 500;
    }
    *reply = job;
    return 200;
}

/* A ranked page's cursor: the 64 bits of the objective value in hex, a dot, the number. The
 * bits make the value exact, so the next page resumes exactly after this row. */
static void rank_cursor(double value, int64_t number, char *out, size_t cap) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    snprintf(out, cap, "%016llx.%lld", (unsigned long long)bits, (long long)number);
}

/* The value of a lowercase hex digit, or -1. */
static int hex_digit(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int rank_cursor_parse(const char *cursor, cv_store_rank_key_t *key) {
    uint64_t bits = 0;
    int i = 0;
    for (; i < 16; i++) {
        int d = hex_digit(cursor[i]);
        if (d < 0) return -1;
        bits = bits << 4 | (uint64_t)d;
    }
    if (cursor[i] != '.' || cursor_int(cursor + i + 1, &key->number)) return -1;
    memcpy(&key->value, &bits, sizeof key->value);
    return isfinite(key->value) ? 0 : -1;
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
        const char *key = objective == CV_STORE_OBJ_DEV_COST ? "dev_cost" : "dev_error";
        const cJSON *v = last ? cJSON_GetObjectItemCaseSensitive(last, key) : NULL;
        if (v) rank_cursor(v->valuedouble, row_int(last, "number"), cursor, sizeof cursor);
        *reply = page_reply("trials", trials, v ? cursor : NULL, err);
        return *reply ? 200 : 500;
    }
    int64_t after = -1;
    if (op->page.has_cursor && cursor_int(op->page.cursor, &after)) return bad_cursor(op, err);
    rc = cv_store_trials_list(store, op->id, after, op->page.limit + 1, &trials, err);
    if (rc) return read_error(rc, "job", err);
    const cJSON *last = page_trim(trials, op->page.limit);
    if (last) snprintf(cursor, sizeof cursor, "%lld", (long long)row_int(last, "number"));
    *reply = page_reply("trials", trials, last ? cursor : NULL, err);
    return *reply ? 200 : 500;
}

static int read_trial(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err) {
    int rc = cv_store_trial_get(store, op->id, reply, err);
    return rc ? read_error(rc, "trial", err) : 200;
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
    *reply = page_reply("workers", workers, id ? cursor : NULL, err);
    return *reply ? 200 : 500;
}

/* ---- GET routes ------------------------------------------------------------------------- */

static void get_jobs(cv_api_t *api, const char *query, cv_http_response_t *res) {
    read_op_t *op = read_new(read_jobs, res);
    if (!op) return;
    if (page_parse(query, &op->page, res)) {
        free(op);
        return;
    }
    start_read(api, op, res);
}

static void get_job(cv_api_t *api, int64_t id, cv_http_response_t *res) {
    read_op_t *op = read_new(read_job, res);
    if (!op) return;
    op->id = id;
    op->running = cv_sched_running(api->sched, id);
    start_read(api, op, res);
}

static void get_trials(cv_api_t *api, int64_t id, const char *query, cv_http_response_t *res) {
    char order[16] = "number";
    query_get(query, "order", order, sizeof order);
    if (strcmp(order, "best") && strcmp(order, "number"))
        REPLY(cv_http_json_error(res, 400, "order: must be \"best\" or \"number\", got \"%s\"",
                                 order));
    read_op_t *op = read_new(read_trials, res);
    if (!op) return;
    op->id = id;
    op->best = !strcmp(order, "best");
    if (page_parse(query, &op->page, res)) {
        free(op);
        return;
    }
    start_read(api, op, res);
}

static void get_trial(cv_api_t *api, int64_t id, cv_http_response_t *res) {
    read_op_t *op = read_new(read_trial, res);
    if (!op) return;
    op->id = id;
    start_read(api, op, res);
}

static void get_workers(cv_api_t *api, const char *query, cv_http_response_t *res) {
    read_op_t *op = read_new(read_workers, res);
    if (!op) return;
    if (page_parse(query, &op->page, res)) {
        free(op);
        return;
    }
    start_read(api, op, res);
}

static void post_job(cv_api_t *api, const cv_http_request_t *req, cv_http_response_t *res) {
    char err[CV_ERRLEN];
    int64_t id = 0;
    int rc = cv_sched_submit(api->sched, req->body, req->body_len, cv_clock_wall(), &id, err);
    if (rc == CV_EIO || rc == CV_ENOMEM) REPLY(cv_http_json_error(res, 500, "%s", err));
    if (rc) REPLY(cv_http_json_error(res, 400, "%s", err));
    cJSON *job = NULL;
    cJSON *out = cJSON_CreateObject();
    if (cv_store_job_get(api->ro, id, &job, err) == 0 && out) {
        cJSON_AddNumberToObject(out, "id", (double)id);
        cJSON_AddItemToObject(out, "job", job);
        REPLY(cv_http_respond_json(res, 201, out));
    }
    cJSON_Delete(job);
    cJSON_Delete(out);
    cv_http_json_error(res, 500, "job %lld was stored but cannot be read back: %s", (long long)id,
                       err);
}

static void cancel_job(cv_api_t *api, int64_t id, cv_http_response_t *res) {
    char err[CV_ERRLEN];
    int64_t n = 0;
    int rc = cv_sched_cancel(api->sched, id, cv_clock_wall(), &n, err);
    if (rc == CV_STORE_NOT_FOUND) REPLY(cv_http_json_error(res, 404, "job not found"));
    if (rc == CV_STORE_STALE)
        REPLY(cv_http_json_error(res, 409, "job %lld is no longer running", (long long)id));
    if (rc) REPLY(cv_http_json_error(res, 500, "%s", err));
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "id", (double)id);
        cJSON_AddStringToObject(o, "status", "cancelled");
        cJSON_AddNumberToObject(o, "trials_cancelled", (double)n);
    }
    cv_http_respond_json(res, 200, o);
}

/* ---- evaluation ------------------------------------------------------------------------- */

static void eval_work(uv_work_t *work) {
    eval_t *e = work->data;
    cv_trial_spec_t spec;
    cv_trial_data_t data;
    cv_ensemble_t ens = {0};
    const char *paths[MAX_ENSEMBLE];
    for (int i = 0; i < e->count; i++) paths[i] = e->paths[i];
    e->rc = cv_trial_spec_parse(&spec, e->spec_json, strlen(e->spec_json), e->err);
    if (e->rc) return;
    if ((e->rc = cv_trial_data_load_raw(&data, &spec, e->err))) return;
    if (data.test.m == 0) {
        e->rc = cv_errf(e->err, CV_EINVAL, "the job's split has no test set");
    } else if ((e->rc = cv_ensemble_load(&ens, paths, e->count, e->err)) == 0) {
        e->rc = cv_ensemble_evaluate(&ens, &data.test, &e->accuracy, &e->cost, e->err);
        e->examples = data.test.m;
    }
    cv_ensemble_finish(&ens);
    cv_trial_data_finish(&data);
}

static void after_eval(uv_work_t *work, int status) {
    eval_t *e = work->data;
    cv_api_t *api = e->api;
    for (eval_t **p = &api->evals; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    cJSON *o = cJSON_CreateObject(), *ids = cJSON_CreateArray();
    char *text = NULL, err[CV_ERRLEN];
    if (o && ids) {
        if (status == 0 && e->rc == 0) {
            cJSON_AddNumberToObject(o, "test_accuracy", e->accuracy);
            cJSON_AddNumberToObject(o, "test_error", 1 - e->accuracy);
            cJSON_AddNumberToObject(o, "test_cost", e->cost);
            cJSON_AddNumberToObject(o, "examples", (double)e->examples);
        } else {
            cJSON_AddStringToObject(o, "error", status ? "evaluation cancelled" : e->err);
        }
        for (int i = 0; i < e->count; i++)
            cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)e->trial_ids[i]));
        cJSON_AddItemToObject(o, "trials", ids);
        ids = NULL;
        text = cJSON_PrintUnformatted(o);
    }
    if (text && cv_sched_store_test_result(api->sched, e->job_id, text, err))
        cv_log(api->log, CV_LOG_ERROR, "job %lld: cannot store the test result: %s",
               (long long)e->job_id, err);
    else if (text)
        cv_log(api->log, CV_LOG_INFO, "job %lld test evaluation: %s", (long long)e->job_id, text);
    cJSON_free(text);
    cJSON_Delete(ids);
    cJSON_Delete(o);
    cJSON_free(e->spec_json);
    free(e);
}

static void evaluate_job(cv_api_t *api, int64_t id, const cv_http_request_t *req,
                         cv_http_response_t *res) {
    char err[CV_ERRLEN];
    int k = 1;
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
        cJSON_AddBoolToObject(test, "cached", 1);
        REPLY(cv_http_respond_json(res, 200, test));
    }
    cJSON_Delete(test);
    if (running)
        REPLY(cv_http_json_error(res, 409, "job %lld is still running; evaluate it when it ends",
                                  (long long)id));
    for (eval_t *e = api->evals; e; e = e->next)
        if (e->job_id == id) {
            cJSON *o = cJSON_CreateObject();
            if (o) cJSON_AddStringToObject(o, "status", "evaluating");
            REPLY(cv_http_respond_json(res, 202, o));
        }
    eval_t *e = calloc(1, sizeof *e);
    if (!e) REPLY(cv_http_json_error(res, 500, "out of memory"));
    e->api = api, e->job_id = id;
    e->count = cv_sched_best_models(api->sched, id, k, e->paths, e->trial_ids, &e->spec_json, err);
    if (e->count <= 0) {
        int failed = e->count < 0;
        free(e);
        if (failed) REPLY(cv_http_json_error(res, 500, "%s", err));
        REPLY(cv_http_json_error(res, 409, "job %lld has no completed trial with a model",
                                  (long long)id));
    }
    e->work.data = e;
    if (uv_queue_work(api->loop, &e->work, eval_work, after_eval)) {
        cJSON_free(e->spec_json);
        free(e);
        REPLY(cv_http_json_error(res, 500, "cannot start the evaluation"));
    }
    e->next = api->evals;
    api->evals = e;
    cJSON *o = cJSON_CreateObject();
    if (o) cJSON_AddStringToObject(o, "status", "evaluating");
    cv_http_respond_json(res, 202, o);
}

/* ---- routing ---------------------------------------------------------------------------- */

void cv_api_on_request(void *userdata, const cv_http_request_t *req, cv_http_response_t *res) {
    cv_api_t *api = userdata;
    const char *m = req->method, *p = req->path, *rest;
    int get = !strcmp(m, "GET"), post = !strcmp(m, "POST");
    if (!strcmp(p, "/v1/health")) {
        if (!get) REPLY(cv_http_json_error(res, 405, "use GET on %s", p));
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "status", "ok");
            cJSON_AddStringToObject(o, "version", CV_VERSION);
        }
        REPLY(cv_http_respond_json(res, 200, o));
    }
    if (!token_ok(api, req->authorization))
        REPLY(cv_http_json_error(res, 401, "missing or wrong API token"));
    if (!strcmp(p, "/v1/jobs")) {
        if (post) REPLY(post_job(api, req, res));
        if (!get) REPLY(cv_http_json_error(res, 405, "use GET or POST on %s", p));
        REPLY(get_jobs(api, req->query, res));
    }
    if (!strcmp(p, "/v1/stats")) {
        if (!get) REPLY(cv_http_json_error(res, 405, "use GET on %s", p));
        cv_sched_stats_t st;
        cv_sched_stats(api->sched, &st);
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddNumberToObject(o, "results_committed", (double)st.results);
            cJSON_AddNumberToObject(o, "commits", (double)st.commits);
            cJSON_AddNumberToObject(o, "commit_latency_p50_ms", 1e3 * st.latency_p50);
            cJSON_AddNumberToObject(o, "commit_latency_p99_ms", 1e3 * st.latency_p99);
            cJSON_AddNumberToObject(o, "commit_latency_max_ms", 1e3 * st.latency_max);
        }
        REPLY(cv_http_respond_json(res, 200, o));
    }
    if (!strcmp(p, "/v1/workers")) {
        if (!get) REPLY(cv_http_json_error(res, 405, "use GET on %s", p));
        REPLY(get_workers(api, req->query, res));
    }
    if (!strncmp(p, "/v1/trials/", 11)) {
        int64_t id = parse_id(p + 11, &rest);
        if (id < 0 || *rest) REPLY(cv_http_json_error(res, 404, "no route %s", p));
        if (!get) REPLY(cv_http_json_error(res, 405, "use GET on %s", p));
        REPLY(get_trial(api, id, res));
    }
    if (!strncmp(p, "/v1/jobs/", 9)) {
        int64_t id = parse_id(p + 9, &rest);
        if (id < 0) REPLY(cv_http_json_error(res, 404, "no route %s", p));
        if (!*rest) {
            if (!get) REPLY(cv_http_json_error(res, 405, "use GET on %s", p));
            REPLY(get_job(api, id, res));
        }
        if (!strcmp(rest, "/trials")) {
            if (!get) REPLY(cv_http_json_error(res, 405, "use GET on %s", p));
            REPLY(get_trials(api, id, req->query, res));
        }
        if (!strcmp(rest, "/cancel")) {
            if (!post) REPLY(cv_http_json_error(res, 405, "use POST on %s", p));
            REPLY(cancel_job(api, id, res));
        }
        if (!strcmp(rest, "/evaluate")) {
            if (!post) REPLY(cv_http_json_error(res, 405, "use POST on %s", p));
            REPLY(evaluate_job(api, id, req, res));
        }
    }
    cv_http_json_error(res, 404, "no route %s %s", m, p);
}
