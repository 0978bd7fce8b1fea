/* The parser of an external trainer's metric lines (metric_line.h): the key=value form and the
 * JSON form, both checked key by key against the rules of cv_epoch_t. */
#include "worker/metric_line.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

typedef enum { RULE_EPOCH, RULE_FRACTION, RULE_FINITE, RULE_POSITIVE, RULE_NONNEG } rule_t;

/* The keys a line may carry, their rules and where each goes. */
typedef struct {
    const char *name;
    rule_t rule;
    size_t offset; /* of the double in cv_epoch_t; unused for epoch */
} metric_key_t;

#define AT(f) offsetof(cv_epoch_t, f)
static const metric_key_t KEYS[] = {
    {"epoch", RULE_EPOCH, 0},
    {"dev_error", RULE_FRACTION, AT(dev_error)},
    {"dev_cost", RULE_FINITE, AT(dev_cost)},
    {"train_error", RULE_FRACTION, AT(train_error)},
    {"train_cost", RULE_FINITE, AT(train_cost)},
    {"train_cost_reg", RULE_FINITE, AT(train_cost_reg)},
    {"learning_rate", RULE_POSITIVE, AT(learning_rate)},
    {"seconds", RULE_NONNEG, AT(seconds)},
    {"examples_per_second", RULE_NONNEG, AT(examples_per_second)},
};
#define N_KEYS (sizeof KEYS / sizeof *KEYS)

static const char *const RULE_TEXT[] = {
    "an integer from 1 to 1000000", "a number in [0, 1]", "a finite number", "a number > 0",
    "a number >= 0"};

static const metric_key_t *find_key(const char *name, size_t n) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (strlen(KEYS[i].name) == n && memcmp(KEYS[i].name, name, n) == 0) return &KEYS[i];
    return NULL;
}

/* Stores x under key k in out, once (seen tracks the keys given). Returns 0 or a code with err
 * naming the key; value is the text given, for the message. */
static int store(const metric_key_t *k, double x, const char *value, cv_epoch_t *out, unsigned *seen,
                 char *err) {
    unsigned bit = 1u << (unsigned)(k - KEYS);
    if (*seen & bit) return cv_errf(err, CV_EINVAL, "%s: given twice", k->name);
    int ok = isfinite(x);
    switch (k->rule) {
    case RULE_EPOCH: ok = ok && x >= 1 && x <= CV_METRIC_EPOCH_MAX && x == floor(x); break;
    case RULE_FRACTION: ok = ok && x >= 0 && x <= 1; break;
    case RULE_FINITE: break;
    case RULE_POSITIVE: ok = ok && x > 0; break;
    case RULE_NONNEG: ok = ok && x >= 0; break;
    }
    if (!ok)
        return cv_errf(err, CV_ERANGE, "%s: must be %s, got %.40s", k->name, RULE_TEXT[k->rule],
                       value);
    *seen |= bit;
    if (k->rule == RULE_EPOCH) out->epoch = (int64_t)x;
    else *(double *)(void *)((char *)out + k->offset) = x;
    return 0;
}

/* Reads a whole number as strtod does, but only plain decimal notation (no hex, inf, nan).
 * Returns 0 and the value, or -1. */
static int read_number(const char *text, double *x) {
    size_t i = 0;
    if (text[i] == '-' || text[i] == '+') i++;
    if (!((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) return -1;
    for (const char *p = text + i; *p; p++)
        if (!strchr("0123456789.eE+-", *p)) return -1;
    char *end;
    *x = strtod(text, &end);
    return *end == '\0' ? 0 : -1;
}

/* key=value words separated by spaces or tabs. */
static int parse_words(const char *s, cv_epoch_t *out, unsigned *seen, char *err) {
    char word[CV_METRIC_LINE_MAX + 1];
    while (*s) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s) break;
        size_t n = strcspn(s, " \t");
        memcpy(word, s, n);
        word[n] = '\0';
        s += n;
        char *eq = strchr(word, '=');
        if (!eq) return cv_errf(err, CV_EINVAL, "'%.40s': want key=value", word);
        const metric_key_t *k = find_key(word, (size_t)(eq - word));
        if (!k)
            return cv_errf(err, CV_EINVAL, "%.*s: unknown key (want epoch, dev_error, dev_cost, "
                           "train_error, train_cost, train_cost_reg, learning_rate, seconds or "
                           "examples_per_second)", (int)(eq - word > 40 ? 40 : eq - word), word);
        double x;
        if (read_number(eq + 1, &x))
            return cv_errf(err, CV_EINVAL, "%s: must be %s, got '%.40s'", k->name,
                           RULE_TEXT[k->rule], eq + 1);
        int rc = store(k, x, eq + 1, out, seen, err);
        if (rc) return rc;
    }
    return 0;
}

