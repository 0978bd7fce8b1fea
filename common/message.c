/* Worker protocol messages: the validator that holds each message to the rules of
 * schemas/worker-messages.schema.json, the builders (which run every message they make through
 * that validator) and the frame encoder; see message.h. */
#include "common/message.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/json.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PATH_CAP     96 /* bytes of a field path such as "leases[15].trial_id" */

static const char *const type_names[] = {
    "none",       "hello",      "heartbeat",  "progress", "result",  "dataset_get",
    "welcome",    "trial",      "ack",        "stop",     "dataset", "error",
    "decision",   "evaluate",   "evaluation", "nudge",    "nudged",  "importance",
    "importance_result",
};
_Static_assert(ARRAY_LEN(type_names) == CV_MSG_IMPORTANCE_RESULT + 1, "type names");

static const char *const status_names[] = {"completed", "diverged", "failed", "stopped", "pruned"};
_Static_assert(ARRAY_LEN(status_names) == CV_TRIAL_PRUNED + 1, "status names");

/* result.fault: whose fault a failed trial is (absent: the worker's, as older workers meant). */
static const char *const fault_names[] = {"job", "worker"};

static const char *const diagnosis_names[] = {
    "fine",     "high_bias", "high_variance", "high_bias_and_variance", "learning_rate_too_high",
    "collapsed"};
_Static_assert(ARRAY_LEN(diagnosis_names) == CV_DIAG_COLLAPSED + 1, "diagnosis names");

/* The trial spec's dataset path fields: the keys a trial's files object may use. */
static const char *const file_fields[] = {"images",      "labels", "test_images",
                                          "test_labels", "csv",    "test_csv"};
_Static_assert(ARRAY_LEN(file_fields) == CV_MSG_FILES_MAX, "file fields");

const char *cv_msg_type_name(cv_msg_type_t type) {
    return (unsigned)type < ARRAY_LEN(type_names) ? type_names[type] : "none";
}

const char *cv_trial_status_name(cv_trial_status_t status) {
    return (unsigned)status < ARRAY_LEN(status_names) ? status_names[status] : "unknown";
}

const char *cv_diagnosis_name(cv_diagnosis_kind_t kind) {
    return (unsigned)kind < ARRAY_LEN(diagnosis_names) ? diagnosis_names[kind] : NULL;
}

/* ---- reasons ------------------------------------------------------------------------------ */

/* What the validator needs to word a reason: the message type and the caller's buffer. */
typedef struct {
    const char *type; /* message type for the prefix, "message" before it is known */
    char *err;        /* caller's reason buffer, may be NULL */
} vctx_t;

/* Writes "<type>: <path>: <what>" into the reason buffer and returns code. */
static int fail(const vctx_t *c, int code, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int fail(const vctx_t *c, int code, const char *path, const char *fmt, ...) {
    char what[CV_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cv_errf(c->err, code, "%s: %s: %s", c->type, path, what);
}

/* Reads item as a number: a parsed JSON number, or the raw integer text the builders insert so
 * that integers print exactly (cJSON prints numbers with 15 significant digits, which would turn
 * 9007199254740992 into 9007199254740990). Returns 1 and sets *x, or 0. */
static int number_of(const cJSON *item, double *x) {
    if (cJSON_IsNumber(item)) {
        *x = item->valuedouble;
        return 1;
    }
    if (cJSON_IsRaw(item) && item->valuestring != NULL) {
        char *end = NULL;
        double v = strtod(item->valuestring, &end);
        if (end != item->valuestring && *end == '\0') {
            *x = v;
            return 1;
        }
    }
    return 0;
}

/* Describes a JSON value for a reason: a string quoted (cut at 40 bytes), a number in the fewest
 * digits that read back, else its type name. */
static void describe_value(const cJSON *item, char *out, size_t cap) {
    double x;
    if (cJSON_IsString(item)) {
        size_t n = strlen(item->valuestring);
        snprintf(out, cap, "\"%.40s%s\"", item->valuestring, n > 40 ? "..." : "");
    } else if (number_of(item, &x)) {
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(out, cap, "%.*g", digits, x);
            if (strtod(out, NULL) == x) break;
        }
    } else if (cJSON_IsBool(item)) {
        snprintf(out, cap, "%s", cJSON_IsTrue(item) ? "true" : "false");
    } else {
        snprintf(out, cap, "%s", cv_json_type_name(item));
    }
}

/* ---- typed field access ------------------------------------------------------------------- */

/* Looks up a required member; a missing one is "<path>: required field is missing". */
static int require(const vctx_t *c, const cJSON *obj, const char *name, const char *path,
                   const cJSON **item) {
    *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (*item == NULL) return fail(c, CV_EINVAL, path, "required field is missing");
    return 0;
}

/* Refuses members of obj not in known (and members given twice); obj must be an object. */
static int check_fields(const vctx_t *c, const cJSON *obj, const char *path,
                        const char *const *known, size_t count) {
    char inner[CV_ERRLEN];
    if (!cJSON_IsObject(obj)) {
        char got[64];
        describe_value(obj, got, sizeof got);
        return fail(c, CV_EINVAL, path, "must be an object, got %s", got);
    }
    int rc = cv_json_check_fields(obj, path, known, count, inner);
    return rc ? cv_errf(c->err, rc, "%s: %s", c->type, inner) : 0;
}

/* Reads an integral number in [lo, hi] (hi >= CV_MSG_ID_MAX reads as unbounded above). */
static int get_int(const vctx_t *c, const cJSON *item, const char *path, int64_t lo, int64_t hi,
                   int64_t *out) {
    char got[64], rule[96];
    if (hi >= CV_MSG_ID_MAX) {
        hi = CV_MSG_ID_MAX;
        snprintf(rule, sizeof rule, "an integer >= %lld", (long long)lo);
    } else {
        snprintf(rule, sizeof rule, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    }
    describe_value(item, got, sizeof got);
    double x;
    if (!number_of(item, &x)) return fail(c, CV_EINVAL, path, "must be %s, got %s", rule, got);
    if (!isfinite(x) || x != floor(x))
        return fail(c, CV_EINVAL, path, "must be %s, got %s", rule, got);
    if (x < (double)lo || x > (double)hi)
        return fail(c, CV_ERANGE, path, "must be %s, got %s", rule, got);
    *out = (int64_t)x;
    return 0;
}

static int get_id(const vctx_t *c, const cJSON *item, const char *path, int64_t *out) {
    return get_int(c, item, path, 1, CV_MSG_ID_MAX, out);
}

/* The intervals numbers are checked against. */
typedef enum {
    NUM_FINITE,   /* any finite number */
    NUM_FRACTION, /* [0, 1] */
    NUM_NONNEG,   /* >= 0 */
    NUM_POSITIVE, /* > 0 */
} num_rule_t;

/* Reads a finite number within rule; null is accepted as NAN when nullable. */
static int get_num(const vctx_t *c, const cJSON *item, const char *path, num_rule_t rule,
                   int nullable, double *out) {
    static const char *const words[] = {"a number", "a number in [0, 1]", "a number >= 0",
                                        "a number > 0"};
    char got[64];
    if (nullable && cJSON_IsNull(item)) {
        *out = NAN;
        return 0;
    }
    describe_value(item, got, sizeof got);
    const char *tail = nullable ? " or null" : "";
    double x;
    if (!number_of(item, &x))
        return fail(c, CV_EINVAL, path, "must be %s%s, got %s", words[rule], tail, got);
    int ok = isfinite(x);
    if (ok && rule == NUM_FRACTION) ok = x >= 0 && x <= 1;
    if (ok && rule == NUM_NONNEG) ok = x >= 0;
    if (ok && rule == NUM_POSITIVE) ok = x > 0;
    if (!ok) return fail(c, CV_ERANGE, path, "must be %s%s, got %s", words[rule], tail, got);
    *out = x;
    return 0;
}

/* Characters of UTF-8 text as JSON Schema counts them: every byte that does not continue a
 * multi-byte sequence starts a character. */
static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* Reads a string of at most max_chars characters (and fewer than cap bytes) into out, or only
 * checks it when out is NULL. */
static int get_str(const vctx_t *c, const cJSON *item, const char *path, size_t max_chars,
                   char *out, size_t cap) {
    char got[64];
    if (!cJSON_IsString(item)) {
        describe_value(item, got, sizeof got);
        return fail(c, CV_EINVAL, path, "must be a string, got %s", got);
    }
    size_t bytes = strlen(item->valuestring);
    size_t bad = cv_json_utf8_invalid_at(item->valuestring, bytes);
    if (bad < bytes)
        return fail(c, CV_EINVAL, path, "must be UTF-8 text, and byte %zu is not", bad);
    if (utf8_chars(item->valuestring) > max_chars || (out && bytes >= cap))
        return fail(c, CV_ERANGE, path, "must be at most %zu characters, got %zu", max_chars,
                    utf8_chars(item->valuestring));
    if (out) memcpy(out, item->valuestring, bytes + 1);
    return 0;
}

/* Reads exactly digits lowercase hex digits (a lease or a hash) into out (digits + 1 bytes). */
static int get_hex(const vctx_t *c, const cJSON *item, const char *path, size_t digits, char *out) {
    char got[64];
    describe_value(item, got, sizeof got);
    if (!cJSON_IsString(item))
        return fail(c, CV_EINVAL, path, "must be %zu lowercase hex digits, got %s", digits, got);
    const char *s = item->valuestring;
    size_t n = strlen(s);
    int ok = n == digits;
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    if (!ok)
        return fail(c, CV_EINVAL, path, "must be %zu lowercase hex digits, got %s", digits, got);
    memcpy(out, s, n + 1);
    return 0;
}

static int get_bool(const vctx_t *c, const cJSON *item, const char *path, int *out) {
    char got[64];
    if (!cJSON_IsBool(item)) {
        describe_value(item, got, sizeof got);
        return fail(c, CV_EINVAL, path, "must be a boolean, got %s", got);
    }
    *out = cJSON_IsTrue(item) ? 1 : 0;
    return 0;
}

/* Reads a string equal to one of names[0..count) and stores its index. */
static int get_enum(const vctx_t *c, const cJSON *item, const char *path, const char *const *names,
                    size_t count, int *out) {
    char got[64], list[256];
    if (cJSON_IsString(item)) {
        for (size_t i = 0; i < count; i++) {
            if (strcmp(item->valuestring, names[i]) == 0) {
                *out = (int)i;
                return 0;
            }
        }
    }
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < count && used < sizeof list; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s\"%s\"", i ? ", " : "", names[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
    describe_value(item, got, sizeof got);
    return fail(c, CV_EINVAL, path, "must be one of %s, got %s", list, got);
}

/* Requires protocol to be exactly CV_MSG_PROTOCOL. */
static int get_protocol(const vctx_t *c, const cJSON *msg) {
    const cJSON *item;
    char got[64];
    double x;
    int rc = require(c, msg, "protocol", "protocol", &item);
    if (rc) return rc;
    if (number_of(item, &x) && x == CV_MSG_PROTOCOL) return 0;
    describe_value(item, got, sizeof got);
    return fail(c, CV_EINVAL, "protocol", "must be %d, got %s", CV_MSG_PROTOCOL, got);
}

/* A required member read with one of the getters above, in one line at the call site. */
#define REQ(obj, name, path, read)                                                                 \
    do {                                                                                           \
        const cJSON *item_;                                                                        \
        int rc_ = require(c, (obj), (name), (path), &item_);                                       \
        if (rc_ == 0) rc_ = read;                                                                  \
        if (rc_) return rc_;                                                                       \
    } while (0)
#define ITEM item_

/* ---- one validator per message ------------------------------------------------------------ */

static int worker_id_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > CV_MSG_WORKER_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == ':' || ch == '-';
        if (!ok) return 0;
    }
    return 1;
}

/* Checks that arr is an array of at most max entries (what, e.g. "trial ids", names them in
 * the message). */
static int check_bounded_array(const vctx_t *c, const cJSON *arr, const char *field, int max,
                               const char *what) {
    if (!cJSON_IsArray(arr)) {
        char got[64];
        describe_value(arr, got, sizeof got);
        return fail(c, CV_EINVAL, field, "must be an array, got %s", got);
    }
    int n = cJSON_GetArraySize(arr);
    if (n > max) return fail(c, CV_ERANGE, field, "must hold at most %d %s, got %d", max, what, n);
    return 0;
}

static int validate_leases(const vctx_t *c, const cJSON *arr, cv_msg_hello_t *h) {
    static const char *const known[] = {"trial_id", "lease"};
    char path[PATH_CAP], sub[PATH_CAP + 16];
    int rc = check_bounded_array(c, arr, "leases", CV_MSG_LEASES_MAX, "entries");
    if (rc) return rc;
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, arr) {
        snprintf(path, sizeof path, "leases[%zu]", i);
        rc = check_fields(c, e, path, known, ARRAY_LEN(known));
        if (rc) return rc;
        snprintf(sub, sizeof sub, "%s.trial_id", path);
        REQ(e, "trial_id", sub, get_id(c, ITEM, sub, &h->leases[i].trial_id));
        snprintf(sub, sizeof sub, "%s.lease", path);
        REQ(e, "lease", sub, get_hex(c, ITEM, sub, CV_MSG_LEASE_HEX, h->leases[i].lease));
        i++;
    }
    h->n_leases = i;
    return 0;
}

