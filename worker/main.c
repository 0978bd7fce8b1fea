/* caviar-worker: the training engine's command line.
 *   --connect HOST:PORT [--id ID] [--threads N] [--token-file FILE | --token T] [--cache DIR]
 *             [--noop] [--once] [--exit-with-parent PID]
 *             [--trainer NAME=COMMAND]... [--trainer-grace SECONDS] [--trainer-timeout SECONDS]
 *             [--verbose]                              debug log; CAVIAR_WORKER_FAIL_TRIALS=1
 *                                                      fails every trial (a test hook);
 *                                                      CAVIAR_WORKER_DECISION_WAIT=SECONDS
 *                                                      bounds a wait for a pruning decision
 *                                                      (default 30, a test hook)
 *                                                      serve a coordinator (worker/connection.h)
 *   train SPEC.json [--json] [--save MODEL] [--test]   one model, "panda" mode
 *   gradcheck SPEC.json [--examples N] [--coords N]     gradient check in double precision
 *   predict MODEL... DATA [--labels FILE] [--label-column NAME] [--no-header] [--probabilities]
 *                                                      class (and probabilities) per example
 *   evaluate MODEL... DATA [--labels FILE]             accuracy of a model or an ensemble
 * DATA is a CSV file (label in the last column, header row) or an IDX image file whose labels
 * are given with --labels; predict also takes unlabeled data: a CSV with exactly the model's
 * input columns, or IDX images without --labels. Errors go to stderr and exit non-zero. */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/dataset.h"
#include "common/err.h"
#include "common/log.h"
#include "common/message.h"
#include "common/token.h"
#include "common/trial_spec.h"
#include "worker/connection.h"
#include "worker/gradcheck.h"
#include "worker/model_file.h"
#include "worker/report.h"
#include "worker/trainer.h"

#ifndef CV_VERSION
#define CV_VERSION "unknown"
#endif

