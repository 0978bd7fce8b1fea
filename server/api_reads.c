/* The API's reads on the thread pool: the read_op_t queue (at most one read per reader
 * connection at once, the others waiting in order), pagination and cursors, and the GET routes
 * built on them: jobs, job, trials, trial, workers and /metrics, and the stored trial a tell
 * answers with. See api_internal.h and schemas/api.md. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/api_internal.h"
#include "server/job_spec.h"
#include "server/metrics.h"
#include "server/read_pool.h"

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
void api_start_read(cv_api_t *api, read_op_t *op, cv_http_response_t *res) {
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
read_op_t *api_read_new(read_fn_t run, cv_http_response_t *res) {
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
    int64_t v = api_parse_id(cursor, &rest);
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
int api_read_error(int rc, const char *what, char *err) {
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
    if (rc) return api_read_error(rc, "jobs", err);
    const cJSON *last = page_trim(jobs, op->page.limit);
    if (last) snprintf(cursor, sizeof cursor, "%lld", (long long)row_int(last, "id"));
    api_rounds_to_user(jobs);
    *reply = page_reply("jobs", jobs, last ? cursor : NULL, err);
    return *reply ? 200 : 500;
}

static int read_job(const read_op_t *op, cv_store_t *store, cJSON **reply, char *err) {
    cJSON *job = NULL;
    int rc = cv_store_job_get(store, op->id, &job, err);
    if (rc) return api_read_error(rc, "job", err);
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(job, "spec");
    const cJSON *budget = cJSON_GetObjectItemCaseSensitive(spec, "budget");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(budget, "max_trials");
    if (!cJSON_AddNumberToObject(job, "max_trials", cJSON_IsNumber(max) ? max->valuedouble : 0) ||
        !cJSON_AddNumberToObject(job, "running", (double)op->running) || add_schedule(job)) {
        cJSON_Delete(job);
        cv_errf(err, CV_ENOMEM, "out of memory");
        return 500;
    }
    api_job_rounds_to_user(job);
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
        if (rc) return api_read_error(rc, "job", err);
        const cJSON *last = page_trim(trials, op->page.limit);
        int by_cost = objective == CV_STORE_OBJ_DEV_COST;
        const char *key = by_cost ? "dev_cost" : "dev_error";
        const cJSON *v = last ? cJSON_GetObjectItemCaseSensitive(last, key) : NULL;
        if (cJSON_IsNumber(v))
            rank_cursor(last, key, by_cost ? "dev_error" : "dev_cost", cursor, sizeof cursor);
        api_rounds_to_user(trials);
        *reply = page_reply("trials", trials, cJSON_IsNumber(v) ? cursor : NULL, err);
        return *reply ? 200 : 500;
    }
    int64_t after = -1;
    if (op->page.has_cursor && cursor_int(op->page.cursor, &after)) return bad_cursor(op, err);
    rc = cv_store_trials_list(store, op->id, after, op->page.limit + 1, &trials, err);
    if (rc) return api_read_error(rc, "job", err);
    const cJSON *last = page_trim(trials, op->page.limit);
    if (last) snprintf(cursor, sizeof cursor, "%lld", (long long)row_int(last, "number"));
    api_rounds_to_user(trials);
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
    int rc = cv_store_trial_get(store, op->id, op->curve_from, reply, err);
    if (rc) return api_read_error(rc, "trial", err);
    api_round_to_user(*reply);
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
    if (rc) return api_read_error(rc, "workers", err);
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

void api_get_jobs(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                  cv_http_response_t *res) {
    (void)a;
    const char *query = req->query;
    read_op_t *op = api_read_new(read_jobs, res);
    if (!op) return;
    if (page_parse(query, &op->page, res)) {
        read_free(op);
        return;
    }
    api_start_read(api, op, res);
}

void api_get_job(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                 cv_http_response_t *res) {
    (void)req;
    int64_t id = a->id;
    read_op_t *op = api_read_new(read_job, res);
    if (!op) return;
    op->id = id;
    op->running = cv_sched_running(api->sched, id);
    api_start_read(api, op, res);
}

void api_get_trials(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                    cv_http_response_t *res) {
    int64_t id = a->id;
    const char *query = req->query;
    char order[16] = "number";
    cv_http_query_get(query, "order", order, sizeof order);
    if (strcmp(order, "best") && strcmp(order, "number"))
        REPLY(cv_http_json_error(res, 400, "order: must be \"best\" or \"number\", got \"%s\"",
                                 order));
    read_op_t *op = api_read_new(read_trials, res);
    if (!op) return;
    op->id = id;
    op->best = !strcmp(order, "best");
    if (page_parse(query, &op->page, res)) {
        read_free(op);
        return;
    }
    api_start_read(api, op, res);
}

void api_get_trial(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                   cv_http_response_t *res) {
    char num[32];
    int64_t after = -1;
    if (cv_http_query_get(req->query, "curve_after", num, sizeof num)) {
        const char *rest = NULL;
        after = api_parse_id(num, &rest);
        if (after < 0 || *rest || after > CV_MSG_EPOCH_MAX)
            REPLY(cv_http_json_error(res, 400,
                                     "curve_after: must be an epoch, an integer in [0, %d], "
                                     "got \"%s\"",
                                     CV_MSG_EPOCH_MAX, num));
    }
    read_op_t *op = api_read_new(read_trial, res);
    if (!op) return;
    op->id = a->id;
    op->curve_from = after + 1;
    api_start_read(api, op, res);
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

void api_get_workers(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                     cv_http_response_t *res) {
    (void)a;
    const char *query = req->query;
    read_op_t *op = api_read_new(read_workers, res);
    if (!op) return;
    if (copy_worker_views(api, op)) {
        read_free(op);
        REPLY(cv_http_json_error(res, 500, "out of memory"));
    }
    if (page_parse(query, &op->page, res)) {
        read_free(op);
        return;
    }
    api_start_read(api, op, res);
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

void api_get_metrics(cv_api_t *api, const route_args_t *a, const cv_http_request_t *req,
                     cv_http_response_t *res) {
    (void)a, (void)req;
    read_op_t *op = api_read_new(read_metrics, res);
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
    api_start_read(api, op, res);
}

/* The tell's answer once its result is committed: the stored trial, read on the thread pool as
 * GET /v1/trials/{id} reads it. Takes d over. */
void api_answer_trial(void *userdata, int64_t trial_id, cv_http_deferred_t *d) {
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