int cv_msg_trainer_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > CV_MSG_TRAINER_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        if (!ok) return 0;
    }
    return 1;
}

/* hello.trainers: at most CV_MSG_TRAINERS_MAX distinct names [A-Za-z0-9_.-]{1,64}. */
static int validate_trainers(const vctx_t *c, const cJSON *arr, cv_msg_hello_t *h) {
    char path[PATH_CAP], got[64];
    int rc = check_bounded_array(c, arr, "trainers", CV_MSG_TRAINERS_MAX, "names");
    if (rc) return rc;
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, arr) {
        snprintf(path, sizeof path, "trainers[%zu]", i);
        describe_value(e, got, sizeof got);
        if (!cJSON_IsString(e) || !cv_msg_trainer_name_ok(e->valuestring))
            return fail(c, CV_EINVAL, path, "must match [A-Za-z0-9_.-]{1,64}, got %s", got);
        for (size_t k = 0; k < i; k++)
            if (strcmp(h->trainers[k], e->valuestring) == 0)
                return fail(c, CV_EINVAL, path, "repeats trainers[%zu], %s", k, got);
        memcpy(h->trainers[i], e->valuestring, strlen(e->valuestring) + 1);
        i++;
    }
    h->n_trainers = i;
    return 0;
}

static int validate_hello(const vctx_t *c, const cJSON *msg, cv_msg_hello_t *h) {
    static const char *const known[] = {"type",    "protocol", "worker_id", "version", "threads",
                                        "host",    "token",    "leases",    "trainers"};
    int64_t threads = 0;
    int rc = check_fields(c, msg, "", known, ARRAY_LEN(known));
    if (rc == 0) rc = get_protocol(c, msg);
    if (rc) return rc;
    REQ(msg, "worker_id", "worker_id",
        get_str(c, ITEM, "worker_id", CV_MSG_WORKER_ID_MAX, h->worker_id, sizeof h->worker_id));
    if (!worker_id_ok(h->worker_id)) {
        char got[64];
        describe_value(cJSON_GetObjectItemCaseSensitive(msg, "worker_id"), got, sizeof got);
        return fail(c, CV_EINVAL, "worker_id", "must match [A-Za-z0-9._:-]{1,64}, got %s", got);
    }
    REQ(msg, "version", "version",
        get_str(c, ITEM, "version", CV_MSG_VERSION_MAX, h->version, sizeof h->version));
    REQ(msg, "threads", "threads", get_int(c, ITEM, "threads", 1, 1024, &threads));
    h->threads = (int)threads;
    REQ(msg, "host", "host", get_str(c, ITEM, "host", CV_MSG_HOST_MAX, h->host, sizeof h->host));
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(msg, "token");
    if (token) {
        rc = get_str(c, token, "token", CV_MSG_TOKEN_MAX, h->token, sizeof h->token);
        if (rc) return rc;
        h->has_token = 1;
    }
    const cJSON *leases = cJSON_GetObjectItemCaseSensitive(msg, "leases");
    if (leases && (rc = validate_leases(c, leases, h))) return rc;
    const cJSON *trainers = cJSON_GetObjectItemCaseSensitive(msg, "trainers");
    return trainers ? validate_trainers(c, trainers, h) : 0;
}

/* The fields of an epoch object, in the order cv_epoch_t holds them. */
static const char *const epoch_fields[] = {"epoch",         "train_cost",  "train_cost_reg",
                                           "dev_cost",      "train_error", "dev_error",
                                           "learning_rate", "seconds",     "examples_per_second"};

static int validate_epoch(const vctx_t *c, const cJSON *e, cv_epoch_t *m) {
    static const num_rule_t rules[] = {NUM_FINITE,   NUM_FINITE,   NUM_FINITE, NUM_FRACTION,
                                       NUM_FRACTION, NUM_POSITIVE, NUM_NONNEG, NUM_NONNEG};
    double *dst[] = {&m->train_cost, &m->train_cost_reg, &m->dev_cost, &m->train_error,
                     &m->dev_error,  &m->learning_rate,  &m->seconds,  &m->examples_per_second};
    char path[PATH_CAP];
    int rc = check_fields(c, e, "epoch", epoch_fields, ARRAY_LEN(epoch_fields));
    if (rc) return rc;
    REQ(e, "epoch", "epoch.epoch", get_int(c, ITEM, "epoch.epoch", 1, CV_MSG_ID_MAX, &m->epoch));
    for (size_t i = 0; i < ARRAY_LEN(rules); i++) {
        snprintf(path, sizeof path, "epoch.%s", epoch_fields[i + 1]);
        REQ(e, epoch_fields[i + 1], path, get_num(c, ITEM, path, rules[i], 1, dst[i]));
    }
    /* A metric the trainer does not know is null, but the epoch must say how the dev set did. */
    if (!isfinite(m->dev_error) && !isfinite(m->dev_cost))
        return fail(c, CV_EINVAL, "epoch", "dev_error and dev_cost cannot both be null");
    return 0;
}

