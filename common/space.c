/* Search space: parsing the "space" object of a job, drawing configurations on each parameter's
 * scale, coarse-to-fine refinement around the best trials, and the JSON form of a region.
 * See space.h for the contracts. */
#include "common/space.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"

/* What a searchable parameter holds; it fixes the type a space may give the parameter. */
typedef enum {
    KIND_REAL,
    KIND_INT,
    KIND_STRING,
    KIND_BOOL,
    KIND_ANY, /* a parameter of an open space: the type the job gives it */
} param_kind_t;

/* The hyperparameters a job may search: the flat trial-spec fields that take one value. */
static const struct {
    const char *name;
    param_kind_t kind;
} searchable[] = {
    {"learning_rate", KIND_REAL},
    {"beta", KIND_REAL},
    {"beta1", KIND_REAL},
    {"beta2", KIND_REAL},
    {"epsilon", KIND_REAL},
    {"batch_size", KIND_INT},
    {"hidden_units", KIND_INT},
    {"hidden_layers", KIND_INT},
    {"decay_rate", KIND_REAL},
    {"decay_base", KIND_REAL},
    {"l2", KIND_REAL},
    {"l1", KIND_REAL},
    {"keep_prob", KIND_REAL},
    {"input_keep_prob", KIND_REAL},
    {"init_scale", KIND_REAL},
    {"label_smoothing", KIND_REAL},
    {"epochs", KIND_INT},
    {"activation", KIND_STRING},
    {"optimizer", KIND_STRING},
    {"init", KIND_STRING},
    {"decay", KIND_STRING},
    {"output", KIND_STRING},
    {"batch_norm", KIND_BOOL},
};
#define N_SEARCHABLE (sizeof searchable / sizeof searchable[0])
_Static_assert(N_SEARCHABLE <= CV_SPACE_MAX_PARAMS, "a space must be able to hold every param");

#define WHERE_MAX 96 /* bytes of a field path such as "region.activation.weights.relu" */

/* ---- JSON fields ---- */

static const cv_json_range_t ANY_NUMBER = {-HUGE_VAL, HUGE_VAL, 0, 0};

/* Reads obj.field, a required finite number, into *out; where names obj in the reason. An int
 * parameter's bound must also be an integer within ±CV_SPACE_INT_LIMIT. */
static int read_bound(const cJSON *obj, const char *where, const char *field, int integral,
                      double *out, char *err) {
    char path[WHERE_MAX];
    int64_t v;
    snprintf(path, sizeof path, "%.48s.%.31s", where, field); /* paths stay < 48 */
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (item == NULL) return cv_errf(err, CV_EINVAL, "%s: required", path);
    if (!integral) return cv_json_get_number(item, path, ANY_NUMBER, out, err);
    int rc = cv_json_get_int(item, path, -(int64_t)CV_SPACE_INT_LIMIT, (int64_t)CV_SPACE_INT_LIMIT,
                             &v, err);
    if (rc == 0) *out = (double)v;
    return rc;
}

/* ---- 15-digit numbers ---- */

/* Rounds x to 15 significant decimal digits: to nearest when dir is 0, else downward (dir < 0) or
 * upward (dir > 0). cJSON prints a number with 15 digits whenever they read back within about an
 * ulp, so only such numbers survive a trip through JSON text unchanged; every bound, weight and
 * float value this module produces goes through here (see space.h). */
static double quantize(double x, int dir) {
    char buf[48];
    if (x == 0 || !isfinite(x)) return x;
    snprintf(buf, sizeof buf, "%.14e", x); /* d.dddddddddddddde±x: 15 significant digits */
    double q = strtod(buf, NULL);
    if ((dir < 0 && q > x) || (dir > 0 && q < x)) {
        /* Step the 15-digit mantissa m one unit toward dir: q = ±m · 10^(e − 14). */
        long long m = 0;
        const char *c = buf + (buf[0] == '-');
        for (; *c != 'e'; c++)
            if (*c != '.') m = m * 10 + (*c - '0');
        int neg = buf[0] == '-';
        m += (dir > 0) != neg ? 1 : -1;
        snprintf(buf, sizeof buf, "%s%llde%d", neg ? "-" : "", m, atoi(c + 1) - 14);
        q = strtod(buf, NULL);
    }
    return q;
}

/* ---- scales ---- */

/* Smallest k with 2^k ≥ x, for x > 0; exact (no log2 rounding). */
static int pow2_ceil_exp(double x) {
    int e;
    double f = frexp(x, &e); /* x = f · 2^e with f in [0.5, 1) */
    return f == 0.5 ? e - 1 : e;
}

/* Largest k with 2^k ≤ x, for x > 0. */
static int pow2_floor_exp(double x) {
    int e;
    frexp(x, &e);
    return e - 1;
}

