/* The trial spec parser: defaults, a table of the flat hyperparameter fields, and the structured
 * fields (dataset, split, per-layer architecture) with the rules that tie fields together.
 * schemas/trial.schema.json states the same rules for other tools; keep the two in step. */
#include "common/trial_spec.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define TRIAL_SPEC_MAX_BYTES (1u << 20) /* a spec file is a few hundred bytes; refuse megabytes */
#define DEFAULT_HIDDEN_UNITS 128
#define DEFAULT_FILES_DEV    (1.0 / 6.0) /* dev share when test files are given and split is not */
#define SPLIT_SUM_TOLERANCE  1e-6

static const char *const activation_names[] = {"relu", "leaky_relu", "tanh", "sigmoid"};
static const char *const output_names[] = {"softmax", "sigmoid"};
static const char *const init_names[] = {"zeros", "random", "xavier", "glorot", "he"};
static const char *const optimizer_names[] = {"gd", "momentum", "rmsprop", "adam"};
static const char *const decay_names[] = {"none",      "inverse_time", "exponential", "sqrt",
                                          "staircase", "cosine"};
static const char *const format_names[] = {"idx", "csv"};

/* The name arrays are indexed by the enum values, so they must list every value in order. */
_Static_assert(ARRAY_LEN(activation_names) == CV_ACT_SIGMOID + 1, "activation names");
_Static_assert(ARRAY_LEN(output_names) == CV_OUT_SIGMOID + 1, "output names");
_Static_assert(ARRAY_LEN(init_names) == CV_INIT_HE + 1, "init names");
_Static_assert(ARRAY_LEN(optimizer_names) == CV_OPT_ADAM + 1, "optimizer names");
_Static_assert(ARRAY_LEN(decay_names) == CV_DECAY_COSINE + 1, "decay names");
_Static_assert(ARRAY_LEN(format_names) == CV_FORMAT_CSV + 1, "format names");

static const cv_json_range_t KEEP_PROB_RANGE = {0, 1, 1, 0}; /* (0, 1] */

/* ---- flat fields ------------------------------------------------------------------------- */

typedef enum {
    KIND_DOUBLE,      /* double */
    KIND_PROBABILITY, /* float keep probability: must stay > 0 after rounding */
    KIND_INT,         /* int */
    KIND_U32,         /* uint32_t */
    KIND_U64,         /* uint64_t */
    KIND_BOOL,        /* int, 0 or 1 */
    KIND_PATH,        /* char[CV_PATH_MAX] */
    KIND_OUTPUT,      /* the enums, each by its own name list */
    KIND_INIT,
    KIND_OPTIMIZER,
    KIND_DECAY,
} field_kind_t;

typedef struct {
    const char *name;      /* JSON name, which is also the struct field's name */
    field_kind_t kind;     /* C type of the field and JSON type expected */
    size_t offset;         /* of the field in cv_trial_spec_t */
    cv_json_range_t range; /* numbers: the accepted interval; integers: [lo, hi] */
} scalar_field_t;

