/* Writes a caviar job as an Optuna 3.1 study in a new SQLite file (see optuna_export.h for how
 * each term maps). The tables are Optuna's storage schema at version 12, the one Optuna 3.0 and
 * 3.1 create and read; version_info and alembic_version say so, so Optuna opens the file without
 * offering a migration. */
#include "client/optuna_export.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/err.h"

#define OPTUNA_SCHEMA_VERSION  12
#define OPTUNA_LIBRARY_VERSION "3.1.0"
#define OPTUNA_ALEMBIC_VERSION "v3.0.0.d"

static const char OPTUNA_SCHEMA[] =
    "CREATE TABLE studies (study_id INTEGER NOT NULL, study_name VARCHAR(512) NOT NULL,"
    " PRIMARY KEY (study_id));"
    "CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name);"
    "CREATE TABLE version_info (version_info_id INTEGER NOT NULL, schema_version INTEGER,"
    " library_version VARCHAR(256), PRIMARY KEY (version_info_id), CHECK (version_info_id=1));"
    "CREATE TABLE study_directions (study_direction_id INTEGER NOT NULL,"
    " direction VARCHAR(8) NOT NULL, study_id INTEGER NOT NULL, objective INTEGER NOT NULL,"
    " PRIMARY KEY (study_direction_id), UNIQUE (study_id, objective),"
    " FOREIGN KEY(study_id) REFERENCES studies (study_id));"
    "CREATE TABLE study_user_attributes (study_user_attribute_id INTEGER NOT NULL,"
    " study_id INTEGER, \"key\" VARCHAR(512), value_json TEXT,"
    " PRIMARY KEY (study_user_attribute_id), UNIQUE (study_id, \"key\"),"
    " FOREIGN KEY(study_id) REFERENCES studies (study_id));"
    "CREATE TABLE study_system_attributes (study_system_attribute_id INTEGER NOT NULL,"
    " study_id INTEGER, \"key\" VARCHAR(512), value_json TEXT,"
    " PRIMARY KEY (study_system_attribute_id), UNIQUE (study_id, \"key\"),"
    " FOREIGN KEY(study_id) REFERENCES studies (study_id));"
    "CREATE TABLE trials (trial_id INTEGER NOT NULL, number INTEGER, study_id INTEGER,"
    " state VARCHAR(8) NOT NULL, datetime_start DATETIME, datetime_complete DATETIME,"
    " PRIMARY KEY (trial_id), FOREIGN KEY(study_id) REFERENCES studies (study_id));"
    "CREATE TABLE trial_user_attributes (trial_user_attribute_id INTEGER NOT NULL,"
    " trial_id INTEGER, \"key\" VARCHAR(512), value_json TEXT,"
    " PRIMARY KEY (trial_user_attribute_id), UNIQUE (trial_id, \"key\"),"
    " FOREIGN KEY(trial_id) REFERENCES trials (trial_id));"
    "CREATE TABLE trial_system_attributes (trial_system_attribute_id INTEGER NOT NULL,"
    " trial_id INTEGER, \"key\" VARCHAR(512), value_json TEXT,"
    " PRIMARY KEY (trial_system_attribute_id), UNIQUE (trial_id, \"key\"),"
    " FOREIGN KEY(trial_id) REFERENCES trials (trial_id));"
    "CREATE TABLE trial_params (param_id INTEGER NOT NULL, trial_id INTEGER,"
    " param_name VARCHAR(512), param_value FLOAT, distribution_json TEXT,"
    " PRIMARY KEY (param_id), UNIQUE (trial_id, param_name),"
    " FOREIGN KEY(trial_id) REFERENCES trials (trial_id));"
    "CREATE TABLE trial_values (trial_value_id INTEGER NOT NULL, trial_id INTEGER NOT NULL,"
    " objective INTEGER NOT NULL, value FLOAT, value_type VARCHAR(7) NOT NULL,"
    " PRIMARY KEY (trial_value_id), UNIQUE (trial_id, objective),"
    " FOREIGN KEY(trial_id) REFERENCES trials (trial_id));"
    "CREATE TABLE trial_intermediate_values (trial_intermediate_value_id INTEGER NOT NULL,"
    " trial_id INTEGER NOT NULL, step INTEGER NOT NULL, intermediate_value FLOAT,"
    " intermediate_value_type VARCHAR(7) NOT NULL, PRIMARY KEY (trial_intermediate_value_id),"
    " UNIQUE (trial_id, step), FOREIGN KEY(trial_id) REFERENCES trials (trial_id));"
    "CREATE TABLE trial_heartbeats (trial_heartbeat_id INTEGER NOT NULL,"
    " trial_id INTEGER NOT NULL, heartbeat DATETIME NOT NULL, PRIMARY KEY (trial_heartbeat_id),"
    " UNIQUE (trial_id), FOREIGN KEY(trial_id) REFERENCES trials (trial_id));"
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL,"
    " CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));";