/* The parameter's coordinate u, where sampling is uniform (see cv_scale_t). */
static double to_u(const cv_space_param_t *p, double x) {
    switch (p->scale) {
    case CV_SCALE_LOG:
        return log10(x);
    case CV_SCALE_ONE_MINUS_LOG:
        return log10(1.0 - x);
    case CV_SCALE_POWER_OF_TWO:
        return log2(x);
    case CV_SCALE_LINEAR:
        break;
    }
    return x;
}

static double from_u(const cv_space_param_t *p, double u) {
    switch (p->scale) {
    case CV_SCALE_LOG:
        return pow(10.0, u);
    case CV_SCALE_ONE_MINUS_LOG:
        return 1.0 - pow(10.0, u);
    case CV_SCALE_POWER_OF_TWO:
        return exp2(u);
    case CV_SCALE_LINEAR:
        break;
    }
    return u;
}

/* The interval of u the parameter's bounds span, low end first (one_minus_log reverses the
 * order); for power_of_two the exponents actually reachable. */
static void u_range(const cv_space_param_t *p, double *lo, double *hi) {
    if (p->scale == CV_SCALE_POWER_OF_TWO) {
        *lo = pow2_ceil_exp(p->min);
        *hi = pow2_floor_exp(p->max);
        return;
    }
    double a = to_u(p, p->min), b = to_u(p, p->max);
    *lo = a < b ? a : b;
    *hi = a < b ? b : a;
}

/* Index of a JSON value among a categorical parameter's values, or -1. */
static int find_value(const cv_space_param_t *p, const cJSON *v) {
    const char *s = NULL;
    if (p->is_bool && cJSON_IsBool(v)) s = cJSON_IsTrue(v) ? "true" : "false";
    if (!p->is_bool && cJSON_IsString(v)) s = v->valuestring;
    for (size_t i = 0; s != NULL && i < p->n_values; i++)
        if (strcmp(p->values[i], s) == 0) return (int)i;
    return -1;
}

static cJSON *value_json(const cv_space_param_t *p, size_t i) {
    if (p->is_bool) return cJSON_CreateBool(strcmp(p->values[i], "true") == 0);
    return cJSON_CreateString(p->values[i]);
}

/* ---- coordinates, for samplers that model each parameter on its scale ---- */

double cv_space_to_coord(const cv_space_param_t *param, double x) {
    return to_u(param, x);
}

void cv_space_coord_range(const cv_space_param_t *param, double *lo, double *hi) {
    u_range(param, lo, hi);
}

double cv_space_from_coord(const cv_space_param_t *p, double u) {
    double x;
    if (p->scale == CV_SCALE_POWER_OF_TWO) {
        double klo = pow2_ceil_exp(p->min), khi = pow2_floor_exp(p->max), k = round(u);
        return ldexp(1.0, (int)(k < klo ? klo : k > khi ? khi : k));
    }
    x = from_u(p, u);
    x = p->type == CV_PARAM_INT ? round(x) : quantize(x, 0);
    /* Rounding in pow, log10 and quantize may step just outside the bounds. */
    return x < p->min ? p->min : x > p->max ? p->max : x;
}

int cv_space_value_index(const cv_space_param_t *param, const cJSON *value) {
    return find_value(param, value);
}

cJSON *cv_space_value_json(const cv_space_param_t *param, size_t i) {
    return value_json(param, i);
}

/* ---- parsing ---- */