/* The macros and the table read best one field to a line. */
/* clang-format off */
#define OPEN   1
#define CLOSED 0
#define ANY    {0, 0, 0, 0}
#define FIELD(f, kind, lo, lo_open, hi, hi_open) \
    { #f, kind, offsetof(cv_trial_spec_t, f), {lo, hi, lo_open, hi_open} }
#define FIELD_ANY(f, kind) { #f, kind, offsetof(cv_trial_spec_t, f), ANY }

/* Every top-level field that is a single JSON scalar, with its range (see trial_spec.h). */
static const scalar_field_t scalar_fields[] = {
    FIELD(input_keep_prob, KIND_PROBABILITY, 0, OPEN, 1, CLOSED),
    FIELD_ANY(output, KIND_OUTPUT),
    FIELD(leaky_slope, KIND_DOUBLE, 0, CLOSED, 1, OPEN),
    FIELD_ANY(init, KIND_INIT),
    FIELD(init_scale, KIND_DOUBLE, 0, OPEN, HUGE_VAL, OPEN),
    FIELD(l2, KIND_DOUBLE, 0, CLOSED, HUGE_VAL, OPEN),
    FIELD(l1, KIND_DOUBLE, 0, CLOSED, HUGE_VAL, OPEN),
    FIELD(bn_momentum, KIND_DOUBLE, 0, CLOSED, 1, OPEN),
    FIELD(bn_epsilon, KIND_DOUBLE, 0, OPEN, HUGE_VAL, OPEN),
    FIELD_ANY(optimizer, KIND_OPTIMIZER),
    FIELD(learning_rate, KIND_DOUBLE, 0, OPEN, 10, CLOSED),
    FIELD(beta, KIND_DOUBLE, 0, CLOSED, 1, OPEN),
    FIELD(beta1, KIND_DOUBLE, 0, CLOSED, 1, OPEN),
    FIELD(beta2, KIND_DOUBLE, 0, CLOSED, 1, OPEN),
    FIELD(epsilon, KIND_DOUBLE, 0, OPEN, HUGE_VAL, OPEN),
    FIELD(label_smoothing, KIND_DOUBLE, 0, CLOSED, 0.5, OPEN),
    FIELD_ANY(decay, KIND_DECAY),
    FIELD(decay_rate, KIND_DOUBLE, 0, CLOSED, HUGE_VAL, OPEN),
    FIELD(decay_base, KIND_DOUBLE, 0, OPEN, 1, CLOSED),
    FIELD(decay_k, KIND_DOUBLE, 0, OPEN, HUGE_VAL, OPEN),
    FIELD(decay_every, KIND_INT, 1, CLOSED, INT_MAX, CLOSED),
    FIELD(decay_min, KIND_DOUBLE, 0, CLOSED, 1, OPEN),
    FIELD(warmup_epochs, KIND_INT, 0, CLOSED, 100000, CLOSED),
    FIELD(batch_size, KIND_U32, 1, CLOSED, 2147483648.0, CLOSED),
    FIELD(epochs, KIND_INT, 1, CLOSED, 100000, CLOSED),
    FIELD(patience, KIND_INT, 0, CLOSED, INT_MAX, CLOSED),
    FIELD(seed, KIND_U64, 0, CLOSED, 9007199254740992.0, CLOSED),
    FIELD_ANY(augment_flip, KIND_BOOL),
    FIELD(augment_translate, KIND_INT, 0, CLOSED, 8, CLOSED),
    FIELD(human_error, KIND_DOUBLE, 0, CLOSED, 1, CLOSED),
    FIELD(train_eval_examples, KIND_U32, 0, CLOSED, UINT32_MAX, CLOSED),
    FIELD_ANY(save_model, KIND_PATH),
};
/* clang-format on */

/* Top-level fields with a shape of their own, parsed by the functions further down. */
static const char *const structured_fields[] = {
    "dataset", "split", "hidden_layers", "hidden_units", "activation", "keep_prob", "batch_norm",
};

/* Stores a keep probability as a float, refusing one so small that it would round to 0 and
 * break the (0, 1] rule the trainer divides by. */
static int store_probability(float *out, double x, const char *field, char *err) {
    float f = (float)x;
    if (!(f > 0.0f))
        return cv_errf(err, CV_ERANGE, "%s: too small for single precision, got %g", field, x);
    *out = f;
    return 0;
}

/* Reads item as field f and stores it at its offset in spec. */
static int apply_scalar(cv_trial_spec_t *spec, const scalar_field_t *f, const cJSON *item,
                        char *err) {
    void *at = (char *)spec + f->offset;
    double x = 0;
    int64_t v = 0;
    int e = 0, rc = 0;
    switch (f->kind) {
    case KIND_DOUBLE:
        rc = cv_json_get_number(item, f->name, f->range, &x, err);
        if (rc == 0) *(double *)at = x;
        return rc;
    case KIND_PROBABILITY:
        rc = cv_json_get_number(item, f->name, f->range, &x, err);
        return rc != 0 ? rc : store_probability((float *)at, x, f->name, err);
    case KIND_INT:
    case KIND_U32:
    case KIND_U64:
        rc = cv_json_get_int(item, f->name, (int64_t)f->range.lo, (int64_t)f->range.hi, &v, err);
        if (rc != 0) return rc;
        if (f->kind == KIND_INT)
            *(int *)at = (int)v;
        else if (f->kind == KIND_U32)
            *(uint32_t *)at = (uint32_t)v;
        else
            *(uint64_t *)at = (uint64_t)v;
        return 0;
    case KIND_BOOL:
        return cv_json_get_bool(item, f->name, (int *)at, err);
    case KIND_PATH:
        return cv_json_get_string(item, f->name, (char *)at, CV_PATH_MAX, err);
    case KIND_OUTPUT:
        rc = cv_json_get_enum(item, f->name, output_names, ARRAY_LEN(output_names), &e, err);
        if (rc == 0) *(cv_output_t *)at = (cv_output_t)e;
        return rc;
    case KIND_INIT:
        rc = cv_json_get_enum(item, f->name, init_names, ARRAY_LEN(init_names), &e, err);
        if (rc == 0) *(cv_init_t *)at = (cv_init_t)e;
        return rc;
    case KIND_OPTIMIZER:
        rc = cv_json_get_enum(item, f->name, optimizer_names, ARRAY_LEN(optimizer_names), &e, err);
        if (rc == 0) *(cv_optimizer_t *)at = (cv_optimizer_t)e;
        return rc;
    case KIND_DECAY:
        rc = cv_json_get_enum(item, f->name, decay_names, ARRAY_LEN(decay_names), &e, err);
        if (rc == 0) *(cv_decay_t *)at = (cv_decay_t)e;
        return rc;
    }
    return cv_errf(err, CV_EINVAL, "%s: field of unknown kind", f->name);
}

/* ---- architecture ------------------------------------------------------------------------ */

/* Reads one per-layer value (a scalar item) into layers [first, last) of spec. */
typedef int (*layer_setter_fn)(cv_trial_spec_t *spec, const cJSON *item, const char *field,
                               int first, int last, char *err);

static int set_activation(cv_trial_spec_t *spec, const cJSON *item, const char *field, int first,
                          int last, char *err) {
    int e = 0;
    int rc = cv_json_get_enum(item, field, activation_names, ARRAY_LEN(activation_names), &e, err);
    for (int i = first; rc == 0 && i < last; i++)
        spec->activation[i] = (cv_activation_t)e;
    return rc;
}

static int set_keep_prob(cv_trial_spec_t *spec, const cJSON *item, const char *field, int first,
                         int last, char *err) {
    double x = 0;
    float p = 1.0f;
    int rc = cv_json_get_number(item, field, KEEP_PROB_RANGE, &x, err);
    if (rc == 0) rc = store_probability(&p, x, field, err);
    for (int i = first; rc == 0 && i < last; i++)
        spec->keep_prob[i] = p;
    return rc;
}

static int set_batch_norm(cv_trial_spec_t *spec, const cJSON *item, const char *field, int first,
                          int last, char *err) {
    int b = 0;
    int rc = cv_json_get_bool(item, field, &b, err);
    for (int i = first; rc == 0 && i < last; i++)
        spec->batch_norm[i] = b;
    return rc;
}

typedef struct {
    const char *name;                         /* JSON name */
    const char *type_word;                    /* the scalar form, for messages: "a string" */
    cJSON_bool (*is_type)(const cJSON *item); /* recognizes the scalar form */
    layer_setter_fn set;
} per_layer_field_t;

static const per_layer_field_t per_layer_fields[] = {
    {"activation", "a string", cJSON_IsString, set_activation},
    {"keep_prob", "a number", cJSON_IsNumber, set_keep_prob},
    {"batch_norm", "a boolean", cJSON_IsBool, set_batch_norm},
};

/* A per-layer field is one value for every hidden layer, or an array of exactly hidden_layers
 * values. The scalar form fills all CV_MAX_HIDDEN slots so that no slot is left stale. */
static int parse_per_layer(cv_trial_spec_t *spec, const cJSON *obj, const per_layer_field_t *f,
                           char *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, f->name);
    if (item == NULL) return 0;
    if (!cJSON_IsArray(item)) {
        if (!f->is_type(item))
            return cv_errf(err, CV_EINVAL, "%s: must be %s or a per-layer array, got %s", f->name,
                           f->type_word, cv_json_type_name(item));
        return f->set(spec, item, f->name, 0, CV_MAX_HIDDEN, err);
    }
    int n = cJSON_GetArraySize(item);
    if (n != spec->hidden_layers)
        return cv_errf(err, CV_EINVAL,
                       "%s: per-layer array must have %d entries (one per hidden layer), got %d",
                       f->name, spec->hidden_layers, n);
    int i = 0;
    const cJSON *elem;
    cJSON_ArrayForEach(elem, item) {
        char field[48];
        snprintf(field, sizeof field, "%s[%d]", f->name, i);
        int rc = f->set(spec, elem, field, i, i + 1, err);
        if (rc != 0) return rc;
        i++;
    }
    return 0;
}