/* A JSON object of keys, plus "final": true|false. *final says which it was. */
static int parse_json(const char *s, cv_epoch_t *out, unsigned *seen, int *final, char *err) {
    cJSON *root = cJSON_Parse(s);
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        rc = cv_errf(err, CV_EINVAL, "not a JSON object");
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        char value[48];
        if (strcmp(item->string, "final") == 0) {
            if (!cJSON_IsBool(item)) {
                rc = cv_errf(err, CV_EINVAL, "final: must be true or false");
                goto done;
            }
            *final = cJSON_IsTrue(item);
            continue;
        }
        const metric_key_t *k = find_key(item->string, strlen(item->string));
        if (!k) {
            rc = cv_errf(err, CV_EINVAL, "%.40s: unknown key", item->string);
            goto done;
        }
        if (!cJSON_IsNumber(item)) {
            rc = cv_errf(err, CV_EINVAL, "%s: must be %s", k->name, RULE_TEXT[k->rule]);
            goto done;
        }
        snprintf(value, sizeof value, "%.17g", item->valuedouble);
        if ((rc = store(k, item->valuedouble, value, out, seen, err))) goto done;
    }
done:
    cJSON_Delete(root);
    return rc;
}

int cv_metric_line_parse(const char *line, size_t len, cv_epoch_t *out, char *err) {
    static const size_t prefix = sizeof CV_METRIC_PREFIX - 1;
    char text[CV_METRIC_LINE_MAX + 1];
    if (len > 0 && line[len - 1] == '\r') len--;
    if (len < prefix || memcmp(line, CV_METRIC_PREFIX, prefix) != 0) return CV_METRIC_NONE;
    if (len > CV_METRIC_LINE_MAX)
        return cv_errf(err, CV_ERANGE, "a metric line must be at most %d bytes, got %zu",
                       CV_METRIC_LINE_MAX, len);
    if (memchr(line, '\0', len))
        return cv_errf(err, CV_EINVAL, "a metric line cannot hold a NUL byte");
    memcpy(text, line + prefix, len - prefix);
    text[len - prefix] = '\0';
    *out = (cv_epoch_t){.train_cost = NAN, .train_cost_reg = NAN, .dev_cost = NAN,
                        .train_error = NAN, .dev_error = NAN, .learning_rate = NAN,
                        .seconds = NAN, .examples_per_second = NAN};
    const char *s = text;
    while (*s == ' ' || *s == '\t') s++;
    unsigned seen = 0;
    int final = 0, rc;
    if (*s == '{') {
        rc = parse_json(s, out, &seen, &final, err);
    } else {
        if (strncmp(s, "final", 5) == 0 && (s[5] == '\0' || s[5] == ' ' || s[5] == '\t')) {
            final = 1;
            s += 5;
        }
        rc = parse_words(s, out, &seen, err);
    }
    if (rc) return rc;
    if (!final && !(seen & 1u)) return cv_errf(err, CV_EINVAL, "epoch: required in a report");
    if (!isfinite(out->dev_error) && !isfinite(out->dev_cost))
        return cv_errf(err, CV_EINVAL, "dev_error or dev_cost: at least one is required");
    return final ? CV_METRIC_FINAL : CV_METRIC_EPOCH;
}