/* The one process-wide variable: set by SIGTERM and SIGINT, read by the connection loop. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out) {
    fputs("usage: caviar-worker --connect HOST:PORT [--id ID] [--threads N]\n"
          "                     [--token-file FILE | --token T] [--cache DIR]\n"
          "                     [--noop] [--once] [--verbose] [--exit-with-parent PID]\n"
          "                     [--trainer NAME=COMMAND]... [--trainer-grace SECONDS]\n"
          "                     [--trainer-timeout SECONDS]\n"
          "       caviar-worker train SPEC.json [--json] [--save MODEL] [--test]\n"
          "       caviar-worker gradcheck SPEC.json [--examples N] [--coords N]\n"
          "       caviar-worker predict MODEL... DATA [--labels FILE] [--label-column NAME]\n"
          "                     [--no-header] [--probabilities]\n"
          "       caviar-worker evaluate MODEL... DATA [--labels FILE]\n"
          "DATA: a CSV file with a header and the label in the last column, or an IDX image\n"
          "file (raw or gzip) with its IDX label file given by --labels. predict also takes\n"
          "data without labels: a CSV with exactly the model's input columns, or IDX images\n"
          "without --labels; it prints the class of each example (and the label when the data\n"
          "have one), with --probabilities every class's probability too.\n"
          "--connect serves the coordinator until SIGTERM or SIGINT, reconnecting as needed;\n"
          "--once exits when the first connection ends; --noop answers trials with synthetic\n"
          "results. The dataset cache defaults to $XDG_CACHE_HOME/caviar or ~/.cache/caviar.\n"
          "The worker token comes from --token-file FILE, else CAVIAR_WORKER_TOKEN; --token T\n"
          "also works but shows the token to every local user in ps.\n"
          "--exit-with-parent PID: stop when process PID, which started this worker, exits.\n"
          "--trainer NAME=COMMAND (repeatable): run COMMAND with /bin/sh -c for each trial of a\n"
          "job whose trainer is NAME; --trainer-grace (5) is the seconds from SIGTERM to\n"
          "SIGKILL when such a program is stopped, --trainer-timeout (0: none) the seconds it\n"
          "may run.\n"
          "Every option takes its value as --opt VALUE or --opt=VALUE.\n",
          out);
}

/* Reads a whole decimal number in [lo, hi] from text. Returns 0 or -1. */
static int read_long(const char *text, long lo, long hi, long *out) {
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Prints why getopt_long refused an option of command cmd (val ':' for a missing value, '?' for
 * an unknown option or a value given to a flag), naming it from table. Every option value in the
 * tables is >= 256, so that a short option never matches one. Returns 2, the usage exit code. */
static int refuse_option(const char *cmd, int val, const struct option *table, char **argv) {
    const char *name = NULL;
    for (const struct option *o = table; o->name; o++)
        if (o->val == optopt) name = o->name;
    if (val == ':' && name)
        fprintf(stderr, "caviar-worker %s: --%s needs a value\n", cmd, name);
    else if (name)
        fprintf(stderr, "caviar-worker %s: --%s takes no value\n", cmd, name);
    else
        fprintf(stderr, "caviar-worker %s: unknown or ambiguous option '%s'\n", cmd,
                argv[optind - 1]);
    return 2;
}

typedef struct {
    int json;
    cJSON *curve; /* epoch reports collected for --json */
} train_view_t;

static int on_epoch(const cv_epoch_t *m, void *userdata) {
    train_view_t *v = userdata;
    if (v->json) {
        cJSON *e = cv_report_epoch(m);
        if (e) cJSON_AddItemToArray(v->curve, e);
        return 0;
    }
    printf("epoch %3d  lr %.3g  train cost %.4f (with reg %.4f) error %6.2f%%  "
           "dev cost %.4f error %6.2f%%  %7.0f ex/s  %.1f s\n",
           (int)m->epoch, m->learning_rate, m->train_cost, m->train_cost_reg, 100 * m->train_error,
           m->dev_cost, 100 * m->dev_error, m->examples_per_second, m->seconds);
    fflush(stdout);
    return 0;
}

/* train SPEC.json [--json] [--save MODEL] [--test]; argv[0] is "train". */
static int cmd_train(int argc, char **argv) {
    enum { OPT_JSON = 256, OPT_TEST, OPT_SAVE };
    static const struct option table[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"test", no_argument, NULL, OPT_TEST},
        {"save", required_argument, NULL, OPT_SAVE},
        {NULL, 0, NULL, 0},
    };
    const char *spec_path = NULL, *save = NULL;
    train_view_t view = {0};
    cv_train_options_t opts = {.on_epoch = on_epoch, .userdata = &view};
    opterr = 0;
    optind = 1;
    for (int val; (val = getopt_long(argc, argv, ":", table, NULL)) != -1;) {
        if (val == OPT_JSON) view.json = 1;
        else if (val == OPT_TEST) opts.evaluate_test = 1;
        else if (val == OPT_SAVE) save = optarg;
        else return refuse_option("train", val, table, argv);
    }
    if (argc - optind > 1) {
        fprintf(stderr, "caviar-worker train: unexpected argument '%s'\n", argv[optind + 1]);
        return 2;
    }
    if (argc - optind < 1) {
        usage(stderr);
        return 2;
    }
    spec_path = argv[optind];
    char err[CV_ERRLEN];
    cv_trial_spec_t spec;
    if (cv_trial_spec_load(&spec, spec_path, err)) {
        fprintf(stderr, "caviar-worker: %s\n", err);
        return 1;
    }
    opts.save_model = save;
    if (view.json && !(view.curve = cJSON_CreateArray())) {
        fprintf(stderr, "caviar-worker: out of memory\n");
        return 1;
    }
    cv_trial_result_t res;
    int rc = cv_train_run(&spec, &opts, &res, err);
    if (view.json) {
        cJSON *out = cv_report_result(&res, view.curve);
        char *text = out ? cJSON_PrintUnformatted(out) : NULL;
        if (text) puts(text);
        free(text);
        cJSON_Delete(out);
    } else if (rc == 0 && res.best_epoch == 0) {
        printf("%s after %d epochs, no epoch to report\n", cv_trial_status_name(res.status),
               res.epochs_run);
        if (res.status == CV_TRIAL_DIVERGED) printf("diverged: %s\n", res.error);
    } else if (rc == 0) {
        printf("%s after %d epochs: best epoch %d, train error %.2f%%, dev error %.2f%% "
               "(dev accuracy %.4f), dev cost %.4f, %.0f examples/s\n",
               cv_trial_status_name(res.status), res.epochs_run, res.best_epoch,
               100 * res.best.train_error, 100 * res.best.dev_error, 1 - res.best.dev_error,
               res.best.dev_cost, res.examples_per_second);
        if (res.best_epoch > 0)
            printf("diagnosis: %s (avoidable bias %.2f%%, variance %.2f%%): %s\n",
                   res.diagnosis.name, 100 * res.diagnosis.avoidable_bias,
                   100 * res.diagnosis.variance, res.diagnosis.remedy);
        if (res.tested)
            printf("test error %.2f%% (test accuracy %.4f)\n", 100 * res.test_error,
                   1 - res.test_error);
        if (res.status == CV_TRIAL_DIVERGED) printf("diverged: %s\n", res.error);
    }
    if (rc) {
        fprintf(stderr, "caviar-worker: %s\n", err);
        return 1;
    }
    return res.status == CV_TRIAL_COMPLETED ? 0 : 3;
}