/* hidden_units is a count repeated hidden_layers times, or one count per layer; hidden_layers,
 * when given beside an array, must agree with its length. Then the per-layer fields. */
static int parse_architecture(cv_trial_spec_t *spec, const cJSON *obj, char *err) {
    const cJSON *layers_item = cJSON_GetObjectItemCaseSensitive(obj, "hidden_layers");
    const cJSON *units_item = cJSON_GetObjectItemCaseSensitive(obj, "hidden_units");
    int64_t v = 0;
    int rc;

    if (layers_item != NULL) {
        rc = cv_json_get_int(layers_item, "hidden_layers", 0, CV_MAX_HIDDEN, &v, err);
        if (rc != 0) return rc;
        spec->hidden_layers = (int)v;
    }

    if (cJSON_IsArray(units_item)) {
        int n = cJSON_GetArraySize(units_item);
        if (n > CV_MAX_HIDDEN)
            return cv_errf(err, CV_ERANGE, "hidden_units: at most %d layers, got %d", CV_MAX_HIDDEN,
                           n);
        if (layers_item != NULL && spec->hidden_layers != n)
            return cv_errf(err, CV_EINVAL,
                           "hidden_layers: is %d but hidden_units lists %d layers; give one "
                           "or make them agree",
                           spec->hidden_layers, n);
        spec->hidden_layers = n;
        int i = 0;
        const cJSON *elem;
        cJSON_ArrayForEach(elem, units_item) {
            char field[32];
            snprintf(field, sizeof field, "hidden_units[%d]", i);
            rc = cv_json_get_int(elem, field, 1, CV_MAX_UNITS, &v, err);
            if (rc != 0) return rc;
            spec->hidden_units[i++] = (int)v;
        }
    } else if (units_item != NULL) {
        if (!cJSON_IsNumber(units_item))
            return cv_errf(err, CV_EINVAL,
                           "hidden_units: must be an integer or an array of integers, got %s",
                           cv_json_type_name(units_item));
        rc = cv_json_get_int(units_item, "hidden_units", 1, CV_MAX_UNITS, &v, err);
        if (rc != 0) return rc;
        for (int i = 0; i < CV_MAX_HIDDEN; i++)
            spec->hidden_units[i] = (int)v;
    }

    for (size_t k = 0; k < ARRAY_LEN(per_layer_fields); k++) {
        rc = parse_per_layer(spec, obj, &per_layer_fields[k], err);
        if (rc != 0) return rc;
    }
    return 0;
}

