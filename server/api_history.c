/* GET /v1/jobs/{id}/history: a job's trials as columns for the dashboard; see api_history.h. */
#include "server/api_history.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "server/read_pool.h"
#include "server/store_history.h"

#define HISTORY_WAITING_MAX 64   /* reads waiting for the connection; more get a 503 */
#define HISTORY_RUNNING_MAX 1000 /* running trials listed in one reply */
#define HISTORY_PARAMS_MAX  CV_STORE_HISTORY_PARAMS_MAX /* parameters given a column */

/* One history read: parsed on the loop, run on the thread pool, answered on the loop. */
typedef struct history_read {
    uv_work_t work;
    cv_history_t *h;
    cv_http_deferred_t *deferred; /* the answer owed */
    int64_t job_id;
    int has_cursor;
    cv_store_history_key_t after; /* where the read resumes */
    int64_t limit;                /* finished trials, 1..CV_HISTORY_LIMIT_MAX */
    int status;                   /* HTTP status of the answer */
    char *text;                   /* the answer rendered (cJSON's allocator); NULL: no memory */
    char err[CV_ERRLEN];
    struct history_read *next; /* the next read waiting */
} history_read_t;

struct cv_history {
    uv_loop_t *loop;
    cv_read_pool_t *pool;    /* one read-only connection */
    history_read_t *running; /* the read on the thread pool, or NULL */
    history_read_t *waiting; /* reads waiting, oldest first */
    history_read_t **waiting_end;
    int n_waiting;
};

int cv_history_create(cv_history_t **out, uv_loop_t *loop, const char *db_path, char *err) {
    cv_history_t *h = calloc(1, sizeof *h);
    if (!h) return cv_errf(err, CV_ENOMEM, "out of memory");
    int rc = cv_read_pool_create(&h->pool, db_path, 1, err);
    if (rc) {
        free(h);
        return rc;
    }
    h->loop = loop;
    h->waiting_end = &h->waiting;
    *out = h;
    return 0;
}

void cv_history_destroy(cv_history_t *h) {
    if (!h) return;
    cv_read_pool_destroy(h->pool);
    free(h);
}

int cv_history_idle(const cv_history_t *h) {
    return !h || (!h->running && !h->waiting);
}

int cv_history_cursor_parse(const char *text, double *finished_at, int64_t *id) {
    uint64_t bits = 0;
    for (int i = 0; i < 16; i++) {
        char c = text[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        bits = bits << 4 | (uint64_t)d;
    }
    if (text[16] != '.') return -1;
    const char *p = text + 17;
    int64_t v = 0;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*p - '0');
    }
    if (*p) return -1;
    double t;
    memcpy(&t, &bits, sizeof t);
    if (!isfinite(t)) return -1;
    *finished_at = t;
    *id = v;
    return 0;
}

void cv_history_cursor_format(double finished_at, int64_t id, char *out, size_t cap) {
    uint64_t bits;
    memcpy(&bits, &finished_at, sizeof bits);
    snprintf(out, cap, "%016llx.%lld", (unsigned long long)bits, (long long)id);
}

/* ---- building the columns (thread pool) ------------------------------------------------- */

/* One column of the reply while it is filled: a JSON array's text, "[v0,v1,...", each value the
 * JSON text SQLite gave (store_history.h), so that 100,000 trials cost no JSON node per value. */
typedef struct {
    char *text; /* malloc'd; NULL until the first value */
    size_t len, cap;
} column_t;

#define N_BASE 6 /* id, number, status, value, epochs_run, worker_id */
static const char *const BASE_NAMES[N_BASE] = {"id",    "number",     "status",
                                               "value", "epochs_run", "worker_id"};

/* The reply's columns while they are filled. */
typedef struct {
    column_t base[N_BASE];                 /* in BASE_NAMES order */
    column_t params[HISTORY_PARAMS_MAX];   /* one per name */
    const char *names[HISTORY_PARAMS_MAX]; /* borrowed from the job's spec */
    int n_params;
    cJSON *running; /* array of running-trial objects, owned by the reply */
    double last_at; /* key of the last finished row added */
    int64_t last_id;
    int64_t rows;
} columns_t;

/* Appends the JSON text value to the column, after a comma unless it is the first. Returns 0
 * or -1 when out of memory. */
static int column_add(column_t *c, const char *value) {
    size_t n = strlen(value);
    if (c->len + n + 3 > c->cap) { /* the separator, "]" and the NUL */
        size_t cap = c->cap ? c->cap * 2 : 4096;
        while (cap < c->len + n + 3)
            cap *= 2;
        char *grown = realloc(c->text, cap);
        if (!grown) return -1;
        c->text = grown, c->cap = cap;
    }
    char separator = c->len ? ',' : '[';
    c->text[c->len++] = separator;
    memcpy(c->text + c->len, value, n);
    c->len += n;
    return 0;
}