static int validate_progress(const vctx_t *c, const cJSON *msg, cv_msg_progress_t *p) {
    static const char *const known[] = {"type", "trial_id", "lease", "epoch"};
    int rc = check_fields(c, msg, "", known, ARRAY_LEN(known));
    if (rc) return rc;
    REQ(msg, "trial_id", "trial_id", get_id(c, ITEM, "trial_id", &p->trial_id));
    REQ(msg, "lease", "lease", get_hex(c, ITEM, "lease", CV_MSG_LEASE_HEX, p->lease));
    REQ(msg, "epoch", "epoch", validate_epoch(c, ITEM, &p->metrics));
    return 0;
}

/* diagnosis: null (out->name stays NULL) or the verdict of the best epoch. */
static int validate_diagnosis(const vctx_t *c, const cJSON *d, cv_diagnosis_t *out) {
    static const char *const known[] = {"name",       "avoidable_bias",      "variance",
                                        "remedy",     "human_error_assumed", "human_error_given",
                                        "explanation"};
    int kind = 0;
    const cJSON *item;
    if (cJSON_IsNull(d)) return 0;
    int rc = check_fields(c, d, "result.diagnosis", known, ARRAY_LEN(known));
    if (rc) return rc;
    REQ(d, "name", "result.diagnosis.name",
        get_enum(c, ITEM, "result.diagnosis.name", diagnosis_names, ARRAY_LEN(diagnosis_names),
                 &kind));
    REQ(d, "avoidable_bias", "result.diagnosis.avoidable_bias",
        get_num(c, ITEM, "result.diagnosis.avoidable_bias", NUM_FINITE, 0, &out->avoidable_bias));
    REQ(d, "variance", "result.diagnosis.variance",
        get_num(c, ITEM, "result.diagnosis.variance", NUM_FINITE, 0, &out->variance));
    REQ(d, "remedy", "result.diagnosis.remedy",
        get_str(c, ITEM, "result.diagnosis.remedy", SIZE_MAX, NULL, 0));
    out->remedy = cJSON_GetObjectItemCaseSensitive(d, "remedy")->valuestring;
    /* Optional: what older workers do not send. */
    if ((item = cJSON_GetObjectItemCaseSensitive(d, "human_error_assumed")) != NULL &&
        (rc = get_num(c, item, "result.diagnosis.human_error_assumed", NUM_FRACTION, 0,
                      &out->human_error)))
        return rc;
    if ((item = cJSON_GetObjectItemCaseSensitive(d, "human_error_given")) != NULL &&
        (rc = get_bool(c, item, "result.diagnosis.human_error_given", &out->human_error_given)))
        return rc;
    if ((item = cJSON_GetObjectItemCaseSensitive(d, "explanation")) != NULL) {
        if ((rc = get_str(c, item, "result.diagnosis.explanation", SIZE_MAX, NULL, 0))) return rc;
        snprintf(out->explanation, sizeof out->explanation, "%s", item->valuestring);
    }
    out->kind = (cv_diagnosis_kind_t)kind;
    out->name = diagnosis_names[kind];
    return 0;
}

/* A size member the schema leaves open (m_train, m_dev, m_test): read when it is a whole number
 * >= 0, else 0; never a reason to refuse the message. */
static size_t size_or_zero(const cJSON *obj, const char *name) {
    double x;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!number_of(item, &x) || !(x >= 0 && x <= (double)CV_MSG_ID_MAX) || x != floor(x)) return 0;
    return (size_t)x;
}

/* The result object is open (the schema allows more members than it names), so only the named
 * members are checked. Each is read into out; one left out is NAN (numbers), 0 or "". */
static int validate_result_object(const vctx_t *c, const cJSON *r, cv_trial_result_t *out) {
    const struct {
        const char *name;
        num_rule_t rule;
        double *dst;
    } optional[] = {{"train_error", NUM_FRACTION, &out->best.train_error},
                    {"train_cost", NUM_FINITE, &out->best.train_cost},
                    {"train_cost_reg", NUM_FINITE, &out->best.train_cost_reg},
                    {"examples_per_second", NUM_FINITE, &out->examples_per_second},
                    {"seconds", NUM_FINITE, &out->seconds}};
    char path[PATH_CAP], got[64];
    int status = 0;
    int64_t n;
    if (!cJSON_IsObject(r)) {
        describe_value(r, got, sizeof got);
        return fail(c, CV_EINVAL, "result", "must be an object, got %s", got);
    }
    out->best = (cv_epoch_t){.epoch = 0,
                             .train_cost = NAN,
                             .train_cost_reg = NAN,
                             .dev_cost = NAN,
                             .train_error = NAN,
                             .dev_error = NAN,
                             .learning_rate = NAN,
                             .seconds = NAN,
                             .examples_per_second = NAN};
    out->examples_per_second = out->seconds = out->test_error = out->test_cost = NAN;
    REQ(r, "status", "result.status",
        get_enum(c, ITEM, "result.status", status_names, ARRAY_LEN(status_names), &status));
    out->status = (cv_trial_status_t)status;
    REQ(r, "best_epoch", "result.best_epoch",
        get_int(c, ITEM, "result.best_epoch", 0, CV_MSG_ID_MAX, &n));
    out->best_epoch = n > INT32_MAX ? INT32_MAX : (int)n;
    out->best.epoch = n;
    REQ(r, "epochs_run", "result.epochs_run",
        get_int(c, ITEM, "result.epochs_run", 0, CV_MSG_ID_MAX, &n));
    out->epochs_run = n > INT32_MAX ? INT32_MAX : (int)n;
    REQ(r, "dev_error", "result.dev_error",
        get_num(c, ITEM, "result.dev_error", NUM_FRACTION, 1, &out->best.dev_error));
    REQ(r, "dev_cost", "result.dev_cost",
        get_num(c, ITEM, "result.dev_cost", NUM_FINITE, 1, &out->best.dev_cost));
    for (size_t i = 0; i < ARRAY_LEN(optional); i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(r, optional[i].name);
        snprintf(path, sizeof path, "result.%s", optional[i].name);
        int rc = item ? get_num(c, item, path, optional[i].rule, 1, optional[i].dst) : 0;
        if (rc) return rc;
    }
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(r, "diagnosis");
    int rc = item ? validate_diagnosis(c, item, &out->diagnosis) : 0;
    if (rc == 0 && (item = cJSON_GetObjectItemCaseSensitive(r, "diverged_epoch")) != NULL) {
        rc = get_int(c, item, "result.diverged_epoch", 1, CV_MSG_ID_MAX, &n);
        out->diverged_epoch = rc ? 0 : n > INT32_MAX ? INT32_MAX : (int)n;
    }
    if (rc == 0 && (item = cJSON_GetObjectItemCaseSensitive(r, "n_params")) != NULL) {
        rc = get_int(c, item, "result.n_params", 0, CV_MSG_ID_MAX, &n);
        out->n_params = rc ? 0 : (size_t)n;
    }
    if (rc == 0 && (item = cJSON_GetObjectItemCaseSensitive(r, "error")) != NULL &&
        (rc = get_str(c, item, "result.error", SIZE_MAX, NULL, 0)) == 0)
        snprintf(out->error, sizeof out->error, "%s", item->valuestring);
    int fault = 1;
    if (rc == 0 && (item = cJSON_GetObjectItemCaseSensitive(r, "fault")) != NULL)
        rc = get_enum(c, item, "result.fault", fault_names, ARRAY_LEN(fault_names), &fault);
    out->job_fault = fault == 0;
    if (rc == 0) {
        out->m_train = size_or_zero(r, "m_train");
        out->m_dev = size_or_zero(r, "m_dev");
        out->m_test = size_or_zero(r, "m_test");
        const cJSON *te = cJSON_GetObjectItemCaseSensitive(r, "test_error");
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(r, "test_cost");
        out->tested = cJSON_IsNumber(te) && cJSON_IsNumber(tc);
        if (out->tested) out->test_error = te->valuedouble, out->test_cost = tc->valuedouble;
    }
    return rc;
}

static int validate_result(const vctx_t *c, const cJSON *msg, cv_msg_result_t *r) {
    static const char *const known[] = {"type",   "trial_id",    "lease",
                                        "result", "model_bytes", "model_crc32"};
    int64_t crc = 0;
    int rc = check_fields(c, msg, "", known, ARRAY_LEN(known));
    if (rc) return rc;
    REQ(msg, "trial_id", "trial_id", get_id(c, ITEM, "trial_id", &r->trial_id));
    REQ(msg, "lease", "lease", get_hex(c, ITEM, "lease", CV_MSG_LEASE_HEX, r->lease));
    REQ(msg, "result", "result", validate_result_object(c, ITEM, &r->result));
    r->object = cJSON_GetObjectItemCaseSensitive(msg, "result");
    REQ(msg, "model_bytes", "model_bytes",
        get_int(c, ITEM, "model_bytes", 0, CV_MSG_MODEL_MAX, &r->model_bytes));
    REQ(msg, "model_crc32", "model_crc32", get_int(c, ITEM, "model_crc32", 0, UINT32_MAX, &crc));
    r->model_crc32 = (uint32_t)crc;
    return 0;
}