/* One searched parameter as Optuna sees it. */
typedef struct {
    const char *name;     /* borrowed from the job's space */
    const cJSON *choices; /* categorical: the values array, borrowed; NULL when numeric */
    char *distribution;   /* Optuna's distribution_json, owned */
} export_param_t;

/* The prepared statements, in the order of STATEMENTS. */
enum { ST_TRIAL, ST_PARAM, ST_VALUE, ST_STEP, ST_TRIAL_ATTR, ST_SYSTEM_ATTR, ST_STUDY_ATTR, ST_N };

static const char *const STATEMENTS[ST_N] = {
    "INSERT INTO trials (trial_id, number, study_id, state, datetime_start, datetime_complete)"
    " VALUES (?1, ?2, 1, ?3, ?4, ?5)",
    "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json)"
    " VALUES (?1, ?2, ?3, ?4)",
    "INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?1, 0, ?2, ?3)",
    "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value,"
    " intermediate_value_type) VALUES (?1, ?2, ?3, ?4)",
    "INSERT INTO trial_user_attributes (trial_id, \"key\", value_json) VALUES (?1, ?2, ?3)",
    "INSERT INTO trial_system_attributes (trial_id, \"key\", value_json) VALUES (?1, ?2, ?3)",
    "INSERT INTO study_user_attributes (study_id, \"key\", value_json) VALUES (1, ?1, ?2)",
};

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    export_param_t params[64];
    size_t n_params;
    const char *objective; /* "dev_error" or "dev_cost", borrowed */
    char *err;
} export_t;

static const cJSON *field(const cJSON *obj, const char *name) {
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

static int db_error(export_t *x, const char *what) {
    return cv_errf(x->err, CV_EIO, "%s: %s", what, sqlite3_errmsg(x->db));
}

/* Runs a prepared statement to its end and resets it for the next row. */
static int step(export_t *x, int which) {
    sqlite3_stmt *st = x->st[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : db_error(x, "writing the study");
}

/* Optuna's DATETIME text for a UNIX time: local time, microseconds, as Python's
 * datetime.now() that Optuna stores. Writes "" for a missing time. */
static void format_time(const cJSON *t, char *out, size_t cap) {
    out[0] = '\0';
    if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble) || t->valuedouble < 0) return;
    time_t seconds = (time_t)t->valuedouble;
    long micros = (long)((t->valuedouble - (double)seconds) * 1e6);
    struct tm tm;
    if (!localtime_r(&seconds, &tm)) return;
    size_t n = strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
    if (n) snprintf(out + n, cap - n, ".%06ld", micros);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *text) {
    if (text && *text)
        sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Optuna's value type of a double: FINITE, INF_POS, INF_NEG or (intermediate values only) NAN. */
static const char *value_type(double v) {
    if (isnan(v)) return "NAN";
    if (isinf(v)) return v > 0 ? "INF_POS" : "INF_NEG";
    return "FINITE";
}

static int is_number(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble);
}