/* Adds the column, closed, to obj under key as a raw JSON item. Returns 0 or -1. */
static int column_attach(cJSON *obj, const char *key, column_t *c) {
    if (!c->text) return cJSON_AddArrayToObject(obj, key) ? 0 : -1;
    c->text[c->len] = ']';
    c->text[c->len + 1] = '\0';
    return cJSON_AddRawToObject(obj, key, c->text) ? 0 : -1;
}

static void columns_free(columns_t *c) {
    for (int i = 0; i < N_BASE; i++)
        free(c->base[i].text);
    for (int i = 0; i < c->n_params; i++)
        free(c->params[i].text);
}

static int on_finished(void *userdata, const cv_store_history_row_t *row, char *err) {
    columns_t *c = userdata;
    const char *base[N_BASE] = {row->id_json,    row->number_json, row->status_json,
                                row->value_json, row->epochs_json, row->worker_json};
    for (int i = 0; i < N_BASE; i++)
        if (column_add(&c->base[i], base[i])) return cv_errf(err, CV_ENOMEM, "out of memory");
    for (int i = 0; i < c->n_params; i++)
        if (column_add(&c->params[i], row->param_json[i]))
            return cv_errf(err, CV_ENOMEM, "out of memory");
    if (row->finished_at > c->last_at || (row->finished_at == c->last_at && row->id > c->last_id))
        c->last_at = row->finished_at, c->last_id = row->id; /* the cursor: the latest given */
    c->rows++;
    return 0;
}

