/* The store's JSON queries for the HTTP API: jobs, trials (by number or ranked by the
 * objective), one trial with its curve and attempts, and workers, each row as a JSON object. */

#include "server/store_internal.h"

#include <string.h>

#include <sqlite3.h>

#include "common/err.h"

/* Columns holding JSON text, returned as JSON values rather than strings. */
static int is_json_column(const char *name) {
    return strcmp(name, "spec") == 0 || strcmp(name, "params") == 0 ||
           strcmp(name, "region") == 0 || strcmp(name, "test_result") == 0;
}

/* Adds every column of the statement's current row to obj under its column name. */
static int row_to_json(sqlite3_stmt *q, cJSON *obj, char *err) {
    int n = sqlite3_column_count(q);
    for (int i = 0; i < n; i++) {
        const char *name = sqlite3_column_name(q, i);
        cJSON *v = NULL;
        if (!name) return cv_errf(err, CV_ENOMEM, "store: out of memory");
        switch (sqlite3_column_type(q, i)) {
        case SQLITE_INTEGER:
            v = cJSON_CreateNumber((double)sqlite3_column_int64(q, i));
            break;
        case SQLITE_FLOAT:
            v = cJSON_CreateNumber(sqlite3_column_double(q, i));
            break;
        case SQLITE_TEXT: {
            const char *text = (const char *)sqlite3_column_text(q, i);
            size_t len = (size_t)sqlite3_column_bytes(q, i);
            if (!text) return cv_errf(err, CV_ENOMEM, "store: out of memory");
            if (is_json_column(name)) {
                v = cJSON_ParseWithLength(text, len);
                if (!v)
                    return cv_errf(err, CV_EFORMAT,
                                   "store: column %s holds text that cJSON "
                                   "cannot parse (or memory ran out)",
                                   name);
            } else {
                v = cJSON_CreateString(text);
            }
            break;
        }
        default:
            v = cJSON_CreateNull();
            break;
        }
        if (!v || !cJSON_AddItemToObject(obj, name, v)) {
            cJSON_Delete(v);
            return cv_errf(err, CV_ENOMEM, "store: out of memory");
        }
    }
    return 0;
}

/* Steps q to the end, appending each row to arr as an object. Does not reset q. */
static int rows_to_array(cv_store_t *s, sqlite3_stmt *q, cJSON *arr, const char *what, char *err) {
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            return cv_errf(err, CV_ENOMEM, "store: out of memory");
        }
        int ret = row_to_json(q, o, err);
        if (ret != 0) return ret;
    }
    return rc == SQLITE_DONE ? 0 : store_failf(s, rc, err, "%s", what);
}

/* Runs statement id (already bound) into a new array in *out. */
static int query_array(cv_store_t *s, int id, cJSON **out, const char *what, char *err) {
    cJSON *arr = cJSON_CreateArray();
    int ret = arr ? rows_to_array(s, s->st[id], arr, what, err)
                  : cv_errf(err, CV_ENOMEM, "store: out of memory");
    done(s->st[id]);
    if (ret != 0) {
        cJSON_Delete(arr);
        arr = NULL;
    }
    *out = arr;
    return ret;
}

int cv_store_jobs_list(cv_store_t *store, int64_t after_id, int64_t limit, cJSON **out, char *err) {
    sqlite3_stmt *q = store->st[ST_JOBS_LIST];
    *out = NULL;
    if (sqlite3_bind_int64(q, 1, after_id) || sqlite3_bind_int64(q, 2, limit > 0 ? limit : -1))
        return store_bind_failed(store, ST_JOBS_LIST, err, "list jobs");
    return query_array(store, ST_JOBS_LIST, out, "list jobs", err);
}

/* The k best completed trials by a resolved objective (DEV_ERROR or DEV_COST). */
static int query_top(cv_store_t *s, int64_t job_id, int objective, int64_t k, cJSON **out,
                     char *err) {
    int id = objective == CV_STORE_OBJ_DEV_COST ? ST_TOP_DEV_COST : ST_TOP_DEV_ERROR;
    sqlite3_stmt *q = s->st[id];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int64(q, 2, k)) {
        *out = NULL;
        return store_bind_failed(s, id, err, "top trials");
    }
    return query_array(s, id, out, "top trials", err);
}

#define RUNG_LIST_MAX 100 /* trial numbers listed per rung and outcome in a job reply */