static int validate_welcome(const vctx_t *c, const cJSON *msg, cv_msg_welcome_t *w) {
    static const char *const known[] = {"type", "protocol", "heartbeat_seconds", "lease_seconds",
                                        "reattached"};
    char path[PATH_CAP];
    int rc = check_fields(c, msg, "", known, ARRAY_LEN(known));
    if (rc == 0) rc = get_protocol(c, msg);
    if (rc) return rc;
    REQ(msg, "heartbeat_seconds", "heartbeat_seconds",
        get_num(c, ITEM, "heartbeat_seconds", NUM_POSITIVE, 0, &w->heartbeat_seconds));
    REQ(msg, "lease_seconds", "lease_seconds",
        get_num(c, ITEM, "lease_seconds", NUM_POSITIVE, 0, &w->lease_seconds));
    const cJSON *arr;
    rc = require(c, msg, "reattached", "reattached", &arr);
    if (rc) return rc;
    if ((rc = check_bounded_array(c, arr, "reattached", CV_MSG_LEASES_MAX, "trial ids"))) return rc;
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, arr) {
        snprintf(path, sizeof path, "reattached[%zu]", i);
        rc = get_id(c, e, path, &w->reattached[i]);
        if (rc) return rc;
        i++;
    }
    w->n_reattached = i;
    return 0;
}

/* files (of a trial or an evaluation): {field: {hash, bytes}} keyed by the spec's dataset path
 * fields, into out[CV_MSG_FILES_MAX] and *n. */
static int validate_files(const vctx_t *c, const cJSON *files, cv_msg_file_t *out, size_t *n) {
    static const char *const known[] = {"hash", "bytes"};
    char path[PATH_CAP], sub[PATH_CAP + 16];
    int rc = check_fields(c, files, "files", file_fields, ARRAY_LEN(file_fields));
    if (rc) return rc;
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, files) {
        cv_msg_file_t *f = &out[i];
        snprintf(path, sizeof path, "files.%s", e->string);
        rc = check_fields(c, e, path, known, ARRAY_LEN(known));
        if (rc) return rc;
        snprintf(f->field, sizeof f->field, "%s", e->string);
        snprintf(sub, sizeof sub, "%s.hash", path);
        REQ(e, "hash", sub, get_hex(c, ITEM, sub, CV_MSG_HASH_HEX, f->hash));
        snprintf(sub, sizeof sub, "%s.bytes", path);
        REQ(e, "bytes", sub, get_int(c, ITEM, sub, 0, CV_MSG_ID_MAX, &f->bytes));
        i++;
    }
    *n = i;
    return 0;
}

/* decide_at: at most CV_MSG_DECIDE_MAX epochs in [1, CV_MSG_EPOCH_MAX], strictly ascending (a
 * rule the JSON Schema cannot state). */
static int validate_decide_at(const vctx_t *c, const cJSON *arr, cv_msg_trial_t *t) {
    char path[PATH_CAP];
    int rc = check_bounded_array(c, arr, "decide_at", CV_MSG_DECIDE_MAX, "epochs");
    if (rc) return rc;
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, arr) {
        int64_t epoch = 0;
        snprintf(path, sizeof path, "decide_at[%zu]", i);
        if ((rc = get_int(c, e, path, 1, CV_MSG_EPOCH_MAX, &epoch))) return rc;
        if (i > 0 && epoch <= t->decide_at[i - 1])
            return fail(c, CV_EINVAL, path, "must be above the epoch before it (%d), got %lld",
                        t->decide_at[i - 1], (long long)epoch);
        t->decide_at[i++] = (int)epoch;
    }
    t->n_decide_at = i;
    return 0;
}

static int get_spec(const vctx_t *c, const cJSON *msg, const cJSON **out);

static int validate_trial(const vctx_t *c, const cJSON *msg, cv_msg_trial_t *t) {
    static const char *const known[] = {"type",  "trial_id",  "job_id",   "lease",
                                        "spec",  "files",     "decide_at", "objective"};
    static const char *const objectives[] = {"dev_error", "dev_cost"};
    int rc = check_fields(c, msg, "", known, ARRAY_LEN(known));
    if (rc) return rc;
    REQ(msg, "trial_id", "trial_id", get_id(c, ITEM, "trial_id", &t->trial_id));
    REQ(msg, "job_id", "job_id", get_id(c, ITEM, "job_id", &t->job_id));
    REQ(msg, "lease", "lease", get_hex(c, ITEM, "lease", CV_MSG_LEASE_HEX, t->lease));
    if ((rc = get_spec(c, msg, &t->spec))) return rc;
    REQ(msg, "files", "files", validate_files(c, ITEM, t->files, &t->n_files));
    const cJSON *objective = cJSON_GetObjectItemCaseSensitive(msg, "objective");
    if (objective) {
        int k = 0;
        if ((rc = get_enum(c, objective, "objective", objectives, ARRAY_LEN(objectives), &k)))
            return rc;
        t->objective = k == 0 ? CV_MSG_OBJECTIVE_DEV_ERROR : CV_MSG_OBJECTIVE_DEV_COST;
    }
    const cJSON *decide_at = cJSON_GetObjectItemCaseSensitive(msg, "decide_at");
    return decide_at ? validate_decide_at(c, decide_at, t) : 0;
}

/* A spec member that must be an object (its own rules are the trial spec parser's). */
static int get_spec(const vctx_t *c, const cJSON *msg, const cJSON **out) {
    char got[64];
    const cJSON *spec;
    int rc = require(c, msg, "spec", "spec", &spec);
    if (rc) return rc;
    if (!cJSON_IsObject(spec)) {
        describe_value(spec, got, sizeof got);
        return fail(c, CV_EINVAL, "spec", "must be an object, got %s", got);
    }
    *out = spec;
    return 0;
}

static int validate_models(const vctx_t *c, const cJSON *arr, cv_msg_evaluate_t *v) {
    static const char *const known[] = {"trial_id", "hash", "bytes"};
    char path[PATH_CAP], sub[PATH_CAP + 16], got[64];
    if (!cJSON_IsArray(arr)) {
        describe_value(arr, got, sizeof got);
        return fail(c, CV_EINVAL, "models", "must be an array, got %s", got);
    }
    int n = cJSON_GetArraySize(arr);
    if (n < 1 || n > CV_MSG_MODELS_MAX)
        return fail(c, CV_ERANGE, "models", "must hold 1 to %d models, got %d",
                    CV_MSG_MODELS_MAX, n);
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, arr) {
        cv_msg_model_t *m = &v->models[i];
        snprintf(path, sizeof path, "models[%zu]", i);
        int rc = check_fields(c, e, path, known, ARRAY_LEN(known));
        if (rc) return rc;
        snprintf(sub, sizeof sub, "%s.trial_id", path);
        REQ(e, "trial_id", sub, get_id(c, ITEM, sub, &m->trial_id));
        snprintf(sub, sizeof sub, "%s.hash", path);
        REQ(e, "hash", sub, get_hex(c, ITEM, sub, CV_MSG_HASH_HEX, m->hash));
        snprintf(sub, sizeof sub, "%s.bytes", path);
        REQ(e, "bytes", sub, get_int(c, ITEM, sub, 0, CV_MSG_MODEL_MAX, &m->bytes));
        i++;
    }
    v->n_models = i;
    return 0;
}

static int validate_evaluate(const vctx_t *c, const cJSON *msg, cv_msg_evaluate_t *v) {
    static const char *const known[] = {"type", "job_id", "lease", "spec", "files", "models"};
    int rc = check_fields(c, msg, "", known, ARRAY_LEN(known));
    if (rc) return rc;
    REQ(msg, "job_id", "job_id", get_id(c, ITEM, "job_id", &v->job_id));
    REQ(msg, "lease", "lease", get_hex(c, ITEM, "lease", CV_MSG_LEASE_HEX, v->lease));
    if ((rc = get_spec(c, msg, &v->spec))) return rc;
    REQ(msg, "files", "files", validate_files(c, ITEM, v->files, &v->n_files));
    REQ(msg, "models", "models", validate_models(c, ITEM, v));
    return 0;
}

/* evaluation: a score (test_accuracy, test_cost, examples) or a failure (error, fault), never
 * both. */
static int validate_evaluation(const vctx_t *c, const cJSON *msg, cv_msg_evaluation_t *v) {
    static const char *const scored[] = {"type",          "job_id",    "lease",
                                         "test_accuracy", "test_cost", "examples"};
    static const char *const failed[] = {"type", "job_id", "lease", "error", "fault"};
    int is_error = cJSON_GetObjectItemCaseSensitive(msg, "error") != NULL;
    int rc = is_error ? check_fields(c, msg, "", failed, ARRAY_LEN(failed))
                      : check_fields(c, msg, "", scored, ARRAY_LEN(scored));
    if (rc) return rc;
    REQ(msg, "job_id", "job_id", get_id(c, ITEM, "job_id", &v->job_id));
    REQ(msg, "lease", "lease", get_hex(c, ITEM, "lease", CV_MSG_LEASE_HEX, v->lease));
    if (is_error) {
        int fault = 0;
        REQ(msg, "error", "error", get_str(c, ITEM, "error", CV_MSG_REASON_MAX, NULL, 0));
        REQ(msg, "fault", "fault", get_enum(c, ITEM, "fault", fault_names, 2, &fault));
        v->error = cJSON_GetObjectItemCaseSensitive(msg, "error")->valuestring;
        v->job_fault = fault == 0;
        return 0;
    }
    REQ(msg, "test_accuracy", "test_accuracy",
        get_num(c, ITEM, "test_accuracy", NUM_FRACTION, 0, &v->test_accuracy));
    REQ(msg, "test_cost", "test_cost", get_num(c, ITEM, "test_cost", NUM_NONNEG, 0, &v->test_cost));
    REQ(msg, "examples", "examples", get_int(c, ITEM, "examples", 1, CV_MSG_ID_MAX, &v->examples));
    return 0;
}