/* gradcheck SPEC.json [--examples N] [--coords N]; argv[0] is "gradcheck". */
static int cmd_gradcheck(int argc, char **argv) {
    enum { OPT_EXAMPLES = 256, OPT_COORDS };
    static const struct option table[] = {
        {"examples", required_argument, NULL, OPT_EXAMPLES},
        {"coords", required_argument, NULL, OPT_COORDS},
        {NULL, 0, NULL, 0},
    };
    const char *spec_path = NULL;
    long examples = 8, coords = 2000;
    opterr = 0;
    optind = 1;
    for (int val; (val = getopt_long(argc, argv, ":", table, NULL)) != -1;) {
        if (val == OPT_EXAMPLES && read_long(optarg, 1, 1L << 30, &examples) == 0) continue;
        if (val == OPT_COORDS && read_long(optarg, 0, 1L << 30, &coords) == 0) continue;
        if (val == OPT_EXAMPLES || val == OPT_COORDS) {
            fprintf(stderr, "caviar-worker gradcheck: bad value for --%s: '%s' (want an integer "
                    "of at least %d)\n", val == OPT_EXAMPLES ? "examples" : "coords", optarg,
                    val == OPT_EXAMPLES ? 1 : 0);
            return 2;
        }
        return refuse_option("gradcheck", val, table, argv);
    }
    if (argc - optind > 1) {
        fprintf(stderr, "caviar-worker gradcheck: unexpected argument '%s'\n",
                argv[optind + 1]);
        return 2;
    }
    if (argc - optind < 1) {
        usage(stderr);
        return 2;
    }
    spec_path = argv[optind];
    char err[CV_ERRLEN];
    cv_trial_spec_t spec;
    cv_gradcheck_result_t res;
    if (cv_trial_spec_load(&spec, spec_path, err) ||
        cv_gradcheck_spec(&spec, (size_t)examples, (size_t)coords, &res, err)) {
        fprintf(stderr, "caviar-worker: %s\n", err);
        return 1;
    }
    printf("relative difference %.3e over %zu of %zu parameters: %s\n", res.relative_difference,
           res.checked, res.n_params, res.verdict);
    if (strcmp(res.verdict, "correct"))
        printf("largest difference at parameter %zu: numeric %.10e, analytic %.10e\n",
               res.worst_index, res.worst_numeric, res.worst_analytic);
    return strcmp(res.verdict, "bug") ? 0 : 3;
}

