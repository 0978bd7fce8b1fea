/* The trial spec: one JSON object describing one training run (dataset, split, architecture,
 * hyperparameters, epochs, seed), parsed and validated into a plain struct.
 *
 * schemas/trial.schema.json states the same rules; cv_trial_spec_parse enforces them and names
 * the offending field in its error ("learning_rate: must be in (0, 10], got -1"). Hyperparameters
 * are flat top-level fields so that a search job can set any of them by name.
 *
 * JSON shapes beyond plain scalars: "dataset" is an object (format, paths, header, label_column,
 * classes, max_examples); "split" is "auto", {"dev": f} (files mode) or {"train", "dev", "test"}
 * (fractions). When split is absent it is auto, or files mode with dev = 1/6 when test files are
 * given. "hidden_units" is one count repeated hidden_layers times or an array, one per layer;
 * "activation", "keep_prob" and "batch_norm" are one value for every layer or an array with
 * exactly hidden_layers entries. */
#ifndef CV_TRIAL_SPEC_H
#define CV_TRIAL_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define CV_MAX_HIDDEN 32   /* hidden layers at most */
#define CV_MAX_UNITS  65536 /* units per layer at most */
#define CV_PATH_MAX   1024 /* bytes of a path field, with its terminator */

typedef enum { CV_ACT_RELU, CV_ACT_LEAKY_RELU, CV_ACT_TANH, CV_ACT_SIGMOID } cv_activation_t;
typedef enum { CV_OUT_SOFTMAX, CV_OUT_SIGMOID } cv_output_t;
typedef enum { CV_INIT_ZEROS, CV_INIT_RANDOM, CV_INIT_XAVIER, CV_INIT_GLOROT, CV_INIT_HE } cv_init_t;
typedef enum { CV_OPT_GD, CV_OPT_MOMENTUM, CV_OPT_RMSPROP, CV_OPT_ADAM } cv_optimizer_t;
typedef enum {
    CV_DECAY_NONE,         /* α = α₀ */
    CV_DECAY_INVERSE_TIME, /* α = α₀ / (1 + decay_rate · epoch) */
    CV_DECAY_EXPONENTIAL,  /* α = α₀ · decay_base^epoch */
    CV_DECAY_SQRT,         /* α = α₀ · decay_k / √epoch  (α₀ at epoch 0) */
    CV_DECAY_STAIRCASE,    /* α = α₀ / (1 + decay_rate · ⌊epoch / decay_every⌋) */
    CV_DECAY_COSINE,       /* α = α_min + (α₀ − α_min)·(1 + cos(π·epoch / epochs))/2,
                              α_min = decay_min · α₀ */
} cv_decay_t;
typedef enum { CV_FORMAT_IDX, CV_FORMAT_CSV } cv_format_t;
typedef enum {
    CV_SPLIT_AUTO,      /* 60/20/20 below 1,000,000 examples, 98/1/1 at or above */
    CV_SPLIT_FRACTIONS, /* split.train / split.dev / split.test of one file */
    CV_SPLIT_FILES,     /* test from dataset.test_*; dev is split.dev of the training file */
} cv_split_mode_t;