/* Adds "utilization" (worker usage) and "rungs" (the pruner's decisions by epoch: how many
 * trials were judged there, and the first RUNG_LIST_MAX numbers promoted and stopped). */
static int job_search_details(cv_store_t *s, int64_t job_id, cJSON *job, char *err) {
    sqlite3_stmt *q = s->st[ST_JOB_USAGE];
    if (sqlite3_bind_int64(q, 1, job_id))
        return store_bind_failed(s, ST_JOB_USAGE, err, "job usage");
    int rc = sqlite3_step(q);
    double busy = rc == SQLITE_ROW ? sqlite3_column_double(q, 0) : 0;
    double avail = rc == SQLITE_ROW ? sqlite3_column_double(q, 1) : 0;
    done(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return store_failf(s, rc, err, "job usage");
    cJSON *u = cJSON_AddObjectToObject(job, "utilization");
    if (!u || !cJSON_AddNumberToObject(u, "busy_seconds", busy) ||
        !cJSON_AddNumberToObject(u, "available_seconds", avail) ||
        !cJSON_AddItemToObject(u, "fraction", avail > 0 ? cJSON_CreateNumber(busy / avail)
                                                        : cJSON_CreateNull()))
        return cv_errf(err, CV_ENOMEM, "store: out of memory");
    cJSON *rungs = cJSON_AddArrayToObject(job, "rungs");
    if (!rungs) return cv_errf(err, CV_ENOMEM, "store: out of memory");
    q = s->st[ST_DECISIONS_EACH];
    if (sqlite3_bind_int64(q, 1, job_id))
        return store_bind_failed(s, ST_DECISIONS_EACH, err, "job decisions");
    int ret = 0;
    while (ret == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        int epoch = sqlite3_column_int(q, 2), stopped = sqlite3_column_int(q, 4);
        cJSON *rung = NULL, *r;
        cJSON_ArrayForEach(r, rungs)
            if (cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "epoch")) == epoch)
                rung = r;
        if (!rung && (!(rung = cJSON_CreateObject()) || !cJSON_AddItemToArray(rungs, rung) ||
                      !cJSON_AddNumberToObject(rung, "epoch", epoch) ||
                      !cJSON_AddNumberToObject(rung, "results", 0) ||
                      !cJSON_AddNumberToObject(rung, "stopped", 0) ||
                      !cJSON_AddArrayToObject(rung, "promoted_trials") ||
                      !cJSON_AddArrayToObject(rung, "stopped_trials"))) {
            ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
            break;
        }
        cJSON *results = cJSON_GetObjectItemCaseSensitive(rung, "results");
        cJSON *nstop = cJSON_GetObjectItemCaseSensitive(rung, "stopped");
        cJSON_SetNumberValue(results, results->valuedouble + 1);
        if (stopped) cJSON_SetNumberValue(nstop, nstop->valuedouble + 1);
        cJSON *list = cJSON_GetObjectItemCaseSensitive(rung, stopped ? "stopped_trials"
                                                                     : "promoted_trials");
        if (cJSON_GetArraySize(list) < RUNG_LIST_MAX &&
            !cJSON_AddItemToArray(list, cJSON_CreateNumber(sqlite3_column_int(q, 1))))
            ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = store_failf(s, rc, err, "job decisions");
    done(q);
    return ret;
}