/* Loads DATA: CSV when labels is NULL and the name ends in .csv, else IDX images + labels. */
static int load_data(cv_dataset_t *ds, const char *path, const char *labels, char *err) {
    size_t len = strlen(path);
    if (!labels && len >= 4 && !strcmp(path + len - 4, ".csv")) {
        cv_csv_options_t o = {.header = 1, .label_index = -1, .delimiter = ','};
        return cv_dataset_load_csv(ds, path, &o, err);
    }
    if (!labels)
        return cv_errf(err, CV_EINVAL, "%s: not a .csv file; IDX images need --labels FILE", path);
    return cv_dataset_load_idx(ds, path, labels, err);
}

/* Loads predict's DATA for an ensemble taking n inputs: a CSV whose rows hold exactly n fields
 * has no labels; otherwise its label is the column named label_column or the last one. IDX
 * images have labels only with a label file. Unlabeled examples get label -1. */
static int load_predict_data(cv_dataset_t *ds, const char *path, const char *labels,
                             const char *label_column, int header, size_t n, char *err) {
    size_t len = strlen(path);
    int rc;
    if (len >= 4 && !strcmp(path + len - 4, ".csv")) {
        if (labels)
            return cv_errf(err, CV_EINVAL,
                           "%s: --labels is for IDX images; a CSV holds its "
                           "labels in a column",
                           path);
        cv_csv_options_t o = {.header = header,
                              .label_name = label_column,
                              .label_index = -1,
                              .delimiter = ',',
                              .unlabeled_width = n};
        rc = cv_dataset_load_csv(ds, path, &o, err);
    } else {
        rc = cv_dataset_load_idx(ds, path, labels, err);
    }
    if (rc == 0 && ds->n != n) {
        rc = cv_errf(err, CV_EINVAL,
                     "%s: the examples have %zu features, the model takes %zu "
                     "(a CSV needs exactly %zu columns, or %zu and a label column)",
                     path, ds->n, n, n, n + 1);
        cv_dataset_finish(ds);
    }
    return rc;
}

/* Collects the model paths and the data path after getopt_long: at least one model and the data,
 * at most 63 models. Returns the count, or -1 after printing the usage. */
static int model_paths(const char *cmd, int argc, char **argv, const char **paths) {
    if (argc - optind > 64) {
        fprintf(stderr, "caviar-worker %s: at most 63 models\n", cmd);
        return -1;
    }
    int count = 0;
    for (int i = optind; i < argc; i++)
        paths[count++] = argv[i];
    if (count < 2) {
        usage(stderr);
        return -1;
    }
    return count;
}

/* predict MODEL... DATA: one line per example, "index[,label],predicted[,p_0,...]"; argv[0] is
 * the command. */