/* Builds one parameter's distribution_json from its definition in the job's space. */
static int param_distribution(export_t *x, const char *name, const cJSON *def,
                              export_param_t *out) {
    const char *type = cJSON_GetStringValue(field(def, "type"));
    const char *scale = cJSON_GetStringValue(field(def, "scale"));
    cJSON *d = cJSON_CreateObject(), *attrs = NULL;
    int rc = CV_ENOMEM;
    out->name = name;
    out->choices = NULL;
    if (!d || !(attrs = cJSON_AddObjectToObject(d, "attributes"))) goto out;
    if (type && strcmp(type, "categorical") == 0) {
        const cJSON *values = field(def, "values");
        if (!cJSON_IsArray(values) || cJSON_GetArraySize(values) == 0) {
            rc = cv_errf(x->err, CV_EFORMAT, "space.%s.values: expected a non-empty array", name);
            goto out;
        }
        cJSON *copy = cJSON_Duplicate(values, 1);
        if (!copy || !cJSON_AddStringToObject(d, "name", "CategoricalDistribution")) {
            cJSON_Delete(copy);
            goto out;
        }
        cJSON_AddItemToObject(attrs, "choices", copy);
        out->choices = values;
    } else {
        const cJSON *lo = field(def, "min"), *hi = field(def, "max");
        if (!is_number(lo) || !is_number(hi) || !type || !scale) {
            rc = cv_errf(x->err, CV_EFORMAT,
                         "space.%s: expected type, scale, min and max for a numeric parameter",
                         name);
            goto out;
        }
        int is_int = strcmp(type, "int") == 0;
        /* log and powers of two are log-uniform in Optuna; a log integer range must start at 1. */
        int log = (strcmp(scale, "log") == 0 || strcmp(scale, "power_of_two") == 0) &&
                  lo->valuedouble > 0 && (!is_int || lo->valuedouble >= 1);
        if (!cJSON_AddStringToObject(d, "name", is_int ? "IntDistribution" : "FloatDistribution") ||
            !cJSON_AddNumberToObject(attrs, "low", lo->valuedouble) ||
            !cJSON_AddNumberToObject(attrs, "high", hi->valuedouble) ||
            !cJSON_AddBoolToObject(attrs, "log", log) ||
            !(is_int ? cJSON_AddNumberToObject(attrs, "step", 1)
                     : cJSON_AddNullToObject(attrs, "step")))
            goto out;
    }
    out->distribution = cJSON_PrintUnformatted(d);
    rc = out->distribution ? 0 : CV_ENOMEM;
out:
    if (rc == CV_ENOMEM) cv_errf(x->err, rc, "out of memory describing parameter %s", name);
    cJSON_Delete(d);
    return rc;
}

static int load_space(export_t *x, const cJSON *spec) {
    const cJSON *space = field(spec, "space"), *def;
    if (space && !cJSON_IsObject(space))
        return cv_errf(x->err, CV_EFORMAT, "spec.space: expected an object");
    cJSON_ArrayForEach(def, space) {
        if (x->n_params == sizeof x->params / sizeof x->params[0])
            return cv_errf(x->err, CV_ERANGE, "spec.space: more than %zu parameters",
                           sizeof x->params / sizeof x->params[0]);
        int rc = param_distribution(x, def->string, def, &x->params[x->n_params]);
        if (rc < 0) return rc;
        x->n_params++;
    }
    return 0;
}

/* The value Optuna stores for a parameter: the number itself, or a categorical choice's index.
 * Returns 0, or 1 when the value cannot be stored (missing, or not among the choices). */
static int param_value(const export_param_t *p, const cJSON *v, double *out) {
    if (!p->choices) {
        if (!is_number(v)) return 1;
        *out = v->valuedouble;
        return 0;
    }
    int i = 0;
    const cJSON *choice;
    cJSON_ArrayForEach(choice, p->choices) {
        if (v && cJSON_Compare(choice, v, 1)) {
            *out = i;
            return 0;
        }
        i++;
    }
    return 1;
}

/* Optuna's state of a caviar trial status. */
static const char *trial_state(const char *status) {
    if (!status) return "FAIL";
    if (strcmp(status, "completed") == 0) return "COMPLETE";
    if (strcmp(status, "pruned") == 0) return "PRUNED";
    if (strcmp(status, "queued") == 0) return "WAITING";
    if (strcmp(status, "running") == 0) return "RUNNING";
    return "FAIL";
}

/* key → value (a JSON text) into the statement ST_TRIAL_ATTR / ST_SYSTEM_ATTR / ST_STUDY_ATTR.
 * A NULL value is skipped. */