/* ---- dataset ----------------------------------------------------------------------------- */

static const char *const dataset_fields[] = {
    "format",   "images", "labels",       "test_images", "test_labels",  "csv",
    "test_csv", "header", "label_column", "classes",     "max_examples",
};

/* Fields that only one format reads: giving them to the other is a mistake worth naming. */
typedef struct {
    const char *name;   /* JSON name inside "dataset" */
    cv_format_t format; /* the format that reads it */
    int is_path;        /* 1: a file path, read here into the buffer at offset */
    size_t offset;      /* of the path buffer in cv_trial_spec_t */
} format_field_t;

static const format_field_t format_fields[] = {
    {"images", CV_FORMAT_IDX, 1, offsetof(cv_trial_spec_t, images)},
    {"labels", CV_FORMAT_IDX, 1, offsetof(cv_trial_spec_t, labels)},
    {"test_images", CV_FORMAT_IDX, 1, offsetof(cv_trial_spec_t, test_images)},
    {"test_labels", CV_FORMAT_IDX, 1, offsetof(cv_trial_spec_t, test_labels)},
    {"csv", CV_FORMAT_CSV, 1, offsetof(cv_trial_spec_t, csv)},
    {"test_csv", CV_FORMAT_CSV, 1, offsetof(cv_trial_spec_t, test_csv)},
    {"header", CV_FORMAT_CSV, 0, 0},
    {"label_column", CV_FORMAT_CSV, 0, 0},
};