typedef struct {
    /* dataset */
    cv_format_t format;
    char images[CV_PATH_MAX];      /* idx: training image file */
    char labels[CV_PATH_MAX];      /* idx: training label file */
    char test_images[CV_PATH_MAX]; /* idx: held-out test images ("" unless split is files) */
    char test_labels[CV_PATH_MAX];
    char csv[CV_PATH_MAX];         /* csv: the data file */
    char test_csv[CV_PATH_MAX];    /* csv: held-out test file ("" unless split is files) */
    int csv_header;                /* 1 when the first CSV line names the columns (default 1) */
    char label_column[128];        /* CSV label column name, or "" to use label_index */
    int label_index;               /* CSV label column index, −1 = last (default) */
    int classes;                   /* number of classes, 0 = infer from the labels */
    uint32_t max_examples;         /* use only the first N examples of the training file; 0 = all */

    /* split */
    cv_split_mode_t split_mode;
    double split_train, split_dev, split_test; /* fractions (split_train unused for files) */

    /* architecture */
    int hidden_layers;                     /* number of hidden layers, 0..CV_MAX_HIDDEN */
    int hidden_units[CV_MAX_HIDDEN];       /* units per hidden layer */
    cv_activation_t activation[CV_MAX_HIDDEN];
    float keep_prob[CV_MAX_HIDDEN];        /* inverted-dropout keep probability, (0, 1] */
    int batch_norm[CV_MAX_HIDDEN];         /* 1: batch norm on this hidden layer's Z */
    float input_keep_prob;                 /* dropout on the inputs, (0, 1], default 1 */
    cv_output_t output;                    /* default softmax (sigmoid requires 2 classes) */
    double leaky_slope;                    /* leaky_relu slope for z < 0, default 0.01 */
    cv_init_t init;                        /* default he */
    double init_scale;                     /* numerator scale of the init std, default 1 */

    /* regularization */
    double l2;                             /* λ of λ/2m·Σ‖W‖², ≥ 0 */
    double l1;                             /* λ₁ of λ₁/m·Σ|W|, ≥ 0 */
    double bn_momentum;                    /* running-average weight of the past, [0, 1) (0.9) */
    double bn_epsilon;                     /* added to the batch variance, > 0 (1e-5) */

    /* optimization */
    cv_optimizer_t optimizer;              /* default adam */
    double learning_rate;                  /* α₀ > 0 */
    double beta;                           /* momentum β, [0, 1) (0.9) */
    double beta1, beta2;                   /* Adam / RMSprop moments, [0, 1) (0.9, 0.999) */
    double epsilon;                        /* Adam / RMSprop ε > 0 (1e-8) */
    double label_smoothing;                /* ε of the training target (1−ε)·y + ε/C (C = 2
                                              for a sigmoid output), [0, 0.5) (0); reported
                                              costs stay the plain cross-entropy against the
                                              true labels, comparable across trials */
    cv_decay_t decay;
    double decay_rate;                     /* inverse_time, staircase: ≥ 0 (1) */
    double decay_base;                     /* exponential: (0, 1] (0.95) */
    double decay_k;                        /* sqrt: > 0 (1) */
    int decay_every;                       /* staircase: epochs per step, ≥ 1 (1) */
    double decay_min;                      /* cosine: floor as a fraction of α₀, [0, 1) (0) */
    int warmup_epochs;                     /* linear warmup before any schedule: epoch e < W
                                              runs at α₀·(e+1)/(W+1), then the schedule starts
                                              at epoch 0 over epochs − W epochs; < epochs (0) */
    uint32_t batch_size;                   /* ≥ 1; larger than the training set means batch GD */
    int epochs;                            /* ≥ 1 */
    int patience;                          /* early stopping: epochs without a better dev cost
                                              before stopping; 0 = off */
    uint64_t seed;

    /* augmentation (image data only) */
    int augment_flip;                      /* 1: random left-right flips */
    int augment_translate;                 /* max shift in pixels, 0..8 */

    /* reporting */
    double human_error;                    /* human-level (Bayes proxy) error, −1 = not given */
    uint32_t train_eval_examples;          /* training examples scored each epoch; 0 = all */
    char save_model[CV_PATH_MAX];          /* where to write the best model, "" = nowhere */
} cv_trial_spec_t;

/* Fills spec with every default (no dataset). */
void cv_trial_spec_defaults(cv_trial_spec_t *spec);

/* Parses and validates a trial spec object over the defaults. Unknown fields, wrong types and
 * values outside their ranges are refused with err naming the field (CV_EINVAL or CV_ERANGE);
 * on failure spec holds a partial result not to be used. spec is caller-owned; nothing is
 * allocated and obj is only borrowed. */
int cv_trial_spec_from_json(cv_trial_spec_t *spec, const cJSON *obj, char *err);

/* Same from JSON text of len bytes (not necessarily NUL-terminated); a syntax error is
 * CV_EFORMAT with its byte offset in err. */
int cv_trial_spec_parse(cv_trial_spec_t *spec, const char *text, size_t len, char *err);

/* Reads and parses a JSON file of at most 1 MiB; every reason begins with the path. */
int cv_trial_spec_load(cv_trial_spec_t *spec, const char *path, char *err);

/* The hyperparameters a nudge may change while a trial trains, as a list for messages:
 * "learning_rate, decay_rate, ...". Static storage. */
const char *cv_trial_spec_nudgeable(void);

/* Applies a nudge (a JSON object of new values for nudgeable hyperparameters) to spec. Each
 * value obeys the same rule and gets the same message as in a trial spec ("learning_rate: must
 * be in (0, 10], got -1"); keep_prob is one value or a per-layer array as in a spec; epochs must
 * stay above warmup_epochs. An empty object, a field that is not a hyperparameter or one that
 * cannot change mid-training is refused with the list of those that can. On failure spec is
 * left as it was. spec is caller-owned, nudge borrowed; nothing is allocated. */
int cv_trial_spec_nudge(cv_trial_spec_t *spec, const cJSON *nudge, char *err);

/* Names used in JSON for the enums ("relu", "adam", "inverse_time", ...). */
const char *cv_activation_name(cv_activation_t a);
const char *cv_optimizer_name(cv_optimizer_t o);
const char *cv_init_name(cv_init_t i);
const char *cv_decay_name(cv_decay_t d);

#endif