/* Adds "counts", "rounds" and "best" to a job object. */
static int job_details(cv_store_t *s, int64_t job_id, int objective, cJSON *job, char *err) {
    cJSON *counts = cJSON_AddObjectToObject(job, "counts");
    if (!counts) return cv_errf(err, CV_ENOMEM, "store: out of memory");
    for (int i = 0; i < CV_STORE_TRIAL_STATUSES; i++) {
        if (!cJSON_AddNumberToObject(counts, store_trial_status_names[i], 0))
            return cv_errf(err, CV_ENOMEM, "store: out of memory");
    }
    sqlite3_stmt *q = s->st[ST_JOB_COUNTS];
    if (sqlite3_bind_int64(q, 1, job_id))
        return store_bind_failed(s, ST_JOB_COUNTS, err, "job counts");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(q, 0);
        cJSON *c = status ? cJSON_GetObjectItemCaseSensitive(counts, status) : NULL;
        if (c) cJSON_SetNumberValue(c, (double)sqlite3_column_int64(q, 1));
    }
    int ret = rc == SQLITE_DONE ? 0 : store_failf(s, rc, err, "job counts");
    done(q);
    if (ret != 0) return ret;

    cJSON *rounds = NULL;
    q = s->st[ST_ROUNDS];
    if (sqlite3_bind_int64(q, 1, job_id)) return store_bind_failed(s, ST_ROUNDS, err, "job rounds");
    ret = query_array(s, ST_ROUNDS, &rounds, "job rounds", err);
    if (ret != 0) return ret;
    if (!cJSON_AddItemToObject(job, "rounds", rounds)) {
        cJSON_Delete(rounds);
        return cv_errf(err, CV_ENOMEM, "store: out of memory");
    }

    cJSON *quarantined = NULL;
    q = s->st[ST_JOB_QUARANTINED];
    if (sqlite3_bind_int64(q, 1, job_id))
        return store_bind_failed(s, ST_JOB_QUARANTINED, err, "job quarantined workers");
    ret = query_array(s, ST_JOB_QUARANTINED, &quarantined, "job quarantined workers", err);
    if (ret != 0) return ret;
    if (!cJSON_AddItemToObject(job, "quarantined_workers", quarantined)) {
        cJSON_Delete(quarantined);
        return cv_errf(err, CV_ENOMEM, "store: out of memory");
    }

    if ((ret = job_search_details(s, job_id, job, err)) != 0) return ret;

    cJSON *top = NULL;
    ret = query_top(s, job_id, objective, 1, &top, err);
    if (ret != 0) return ret;
    cJSON *best = cJSON_DetachItemFromArray(top, 0);
    cJSON_Delete(top);
    if (!best) best = cJSON_CreateNull();
    if (!best || !cJSON_AddItemToObject(job, "best", best)) {
        cJSON_Delete(best);
        return cv_errf(err, CV_ENOMEM, "store: out of memory");
    }
    return 0;
}

int cv_store_job_get(cv_store_t *store, int64_t job_id, cJSON **out, char *err) {
    cJSON *job = NULL;
    int objective = 0;
    *out = NULL;
    sqlite3_stmt *q = store->st[ST_JOB_GET];
    if (sqlite3_bind_int64(q, 1, job_id))
        return store_bind_failed(store, ST_JOB_GET, err, "get job");
    int rc = sqlite3_step(q);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        objective = store_objective_parse((const char *)sqlite3_column_text(q, 2));
        job = cJSON_CreateObject();
        ret = job ? row_to_json(q, job, err) : cv_errf(err, CV_ENOMEM, "store: out of memory");
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = store_failf(store, rc, err, "get job %lld", (long long)job_id);
    }
    done(q);
    if (ret == 0 && objective < 0)
        ret =
            cv_errf(err, CV_EFORMAT, "store: job %lld has an unknown objective", (long long)job_id);
    if (ret == 0) ret = job_details(store, job_id, objective, job, err);
    if (ret != 0) {
        cJSON_Delete(job);
        return ret;
    }
    *out = job;
    return 0;
}

int cv_store_trials_list(cv_store_t *store, int64_t job_id, int64_t after_number, int64_t limit,
                         cJSON **out, char *err) {
    int objective = 0;
    *out = NULL;
    int ret = store_job_head(store, job_id, &objective, NULL, err);
    if (ret != 0) return ret;
    sqlite3_stmt *q = store->st[ST_TRIALS_LIST];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_int64(q, 2, after_number) ||
        sqlite3_bind_int64(q, 3, limit > 0 ? limit : -1))
        return store_bind_failed(store, ST_TRIALS_LIST, err, "list trials");
    return query_array(store, ST_TRIALS_LIST, out, "list trials", err);
}

int cv_store_trials_top(cv_store_t *store, int64_t job_id, cv_store_objective_t objective,
                        int64_t k, cJSON **out, char *err) {
    int job_obj = 0;
    *out = NULL;
    if ((unsigned)objective > CV_STORE_OBJ_DEV_COST)
        return cv_errf(err, CV_EINVAL, "store: top trials: unknown objective %d", (int)objective);
    int ret = store_job_head(store, job_id, &job_obj, NULL, err);
    if (ret != 0) return ret;
    return query_top(store, job_id, objective == CV_STORE_OBJ_JOB ? job_obj : (int)objective,
                     k > 0 ? k : 0, out, err);
}