/* label_column names the CSV label column by header name (a string) or by 0-based index. */
static int parse_label_column(cv_trial_spec_t *spec, const cJSON *item, char *err) {
    const char *field = "dataset.label_column";
    if (cJSON_IsString(item))
        return cv_json_get_string(item, field, spec->label_column, sizeof spec->label_column, err);
    if (!cJSON_IsNumber(item))
        return cv_errf(err, CV_EINVAL, "%s: must be a column name or an index, got %s", field,
                       cv_json_type_name(item));
    int64_t v = 0;
    int rc = cv_json_get_int(item, field, -1, INT_MAX, &v, err);
    if (rc == 0) spec->label_index = (int)v;
    return rc;
}

/* Refuses one of a pair of dataset paths (a, b) given without the other, naming the missing one. */
static int require_pair(const char *a, const char *a_name, const char *b, const char *b_name,
                        char *err) {
    if (a[0] != '\0' && b[0] == '\0')
        return cv_errf(err, CV_EINVAL, "dataset.%s: required when dataset.%s is given", b_name,
                       a_name);
    if (b[0] != '\0' && a[0] == '\0')
        return cv_errf(err, CV_EINVAL, "dataset.%s: required when dataset.%s is given", a_name,
                       b_name);
    return 0;
}

static int parse_dataset(cv_trial_spec_t *spec, const cJSON *ds, char *err) {
    int64_t v = 0;
    int e = 0, rc;
    if (ds == NULL) return cv_errf(err, CV_EINVAL, "dataset: missing; a trial needs its data");
    rc = cv_json_check_fields(ds, "dataset", dataset_fields, ARRAY_LEN(dataset_fields), err);
    if (rc != 0) return rc;

    const cJSON *item = cJSON_GetObjectItemCaseSensitive(ds, "format");
    if (item == NULL)
        return cv_errf(err, CV_EINVAL, "dataset.format: missing; must be \"idx\" or \"csv\"");
    rc = cv_json_get_enum(item, "dataset.format", format_names, ARRAY_LEN(format_names), &e, err);
    if (rc != 0) return rc;
    spec->format = (cv_format_t)e;

    for (size_t k = 0; k < ARRAY_LEN(format_fields); k++) {
        const format_field_t *f = &format_fields[k];
        item = cJSON_GetObjectItemCaseSensitive(ds, f->name);
        if (item == NULL) continue;
        if (f->format != spec->format)
            return cv_errf(err, CV_EINVAL, "dataset.%s: only read with format \"%s\", not \"%s\"",
                           f->name, format_names[f->format], format_names[spec->format]);
        if (!f->is_path) continue; /* header and label_column: read below */
        char field[32];
        snprintf(field, sizeof field, "dataset.%s", f->name);
        rc = cv_json_get_string(item, field, (char *)spec + f->offset, CV_PATH_MAX, err);
        if (rc != 0) return rc;
    }

    if ((item = cJSON_GetObjectItemCaseSensitive(ds, "header")) != NULL &&
        (rc = cv_json_get_bool(item, "dataset.header", &spec->csv_header, err)) != 0)
        return rc;
    if ((item = cJSON_GetObjectItemCaseSensitive(ds, "label_column")) != NULL &&
        (rc = parse_label_column(spec, item, err)) != 0)
        return rc;
    if ((item = cJSON_GetObjectItemCaseSensitive(ds, "classes")) != NULL) {
        if ((rc = cv_json_get_int(item, "dataset.classes", 2, INT_MAX, &v, err)) != 0) return rc;
        spec->classes = (int)v;
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(ds, "max_examples")) != NULL) {
        if ((rc = cv_json_get_int(item, "dataset.max_examples", 1, UINT32_MAX, &v, err)) != 0)
            return rc;
        spec->max_examples = (uint32_t)v;
    }

    if (spec->format == CV_FORMAT_IDX) {
        if (spec->images[0] == '\0')
            return cv_errf(err, CV_EINVAL, "dataset.images: required for format \"idx\"");
        if (spec->labels[0] == '\0')
            return cv_errf(err, CV_EINVAL, "dataset.labels: required for format \"idx\"");
        return require_pair(spec->test_images, "test_images", spec->test_labels, "test_labels",
                            err);
    }
    if (spec->csv[0] == '\0')
        return cv_errf(err, CV_EINVAL, "dataset.csv: required for format \"csv\"");
    return 0;
}

/* ---- split ------------------------------------------------------------------------------- */