/* An array of count finite numbers at path (count 0: any length from 1 to max, stored in
 * *count_out). Each is checked; values go to out when it is not NULL. */
static int get_numbers(const vctx_t *c, const cJSON *arr, const char *path, size_t count,
                       size_t max, size_t *count_out, double *out) {
    char got[64], sub[PATH_CAP + 16];
    if (!cJSON_IsArray(arr)) {
        describe_value(arr, got, sizeof got);
        return fail(c, CV_EINVAL, path, "must be an array, got %s", got);
    }
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (count ? n != count : (n < 1 || n > max)) {
        if (count) return fail(c, CV_ERANGE, path, "must hold %zu numbers, got %zu", count, n);
        return fail(c, CV_ERANGE, path, "must hold 1 to %zu numbers, got %zu", max, n);
    }
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        double v = 0;
        if (cJSON_IsNumber(e) && isfinite(e->valuedouble)) { /* the common case, kept cheap */
            v = e->valuedouble;
        } else {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            int rc = get_num(c, e, sub, NUM_FINITE, 0, &v);
            if (rc) return rc;
        }
        if (out) out[i] = v;
        i++;
    }
    if (count_out) *count_out = n;
    return 0;
}

/* importance: rows x of p coordinates with objectives y, bounds lo <= hi. */
static int validate_importance(const vctx_t *c, const cJSON *msg, cv_msg_importance_t *v) {
    static const char *const known[] = {"type", "job_id", "lease", "seed", "lo", "hi", "x", "y"};
    char path[PATH_CAP], got[64];
    double lo[CV_MSG_IMP_DIMS_MAX], hi[CV_MSG_IMP_DIMS_MAX];
    int rc = check_fields(c, msg, "", known, ARRAY_LEN(known));
    if (rc) return rc;
    REQ(msg, "job_id", "job_id", get_id(c, ITEM, "job_id", &v->job_id));
    REQ(msg, "lease", "lease", get_hex(c, ITEM, "lease", CV_MSG_LEASE_HEX, v->lease));
    REQ(msg, "seed", "seed", get_int(c, ITEM, "seed", 0, CV_MSG_ID_MAX, &v->seed));
    REQ(msg, "lo", "lo", get_numbers(c, ITEM, "lo", 0, CV_MSG_IMP_DIMS_MAX, &v->p, lo));
    REQ(msg, "hi", "hi", get_numbers(c, ITEM, "hi", v->p, 0, NULL, hi));
    for (size_t d = 0; d < v->p; d++)
        if (lo[d] > hi[d]) {
            snprintf(path, sizeof path, "hi[%zu]", d);
            return fail(c, CV_ERANGE, path, "must be at least lo[%zu] (%g), got %g", d, lo[d],
                        hi[d]);
        }
    v->lo = cJSON_GetObjectItemCaseSensitive(msg, "lo");
    v->hi = cJSON_GetObjectItemCaseSensitive(msg, "hi");
    REQ(msg, "y", "y", get_numbers(c, ITEM, "y", 0, CV_MSG_IMP_ROWS_MAX, &v->n, NULL));
    if (v->n < 2)
        return fail(c, CV_ERANGE, "y", "must hold 2 to %d numbers, got %zu", CV_MSG_IMP_ROWS_MAX,
                    v->n);
    v->y = cJSON_GetObjectItemCaseSensitive(msg, "y");
    REQ(msg, "x", "x", 0);
    v->x = cJSON_GetObjectItemCaseSensitive(msg, "x");
    if (!cJSON_IsArray(v->x)) {
        describe_value(v->x, got, sizeof got);
        return fail(c, CV_EINVAL, "x", "must be an array, got %s", got);
    }
    if ((size_t)cJSON_GetArraySize(v->x) != v->n)
        return fail(c, CV_ERANGE, "x", "must hold one row per objective (%zu), got %d", v->n,
                    cJSON_GetArraySize(v->x));
    size_t i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, v->x) {
        snprintf(path, sizeof path, "x[%zu]", i++);
        if ((rc = get_numbers(c, row, path, v->p, 0, NULL, NULL))) return rc;
    }
    return 0;
}

/* importance_result: fraction and importance (p each), or error, never both. */
static int validate_importance_result(const vctx_t *c, const cJSON *msg,
                                      cv_msg_importance_result_t *v) {
    static const char *const figures[] = {"type", "job_id", "lease", "fraction", "importance"};
    static const char *const failed[] = {"type", "job_id", "lease", "error"};
    int is_error = cJSON_GetObjectItemCaseSensitive(msg, "error") != NULL;
    int rc = is_error ? check_fields(c, msg, "", failed, ARRAY_LEN(failed))
                      : check_fields(c, msg, "", figures, ARRAY_LEN(figures));
    if (rc) return rc;
    REQ(msg, "job_id", "job_id", get_id(c, ITEM, "job_id", &v->job_id));
    REQ(msg, "lease", "lease", get_hex(c, ITEM, "lease", CV_MSG_LEASE_HEX, v->lease));
    if (is_error) {
        REQ(msg, "error", "error", get_str(c, ITEM, "error", CV_MSG_REASON_MAX, NULL, 0));
        v->error = cJSON_GetObjectItemCaseSensitive(msg, "error")->valuestring;
        return 0;
    }
    REQ(msg, "fraction", "fraction",
        get_numbers(c, ITEM, "fraction", 0, CV_MSG_IMP_DIMS_MAX, &v->p, v->fraction));
    REQ(msg, "importance", "importance",
        get_numbers(c, ITEM, "importance", v->p, 0, NULL, v->importance));
    char path[PATH_CAP];
    for (size_t d = 0; d < v->p; d++) {
        const char *bad = !(v->fraction[d] >= 0 && v->fraction[d] <= 1)       ? "fraction"
                          : !(v->importance[d] >= 0 && v->importance[d] <= 1) ? "importance"
                                                                              : NULL;
        if (bad) {
            snprintf(path, sizeof path, "%s[%zu]", bad, d);
            return fail(c, CV_ERANGE, path, "must be a number in [0, 1], got %g",
                        bad[0] == 'f' ? v->fraction[d] : v->importance[d]);
        }
    }
    return 0;
}

/* The messages whose only fields besides type are a few scalars. */
static int validate_nudge(const vctx_t *c, const cJSON *msg, cv_msg_nudge_t *n) {
    static const char *const known[] = {"type", "trial_id", "seq", "values", "at_epoch"};
    char got[64];
    int64_t v = 0;
    int rc = check_fields(c, msg, "", known, ARRAY_LEN(known));
    if (rc) return rc;
    REQ(msg, "trial_id", "trial_id", get_id(c, ITEM, "trial_id", &n->trial_id));
    REQ(msg, "seq", "seq", get_id(c, ITEM, "seq", &n->seq));
    if ((rc = require(c, msg, "values", "values", &n->values))) return rc;
    if (!cJSON_IsObject(n->values) || n->values->child == NULL) {
        describe_value(n->values, got, sizeof got);
        return fail(c, CV_EINVAL, "values", "must be a non-empty object, got %s", got);
    }
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(msg, "at_epoch");
    if (at == NULL) return 0;
    if ((rc = get_int(c, at, "at_epoch", 1, CV_MSG_EPOCH_MAX, &v))) return rc;
    n->at_epoch = (int)v;
    return 0;
}

static int validate_nudged(const vctx_t *c, const cJSON *msg, cv_msg_nudged_t *n) {
    static const char *const known[] = {"type", "trial_id", "lease", "seq", "epoch"};
    int64_t v = 0;
    int rc = check_fields(c, msg, "", known, ARRAY_LEN(known));
    if (rc) return rc;
    REQ(msg, "trial_id", "trial_id", get_id(c, ITEM, "trial_id", &n->trial_id));
    REQ(msg, "lease", "lease", get_hex(c, ITEM, "lease", CV_MSG_LEASE_HEX, n->lease));
    REQ(msg, "seq", "seq", get_id(c, ITEM, "seq", &n->seq));
    REQ(msg, "epoch", "epoch", get_int(c, ITEM, "epoch", 1, CV_MSG_EPOCH_MAX, &v));
    n->epoch = (int)v;
    return 0;
}