static int put_attr(export_t *x, int which, int64_t trial_id, const char *key, const cJSON *value) {
    if (!value || cJSON_IsNull(value)) return 0;
    char *json = cJSON_PrintUnformatted(value);
    if (!json) return cv_errf(x->err, CV_ENOMEM, "out of memory writing attribute %s", key);
    sqlite3_stmt *st = x->st[which];
    int i = 1;
    if (which != ST_STUDY_ATTR) sqlite3_bind_int64(st, i++, trial_id);
    sqlite3_bind_text(st, i++, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i, json, -1, SQLITE_TRANSIENT);
    free(json);
    return step(x, which);
}

/* The curve's intermediate values; *last is the objective at the last epoch (NAN if none). */
static int put_curve(export_t *x, int64_t tid, const cJSON *curve, double *last) {
    const cJSON *point;
    *last = NAN;
    cJSON_ArrayForEach(point, curve) {
        const cJSON *epoch = field(point, "epoch"), *v = field(point, x->objective);
        if (!cJSON_IsNumber(epoch)) continue;
        double value = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        sqlite3_stmt *st = x->st[ST_STEP];
        sqlite3_bind_int64(st, 1, tid);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)epoch->valuedouble);
        if (isfinite(value))
            sqlite3_bind_double(st, 3, value);
        else
            sqlite3_bind_null(st, 3);
        sqlite3_bind_text(st, 4, value_type(value), -1, SQLITE_STATIC);
        int rc = step(x, ST_STEP);
        if (rc < 0) return rc;
        *last = value;
    }
    return 0;
}

static int put_value(export_t *x, int64_t tid, double value) {
    if (isnan(value)) return 0;
    sqlite3_stmt *st = x->st[ST_VALUE];
    sqlite3_bind_int64(st, 1, tid);
    if (isfinite(value))
        sqlite3_bind_double(st, 2, value);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_text(st, 3, value_type(value), -1, SQLITE_STATIC);
    return step(x, ST_VALUE);
}

static int put_trial(export_t *x, int64_t tid, const cJSON *trial) {
    static const char *const user_attrs[] = {
        "id",         "status",     "round",      "dev_error", "dev_cost", "train_error",
        "train_cost", "best_epoch", "epochs_run", "diagnosis", "attempts", "n_params"};
    const char *status = cJSON_GetStringValue(field(trial, "status"));
    const char *state = trial_state(status);
    const cJSON *number = field(trial, "number"), *params = field(trial, "params");
    char started[64], finished[64];
    if (!cJSON_IsNumber(number))
        return cv_errf(x->err, CV_EFORMAT, "trial row %lld: no \"number\"", (long long)tid);
    format_time(field(trial, "started_at"), started, sizeof started);
    format_time(field(trial, "finished_at"), finished, sizeof finished);
    sqlite3_stmt *st = x->st[ST_TRIAL];
    sqlite3_bind_int64(st, 1, tid);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)number->valuedouble);
    sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
    bind_text_or_null(st, 4, started);
    bind_text_or_null(st, 5, strcmp(state, "RUNNING") && strcmp(state, "WAITING") ? finished : "");
    int rc = step(x, ST_TRIAL);
    for (size_t i = 0; rc == 0 && i < x->n_params; i++) {
        const export_param_t *p = &x->params[i];
        double v;
        if (param_value(p, field(params, p->name), &v)) continue; /* not sampled: not searched */
        st = x->st[ST_PARAM];
        sqlite3_bind_int64(st, 1, tid);
        sqlite3_bind_text(st, 2, p->name, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, v);
        sqlite3_bind_text(st, 4, p->distribution, -1, SQLITE_STATIC);
        rc = step(x, ST_PARAM);
    }
    double last = NAN;
    if (rc == 0) rc = put_curve(x, tid, field(trial, "curve"), &last);
    if (rc == 0 && strcmp(state, "COMPLETE") == 0) {
        const cJSON *v = field(trial, x->objective);
        rc = put_value(x, tid, cJSON_IsNumber(v) ? v->valuedouble : NAN);
    } else if (rc == 0 && strcmp(state, "PRUNED") == 0) {
        rc = put_value(x, tid, last);
    }
    for (size_t i = 0; rc == 0 && i < sizeof user_attrs / sizeof user_attrs[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "caviar_%s", user_attrs[i]);
        rc = put_attr(x, ST_TRIAL_ATTR, tid, key, field(trial, user_attrs[i]));
    }
    if (rc == 0 && strcmp(state, "FAIL") == 0)
        rc = put_attr(x, ST_SYSTEM_ATTR, tid, "fail_reason", field(trial, "error"));
    return rc;
}