static int parse_numeric(cv_space_param_t *p, const cJSON *obj, const char *where, char *err) {
    static const char *const scales[] = {"linear", "log", "one_minus_log", "power_of_two"};
    if (cJSON_GetObjectItemCaseSensitive(obj, "values") != NULL)
        return cv_errf(err, CV_EINVAL, "%s.values: only a categorical parameter has values", where);
    const cJSON *scale = cJSON_GetObjectItemCaseSensitive(obj, "scale");
    if (scale == NULL) return cv_errf(err, CV_EINVAL, "%s.scale: required", where);
    if (!cJSON_IsString(scale))
        return cv_errf(err, CV_EINVAL, "%s.scale: must be a string, got %s", where,
                       cv_json_type_name(scale));
    size_t s = 0;
    while (s < 4 && strcmp(scale->valuestring, scales[s]) != 0)
        s++;
    if (s == 4)
        return cv_errf(err, CV_EINVAL,
                       "%s.scale: must be \"linear\", \"log\", \"one_minus_log\" or "
                       "\"power_of_two\", got \"%s\"",
                       where, scale->valuestring);
    p->scale = (cv_scale_t)s;
    if (p->scale == CV_SCALE_POWER_OF_TWO && p->type != CV_PARAM_INT)
        return cv_errf(err, CV_EINVAL, "%s.scale: power_of_two needs type int", where);
    if (p->scale == CV_SCALE_ONE_MINUS_LOG && p->type != CV_PARAM_FLOAT)
        return cv_errf(err, CV_EINVAL, "%s.scale: one_minus_log needs type float", where);

    int integral = p->type == CV_PARAM_INT, rc;
    if ((rc = read_bound(obj, where, "min", integral, &p->min, err)) != 0) return rc;
    if ((rc = read_bound(obj, where, "max", integral, &p->max, err)) != 0) return rc;
    p->min = quantize(p->min, +1); /* inward, so samples stay within the bounds as written */
    p->max = quantize(p->max, -1);
    if (!(p->min < p->max))
        return cv_errf(err, CV_EINVAL, "%s.max: must be greater than min (%.17g), got %.17g", where,
                       p->min, p->max);
    if (!isfinite(p->max - p->min))
        return cv_errf(err, CV_EINVAL, "%s: max − min must be finite", where);
    switch (p->scale) {
    case CV_SCALE_LOG:
    case CV_SCALE_POWER_OF_TWO:
        if (!(p->min > 0))
            return cv_errf(err, CV_EINVAL, "%s.min: %s scale needs min > 0, got %.17g", where,
                           cv_scale_name(p->scale), p->min);
        if (p->scale == CV_SCALE_POWER_OF_TWO && pow2_ceil_exp(p->min) > pow2_floor_exp(p->max))
            return cv_errf(err, CV_EINVAL, "%s: no power of two lies in [%.17g, %.17g]", where,
                           p->min, p->max);
        break;
    case CV_SCALE_ONE_MINUS_LOG:
        if (!(p->min >= 0))
            return cv_errf(err, CV_EINVAL,
                           "%s.min: one_minus_log scale needs 0 <= min < max < 1, got min %.17g",
                           where, p->min);
        if (!(p->max < 1))
            return cv_errf(err, CV_EINVAL,
                           "%s.max: one_minus_log scale needs 0 <= min < max < 1, got max %.17g",
                           where, p->max);
        break;
    case CV_SCALE_LINEAR:
        break;
    }
    return CV_OK;
}

static int parse_categorical(cv_space_param_t *p, const cJSON *obj, const char *where, char *err) {
    static const char *const numeric_only[] = {"scale", "min", "max"};
    for (size_t i = 0; i < 3; i++)
        if (cJSON_GetObjectItemCaseSensitive(obj, numeric_only[i]) != NULL)
            return cv_errf(err, CV_EINVAL, "%s.%s: not allowed for a categorical parameter", where,
                           numeric_only[i]);
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(obj, "values");
    if (values == NULL) return cv_errf(err, CV_EINVAL, "%s.values: required", where);
    if (!cJSON_IsArray(values))
        return cv_errf(err, CV_EINVAL, "%s.values: must be an array, got %s", where,
                       cv_json_type_name(values));
    int n = cJSON_GetArraySize(values);
    if (n < 1 || n > CV_SPACE_MAX_VALUES)
        return cv_errf(err, CV_EINVAL, "%s.values: needs 1 to %d values, got %d", where,
                       CV_SPACE_MAX_VALUES, n);
    size_t i = 0;
    for (const cJSON *v = values->child; v != NULL; v = v->next, i++) {
        char path[WHERE_MAX];
        int rc, truth;
        snprintf(path, sizeof path, "%.48s.values[%zu]", where, i);
        if (p->is_bool) {
            if ((rc = cv_json_get_bool(v, path, &truth, err)) != 0) return rc;
            strcpy(p->values[i], truth ? "true" : "false");
        } else if ((rc = cv_json_get_string(v, path, p->values[i], CV_SPACE_NAME_MAX, err)) != 0) {
            return rc;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->values[j], p->values[i]) == 0)
                return cv_errf(err, CV_EINVAL, "%s: %s given twice", path, p->values[i]);
    }
    p->n_values = (size_t)n;
    for (i = 0; i < p->n_values; i++)
        p->weights[i] = quantize(1.0 / (double)n, 0);
    return CV_OK;
}