static int validate_small(const vctx_t *c, const cJSON *msg, cv_msg_t *out) {
    static const char *const only_type[] = {"type"};
    static const char *const with_hash[] = {"type", "hash"};
    static const char *const ack[] = {"type", "trial_id", "stored"};
    static const char *const stop[] = {"type", "trial_id"};
    static const char *const dataset[] = {"type", "hash", "bytes"};
    static const char *const error[] = {"type", "message"};
    static const char *const decision[] = {"type", "trial_id", "epoch", "stop"};
    int64_t epoch = 0;
    int rc = 0;
    switch (out->type) {
    case CV_MSG_HEARTBEAT:
        return check_fields(c, msg, "", only_type, ARRAY_LEN(only_type));
    case CV_MSG_DATASET_GET:
        rc = check_fields(c, msg, "", with_hash, ARRAY_LEN(with_hash));
        if (rc) return rc;
        REQ(msg, "hash", "hash", get_hex(c, ITEM, "hash", CV_MSG_HASH_HEX, out->dataset_get_hash));
        return 0;
    case CV_MSG_ACK:
        rc = check_fields(c, msg, "", ack, ARRAY_LEN(ack));
        if (rc) return rc;
        REQ(msg, "trial_id", "trial_id", get_id(c, ITEM, "trial_id", &out->ack.trial_id));
        REQ(msg, "stored", "stored", get_bool(c, ITEM, "stored", &out->ack.stored));
        return 0;
    case CV_MSG_STOP:
        rc = check_fields(c, msg, "", stop, ARRAY_LEN(stop));
        if (rc) return rc;
        REQ(msg, "trial_id", "trial_id", get_id(c, ITEM, "trial_id", &out->stop.trial_id));
        return 0;
    case CV_MSG_DATASET:
        rc = check_fields(c, msg, "", dataset, ARRAY_LEN(dataset));
        if (rc) return rc;
        REQ(msg, "hash", "hash", get_hex(c, ITEM, "hash", CV_MSG_HASH_HEX, out->dataset.hash));
        REQ(msg, "bytes", "bytes",
            get_int(c, ITEM, "bytes", 0, CV_MSG_ID_MAX, &out->dataset.bytes));
        return 0;
    case CV_MSG_ERROR:
        rc = check_fields(c, msg, "", error, ARRAY_LEN(error));
        if (rc) return rc;
        REQ(msg, "message", "message", get_str(c, ITEM, "message", SIZE_MAX, NULL, 0));
        out->error.message = cJSON_GetObjectItemCaseSensitive(msg, "message")->valuestring;
        return 0;
    case CV_MSG_DECISION:
        rc = check_fields(c, msg, "", decision, ARRAY_LEN(decision));
        if (rc) return rc;
        REQ(msg, "trial_id", "trial_id", get_id(c, ITEM, "trial_id", &out->decision.trial_id));
        REQ(msg, "epoch", "epoch", get_int(c, ITEM, "epoch", 1, CV_MSG_EPOCH_MAX, &epoch));
        out->decision.epoch = (int)epoch;
        REQ(msg, "stop", "stop", get_bool(c, ITEM, "stop", &out->decision.stop));
        return 0;
    default:
        return cv_errf(c->err, CV_EINVAL, "%s: no validator for this type", c->type);
    }
}

int cv_msg_validate(const cJSON *msg, cv_msg_t *out, char *err) {
    vctx_t c = {"message", err};
    char got[64];
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(msg)) {
        describe_value(msg, got, sizeof got);
        return cv_errf(err, CV_EINVAL, "message: must be an object, got %s", got);
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(msg, "type");
    if (type == NULL) return cv_errf(err, CV_EINVAL, "type: required field is missing");
    if (!cJSON_IsString(type)) {
        describe_value(type, got, sizeof got);
        return cv_errf(err, CV_EINVAL, "type: must be a string, got %s", got);
    }
    for (size_t i = 1; i < ARRAY_LEN(type_names); i++)
        if (strcmp(type->valuestring, type_names[i]) == 0) out->type = (cv_msg_type_t)i;
    if (out->type == CV_MSG_NONE) {
        describe_value(type, got, sizeof got);
        return cv_errf(err, CV_EINVAL, "type: unknown message type %s", got);
    }
    c.type = type_names[out->type];

    int rc;
    switch (out->type) {
    case CV_MSG_HELLO:
        rc = validate_hello(&c, msg, &out->hello);
        break;
    case CV_MSG_PROGRESS:
        rc = validate_progress(&c, msg, &out->progress);
        break;
    case CV_MSG_RESULT:
        rc = validate_result(&c, msg, &out->result);
        break;
    case CV_MSG_WELCOME:
        rc = validate_welcome(&c, msg, &out->welcome);
        break;
    case CV_MSG_TRIAL:
        rc = validate_trial(&c, msg, &out->trial);
        break;
    case CV_MSG_EVALUATE:
        rc = validate_evaluate(&c, msg, &out->evaluate);
        break;
    case CV_MSG_EVALUATION:
        rc = validate_evaluation(&c, msg, &out->evaluation);
        break;
    case CV_MSG_NUDGE:
        rc = validate_nudge(&c, msg, &out->nudge);
        break;
    case CV_MSG_NUDGED:
        rc = validate_nudged(&c, msg, &out->nudged);
        break;
    case CV_MSG_IMPORTANCE:
        rc = validate_importance(&c, msg, &out->importance);
        break;
    case CV_MSG_IMPORTANCE_RESULT:
        rc = validate_importance_result(&c, msg, &out->importance_result);
        break;
    default:
        rc = validate_small(&c, msg, out);
        break;
    }
    if (rc) memset(out, 0, sizeof *out);
    return rc;
}

int cv_msg_parse(const char *payload, size_t len, cv_msg_t *out, char *err) {
    cJSON *root = NULL;
    memset(out, 0, sizeof *out);
    int rc = cv_json_decode(payload, len, &root, err);
    if (rc) return rc;
    rc = cv_msg_validate(root, out, err);
    if (rc) {
        cJSON_Delete(root);
        return rc;
    }
    out->root = root;
    return 0;
}

void cv_msg_finish(cv_msg_t *msg) {
    if (msg == NULL) return;
    cJSON_Delete(msg->root);
    memset(msg, 0, sizeof *msg);
}

cJSON *cv_msg_take_object(cv_msg_t *msg) {
    const char *name;
    const cJSON **slot;
    if (msg == NULL || msg->root == NULL) return NULL;
    switch (msg->type) {
    case CV_MSG_RESULT:
        name = "result", slot = &msg->result.object;
        break;
    case CV_MSG_TRIAL:
        name = "spec", slot = &msg->trial.spec;
        break;
    case CV_MSG_EVALUATE:
        name = "spec", slot = &msg->evaluate.spec;
        break;
    default:
        return NULL;
    }
    if (*slot == NULL) return NULL;
    *slot = NULL;
    return cJSON_DetachItemFromObjectCaseSensitive(msg->root, name);
}

/* ---- builders ----------------------------------------------------------------------------- */

/* Adds a member; returns 0, or -1 when out of memory (the value is freed). */
static int add(cJSON *obj, const char *name, cJSON *value) {
    if (value == NULL) return -1;
    if (!cJSON_AddItemToObject(obj, name, value)) {
        cJSON_Delete(value);
        return -1;
    }
    return 0;
}

/* Adds a string member, or nothing when s is NULL (the validator then names it as missing). */
static int add_str(cJSON *obj, const char *name, const char *s) {
    return s ? add(obj, name, cJSON_CreateString(s)) : 0;
}

static int add_num(cJSON *obj, const char *name, double x) {
    return add(obj, name, cJSON_CreateNumber(x));
}

/* A new item holding integer v as raw JSON text, so that it prints exactly (see number_of). */
static cJSON *create_int(int64_t v) {
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)v);
    return cJSON_CreateRaw(text);
}

static int add_int(cJSON *obj, const char *name, int64_t v) {
    return add(obj, name, create_int(v));
}