static int put_study(export_t *x, const char *name, const cJSON *job) {
    char sql[1024];
    char *quoted = sqlite3_mprintf("%Q", name);
    if (!quoted) return cv_errf(x->err, CV_ENOMEM, "out of memory");
    snprintf(sql, sizeof sql,
             "INSERT INTO studies (study_id, study_name) VALUES (1, %s);"
             "INSERT INTO study_directions (direction, study_id, objective)"
             " VALUES ('MINIMIZE', 1, 0);"
             "INSERT INTO version_info VALUES (1, %d, '%s');"
             "INSERT INTO alembic_version VALUES ('%s');",
             quoted, OPTUNA_SCHEMA_VERSION, OPTUNA_LIBRARY_VERSION, OPTUNA_ALEMBIC_VERSION);
    sqlite3_free(quoted);
    if (sqlite3_exec(x->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(x, "writing the study");
    static const char *const attrs[] = {"id", "name", "objective", "spec", "status", "test_result"};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof attrs / sizeof attrs[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "caviar_%s", attrs[i]);
        rc = put_attr(x, ST_STUDY_ATTR, 0, key, field(job, attrs[i]));
    }
    return rc;
}

/* Creates path, failing if it exists, so that an existing file is never touched. */
static int create_new(const char *path, char *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return cv_errf(err, errno == EEXIST ? CV_EINVAL : CV_EIO, "%s: %s", path,
                       errno == EEXIST ? "the file exists; give a new path (an Optuna study is "
                                         "written to a new file)"
                                       : strerror(errno));
    close(fd);
    return 0;
}

int cv_optuna_export(const char *path, const char *study_name, const cJSON *job,
                     const cJSON *trials, char *err) {
    export_t x = {.err = err};
    const cJSON *spec = field(job, "spec"), *trial;
    const char *name = study_name ? study_name : cJSON_GetStringValue(field(job, "name"));
    x.objective = cJSON_GetStringValue(field(job, "objective"));
    if (!x.objective) x.objective = "dev_error";
    if (!name || !*name) return cv_errf(err, CV_EFORMAT, "the job has no name; give --study NAME");
    if (!cJSON_IsObject(spec)) return cv_errf(err, CV_EFORMAT, "the job has no \"spec\" object");
    int rc = load_space(&x, spec);
    if (rc == 0) rc = create_new(path, err);
    if (rc < 0) goto out_params;
    if (sqlite3_open_v2(path, &x.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = db_error(&x, path);
        goto out_file;
    }
    if (sqlite3_exec(x.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(x.db, OPTUNA_SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_error(&x, "creating Optuna's tables");
        goto out_file;
    }
    for (int i = 0; i < ST_N; i++)
        if (sqlite3_prepare_v2(x.db, STATEMENTS[i], -1, &x.st[i], NULL) != SQLITE_OK) {
            rc = db_error(&x, "preparing the study");
            goto out_file;
        }
    rc = put_study(&x, name, job);
    int64_t tid = 0;
    cJSON_ArrayForEach(trial, trials) {
        if (rc < 0) break;
        rc = put_trial(&x, ++tid, trial);
    }
    if (rc == 0 && sqlite3_exec(x.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_error(&x, "committing the study");
out_file:
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(x.st[i]);
    if (x.db && sqlite3_close(x.db) != SQLITE_OK && rc == 0) rc = db_error(&x, "closing the study");
    if (rc < 0) unlink(path);
out_params:
    for (size_t i = 0; i < x.n_params; i++)
        free(x.params[i].distribution);
    return rc;
}