static int cmd_predict(int argc, char **argv) {
    enum { OPT_LABELS = 256, OPT_LABEL_COLUMN, OPT_PROBABILITIES, OPT_NO_HEADER };
    static const struct option table[] = {
        {"labels", required_argument, NULL, OPT_LABELS},
        {"label-column", required_argument, NULL, OPT_LABEL_COLUMN},
        {"probabilities", no_argument, NULL, OPT_PROBABILITIES},
        {"no-header", no_argument, NULL, OPT_NO_HEADER},
        {NULL, 0, NULL, 0},
    };
    const char *labels = NULL, *label_column = NULL, *paths[64];
    int probabilities = 0, header = 1;
    opterr = 0;
    optind = 1;
    for (int val; (val = getopt_long(argc, argv, ":", table, NULL)) != -1;) {
        if (val == OPT_LABELS) labels = optarg;
        else if (val == OPT_LABEL_COLUMN) label_column = optarg;
        else if (val == OPT_PROBABILITIES) probabilities = 1;
        else if (val == OPT_NO_HEADER) header = 0;
        else return refuse_option(argv[0], val, table, argv);
    }
    int count = model_paths(argv[0], argc, argv, paths);
    if (count < 0) return 2;
    char err[CV_ERRLEN];
    cv_ensemble_t ens = {0};
    cv_dataset_t ds = {0};
    float *probs = NULL;
    int rc = 1;
    if (cv_ensemble_load(&ens, paths, count - 1, err) ||
        load_predict_data(&ds, paths[count - 1], labels, label_column, header, ens.n_features,
                          err)) {
        fprintf(stderr, "caviar-worker: %s\n", err);
        goto done;
    }
    probs = malloc(ds.m * (size_t)ens.classes * sizeof *probs);
    if (!probs) {
        fprintf(stderr, "caviar-worker: out of memory\n");
        goto done;
    }
    cv_ensemble_predict(&ens, ds.x, ds.m, probs);
    int labelled = ds.classes > 0;
    printf("index%s,predicted", labelled ? ",label" : "");
    for (int c = 0; probabilities && c < ens.classes; c++)
        printf(",p_%d", c);
    putchar('\n');
    for (size_t i = 0; i < ds.m; i++) {
        const float *p = probs + i * (size_t)ens.classes;
        int best = 0;
        for (int c = 1; c < ens.classes; c++)
            best = p[c] > p[best] ? c : best;
        printf("%zu", i);
        if (labelled) printf(",%d", ds.y[i]);
        printf(",%d", best);
        for (int c = 0; probabilities && c < ens.classes; c++)
            printf(",%.6f", p[c]);
        putchar('\n');
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    free(probs);
    cv_ensemble_finish(&ens);
    cv_dataset_finish(&ds);
    return rc;
}

/* evaluate MODEL... DATA [--labels FILE]: the accuracy of one model or an ensemble on labelled
 * data; argv[0] is the command. */
static int cmd_evaluate(int argc, char **argv) {
    enum { OPT_LABELS = 256 };
    static const struct option table[] = {
        {"labels", required_argument, NULL, OPT_LABELS},
        {NULL, 0, NULL, 0},
    };
    const char *labels = NULL, *paths[64];
    opterr = 0;
    optind = 1;
    for (int val; (val = getopt_long(argc, argv, ":", table, NULL)) != -1;) {
        if (val == OPT_LABELS) labels = optarg;
        else return refuse_option(argv[0], val, table, argv);
    }
    int count = model_paths(argv[0], argc, argv, paths);
    if (count < 0) return 2;
    char err[CV_ERRLEN];
    cv_ensemble_t ens = {0};
    cv_dataset_t ds = {0};
    int rc = 1;
    if (load_data(&ds, paths[count - 1], labels, err) ||
        cv_ensemble_load(&ens, paths, count - 1, err)) {
        fprintf(stderr, "caviar-worker: %s\n", err);
        goto done;
    }
    double accuracy, cost;
    if (cv_ensemble_evaluate(&ens, &ds, &accuracy, &cost, err)) {
        fprintf(stderr, "caviar-worker: %s\n", err);
        goto done;
    }
    printf("%s of %d model%s on %zu examples: accuracy %.4f, error %.2f%%, cost %.4f\n",
           count - 1 > 1 ? "ensemble" : "model", count - 1, count - 1 > 1 ? "s" : "", ds.m,
           accuracy, 100 * (1 - accuracy), cost);
    rc = 0;
done:
    cv_ensemble_finish(&ens);
    cv_dataset_finish(&ds);
    return rc;
}

/* The default worker id, "<hostname>-<pid>", with characters outside [A-Za-z0-9._:-] turned
 * into '-' and the host name cut so that the id fits CV_MSG_WORKER_ID_MAX. */
static void default_worker_id(const char *hostname, char *out, size_t cap) {
    char pid[24];
    snprintf(pid, sizeof pid, "-%ld", (long)getpid());
    size_t room = CV_MSG_WORKER_ID_MAX - strlen(pid), n = 0;
    for (; hostname[n] && n < room && n + 1 < cap; n++) {
        char c = hostname[n];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        out[n] = ok ? c : '-';
    }
    snprintf(out + n, cap - n, "%s", n ? pid : pid + 1);
}


/* The worker token, into out (cap bytes, "" for none): --token, else --token-file, else the
 * CAVIAR_WORKER_TOKEN environment variable (unset or empty: none), by common/token.h's rules.
 * Returns 0, or 2 after printing the reason. */
static int resolve_token(const char *token, const char *token_file, char *out, size_t cap) {
    char err[CV_ERRLEN];
    const char *env = getenv("CAVIAR_WORKER_TOKEN");
    int rc = 0;
    out[0] = '\0';
    if (token && token_file) {
        fprintf(stderr, "caviar-worker: give --token or --token-file, not both\n");
        return 2;
    }
    if (token)
        rc = cv_token_parse(token, strlen(token), CV_MSG_TOKEN_MAX, "--token", out, cap, err);
    else if (token_file)
        rc = cv_token_read_file(token_file, CV_MSG_TOKEN_MAX, out, cap, err);
    else if (env && *env)
        rc = cv_token_parse(env, strlen(env), CV_MSG_TOKEN_MAX, "CAVIAR_WORKER_TOKEN", out, cap,
                            err);
    if (rc) {
        fprintf(stderr, "caviar-worker: %s\n", err);
        return 2;
    }
    return 0;
}

/* --exit-with-parent PID: the kernel sends this process SIGTERM when its parent exits, however
 * it exits (caviard killed by SIGKILL included), so that local workers never outlive their
 * coordinator. PID is the parent that started us: if it has already gone (we were reparented
 * before prctl took effect), we stop at once. Returns 0, or 1 after printing the reason. */
static int exit_with_parent(long parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
        fprintf(stderr, "caviar-worker: --exit-with-parent: prctl: %s\n", strerror(errno));
        return 1;
    }
    if ((long)getppid() != parent) {
        fprintf(stderr, "caviar-worker: --exit-with-parent: process %ld, which started this "
                "worker, has exited\n", parent);
        return 1;
    }
    return 0;
}