/* Parses one parameter of kind kind from obj into p. */
static int parse_param(cv_space_param_t *p, const char *name, param_kind_t kind, const cJSON *obj,
                       char *err) {
    static const char *const fields[] = {"type", "scale", "min", "max", "values"};
    static const char *const types[] = {"float", "int", "categorical"};
    char where[WHERE_MAX];
    snprintf(where, sizeof where, "space.%s", name);
    int rc = cv_json_check_fields(obj, where, fields, 5, err);
    if (rc != 0) return rc;

    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->is_bool = kind == KIND_BOOL;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (type == NULL) return cv_errf(err, CV_EINVAL, "%s.type: required", where);
    if (!cJSON_IsString(type))
        return cv_errf(err, CV_EINVAL, "%s.type: must be a string, got %s", where,
                       cv_json_type_name(type));
    size_t t = 0;
    while (t < 3 && strcmp(type->valuestring, types[t]) != 0)
        t++;
    if (t == 3)
        return cv_errf(err, CV_EINVAL,
                       "%s.type: must be \"float\", \"int\" or \"categorical\", got \"%s\"", where,
                       type->valuestring);
    p->type = (cv_param_type_t)t;
    if (kind == KIND_ANY) {
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(obj, "values");
        p->is_bool = p->type == CV_PARAM_CATEGORICAL && cJSON_IsArray(values) &&
                     cJSON_IsBool(values->child);
        kind = p->type == CV_PARAM_FLOAT ? KIND_REAL
               : p->type == CV_PARAM_INT ? KIND_INT
               : p->is_bool              ? KIND_BOOL
                                         : KIND_STRING;
    }
    cv_param_type_t wanted = kind == KIND_REAL  ? CV_PARAM_FLOAT
                             : kind == KIND_INT ? CV_PARAM_INT
                                                : CV_PARAM_CATEGORICAL;
    if (p->type != wanted)
        return cv_errf(err, CV_EINVAL, "%s.type: %s takes \"%s\", got \"%s\"", where, name,
                       types[wanted], type->valuestring);
    return p->type == CV_PARAM_CATEGORICAL ? parse_categorical(p, obj, where, err)
                                           : parse_numeric(p, obj, where, err);
}

/* A name an open space accepts: [A-Za-z_][A-Za-z0-9_]*, shorter than CV_SPACE_NAME_MAX. */
static int is_open_name(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n >= CV_SPACE_NAME_MAX || isdigit((unsigned char)name[0])) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_') return 0;
    return 1;
}

/* The kind of the searchable parameter called name, or -1 after writing the reason. */
static int searchable_kind(const char *name, char *err) {
    for (size_t k = 0; k < N_SEARCHABLE; k++)
        if (strcmp(name, searchable[k].name) == 0) return (int)searchable[k].kind;
    char list[CV_ERRLEN / 2] = "";
    size_t len = 0;
    for (size_t i = 0; i < N_SEARCHABLE && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                                searchable[i].name);
    cv_errf(err, CV_EINVAL, "space.%s: unknown parameter (searchable: %s)", name, list);
    return -1;
}

/* Parses a space whose names come from the searchable table, or any names when open. */
static int parse_space(cv_space_t *space, const cJSON *obj, int open, char *err) {
    memset(space, 0, sizeof *space);
    if (!cJSON_IsObject(obj))
        return cv_errf(err, CV_EINVAL, "space: must be an object, got %s", cv_json_type_name(obj));
    for (const cJSON *c = obj->child; c != NULL; c = c->next) {
        int kind = KIND_ANY;
        if (open && !is_open_name(c->string))
            return cv_errf(err, CV_EINVAL, "space.%.40s: a parameter name is a letter or _ "
                           "followed by letters, digits or _, at most %d bytes",
                           c->string, CV_SPACE_NAME_MAX - 1);
        if (!open && (kind = searchable_kind(c->string, err)) < 0) return CV_EINVAL;
        if (cv_space_find(space, c->string) != NULL)
            return cv_errf(err, CV_EINVAL, "space.%s: given twice", c->string);
        if (space->n_params == CV_SPACE_MAX_PARAMS)
            return cv_errf(err, CV_EINVAL, "space: at most %d parameters", CV_SPACE_MAX_PARAMS);
        int rc = parse_param(&space->params[space->n_params], c->string, (param_kind_t)kind, c,
                             err);
        if (rc != 0) return rc;
        space->n_params++;
    }
    if (space->n_params == 0) return cv_errf(err, CV_EINVAL, "space: needs at least one parameter");
    return CV_OK;
}

int cv_space_from_json(cv_space_t *space, const cJSON *obj, char *err) {
    return parse_space(space, obj, 0, err);
}

int cv_space_from_json_open(cv_space_t *space, const cJSON *obj, char *err) {
    return parse_space(space, obj, 1, err);
}

const cv_space_param_t *cv_space_find(const cv_space_t *space, const char *name) {
    for (size_t i = 0; i < space->n_params; i++)
        if (strcmp(space->params[i].name, name) == 0) return &space->params[i];
    return NULL;
}

/* ---- sampling ---- */