static int on_running(void *userdata, const cv_store_history_row_t *row, char *err) {
    columns_t *c = userdata;
    cJSON *o = cJSON_CreateObject();
    cJSON *params = cJSON_Parse(row->params);
    if (!o || !cJSON_AddItemToArray(c->running, o)) {
        cJSON_Delete(o);
        o = NULL;
    }
    if (!o || !params || !cJSON_AddNumberToObject(o, "id", (double)row->id) ||
        !cJSON_AddNumberToObject(o, "number", (double)row->number) ||
        !(row->worker_id ? cJSON_AddStringToObject(o, "worker_id", row->worker_id)
                         : cJSON_AddNullToObject(o, "worker_id")) ||
        !(row->epochs_run >= 0 ? cJSON_AddNumberToObject(o, "epochs_run", (double)row->epochs_run)
                               : cJSON_AddNullToObject(o, "epochs_run")) ||
        !cJSON_AddItemToObject(o, "params", params)) {
        cJSON_Delete(params);
        return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    return 0;
}

/* The reply's skeleton: job fields, the parameter names of the job's space (borrowed from
 * space into c->names), the array of running trials. */
static cJSON *skeleton(const history_read_t *r, const char *objective, const char *status,
                       const cJSON *space, columns_t *c) {
    cJSON *o = cJSON_CreateObject(), *names = NULL;
    if (!o || !cJSON_AddNumberToObject(o, "job_id", (double)r->job_id) ||
        !cJSON_AddStringToObject(o, "status", status) ||
        !cJSON_AddStringToObject(o, "objective", objective) ||
        !(names = cJSON_AddArrayToObject(o, "params")) ||
        !(c->running = cJSON_AddArrayToObject(o, "running"))) {
        cJSON_Delete(o);
        return NULL;
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, space) {
        if (c->n_params == HISTORY_PARAMS_MAX) break;
        cJSON *name = cJSON_CreateString(p->string);
        if (!name || !cJSON_AddItemToArray(names, name)) {
            cJSON_Delete(name);
            cJSON_Delete(o);
            return NULL;
        }
        c->names[c->n_params++] = p->string;
    }
    return o;
}

/* Adds {"id": [...], ..., "params": {name: [...]}} under "finished" in o. Returns 0 or -1. */
static int attach_finished(cJSON *o, columns_t *c) {
    cJSON *finished = cJSON_AddObjectToObject(o, "finished"), *params = NULL;
    if (!finished) return -1;
    for (int i = 0; i < N_BASE; i++)
        if (column_attach(finished, BASE_NAMES[i], &c->base[i])) return -1;
    if (!(params = cJSON_AddObjectToObject(finished, "params"))) return -1;
    for (int i = 0; i < c->n_params; i++)
        if (column_attach(params, c->names[i], &c->params[i])) return -1;
    return 0;
}

/* The whole read, on a borrowed store. Returns the HTTP status with *reply, or an error status
 * with err. */
static int history_run(const history_read_t *r, cv_store_t *store, cJSON **reply, char *err) {
    char objective[16], status[16], cursor[48];
    char *spec_text = NULL;
    cJSON *spec = NULL, *o = NULL;
    columns_t c = {.last_at = r->after.finished_at, .last_id = r->after.id};
    int more = 0, http = 500;
    int rc = cv_store_history_job(store, r->job_id, objective, status, &spec_text, err);
    if (rc == CV_STORE_NOT_FOUND) {
        cv_errf(err, CV_EINVAL, "job %lld not found", (long long)r->job_id);
        http = 404;
        goto cleanup;
    }
    if (rc) goto cleanup;
    spec = cJSON_Parse(spec_text);
    const cJSON *space = cJSON_GetObjectItemCaseSensitive(spec, "space");
    if (!(o = skeleton(r, objective, status, space, &c))) {
        cv_errf(err, CV_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = cv_store_history_finished(store, r->job_id, !strcmp(objective, "dev_cost"), c.names,
                                        c.n_params, &r->after, r->limit, on_finished, &c, &more,
                                        err)) ||
        (rc = cv_store_history_running(store, r->job_id, HISTORY_RUNNING_MAX, on_running, &c, err)))
        goto cleanup;
    int has_cursor = c.rows || r->has_cursor;
    if (has_cursor) cv_history_cursor_format(c.last_at, c.last_id, cursor, sizeof cursor);
    if (attach_finished(o, &c) || !cJSON_AddNumberToObject(o, "count", (double)c.rows) ||
        !cJSON_AddBoolToObject(o, "more", more) ||
        !(has_cursor ? cJSON_AddStringToObject(o, "next_cursor", cursor)
                     : cJSON_AddNullToObject(o, "next_cursor"))) {
        cv_errf(err, CV_ENOMEM, "out of memory");
        goto cleanup;
    }
    *reply = o;
    o = NULL;
    http = 200;
cleanup:
    columns_free(&c);
    cJSON_Delete(o);
    cJSON_Delete(spec);
    free(spec_text);
    return http;
}

static void history_work(uv_work_t *work) {
    history_read_t *r = work->data;
    cJSON *reply = NULL;
    cv_store_t *store = cv_read_pool_acquire(r->h->pool);
    r->status = history_run(r, store, &reply, r->err);
    cv_read_pool_release(r->h->pool, store);
    if (!reply && (reply = cJSON_CreateObject()) &&
        !cJSON_AddStringToObject(reply, "error", r->err)) {
        cJSON_Delete(reply);
        reply = NULL;
    }
    r->text = reply ? cJSON_PrintUnformatted(reply) : NULL;
    cJSON_Delete(reply);
}

static void after_history(uv_work_t *work, int status);

/* Starts the oldest waiting read when none runs. A read that cannot be queued is answered 500. */
static void history_next(cv_history_t *h) {
    while (!h->running && h->waiting) {
        history_read_t *r = h->waiting;
        h->waiting = r->next;
        if (!h->waiting) h->waiting_end = &h->waiting;
        h->n_waiting--;
        h->running = r;
        if (uv_queue_work(h->loop, &r->work, history_work, after_history) == 0) return;
        h->running = NULL;
        cv_http_response_t res = {0};
        cv_http_json_error(&res, 500, "cannot queue the query");
        cv_http_deferred_finish(r->deferred, &res);
        free(r);
    }
}

/* Loop: gives the answer, then starts the next read. */
static void after_history(uv_work_t *work, int status) {
    history_read_t *r = work->data;
    cv_history_t *h = r->h;
    cv_http_response_t res = {0};
    if (status)
        cv_http_json_error(&res, 503, "the query was cancelled");
    else if (!r->text)
        cv_http_json_error(&res, 500, "out of memory");
    else
        cv_http_respond_text(&res, r->status, "application/json", r->text, strlen(r->text));
    cv_http_deferred_finish(r->deferred, &res);
    cJSON_free(r->text);
    free(r);
    h->running = NULL;
    history_next(h);
}

void cv_history_get(cv_history_t *h, int64_t job_id, const char *query, cv_http_response_t *res) {
    char value[64];
    history_read_t *r = calloc(1, sizeof *r);
    if (!r) {
        cv_http_json_error(res, 500, "out of memory");
        return;
    }
    r->h = h, r->job_id = job_id, r->work.data = r, r->limit = CV_HISTORY_LIMIT_MAX;
    r->after = (cv_store_history_key_t){.finished_at = -INFINITY, .id = 0};
    if (cv_http_query_get(query, "limit", value, sizeof value)) {
        char *end = NULL;
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || v < 1 || v > CV_HISTORY_LIMIT_MAX) {
            free(r);
            cv_http_json_error(res, 400, "limit: must be an integer in [1, %d], got \"%s\"",
                               CV_HISTORY_LIMIT_MAX, value);
            return;
        }
        r->limit = v;
    }
    if (cv_http_query_get(query, "after", value, sizeof value)) {
        if (cv_history_cursor_parse(value, &r->after.finished_at, &r->after.id)) {
            free(r);
            cv_http_json_error(res, 400, "after: \"%s\" is not a cursor this route gave out",
                               value);
            return;
        }
        r->has_cursor = 1;
    }
    if (h->n_waiting >= HISTORY_WAITING_MAX) {
        free(r);
        cv_http_json_error(res, 503, "too many history reads are waiting; try again shortly");
        return;
    }
    if (!(r->deferred = cv_http_defer(res))) {
        free(r);
        cv_http_json_error(res, 500, "out of memory");
        return;
    }
    *h->waiting_end = r;
    h->waiting_end = &r->next;
    h->n_waiting++;
    history_next(h);
}