/* A new object holding "type": type, or NULL when out of memory. */
static cJSON *start(cv_msg_type_t type) {
    cJSON *o = cJSON_CreateObject();
    if (o && add_str(o, "type", type_names[type])) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Ends a builder: o (may be NULL) is returned when it was built whole (failed == 0) and passes
 * the validator; otherwise it is freed and err says why. */
static cJSON *finish_build(cJSON *o, int failed, cv_msg_type_t type, char *err) {
    cv_msg_t check;
    if (o == NULL || failed) {
        cJSON_Delete(o);
        cv_errf(err, CV_ENOMEM, "%s: out of memory building the message", type_names[type]);
        return NULL;
    }
    if (cv_msg_validate(o, &check, err)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Adds a number, or null when it is not finite (JSON has no NaN). Returns 0 or -1. */
static int add_num_or_null(cJSON *obj, const char *name, double x) {
    return add(obj, name, isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull());
}

cJSON *cv_msg_hello(const cv_msg_hello_t *h, char *err) {
    if (h->n_leases > CV_MSG_LEASES_MAX) {
        cv_errf(err, CV_ERANGE, "hello: leases: must hold at most %d entries, got %zu",
                CV_MSG_LEASES_MAX, h->n_leases);
        return NULL;
    }
    if (h->n_trainers > CV_MSG_TRAINERS_MAX) {
        cv_errf(err, CV_ERANGE, "hello: trainers: must hold at most %d names, got %zu",
                CV_MSG_TRAINERS_MAX, h->n_trainers);
        return NULL;
    }
    cJSON *o = start(CV_MSG_HELLO);
    int failed = o == NULL;
    failed = failed || add_int(o, "protocol", CV_MSG_PROTOCOL) ||
             add_str(o, "worker_id", h->worker_id) || add_str(o, "version", h->version) ||
             add_int(o, "threads", h->threads) || add_str(o, "host", h->host);
    if (!failed && h->has_token) failed = add_str(o, "token", h->token);
    if (!failed && h->n_leases > 0) {
        cJSON *arr = cJSON_AddArrayToObject(o, "leases");
        failed = arr == NULL;
        for (size_t i = 0; !failed && i < h->n_leases; i++) {
            cJSON *e = cJSON_CreateObject();
            failed = e == NULL || !cJSON_AddItemToArray(arr, e) ||
                     add_int(e, "trial_id", h->leases[i].trial_id) ||
                     add_str(e, "lease", h->leases[i].lease);
        }
    }
    if (!failed && h->n_trainers > 0) {
        cJSON *arr = cJSON_AddArrayToObject(o, "trainers");
        failed = arr == NULL;
        for (size_t i = 0; !failed && i < h->n_trainers; i++) {
            cJSON *name = cJSON_CreateString(h->trainers[i]);
            failed = name == NULL || !cJSON_AddItemToArray(arr, name);
        }
    }
    return finish_build(o, failed, CV_MSG_HELLO, err);
}

cJSON *cv_msg_heartbeat(char *err) {
    return finish_build(start(CV_MSG_HEARTBEAT), 0, CV_MSG_HEARTBEAT, err);
}

cJSON *cv_msg_progress(int64_t trial_id, const char *lease, const cv_epoch_t *m, char *err) {
    const double values[] = {(double)m->epoch, m->train_cost,  m->train_cost_reg,
                             m->dev_cost,      m->train_error, m->dev_error,
                             m->learning_rate, m->seconds,     m->examples_per_second};
    _Static_assert(ARRAY_LEN(values) == ARRAY_LEN(epoch_fields), "epoch fields");
    cJSON *o = start(CV_MSG_PROGRESS), *e = NULL;
    int failed = o == NULL || add_int(o, "trial_id", trial_id) || add_str(o, "lease", lease) ||
                 (e = cJSON_AddObjectToObject(o, "epoch")) == NULL;
    failed = failed || add_int(e, "epoch", m->epoch);
    for (size_t i = 1; !failed && i < ARRAY_LEN(values); i++)
        failed = add_num_or_null(e, epoch_fields[i], values[i]);
    return finish_build(o, failed, CV_MSG_PROGRESS, err);
}


/* Adds the diagnosis object d, or null when there is none. Returns 0 or -1. */
static int add_diagnosis(cJSON *o, const cv_diagnosis_t *d, int best_epoch) {
    if (best_epoch <= 0 || d->name == NULL) return add(o, "diagnosis", cJSON_CreateNull());
    cJSON *obj = cJSON_AddObjectToObject(o, "diagnosis");
    int failed = obj == NULL || add_str(obj, "name", d->name) ||
                 add_num_or_null(obj, "avoidable_bias", d->avoidable_bias) ||
                 add_num_or_null(obj, "variance", d->variance) ||
                 add_str(obj, "remedy", d->remedy ? d->remedy : "") ||
                 add_num_or_null(obj, "human_error_assumed", d->human_error) ||
                 add(obj, "human_error_given", cJSON_CreateBool(d->human_error_given != 0)) ||
                 add_str(obj, "explanation", d->explanation);
    return failed ? -1 : 0;
}

cJSON *cv_msg_result_object(const cv_trial_result_t *res) {
    const cv_epoch_t *b = &res->best;
    const double nan = NAN, *none = res->best_epoch > 0 ? NULL : &nan;
    int ended = res->status == CV_TRIAL_FAILED || res->status == CV_TRIAL_STOPPED;
    cJSON *o = cJSON_CreateObject();
    int failed = o == NULL || add_str(o, "status", cv_trial_status_name(res->status)) ||
                 add_int(o, "best_epoch", res->best_epoch) ||
                 add_int(o, "epochs_run", res->epochs_run) ||
                 add_num_or_null(o, "train_error", none ? *none : b->train_error) ||
                 add_num_or_null(o, "dev_error", none ? *none : b->dev_error) ||
                 add_num_or_null(o, "train_cost", none ? *none : b->train_cost) ||
                 add_num_or_null(o, "train_cost_reg", none ? *none : b->train_cost_reg) ||
                 add_num_or_null(o, "dev_cost", none ? *none : b->dev_cost) ||
                 add_num_or_null(o, "examples_per_second", res->examples_per_second) ||
                 add_num_or_null(o, "seconds", res->seconds);
    if (!failed && !ended && res->n_params > 0)
        failed = add_int(o, "m_train", (int64_t)res->m_train) ||
                 add_int(o, "m_dev", (int64_t)res->m_dev) ||
                 add_int(o, "m_test", (int64_t)res->m_test) ||
                 add_int(o, "n_params", (int64_t)res->n_params);
    failed = failed || add_diagnosis(o, &res->diagnosis, res->best_epoch);
    if (!failed && res->tested)
        failed = add_num_or_null(o, "test_error", res->test_error) ||
                 add_num_or_null(o, "test_cost", res->test_cost);
    if (!failed && res->diverged_epoch > 0)
        failed = add_int(o, "diverged_epoch", res->diverged_epoch);
    if (!failed && res->error[0]) failed = add_str(o, "error", res->error);
    if (!failed && ended) failed = add_str(o, "fault", fault_names[res->job_fault ? 0 : 1]);
    if (failed) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *cv_msg_result(int64_t trial_id, const char *lease, const cv_trial_result_t *res,
                     int64_t model_bytes, uint32_t model_crc32, char *err) {
    cJSON *o = start(CV_MSG_RESULT);
    int failed = o == NULL || add_int(o, "trial_id", trial_id) || add_str(o, "lease", lease) ||
                 (res && add(o, "result", cv_msg_result_object(res))) ||
                 add_int(o, "model_bytes", model_bytes) || add_int(o, "model_crc32", model_crc32);
    return finish_build(o, failed, CV_MSG_RESULT, err);
}

cJSON *cv_msg_dataset_get(const char *hash, char *err) {
    cJSON *o = start(CV_MSG_DATASET_GET);
    int failed = o == NULL || add_str(o, "hash", hash);
    return finish_build(o, failed, CV_MSG_DATASET_GET, err);
}

cJSON *cv_msg_welcome(double heartbeat_seconds, double lease_seconds, const int64_t *reattached,
                      size_t n_reattached, char *err) {
    cJSON *o = start(CV_MSG_WELCOME), *arr = NULL;
    int failed = o == NULL || add_int(o, "protocol", CV_MSG_PROTOCOL) ||
                 add_num(o, "heartbeat_seconds", heartbeat_seconds) ||
                 add_num(o, "lease_seconds", lease_seconds) ||
                 (arr = cJSON_AddArrayToObject(o, "reattached")) == NULL;
    for (size_t i = 0; !failed && i < n_reattached; i++) {
        cJSON *id = create_int(reattached[i]);
        failed = id == NULL || !cJSON_AddItemToArray(arr, id);
        if (failed) cJSON_Delete(id);
    }
    return finish_build(o, failed, CV_MSG_WELCOME, err);
}

/* Adds the files object {field: {hash, bytes}} of files[0..n); returns 0 or -1. */
static int add_files(cJSON *o, const cv_msg_file_t *files, size_t n) {
    cJSON *fo = cJSON_AddObjectToObject(o, "files");
    int failed = fo == NULL;
    for (size_t i = 0; !failed && i < n; i++) {
        cJSON *f = cJSON_CreateObject();
        failed = f == NULL;
        if (!failed && !cJSON_AddItemToObject(fo, files[i].field, f)) {
            cJSON_Delete(f);
            failed = 1;
        }
        failed = failed || add_str(f, "hash", files[i].hash) || add_int(f, "bytes", files[i].bytes);
    }
    return failed ? -1 : 0;
}

cJSON *cv_msg_trial(const cv_msg_trial_t *t, char *err) {
    if (t->n_decide_at > CV_MSG_DECIDE_MAX) {
        cv_errf(err, CV_ERANGE, "trial: decide_at: must hold at most %d epochs, got %zu",
                CV_MSG_DECIDE_MAX, t->n_decide_at);
        return NULL;
    }
    if (t->n_files > CV_MSG_FILES_MAX) {
        cv_errf(err, CV_ERANGE, "trial: files: must hold at most %d files, got %zu",
                CV_MSG_FILES_MAX, t->n_files);
        return NULL;
    }
    cJSON *o = start(CV_MSG_TRIAL);
    int failed = o == NULL || add_int(o, "trial_id", t->trial_id) ||
                 add_int(o, "job_id", t->job_id) || add_str(o, "lease", t->lease) ||
                 (t->spec && add(o, "spec", cJSON_Duplicate(t->spec, 1))) ||
                 add_files(o, t->files, t->n_files);
    cJSON *arr = NULL;
    if (!failed && t->n_decide_at > 0)
        failed = (arr = cJSON_AddArrayToObject(o, "decide_at")) == NULL;
    for (size_t i = 0; !failed && i < t->n_decide_at; i++) {
        cJSON *e = create_int(t->decide_at[i]);
        failed = e == NULL || !cJSON_AddItemToArray(arr, e);
        if (failed) cJSON_Delete(e);
    }
    if (!failed && t->objective != CV_MSG_OBJECTIVE_NONE)
        failed = add_str(o, "objective",
                         t->objective == CV_MSG_OBJECTIVE_DEV_COST ? "dev_cost" : "dev_error");
    return finish_build(o, failed, CV_MSG_TRIAL, err);
}

cJSON *cv_msg_ack(int64_t trial_id, int stored, char *err) {
    cJSON *o = start(CV_MSG_ACK);
    int failed = o == NULL || add_int(o, "trial_id", trial_id) ||
                 add(o, "stored", cJSON_CreateBool(stored != 0));
    return finish_build(o, failed, CV_MSG_ACK, err);
}

cJSON *cv_msg_stop(int64_t trial_id, char *err) {
    cJSON *o = start(CV_MSG_STOP);
    int failed = o == NULL || add_int(o, "trial_id", trial_id);
    return finish_build(o, failed, CV_MSG_STOP, err);
}

cJSON *cv_msg_decision(int64_t trial_id, int epoch, int stop, char *err) {
    cJSON *o = start(CV_MSG_DECISION);
    int failed = o == NULL || add_int(o, "trial_id", trial_id) || add_int(o, "epoch", epoch) ||
                 add(o, "stop", cJSON_CreateBool(stop != 0));
    return finish_build(o, failed, CV_MSG_DECISION, err);
}

cJSON *cv_msg_dataset(const char *hash, int64_t bytes, char *err) {
    cJSON *o = start(CV_MSG_DATASET);
    int failed = o == NULL || add_str(o, "hash", hash) || add_int(o, "bytes", bytes);
    return finish_build(o, failed, CV_MSG_DATASET, err);
}

cJSON *cv_msg_evaluate(int64_t job_id, const char *lease, const cJSON *spec,
                       const cv_msg_file_t *files, size_t n_files, const cv_msg_model_t *models,
                       size_t n_models, char *err) {
    if (n_models > CV_MSG_MODELS_MAX) {
        cv_errf(err, CV_ERANGE, "evaluate: models: must hold 1 to %d models, got %zu",
                CV_MSG_MODELS_MAX, n_models);
        return NULL;
    }
    cJSON *o = start(CV_MSG_EVALUATE), *arr = NULL;
    int failed = o == NULL || add_int(o, "job_id", job_id) || add_str(o, "lease", lease) ||
                 (spec && add(o, "spec", cJSON_Duplicate(spec, 1))) ||
                 add_files(o, files, n_files) ||
                 (arr = cJSON_AddArrayToObject(o, "models")) == NULL;
    for (size_t i = 0; !failed && i < n_models; i++) {
        cJSON *m = cJSON_CreateObject();
        failed = m == NULL || !cJSON_AddItemToArray(arr, m);
        if (failed) cJSON_Delete(m);
        failed = failed || add_int(m, "trial_id", models[i].trial_id) ||
                 add_str(m, "hash", models[i].hash) || add_int(m, "bytes", models[i].bytes);
    }
    return finish_build(o, failed, CV_MSG_EVALUATE, err);
}

cJSON *cv_msg_evaluation(const cv_msg_evaluation_t *e, char *err) {
    cJSON *o = start(CV_MSG_EVALUATION);
    int failed = o == NULL || add_int(o, "job_id", e->job_id) || add_str(o, "lease", e->lease);
    if (!failed && e->error)
        failed = add_str(o, "error", e->error) ||
                 add_str(o, "fault", fault_names[e->job_fault ? 0 : 1]);
    else if (!failed)
        failed = add_num(o, "test_accuracy", e->test_accuracy) ||
                 add_num(o, "test_cost", e->test_cost) || add_int(o, "examples", e->examples);
    return finish_build(o, failed, CV_MSG_EVALUATION, err);
}

/* A new array of the n numbers v, or NULL when out of memory. */
static cJSON *create_numbers(const double *v, size_t n) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *e = cJSON_CreateNumber(v[i]);
        if (!e || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            cJSON_Delete(arr);
            arr = NULL;
        }
    }
    return arr;
}

cJSON *cv_msg_importance(int64_t job_id, const char *lease, int64_t seed, const double *x,
                         const double *y, size_t n, size_t p, const double *lo, const double *hi,
                         char *err) {
    cJSON *o = start(CV_MSG_IMPORTANCE), *rows = NULL;
    int failed = o == NULL || add_int(o, "job_id", job_id) || add_str(o, "lease", lease) ||
                 add_int(o, "seed", seed) || add(o, "lo", create_numbers(lo, p)) ||
                 add(o, "hi", create_numbers(hi, p)) ||
                 (rows = cJSON_AddArrayToObject(o, "x")) == NULL;
    for (size_t i = 0; !failed && i < n; i++) {
        cJSON *row = create_numbers(x + i * p, p);
        failed = row == NULL || !cJSON_AddItemToArray(rows, row);
        if (failed) cJSON_Delete(row);
    }
    failed = failed || add(o, "y", create_numbers(y, n));
    return finish_build(o, failed, CV_MSG_IMPORTANCE, err);
}

cJSON *cv_msg_importance_result(const cv_msg_importance_result_t *r, char *err) {
    cJSON *o = start(CV_MSG_IMPORTANCE_RESULT);
    int failed = o == NULL || add_int(o, "job_id", r->job_id) || add_str(o, "lease", r->lease);
    if (!failed && r->error)
        failed = add_str(o, "error", r->error);
    else if (!failed)
        failed = add(o, "fraction", create_numbers(r->fraction, r->p)) ||
                 add(o, "importance", create_numbers(r->importance, r->p));
    return finish_build(o, failed, CV_MSG_IMPORTANCE_RESULT, err);
}

void cv_msg_importance_rows(const cv_msg_importance_t *m, double *x, double *y, double *lo,
                            double *hi) {
    const cJSON *e, *row;
    size_t i = 0, j;
    cJSON_ArrayForEach(e, m->lo) lo[i++] = e->valuedouble;
    i = 0;
    cJSON_ArrayForEach(e, m->hi) hi[i++] = e->valuedouble;
    i = 0;
    cJSON_ArrayForEach(e, m->y) y[i++] = e->valuedouble;
    i = 0;
    cJSON_ArrayForEach(row, m->x) {
        j = 0;
        cJSON_ArrayForEach(e, row) x[i * m->p + j++] = e->valuedouble;
        i++;
    }
}

cJSON *cv_msg_error(const char *message, char *err) {
    cJSON *o = start(CV_MSG_ERROR);
    int failed = o == NULL || add_str(o, "message", message);
    return finish_build(o, failed, CV_MSG_ERROR, err);
}

/* ---- encoding ----------------------------------------------------------------------------- */

cJSON *cv_msg_nudge(int64_t trial_id, int64_t seq, const cJSON *values, int at_epoch, char *err) {
    cJSON *o = start(CV_MSG_NUDGE);
    int failed = o == NULL || add_int(o, "trial_id", trial_id) || add_int(o, "seq", seq) ||
                 add(o, "values", values ? cJSON_Duplicate(values, 1) : cJSON_CreateNull()) ||
                 (at_epoch != 0 && add_int(o, "at_epoch", at_epoch));
    return finish_build(o, failed, CV_MSG_NUDGE, err);
}

cJSON *cv_msg_nudged(int64_t trial_id, const char *lease, int64_t seq, int epoch, char *err) {
    cJSON *o = start(CV_MSG_NUDGED);
    int failed = o == NULL || add_int(o, "trial_id", trial_id) || add_str(o, "lease", lease) ||
                 add_int(o, "seq", seq) || add_int(o, "epoch", epoch);
    return finish_build(o, failed, CV_MSG_NUDGED, err);
}

int cv_msg_encode(const cJSON *msg, unsigned char **buf, size_t *len, char *err) {
    *buf = NULL;
    *len = 0;
    char *text = cJSON_PrintUnformatted(msg);
    if (text == NULL) return cv_errf(err, CV_ENOMEM, "out of memory printing a message");
    size_t n = strlen(text);
    unsigned char *out = NULL;
    int rc = n > CV_FRAME_MAX
                 ? cv_errf(err, CV_ERANGE, "message of %zu bytes exceeds the %u-byte frame limit",
                           n, CV_FRAME_MAX)
                 : 0;
    if (rc) goto done;
    out = malloc(CV_FRAME_HEADER_SIZE + n);
    if (out == NULL) {
        rc = cv_errf(err, CV_ENOMEM, "cannot allocate a frame of %zu bytes", n);
        goto done;
    }
    rc = cv_frame_encode_header(CV_FRAME_JSON, n, out, err);
    if (rc) {
        free(out);
        goto done;
    }
    memcpy(out + CV_FRAME_HEADER_SIZE, text, n);
    *buf = out;
    *len = CV_FRAME_HEADER_SIZE + n;
done:
    cJSON_free(text);
    return rc;
}