static double draw_numeric(const cv_space_param_t *p, cv_rng_t *rng) {
    double a = p->min, b = p->max, x = a;
    switch (p->scale) {
    case CV_SCALE_LINEAR:
        if (p->type == CV_PARAM_INT) /* b − a ≤ 2^32 − 2 by CV_SPACE_INT_LIMIT */
            x = a + (double)cv_rng_below(rng, (uint32_t)(b - a) + 1u);
        else
            x = quantize(a + (b - a) * cv_rng_uniform(rng), 0);
        break;
    case CV_SCALE_LOG: {
        double lo = log10(a), hi = log10(b);
        x = pow(10.0, lo + (hi - lo) * cv_rng_uniform(rng));
        x = p->type == CV_PARAM_INT ? round(x) : quantize(x, 0);
        break;
    }
    case CV_SCALE_ONE_MINUS_LOG: {
        double lo = log10(1.0 - b), hi = log10(1.0 - a);
        x = quantize(1.0 - pow(10.0, lo + (hi - lo) * cv_rng_uniform(rng)), 0);
        break;
    }
    case CV_SCALE_POWER_OF_TWO: {
        int klo = pow2_ceil_exp(a), khi = pow2_floor_exp(b);
        x = ldexp(1.0, klo + (int)cv_rng_below(rng, (uint32_t)(khi - klo + 1)));
        break;
    }
    }
    /* Rounding in pow, log10 and quantize may step just outside the bounds. */
    return x < a ? a : x > b ? b : x;
}

static size_t draw_categorical(const cv_space_param_t *p, cv_rng_t *rng) {
    double total = 0.0;
    for (size_t i = 0; i < p->n_values; i++)
        total += p->weights[i];
    double t = cv_rng_uniform(rng) * total;
    size_t last = 0;
    for (size_t i = 0; i < p->n_values; i++) {
        if (!(p->weights[i] > 0)) continue;
        last = i;
        if (t < p->weights[i]) return i;
        t -= p->weights[i];
    }
    return last; /* rounding left t at or above the last positive weight */
}

int cv_space_sample(const cv_space_t *region, cv_rng_t *rng, cJSON **values, char *canon,
                    size_t canon_size, char *err) {
    int rc = CV_ENOMEM;
    *values = NULL;
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL) goto fail;
    for (size_t i = 0; i < region->n_params; i++) {
        const cv_space_param_t *p = &region->params[i];
        cJSON *item = p->type == CV_PARAM_CATEGORICAL ? value_json(p, draw_categorical(p, rng))
                                                      : cJSON_CreateNumber(draw_numeric(p, rng));
        if (item == NULL || !cJSON_AddItemToObject(obj, p->name, item)) {
            cJSON_Delete(item);
            goto fail;
        }
    }
    if (canon != NULL && (rc = cv_space_canonical(obj, canon, canon_size, err)) != 0) goto fail;
    *values = obj;
    return CV_OK;
fail:
    cJSON_Delete(obj);
    return rc == CV_ENOMEM ? cv_errf(err, rc, "sampling a configuration: out of memory") : rc;
}

/* ---- canonical form ---- */

typedef struct {
    char *buf;
    size_t size, len; /* capacity and bytes written, without the NUL */
    int overflow;     /* 1 once something did not fit */
} strbuf_t;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
sb_printf(strbuf_t *sb, const char *fmt, ...) {
    if (sb->overflow) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->buf + sb->len, sb->size - sb->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sb->size - sb->len)
        sb->overflow = 1;
    else
        sb->len += (size_t)n;
}

static void sb_string(strbuf_t *sb, const char *s) {
    sb_printf(sb, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            sb_printf(sb, "\\%c", c);
        else if (c < 0x20)
            sb_printf(sb, "\\u%04x", c);
        else
            sb_printf(sb, "%c", c);
    }
    sb_printf(sb, "\"");
}

static int compare_keys(const void *a, const void *b) {
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

int cv_space_canonical(const cJSON *values, char *buf, size_t size, char *err) {
    const cJSON *keys[CV_SPACE_MAX_PARAMS];
    size_t n = 0;
    if (!cJSON_IsObject(values))
        return cv_errf(err, CV_EINVAL, "configuration: must be an object, got %s",
                       cv_json_type_name(values));
    for (const cJSON *c = values->child; c != NULL; c = c->next) {
        if (n == CV_SPACE_MAX_PARAMS)
            return cv_errf(err, CV_EINVAL, "configuration: more than %d parameters",
                           CV_SPACE_MAX_PARAMS);
        keys[n++] = c;
    }
    qsort(keys, n, sizeof keys[0], compare_keys);
    strbuf_t sb = {buf, size, 0, size == 0};
    sb_printf(&sb, "{");
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = keys[i];
        if (i > 0 && strcmp(keys[i - 1]->string, v->string) == 0)
            return cv_errf(err, CV_EINVAL, "configuration.%s: given twice", v->string);
        sb_printf(&sb, i > 0 ? "," : "");
        sb_string(&sb, v->string);
        sb_printf(&sb, ":");
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble))
            sb_printf(&sb, "%.17g", v->valuedouble);
        else if (cJSON_IsString(v))
            sb_string(&sb, v->valuestring);
        else if (cJSON_IsBool(v))
            sb_printf(&sb, "%s", cJSON_IsTrue(v) ? "true" : "false");
        else
            return cv_errf(err, CV_EINVAL,
                           "configuration.%s: must be a finite number, a string or a boolean, "
                           "got %s",
                           v->string, cv_json_type_name(v));
    }
    sb_printf(&sb, "}");
    if (sb.overflow)
        return cv_errf(err, CV_ERANGE, "configuration: canonical form needs more than %zu bytes",
                       size);
    return CV_OK;
}