/* Reads split after the dataset, since the test files decide which modes are allowed:
 *   absent            auto without test files; files mode with dev = 1/6 with them
 *   "auto"            60/20/20 or 98/1/1 of one file; refused when test files are given
 *   {"dev": f}        files mode: dev is f of the training file, test is the test files
 *   {"train", "dev", "test"}  fractions of one file, summing to 1 (within 1e-6; they are then
 *                     rescaled to sum to 1 exactly as far as doubles allow); refused with test
 *                     files. */
static int parse_split(cv_trial_spec_t *spec, const cJSON *split, char *err) {
    int idx = spec->format == CV_FORMAT_IDX;
    int has_test = (idx ? spec->test_images : spec->test_csv)[0] != '\0';
    const char *test_field = idx ? "dataset.test_images" : "dataset.test_csv";
    static const char *const split_fields[] = {"train", "dev", "test"};
    int rc;

    if (split == NULL) {
        spec->split_mode = has_test ? CV_SPLIT_FILES : CV_SPLIT_AUTO;
        if (has_test) {
            spec->split_dev = DEFAULT_FILES_DEV;
            spec->split_train = 1.0 - DEFAULT_FILES_DEV;
        }
        return 0;
    }
    if (cJSON_IsString(split)) {
        if (strcmp(split->valuestring, "auto") != 0)
            return cv_errf(err, CV_EINVAL, "split: must be \"auto\" or an object, got \"%.64s\"",
                           split->valuestring);
        if (has_test)
            return cv_errf(err, CV_EINVAL,
                           "split: \"auto\" cuts one file in three, but %s is given; use "
                           "{\"dev\": fraction} to test on the test files",
                           test_field);
        spec->split_mode = CV_SPLIT_AUTO;
        return 0;
    }
    if (!cJSON_IsObject(split))
        return cv_errf(err, CV_EINVAL, "split: must be \"auto\" or an object, got %s",
                       cv_json_type_name(split));
    rc = cv_json_check_fields(split, "split", split_fields, ARRAY_LEN(split_fields), err);
    if (rc != 0) return rc;

    const cJSON *train = cJSON_GetObjectItemCaseSensitive(split, "train");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(split, "dev");
    const cJSON *test = cJSON_GetObjectItemCaseSensitive(split, "test");
    if (dev == NULL)
        return cv_errf(err, CV_EINVAL, "split.dev: missing; every split needs a dev set");

    if (train == NULL && test == NULL) {
        if (!has_test)
            return cv_errf(err, CV_EINVAL,
                           "split: {\"dev\": fraction} alone takes the test set from %s, which "
                           "is not given",
                           idx ? "dataset.test_images and dataset.test_labels"
                               : "dataset.test_csv");
        cv_json_range_t open_unit = {0, 1, 1, 1};
        rc = cv_json_get_number(dev, "split.dev", open_unit, &spec->split_dev, err);
        if (rc != 0) return rc;
        spec->split_mode = CV_SPLIT_FILES;
        spec->split_train = 1.0 - spec->split_dev;
        spec->split_test = 0;
        return 0;
    }

    if (has_test)
        return cv_errf(err, CV_EINVAL,
                       "split: train/dev/test fractions cut one file in three, but %s is given; "
                       "use {\"dev\": fraction} to test on the test files",
                       test_field);
    if (train == NULL || test == NULL)
        return cv_errf(err, CV_EINVAL,
                       "split.%s: missing; a fractions split needs train, dev "
                       "and test",
                       train == NULL ? "train" : "test");
    cv_json_range_t positive = {0, 1, 1, 0}, unit = {0, 1, 0, 0};
    double t = 0, d = 0, s = 0;
    if ((rc = cv_json_get_number(train, "split.train", positive, &t, err)) != 0 ||
        (rc = cv_json_get_number(dev, "split.dev", positive, &d, err)) != 0 ||
        (rc = cv_json_get_number(test, "split.test", unit, &s, err)) != 0)
        return rc;
    double sum = t + d + s;
    if (fabs(sum - 1.0) > SPLIT_SUM_TOLERANCE)
        return cv_errf(err, CV_EINVAL,
                       "split: train + dev + test must be 1, got %.10g + %.10g + "
                       "%.10g = %.10g",
                       t, d, s, sum);
    spec->split_mode = CV_SPLIT_FRACTIONS;
    spec->split_train = t / sum;
    spec->split_dev = d / sum;
    spec->split_test = s / sum;
    return 0;
}