/* The options of --connect mode. Strings point into argv. */
typedef struct {
    const char *address, *id, *token, *token_file, *cache;
    long threads;    /* --threads, 1..1024 */
    long parent;     /* --exit-with-parent, 0 when not given */
    int noop, once, verbose;
    cv_trainer_def_t trainers[CV_MSG_TRAINERS_MAX]; /* --trainer, in order */
    size_t n_trainers;
    double trainer_grace;   /* --trainer-grace, seconds > 0 */
    double trainer_timeout; /* --trainer-timeout, seconds >= 0 (0: none) */
} connect_options_t;

enum {
    OPT_CONNECT = 256, OPT_ID, OPT_THREADS, OPT_TOKEN, OPT_TOKEN_FILE, OPT_CACHE, OPT_NOOP,
    OPT_ONCE, OPT_VERBOSE, OPT_EXIT_WITH_PARENT, OPT_TRAINER, OPT_TRAINER_GRACE,
    OPT_TRAINER_TIMEOUT,
};

static const struct option CONNECT_OPTIONS[] = {
    {"connect", required_argument, NULL, OPT_CONNECT},
    {"id", required_argument, NULL, OPT_ID},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"cache", required_argument, NULL, OPT_CACHE},
    {"noop", no_argument, NULL, OPT_NOOP},
    {"once", no_argument, NULL, OPT_ONCE},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"exit-with-parent", required_argument, NULL, OPT_EXIT_WITH_PARENT},
    {"trainer", required_argument, NULL, OPT_TRAINER},
    {"trainer-grace", required_argument, NULL, OPT_TRAINER_GRACE},
    {"trainer-timeout", required_argument, NULL, OPT_TRAINER_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *connect_option_name(int val) {
    for (const struct option *o = CONNECT_OPTIONS; o->name; o++)
        if (o->val == val) return o->name;
    return "?";
}

/* Parses the --connect command line (argv[0] is the program) into o. Returns 0, 1 for --help,
 * or -1 after a message naming the option at fault. */
static int parse_connect(connect_options_t *o, int argc, char **argv) {
    *o = (connect_options_t){.threads = 1, .trainer_grace = CV_TRAINER_GRACE_DEFAULT};
    char err[CV_ERRLEN];
    opterr = 0; /* the messages below name the option */
    optind = 1;
    for (;;) {
        int val = getopt_long(argc, argv, ":h", CONNECT_OPTIONS, NULL);
        const char *v = optarg;
        if (val == -1) break;
        switch (val) {
        case 'h': return 1;
        case ':':
            fprintf(stderr, "caviar-worker: --%s needs a value\n", connect_option_name(optopt));
            return -1;
        case '?':
            if (optopt >= OPT_CONNECT)
                fprintf(stderr, "caviar-worker: --%s takes no value\n",
                        connect_option_name(optopt));
            else
                fprintf(stderr, "caviar-worker: unknown or ambiguous option '%s'\n",
                        argv[optind - 1]);
            return -1;
        case OPT_CONNECT: o->address = v; break;
        case OPT_ID: o->id = v; break;
        case OPT_TOKEN: o->token = v; break;
        case OPT_TOKEN_FILE: o->token_file = v; break;
        case OPT_CACHE: o->cache = v; break;
        case OPT_NOOP: o->noop = 1; break;
        case OPT_ONCE: o->once = 1; break;
        case OPT_VERBOSE: o->verbose = 1; break;
        case OPT_THREADS:
            if (read_long(v, 1, 1024, &o->threads) != 0) {
                fprintf(stderr, "caviar-worker: --threads must be an integer in [1, 1024], "
                        "got '%s'\n", v);
                return -1;
            }
            break;
        case OPT_TRAINER:
            if (o->n_trainers == CV_MSG_TRAINERS_MAX) {
                fprintf(stderr, "caviar-worker: --trainer: at most %d trainers\n",
                        CV_MSG_TRAINERS_MAX);
                return -1;
            }
            if (cv_trainer_def_parse(v, &o->trainers[o->n_trainers], err) != 0) {
                fprintf(stderr, "caviar-worker: %s\n", err);
                return -1;
            }
            for (size_t i = 0; i < o->n_trainers; i++)
                if (!strcmp(o->trainers[i].name, o->trainers[o->n_trainers].name)) {
                    fprintf(stderr, "caviar-worker: --trainer %s is given twice\n",
                            o->trainers[i].name);
                    return -1;
                }
            o->n_trainers++;
            break;
        case OPT_TRAINER_GRACE:
        case OPT_TRAINER_TIMEOUT: {
            char *end = NULL;
            double x = strtod(v, &end);
            int grace = val == OPT_TRAINER_GRACE;
            if (end == v || *end || !isfinite(x) || (grace ? x <= 0 : x < 0) || x > 1e7) {
                fprintf(stderr, "caviar-worker: --%s must be a number of seconds %s, got '%s'\n",
                        connect_option_name(val), grace ? "above 0" : "of at least 0 (0: none)",
                        v);
                return -1;
            }
            if (grace) o->trainer_grace = x;
            else o->trainer_timeout = x;
            break;
        }
        case OPT_EXIT_WITH_PARENT:
            if (read_long(v, 1, LONG_MAX, &o->parent) != 0) {
                fprintf(stderr, "caviar-worker: --exit-with-parent must be a process id, got "
                        "'%s'\n", v);
                return -1;
            }
            break;
        default: return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "caviar-worker: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!o->address) {
        fprintf(stderr, "caviar-worker: --connect HOST:PORT is required\n");
        return -1;
    }
    return 0;
}

static int cmd_connect(int argc, char **argv) {
    connect_options_t co;
    int parsed = parse_connect(&co, argc, argv);
    if (parsed) {
        usage(parsed > 0 ? stdout : stderr);
        return parsed > 0 ? 0 : 2;
    }
    const char *address = co.address, *id = co.id, *cache = co.cache;
    long threads = co.threads;
    int noop = co.noop, once = co.once, verbose = co.verbose;
    if (co.parent && exit_with_parent(co.parent)) return 1;
    char err[CV_ERRLEN], host[256], port[64], hostname[256] = "";
    char token_buf[CV_MSG_TOKEN_MAX + 1];
    int rc = resolve_token(co.token, co.token_file, token_buf, sizeof token_buf);
    if (rc) return rc;
    char worker_id[CV_MSG_WORKER_ID_MAX + 1], cache_buf[4096];
    if (cv_conn_parse_address(address, host, sizeof host, port, sizeof port, err) != 0) {
        fprintf(stderr, "caviar-worker: %s\n", err);
        return 2;
    }
    if (gethostname(hostname, sizeof hostname - 1) != 0)
        snprintf(hostname, sizeof hostname, "worker");
    hostname[CV_MSG_HOST_MAX] = '\0';
    if (id) {
        cv_msg_hello_t probe = {.version = "", .threads = 1, .host = ""};
        snprintf(probe.worker_id, sizeof probe.worker_id, "%s", id);
        cJSON *hello = strlen(id) <= CV_MSG_WORKER_ID_MAX ? cv_msg_hello(&probe, err) : NULL;
        if (!hello) {
            fprintf(stderr, "caviar-worker: --id must match [A-Za-z0-9._:-]{1,64}, got '%s'\n",
                    id);
            return 2;
        }
        cJSON_Delete(hello);
        snprintf(worker_id, sizeof worker_id, "%s", id);
    } else {
        default_worker_id(hostname, worker_id, sizeof worker_id);
    }
    if (!cache) {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && *xdg) {
            snprintf(cache_buf, sizeof cache_buf, "%s/caviar", xdg);
            cache = cache_buf;
        } else if (home && *home) {
            snprintf(cache_buf, sizeof cache_buf, "%s/.cache/caviar", home);
            cache = cache_buf;
        }
    }
    const char *tmp = getenv("TMPDIR");
    double decision_wait = 0;
    const char *wait_text = getenv("CAVIAR_WORKER_DECISION_WAIT");
    if (wait_text && *wait_text) {
        char *end = NULL;
        decision_wait = strtod(wait_text, &end);
        if (*end != '\0' || !(decision_wait > 0 && decision_wait <= CV_DECISION_WAIT_MAX)) {
            fprintf(stderr,
                    "caviar-worker: CAVIAR_WORKER_DECISION_WAIT must be a number of seconds in "
                    "(0, %g], got '%s'\n",
                    CV_DECISION_WAIT_MAX, wait_text);
            return 2;
        }
    }
    /* The external programs' working directories: per worker id, so that workers sharing a
     * cache never end each other's programs at start-up. */
    char runs_dir[4096 + 96];
    snprintf(runs_dir, sizeof runs_dir, "%.4000s/trainer-runs/%s",
             cache ? cache : tmp && *tmp ? tmp : "/tmp", worker_id);
    int reaped = cv_external_reap(runs_dir, NULL, err);
    if (reaped < 0) fprintf(stderr, "caviar-worker: %s\n", err);
    else if (reaped > 0)
        fprintf(stderr, "caviar-worker: ended %d trainer process group(s) an earlier run of "
                "this worker left in %s\n", reaped, runs_dir);
    openblas_set_num_threads((int)threads); /* N workers on a machine do not oversubscribe it */

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocking call returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    cv_log_t log = {.min_level = verbose ? CV_LOG_DEBUG : CV_LOG_INFO, .name = "caviar-worker"};
    cv_conn_options_t opts = {
        .host = host, .port = port, .worker_id = worker_id, .version = CV_VERSION,
        .hostname = hostname, .token = token_buf[0] ? token_buf : NULL,
        .threads = (int)threads, .cache_dir = cache,
        .tmp_dir = tmp && *tmp ? tmp : "/tmp", .noop = noop, .once = once,
        .fail_trials = getenv("CAVIAR_WORKER_FAIL_TRIALS") &&
                       !strcmp(getenv("CAVIAR_WORKER_FAIL_TRIALS"), "1"),
        .decision_wait = decision_wait, .trainers = co.trainers, .n_trainers = co.n_trainers,
        .trainer_grace = co.trainer_grace, .trainer_timeout = co.trainer_timeout,
        .runs_dir = runs_dir, .stop = &stop_requested, .log = &log,
    };
    if (cv_conn_run(&opts, err) != 0) {
        fprintf(stderr, "caviar-worker: %s\n", err);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--connect") || !strncmp(argv[i], "--connect=", 10))
            return cmd_connect(argc, argv);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "gradcheck")) return cmd_gradcheck(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "evaluate")) return cmd_evaluate(argc - 1, argv + 1);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "caviar-worker: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