/* ---- refinement ---- */

typedef struct {
    double objective;
    size_t index; /* into the caller's trials */
} ranked_t;

/* Objective ascending, then the earlier trial first, so ties resolve the same way every time. */
static int compare_ranked(const void *a, const void *b) {
    const ranked_t *x = a, *y = b;
    if (x->objective != y->objective) return x->objective < y->objective ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Reads trial t's value of numeric parameter p (the original space's) into x. */
static int trial_number(const cv_space_trial_t *trials, size_t t, const cv_space_param_t *p,
                        double *x, char *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(trials[t].values, p->name);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return cv_errf(err, CV_EINVAL, "trials[%zu].%s: must be a finite number, got %s", t,
                       p->name, cv_json_type_name(v));
    *x = v->valuedouble;
    if (*x < p->min || *x > p->max)
        return cv_errf(err, CV_EINVAL,
                       "trials[%zu].%s: %.17g lies outside the space [%.17g, %.17g]", t, p->name,
                       *x, p->min, p->max);
    return CV_OK;
}

/* Narrows numeric parameter p of the original space around the kept trials into out. */
static int refine_numeric(const cv_space_param_t *p, const cv_space_trial_t *trials,
                          const ranked_t *best, size_t n_best, double margin, cv_space_param_t *out,
                          char *err) {
    double ulo, uhi;
    u_range(p, &ulo, &uhi);
    double width = uhi - ulo;
    double xlo = INFINITY, xhi = -INFINITY, blo = INFINITY, bhi = -INFINITY;
    for (size_t i = 0; i < n_best; i++) {
        double x = 0;
        int rc = trial_number(trials, best[i].index, p, &x, err);
        if (rc != 0) return rc;
        double u = to_u(p, x);
        xlo = fmin(xlo, x);
        xhi = fmax(xhi, x);
        blo = fmin(blo, u);
        bhi = fmax(bhi, u);
    }
    double lo = fmax(blo - margin * width, ulo), hi = fmin(bhi + margin * width, uhi);
    double min_width = CV_SPACE_MIN_WIDTH * width;
    if (hi - lo < min_width) {
        double c = 0.5 * (blo + bhi);
        lo = c - 0.5 * min_width;
        hi = c + 0.5 * min_width;
        if (lo < ulo) {
            hi += ulo - lo;
            lo = ulo;
        }
        if (hi > uhi) {
            lo -= hi - uhi;
            hi = uhi;
        }
    }
    double a = from_u(p, lo), b = from_u(p, hi);
    if (a > b) { /* one_minus_log runs backwards */
        double t = a;
        a = b;
        b = t;
    }
    /* Transform rounding must not exclude a kept trial; then round outward to what the type
     * allows and clip to the original bounds (which already are integers, or 15-digit). */
    a = fmax(fmin(a, xlo), p->min);
    b = fmin(fmax(b, xhi), p->max);
    if (p->scale == CV_SCALE_POWER_OF_TWO) {
        a = ldexp(1.0, pow2_floor_exp(a) > (int)ulo ? pow2_floor_exp(a) : (int)ulo);
        b = ldexp(1.0, pow2_ceil_exp(b) < (int)uhi ? pow2_ceil_exp(b) : (int)uhi);
    } else if (p->type == CV_PARAM_INT) {
        a = floor(a);
        b = ceil(b);
    } else {
        a = quantize(a, -1);
        b = quantize(b, +1);
    }
    out->min = fmax(a, p->min);
    out->max = fmin(b, p->max);
    return CV_OK;
}

/* Re-weights categorical parameter p by its counts among the kept trials (see space.h). */
static int refine_categorical(const cv_space_param_t *p, const cv_space_trial_t *trials,
                              const ranked_t *best, size_t n_best, cv_space_param_t *out,
                              char *err) {
    size_t counts[CV_SPACE_MAX_VALUES] = {0};
    for (size_t i = 0; i < n_best; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(trials[best[i].index].values, p->name);
        int j = find_value(p, v);
        if (j < 0)
            return cv_errf(err, CV_EINVAL, "trials[%zu].%s: not one of the space's values",
                           best[i].index, p->name);
        counts[j]++;
    }
    for (size_t j = 0; j < p->n_values; j++)
        out->weights[j] = quantize((1.0 + (double)counts[j]) / (double)(p->n_values + n_best), 0);
    return CV_OK;
}