/* ---- public ------------------------------------------------------------------------------ */

void cv_trial_spec_defaults(cv_trial_spec_t *spec) {
    memset(spec, 0, sizeof *spec);
    spec->format = CV_FORMAT_IDX;
    spec->csv_header = 1;
    spec->label_index = -1;
    spec->split_mode = CV_SPLIT_AUTO;

    spec->hidden_layers = 1;
    for (int i = 0; i < CV_MAX_HIDDEN; i++) {
        spec->hidden_units[i] = DEFAULT_HIDDEN_UNITS;
        spec->activation[i] = CV_ACT_RELU;
        spec->keep_prob[i] = 1.0f;
        spec->batch_norm[i] = 0;
    }
    spec->input_keep_prob = 1.0f;
    spec->output = CV_OUT_SOFTMAX;
    spec->leaky_slope = 0.01;
    spec->init = CV_INIT_HE;
    spec->init_scale = 1.0;

    spec->bn_momentum = 0.9;
    spec->bn_epsilon = 1e-5;

    spec->optimizer = CV_OPT_ADAM;
    spec->learning_rate = 0.001;
    spec->beta = 0.9;
    spec->beta1 = 0.9;
    spec->beta2 = 0.999;
    spec->epsilon = 1e-8;
    spec->decay = CV_DECAY_NONE;
    spec->decay_rate = 1.0;
    spec->decay_base = 0.95;
    spec->decay_k = 1.0;
    spec->decay_every = 1;
    spec->batch_size = 64;
    spec->epochs = 10;
    spec->patience = 0;
    spec->seed = 1;

    spec->human_error = -1.0;
    spec->train_eval_examples = 10000;
}

int cv_trial_spec_from_json(cv_trial_spec_t *spec, const cJSON *obj, char *err) {
    const char *known[ARRAY_LEN(scalar_fields) + ARRAY_LEN(structured_fields)];
    size_t n = 0;
    for (size_t k = 0; k < ARRAY_LEN(scalar_fields); k++)
        known[n++] = scalar_fields[k].name;
    for (size_t k = 0; k < ARRAY_LEN(structured_fields); k++)
        known[n++] = structured_fields[k];

    cv_trial_spec_defaults(spec);
    if (!cJSON_IsObject(obj))
        return cv_errf(err, CV_EINVAL, "trial spec: must be an object, got %s",
                       cv_json_type_name(obj));
    int rc = cv_json_check_fields(obj, NULL, known, n, err);
    if (rc != 0) return rc;

    for (size_t k = 0; k < ARRAY_LEN(scalar_fields); k++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, scalar_fields[k].name);
        if (item != NULL && (rc = apply_scalar(spec, &scalar_fields[k], item, err)) != 0) return rc;
    }
    if ((rc = parse_architecture(spec, obj, err)) != 0) return rc;
    if ((rc = parse_dataset(spec, cJSON_GetObjectItemCaseSensitive(obj, "dataset"), err)) != 0)
        return rc;
    if ((rc = parse_split(spec, cJSON_GetObjectItemCaseSensitive(obj, "split"), err)) != 0)
        return rc;

    /* A sigmoid output unit scores one class against the other, so it cannot serve more. */
    if (spec->output == CV_OUT_SIGMOID && spec->classes != 0 && spec->classes != 2)
        return cv_errf(err, CV_EINVAL,
                       "output: \"sigmoid\" needs 2 classes, but "
                       "dataset.classes is %d",
                       spec->classes);
    /* The schedule needs at least one epoch after the warmup. */
    if (spec->warmup_epochs >= spec->epochs)
        return cv_errf(err, CV_EINVAL, "warmup_epochs: must be less than epochs (%d), got %d",
                       spec->epochs, spec->warmup_epochs);
    return 0;
}

int cv_trial_spec_parse(cv_trial_spec_t *spec, const char *text, size_t len, char *err) {
    cJSON *root = NULL;
    int rc = cv_json_decode(text, len, &root, err);
    if (rc != 0) {
        cv_trial_spec_defaults(spec);
        return rc;
    }
    rc = cv_trial_spec_from_json(spec, root, err);
    cJSON_Delete(root);
    return rc;
}