int cv_store_trials_ranked(cv_store_t *store, int64_t job_id, const cv_store_rank_key_t *after,
                           int64_t limit, cv_store_objective_t *objective, cJSON **out, char *err) {
    int job_obj = 0;
    *out = NULL;
    int ret = store_job_head(store, job_id, &job_obj, NULL, err);
    if (ret != 0) return ret;
    if (objective) *objective = (cv_store_objective_t)job_obj;
    if (!after) return query_top(store, job_id, job_obj, limit > 0 ? limit : -1, out, err);
    int id = job_obj == CV_STORE_OBJ_DEV_COST ? ST_RANKED_DEV_COST : ST_RANKED_DEV_ERROR;
    sqlite3_stmt *q = store->st[id];
    if (sqlite3_bind_int64(q, 1, job_id) || sqlite3_bind_double(q, 2, after->value) ||
        sqlite3_bind_double(q, 3, after->second) || sqlite3_bind_int64(q, 4, after->n_params) ||
        sqlite3_bind_int64(q, 5, after->number) || sqlite3_bind_int64(q, 6, limit > 0 ? limit : -1))
        return store_bind_failed(store, id, err, "ranked trials");
    return query_array(store, id, out, "ranked trials", err);
}

int cv_store_trial_get(cv_store_t *store, int64_t trial_id, int64_t curve_from, cJSON **out,
                       char *err) {
    cJSON *trial = NULL, *curve = NULL;
    *out = NULL;
    sqlite3_stmt *q = store->st[ST_TRIAL_GET];
    if (sqlite3_bind_int64(q, 1, trial_id))
        return store_bind_failed(store, ST_TRIAL_GET, err, "get trial");
    int rc = sqlite3_step(q);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        trial = cJSON_CreateObject();
        ret = trial ? row_to_json(q, trial, err) : cv_errf(err, CV_ENOMEM, "store: out of memory");
    } else if (rc == SQLITE_DONE) {
        ret = CV_STORE_NOT_FOUND;
    } else {
        ret = store_failf(store, rc, err, "get trial %lld", (long long)trial_id);
    }
    done(q);
    if (ret != 0) goto fail;

    q = store->st[ST_CURVE_GET];
    if (sqlite3_bind_int64(q, 1, trial_id) || sqlite3_bind_int64(q, 2, curve_from)) {
        ret = store_bind_failed(store, ST_CURVE_GET, err, "get curve");
        goto fail;
    }
    ret = query_array(store, ST_CURVE_GET, &curve, "get curve", err);
    if (ret != 0) goto fail;
    if (!cJSON_AddItemToObject(trial, "curve", curve)) {
        cJSON_Delete(curve);
        ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
        goto fail;
    }
    cJSON *history = NULL;
    q = store->st[ST_ATTEMPTS_GET];
    if (sqlite3_bind_int64(q, 1, trial_id)) {
        ret = store_bind_failed(store, ST_ATTEMPTS_GET, err, "get attempts");
        goto fail;
    }
    ret = query_array(store, ST_ATTEMPTS_GET, &history, "get attempts", err);
    if (ret != 0) goto fail;
    if (!cJSON_AddItemToObject(trial, "attempts_history", history)) {
        cJSON_Delete(history);
        ret = cv_errf(err, CV_ENOMEM, "store: out of memory");
        goto fail;
    }
    *out = trial;
    return 0;

fail:
    cJSON_Delete(trial);
    return ret;
}

int cv_store_workers_list(cv_store_t *store, const char *after_id, int64_t limit, cJSON **out,
                          char *err) {
    sqlite3_stmt *q = store->st[ST_WORKERS_LIST];
    *out = NULL;
    if (bind_text(q, 1, after_id) || sqlite3_bind_int64(q, 2, limit > 0 ? limit : -1))
        return store_bind_failed(store, ST_WORKERS_LIST, err, "list workers");
    return query_array(store, ST_WORKERS_LIST, out, "list workers", err);
}

int cv_store_trial_counts(cv_store_t *store, int64_t counts[CV_STORE_TRIAL_STATUSES], char *err) {
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(store->db, "SELECT status, COUNT(*) FROM trials GROUP BY status",
                                -1, &q, NULL);
    memset(counts, 0, CV_STORE_TRIAL_STATUSES * sizeof *counts);
    if (rc != SQLITE_OK) return store_failf(store, rc, err, "count trials");
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        cv_store_trial_status_t st;
        if (cv_store_trial_status_parse((const char *)sqlite3_column_text(q, 0), &st) == 0)
            counts[st] = sqlite3_column_int64(q, 1);
    }
    int ret = rc == SQLITE_DONE ? 0 : store_failf(store, rc, err, "count trials");
    sqlite3_finalize(q);
    return ret;
}