int cv_space_refine(const cv_space_t *space, const cv_space_trial_t *trials, size_t n_trials,
                    double keep_fraction, double margin, cv_space_t *region, char *err) {
    int rc = CV_OK;
    ranked_t *ranked = NULL;
    *region = *space;
    if (!(keep_fraction > 0 && keep_fraction <= 1))
        return cv_errf(err, CV_EINVAL, "refine.keep_fraction: must be in (0, 1], got %.17g",
                       keep_fraction);
    if (!(margin >= 0 && margin <= 1))
        return cv_errf(err, CV_EINVAL, "refine.margin: must be in [0, 1], got %.17g", margin);
    if (n_trials == 0) return CV_OK;
    ranked = malloc(n_trials * sizeof *ranked);
    if (ranked == NULL) return cv_errf(err, CV_ENOMEM, "refining the space: out of memory");

    size_t n = 0;
    for (size_t t = 0; t < n_trials; t++)
        if (isfinite(trials[t].objective)) ranked[n++] = (ranked_t){trials[t].objective, t};
    if (n == 0) goto done; /* nothing learned yet: search the whole space */
    qsort(ranked, n, sizeof *ranked, compare_ranked);
    /* The small slack keeps 0.1 · 30 = 3.0000000000000004 from becoming 4. */
    double want = ceil(keep_fraction * (double)n - 1e-9);
    size_t n_best = want < 1 ? 1 : want > (double)n ? n : (size_t)want;

    for (size_t i = 0; i < space->n_params && rc == 0; i++) {
        const cv_space_param_t *p = &space->params[i];
        rc = p->type == CV_PARAM_CATEGORICAL
                 ? refine_categorical(p, trials, ranked, n_best, &region->params[i], err)
                 : refine_numeric(p, trials, ranked, n_best, margin, &region->params[i], err);
    }
    if (rc != 0) *region = *space;
done:
    free(ranked);
    return rc;
}

/* ---- regions as JSON ---- */

int cv_space_region_to_json(const cv_space_t *region, cJSON **out, char *err) {
    *out = NULL;
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) goto nomem;
    for (size_t i = 0; i < region->n_params; i++) {
        const cv_space_param_t *p = &region->params[i];
        cJSON *o = cJSON_AddObjectToObject(root, p->name);
        if (o == NULL) goto nomem;
        if (p->type != CV_PARAM_CATEGORICAL) {
            if (cJSON_AddNumberToObject(o, "min", p->min) == NULL ||
                cJSON_AddNumberToObject(o, "max", p->max) == NULL)
                goto nomem;
            continue;
        }
        cJSON *w = cJSON_AddObjectToObject(o, "weights");
        if (w == NULL) goto nomem;
        for (size_t j = 0; j < p->n_values; j++)
            if (cJSON_AddNumberToObject(w, p->values[j], p->weights[j]) == NULL) goto nomem;
    }
    *out = root;
    return CV_OK;
nomem:
    cJSON_Delete(root);
    return cv_errf(err, CV_ENOMEM, "writing a region: out of memory");
}

/* Reads the bounds of numeric parameter p (of the space) from obj into out. */
static int region_numeric(const cv_space_param_t *p, const cJSON *obj, const char *where,
                          cv_space_param_t *out, char *err) {
    static const char *const fields[] = {"min", "max"};
    int integral = p->type == CV_PARAM_INT;
    int rc = cv_json_check_fields(obj, where, fields, 2, err);
    if (rc == 0) rc = read_bound(obj, where, "min", integral, &out->min, err);
    if (rc == 0) rc = read_bound(obj, where, "max", integral, &out->max, err);
    if (rc != 0) return rc;
    if (out->min < p->min || out->max > p->max || out->min > out->max)
        return cv_errf(err, CV_EINVAL,
                       "%s: [%.17g, %.17g] must be an interval inside the space's [%.17g, %.17g]",
                       where, out->min, out->max, p->min, p->max);
    if (p->scale == CV_SCALE_POWER_OF_TWO && pow2_ceil_exp(out->min) > pow2_floor_exp(out->max))
        return cv_errf(err, CV_EINVAL, "%s: no power of two lies in [%.17g, %.17g]", where,
                       out->min, out->max);
    return CV_OK;
}