int cv_trial_spec_load(cv_trial_spec_t *spec, const char *path, char *err) {
    char inner[CV_ERRLEN];
    cJSON *root = NULL;
    int rc = cv_json_decode_file(path, TRIAL_SPEC_MAX_BYTES, &root, err);
    if (rc != 0) {
        cv_trial_spec_defaults(spec);
        return rc; /* the reason already names the path */
    }
    rc = cv_trial_spec_from_json(spec, root, inner);
    if (rc != 0) cv_errf(err, rc, "%s: %s", path, inner);
    cJSON_Delete(root);
    return rc;
}

/* ---- nudges ------------------------------------------------------------------------------ */

/* What can change between two epochs without restarting: the step size and its schedule, the
 * regularization strengths, the dropout probabilities, the optimizer's moment decays, and when
 * to stop. The architecture, the data and the optimizer's kind cannot. */
static const char *const nudgeable_fields[] = {
    "learning_rate", "decay_rate", "decay_base", "decay_k",   "decay_every",
    "decay_min",     "l2",         "l1",         "keep_prob", "input_keep_prob",
    "beta",          "beta1",      "beta2",      "patience",  "epochs",
};
#define NUDGEABLE_LIST                                                                             \
    "learning_rate, decay_rate, decay_base, decay_k, decay_every, decay_min, l2, l1, "             \
    "keep_prob, input_keep_prob, beta, beta1, beta2, patience, epochs"

const char *cv_trial_spec_nudgeable(void) {
    return NUDGEABLE_LIST;
}

int cv_trial_spec_nudge(cv_trial_spec_t *spec, const cJSON *nudge, char *err) {
    if (!cJSON_IsObject(nudge))
        return cv_errf(err, CV_EINVAL, "nudge: must be an object of new values, got %s",
                       cv_json_type_name(nudge));
    if (nudge->child == NULL)
        return cv_errf(err, CV_EINVAL, "nudge: empty; give new values for any of " NUDGEABLE_LIST);
    for (const cJSON *m = nudge->child; m != NULL; m = m->next) {
        size_t k = 0;
        while (k < ARRAY_LEN(nudgeable_fields) && strcmp(nudgeable_fields[k], m->string) != 0)
            k++;
        if (k < ARRAY_LEN(nudgeable_fields)) continue;
        const char *near =
            cv_json_closest_name(m->string, nudgeable_fields, ARRAY_LEN(nudgeable_fields));
        if (near)
            return cv_errf(
                err, CV_EINVAL,
                "%s: cannot be nudged (did you mean \"%s\"?); nudgeable: " NUDGEABLE_LIST,
                m->string, near);
        return cv_errf(err, CV_EINVAL, "%s: cannot be nudged; nudgeable: " NUDGEABLE_LIST,
                       m->string);
    }
    int rc =
        cv_json_check_fields(nudge, "nudge", nudgeable_fields, ARRAY_LEN(nudgeable_fields), err);
    if (rc != 0) return rc;
    cv_trial_spec_t next = *spec;
    for (size_t k = 0; k < ARRAY_LEN(scalar_fields); k++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(nudge, scalar_fields[k].name);
        if (item != NULL && (rc = apply_scalar(&next, &scalar_fields[k], item, err)) != 0)
            return rc;
    }
    for (size_t k = 0; k < ARRAY_LEN(per_layer_fields); k++) {
        if (strcmp(per_layer_fields[k].name, "keep_prob") != 0) continue;
        if ((rc = parse_per_layer(&next, nudge, &per_layer_fields[k], err)) != 0) return rc;
    }
    if (next.warmup_epochs >= next.epochs)
        return cv_errf(err, CV_EINVAL, "epochs: must be more than warmup_epochs (%d), got %d",
                       next.warmup_epochs, next.epochs);
    *spec = next;
    return 0;
}

const char *cv_activation_name(cv_activation_t a) {
    return (unsigned)a < ARRAY_LEN(activation_names) ? activation_names[a] : "unknown";
}

const char *cv_optimizer_name(cv_optimizer_t o) {
    return (unsigned)o < ARRAY_LEN(optimizer_names) ? optimizer_names[o] : "unknown";
}

const char *cv_init_name(cv_init_t i) {
    return (unsigned)i < ARRAY_LEN(init_names) ? init_names[i] : "unknown";
}

const char *cv_decay_name(cv_decay_t d) {
    return (unsigned)d < ARRAY_LEN(decay_names) ? decay_names[d] : "unknown";
}
