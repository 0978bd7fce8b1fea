/* The request bodies of ask/tell over HTTP; see ask_body.h. */
#include "server/ask_body.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/json.h"

static const cv_json_range_t any_number = {-HUGE_VAL, HUGE_VAL, 0, 0};
static const cv_json_range_t positive = {0, HUGE_VAL, 1, 0};

/* Decodes text as a JSON object whose members are all in known[0..n). An empty body is {} when
 * empty_ok, else refused. */
static int decode_object(const char *text, size_t len, int empty_ok, const char *const *known,
                         size_t n, cJSON **out, char *err) {
    *out = NULL;
    if (len == 0 && empty_ok) return 0;
    if (len == 0) return cv_errf(err, CV_EINVAL, "the body must be a JSON object");
    int rc = cv_json_decode(text, len, out, err);
    if (rc == 0 && !cJSON_IsObject(*out))
        rc = cv_errf(err, CV_EINVAL, "the body must be a JSON object, got %s",
                     cv_json_type_name(*out));
    if (rc == 0) rc = cv_json_check_fields(*out, NULL, known, n, err);
    if (rc) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* The lease: the 32 lowercase hex digits an ask returned. */
static int get_lease(const cJSON *body, char out[CV_ASK_LEASE_HEX + 1], char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "lease");
    if (!v) return cv_errf(err, CV_EINVAL, "lease: is required");
    const char *s = cJSON_GetStringValue(v);
    if (!s || strlen(s) != CV_ASK_LEASE_HEX || strspn(s, "0123456789abcdef") != CV_ASK_LEASE_HEX)
        return cv_errf(err, CV_EINVAL,
                       "lease: must be the %d lowercase hex digits the ask returned",
                       CV_ASK_LEASE_HEX);
    memcpy(out, s, CV_ASK_LEASE_HEX + 1);
    return 0;
}

/* A number member: required (NAN stays when optional and absent). */
static int get_metric(const cJSON *body, const char *name, int required, cv_json_range_t range,
                      double *out, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v) return required ? cv_errf(err, CV_EINVAL, "%s: is required", name) : 0;
    return cv_json_get_number(v, name, range, out, err);
}

/* The metrics of one epoch a report or a completed tell carries. */
static int get_metrics(const cJSON *body, cv_epoch_t *e, char *err) {
    int rc = get_metric(body, "dev_error", 1, any_number, &e->dev_error, err);
    if (rc == 0) rc = get_metric(body, "dev_cost", 1, any_number, &e->dev_cost, err);
    if (rc == 0) rc = get_metric(body, "train_error", 0, any_number, &e->train_error, err);
    if (rc == 0) rc = get_metric(body, "train_cost", 0, any_number, &e->train_cost, err);
    if (rc == 0) rc = get_metric(body, "learning_rate", 0, positive, &e->learning_rate, err);
    return rc;
}

static void epoch_unknown(cv_epoch_t *e) {
    *e = (cv_epoch_t){0, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
}

int cv_ask_parse_ask(const char *text, size_t len, cv_ask_request_t *out, char *err) {
    static const char *const known[] = {"client"};
    cJSON *body = NULL;
    out->client[0] = '\0';
    int rc = decode_object(text, len, 1, known, 1, &body, err);
    const cJSON *v = body ? cJSON_GetObjectItemCaseSensitive(body, "client") : NULL;
    if (rc == 0 && v) {
        const char *s = cJSON_GetStringValue(v);
        size_t n = s ? strlen(s) : 0;
        int printable = s != NULL;
        for (size_t i = 0; printable && i < n; i++)
            printable = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f;
        if (!printable || n == 0 || n > CV_ASK_CLIENT_MAX)
            rc = cv_errf(err, CV_EINVAL, "client: must be 1 to %d printable ASCII characters",
                         CV_ASK_CLIENT_MAX);
        else
            memcpy(out->client, s, n + 1);
    }
    cJSON_Delete(body);
    return rc;
}

int cv_ask_parse_report(const char *text, size_t len, cv_ask_report_t *out, char *err) {
    static const char *const known[] = {"lease",       "epoch",      "dev_error",    "dev_cost",
                                        "train_error", "train_cost", "learning_rate"};
    cJSON *body = NULL;
    epoch_unknown(&out->epoch);
    int rc = decode_object(text, len, 0, known, sizeof known / sizeof *known, &body, err);
    if (rc == 0) rc = get_lease(body, out->lease, err);
    const cJSON *v = body ? cJSON_GetObjectItemCaseSensitive(body, "epoch") : NULL;
    if (rc == 0 && !v) rc = cv_errf(err, CV_EINVAL, "epoch: is required");
    if (rc == 0) rc = cv_json_get_int(v, "epoch", 1, CV_ASK_EPOCH_MAX, &out->epoch.epoch, err);
    if (rc == 0) rc = get_metrics(body, &out->epoch, err);
    cJSON_Delete(body);
    return rc;
}

int cv_ask_parse_tell(const char *text, size_t len, cv_ask_tell_t *out, char *err) {
    static const char *const known[] = {"lease",         "status",      "dev_error",
                                        "dev_cost",      "train_error", "train_cost",
                                        "learning_rate", "epoch",       "error"};
    static const char *const statuses[] = {"completed", "failed"};
    cJSON *body = NULL;
    epoch_unknown(&out->best);
    out->failed = 0;
    out->error[0] = '\0';
    int rc = decode_object(text, len, 0, known, sizeof known / sizeof *known, &body, err);
    if (rc == 0) rc = get_lease(body, out->lease, err);
    const cJSON *st = body ? cJSON_GetObjectItemCaseSensitive(body, "status") : NULL;
    if (rc == 0 && !st) rc = cv_errf(err, CV_EINVAL, "status: is required");
    if (rc == 0) rc = cv_json_get_enum(st, "status", statuses, 2, &out->failed, err);
    const cJSON *e = body ? cJSON_GetObjectItemCaseSensitive(body, "error") : NULL;
    const cJSON *ep = body ? cJSON_GetObjectItemCaseSensitive(body, "epoch") : NULL;
    if (rc == 0 && out->failed) {
        static const char *const metrics[] = {"dev_error",  "dev_cost",      "train_error",
                                              "train_cost", "learning_rate", "epoch"};
        for (size_t i = 0; rc == 0 && i < sizeof metrics / sizeof *metrics; i++)
            if (cJSON_GetObjectItemCaseSensitive(body, metrics[i]))
                rc = cv_errf(err, CV_EINVAL,
                             "%s: not taken with status \"failed\" (a failed "
                             "trial has no result)",
                             metrics[i]);
        if (rc == 0 && !e)
            rc = cv_errf(err, CV_EINVAL,
                         "error: is required with status "
                         "\"failed\"");
        const char *s = rc == 0 ? cJSON_GetStringValue(e) : NULL;
        if (rc == 0 && (!s || !*s))
            rc = cv_errf(err, CV_EINVAL,
                         "error: must be a non-empty "
                         "string");
        if (rc == 0) snprintf(out->error, sizeof out->error, "%s", s);
    } else if (rc == 0) {
        if (e) rc = cv_errf(err, CV_EINVAL, "error: taken only with status \"failed\"");
        if (rc == 0) rc = get_metrics(body, &out->best, err);
        if (rc == 0 && ep)
            rc = cv_json_get_int(ep, "epoch", 1, CV_ASK_EPOCH_MAX, &out->best.epoch, err);
    }
    cJSON_Delete(body);
    return rc;
}