/* Reads the weights of categorical parameter p (of the space) from obj into out. */
static int region_categorical(const cv_space_param_t *p, const cJSON *obj, const char *where,
                              cv_space_param_t *out, char *err) {
    static const char *const fields[] = {"weights"};
    const char *names[CV_SPACE_MAX_VALUES];
    char wwhere[WHERE_MAX];
    int rc = cv_json_check_fields(obj, where, fields, 1, err);
    if (rc != 0) return rc;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(obj, "weights");
    snprintf(wwhere, sizeof wwhere, "%.48s.weights", where);
    for (size_t j = 0; j < p->n_values; j++)
        names[j] = p->values[j];
    if ((rc = cv_json_check_fields(w, wwhere, names, p->n_values, err)) != 0) return rc;
    double total = 0.0;
    for (size_t j = 0; j < p->n_values; j++) {
        if ((rc = read_bound(w, wwhere, p->values[j], 0, &out->weights[j], err)) != 0) return rc;
        if (out->weights[j] < 0)
            return cv_errf(err, CV_EINVAL, "%s.%s: must be >= 0, got %.17g", wwhere, p->values[j],
                           out->weights[j]);
        total += out->weights[j];
    }
    if (!(total > 0) || !isfinite(total))
        return cv_errf(err, CV_EINVAL, "%s: must have a positive, finite sum", wwhere);
    return CV_OK;
}

int cv_space_region_from_json(const cv_space_t *space, const cJSON *obj, cv_space_t *region,
                              char *err) {
    const char *names[CV_SPACE_MAX_PARAMS];
    char where[WHERE_MAX];
    *region = *space;
    for (size_t i = 0; i < space->n_params; i++)
        names[i] = space->params[i].name;
    int rc = cv_json_check_fields(obj, "region", names, space->n_params, err);
    for (size_t i = 0; i < space->n_params && rc == 0; i++) {
        const cv_space_param_t *p = &space->params[i];
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, p->name);
        snprintf(where, sizeof where, "region.%s", p->name);
        if (item == NULL)
            rc = cv_errf(err, CV_EINVAL, "%s: required", where);
        else if (p->type == CV_PARAM_CATEGORICAL)
            rc = region_categorical(p, item, where, &region->params[i], err);
        else
            rc = region_numeric(p, item, where, &region->params[i], err);
    }
    if (rc != 0) *region = *space;
    return rc;
}

int cv_space_region_contains(const cv_space_t *region, const cJSON *values) {
    if (!cJSON_IsObject(values) || (size_t)cJSON_GetArraySize(values) != region->n_params) return 0;
    for (size_t i = 0; i < region->n_params; i++) {
        const cv_space_param_t *p = &region->params[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(values, p->name);
        if (p->type == CV_PARAM_CATEGORICAL) {
            int j = find_value(p, v);
            if (j < 0 || !(p->weights[j] > 0)) return 0;
            continue;
        }
        if (!cJSON_IsNumber(v)) return 0;
        double x = v->valuedouble;
        int e;
        if (!(x >= p->min && x <= p->max)) return 0;
        if (p->type == CV_PARAM_INT && x != floor(x)) return 0;
        if (p->scale == CV_SCALE_POWER_OF_TWO && frexp(x, &e) != 0.5) return 0;
    }
    return 1;
}

/* ---- corners and names ---- */

size_t cv_space_corner_count(const cv_space_param_t *param) {
    return param->type == CV_PARAM_CATEGORICAL ? param->n_values : 2;
}

cJSON *cv_space_corner(const cv_space_param_t *param, size_t i, char *label) {
    if (param->type == CV_PARAM_CATEGORICAL) {
        snprintf(label, CV_SPACE_NAME_MAX, "values[%zu]", i);
        return value_json(param, i);
    }
    snprintf(label, CV_SPACE_NAME_MAX, "%s", i == 0 ? "min" : "max");
    double x = i == 0 ? param->min : param->max;
    if (param->scale == CV_SCALE_POWER_OF_TWO)
        x = ldexp(1.0, i == 0 ? pow2_ceil_exp(param->min) : pow2_floor_exp(param->max));
    return cJSON_CreateNumber(x);
}

const char *cv_param_type_name(cv_param_type_t type) {
    switch (type) {
    case CV_PARAM_FLOAT:
        return "float";
    case CV_PARAM_INT:
        return "int";
    case CV_PARAM_CATEGORICAL:
        return "categorical";
    }
    return "unknown";
}

const char *cv_scale_name(cv_scale_t scale) {
    switch (scale) {
    case CV_SCALE_LINEAR:
        return "linear";
    case CV_SCALE_LOG:
        return "log";
    case CV_SCALE_ONE_MINUS_LOG:
        return "one_minus_log";
    case CV_SCALE_POWER_OF_TWO:
        return "power_of_two";
    }
    return "unknown";
}
