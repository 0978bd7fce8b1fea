/* The worker protocol's messages (protocol 1): one builder per message type, the encoder that
 * turns a message into a JSON frame, and the validating parser both sides run on every frame
 * they receive.
 *
 * schemas/worker-messages.schema.json is the contract and schemas/protocol.md says when each
 * message is sent. cv_msg_validate enforces the schema's rules in C: the type is known, required
 * fields are present with the right JSON types, integers are integral and in range, lease tokens
 * are 32 lowercase hex digits, hashes 64, worker ids match [A-Za-z0-9._:-]{1,64}, metrics are
 * finite numbers in their intervals, and unknown fields are refused wherever the schema says
 * additionalProperties false (the "result" sub-object is open: a worker may report more). Every
 * reason begins with the message type and names the field by its path from the message root:
 * "result: result.dev_error: must be a number in [0, 1] or null, got \"x\"".
 *
 * Limits the schema leaves open and C bounds (also stated in schemas/protocol.md): welcome's
 * reattached holds at most CV_MSG_LEASES_MAX ids, like hello's leases; a trial's files are keyed
 * by the trial spec's dataset path fields (images, labels, test_images, test_labels, csv,
 * test_csv); ids are at most 2^53, where doubles stop holding every integer. A trial's spec is
 * only required to be an object here: its own rules are the trial spec parser's, so that a bad
 * spec fails that one trial instead of the connection. */
#ifndef CV_MESSAGE_H
#define CV_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/epoch.h"
#include "common/result.h"

#define CV_MSG_PROTOCOL      1          /* protocol version carried by hello and welcome */
#define CV_MSG_LEASE_HEX     32         /* hex digits of a lease token */
#define CV_MSG_HASH_HEX      64         /* hex digits of a SHA-256 */
#define CV_MSG_WORKER_ID_MAX 64         /* characters of a worker id */
#define CV_MSG_VERSION_MAX   64         /* characters (code points) of hello.version */
#define CV_MSG_HOST_MAX      255        /* characters of hello.host */
#define CV_MSG_TOKEN_MAX     256        /* characters of hello.token */
#define CV_MSG_LEASES_MAX    16         /* entries of hello.leases and welcome.reattached */
#define CV_MSG_TRAINERS_MAX  16         /* entries of hello.trainers */
#define CV_MSG_TRAINER_MAX   64         /* characters of a trainer name: [A-Za-z0-9_.-]{1,64} */
#define CV_MSG_FILES_MAX     6          /* entries of trial.files: the spec's dataset paths */
#define CV_MSG_MODEL_MAX     1073741824 /* largest model_bytes, 1 GiB */
#define CV_MSG_ID_MAX        9007199254740992LL /* largest trial or job id, 2^53 */
#define CV_MSG_DECIDE_MAX    32                 /* entries of trial.decide_at */
#define CV_MSG_EPOCH_MAX     100000             /* largest decide_at or decision epoch */
#define CV_MSG_MODELS_MAX    16                 /* entries of evaluate.models: the ensemble */
#define CV_MSG_REASON_MAX    1024               /* characters of evaluation.error */
#define CV_MSG_IMP_DIMS_MAX  24     /* parameters of an importance task (a space's at most) */
#define CV_MSG_IMP_ROWS_MAX  100000 /* trials (rows) of an importance task */

/* Every message type; CV_MSG_NONE only marks an empty cv_msg_t. */
typedef enum {
    CV_MSG_NONE = 0,
    CV_MSG_HELLO,       /* worker → coordinator: first message of every connection */
    CV_MSG_HEARTBEAT,   /* worker → coordinator: every heartbeat_seconds */
    CV_MSG_PROGRESS,    /* worker → coordinator: after every epoch */
    CV_MSG_RESULT,      /* worker → coordinator: a trial ended; model data frames follow */
    CV_MSG_DATASET_GET, /* worker → coordinator: send me the file with this hash */
    CV_MSG_WELCOME,     /* coordinator → worker: answer to hello */
    CV_MSG_TRIAL,       /* coordinator → worker: train this */
    CV_MSG_ACK,         /* coordinator → worker: the result was stored (or refused as stale) */
    CV_MSG_STOP,        /* coordinator → worker: abandon this trial, send nothing more for it */
    CV_MSG_DATASET,     /* coordinator → worker: the file asked for; data frames follow */
    CV_MSG_ERROR,       /* coordinator → worker: connection refused, closing */
    CV_MSG_DECISION,    /* coordinator → worker: the pruner's verdict on a trial at an epoch */
    CV_MSG_EVALUATE,    /* coordinator → worker: score a job's best models on its test set */
    CV_MSG_EVALUATION,  /* worker → coordinator: the test-set score, or why there is none */
    CV_MSG_NUDGE,       /* coordinator → worker: new hyperparameter values for a running trial */
    CV_MSG_NUDGED,      /* worker → coordinator: a nudge took effect at an epoch */
    CV_MSG_IMPORTANCE,  /* coordinator → worker: fANOVA importance of a job's completed trials */
    CV_MSG_IMPORTANCE_RESULT, /* worker → coordinator: the importances, or why there are none */
} cv_msg_type_t;

/* One lease a worker holds: hello.leases[i]. */
typedef struct {
    int64_t trial_id;                 /* >= 1 */
    char lease[CV_MSG_LEASE_HEX + 1]; /* 32 lowercase hex digits */
} cv_msg_lease_t;

/* One dataset file of a trial: trial.files[field]. */
typedef struct {
    char field[16];                 /* spec dataset field the file is for, e.g. "csv" */
    char hash[CV_MSG_HASH_HEX + 1]; /* SHA-256 of the file's bytes, lowercase hex */
    int64_t bytes;                  /* file size, >= 0 */
} cv_msg_file_t;

typedef struct {
    char worker_id[CV_MSG_WORKER_ID_MAX + 1];
    char version[4 * CV_MSG_VERSION_MAX + 1]; /* UTF-8; the limit counts characters */
    int threads;                              /* 1..1024 */
    char host[4 * CV_MSG_HOST_MAX + 1];
    char token[4 * CV_MSG_TOKEN_MAX + 1]; /* "" when absent */
    int has_token;                        /* 1 when the token field was present */
    cv_msg_lease_t leases[CV_MSG_LEASES_MAX];
    size_t n_leases; /* 0 when leases is absent */
    char trainers[CV_MSG_TRAINERS_MAX][CV_MSG_TRAINER_MAX + 1]; /* the external trainers it
                                                                   offers, distinct names */
    size_t n_trainers; /* 0 when trainers is absent */
} cv_msg_hello_t;

typedef struct {
    int64_t trial_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    cv_epoch_t metrics; /* the epoch object */
} cv_msg_progress_t;

/* result: the trial's result, and the model file's data frames that follow. */
typedef struct {
    int64_t trial_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    int64_t model_bytes;  /* 0..CV_MSG_MODEL_MAX data bytes that follow */
    uint32_t model_crc32; /* zlib crc32 of those bytes (0 when there are none) */
    cv_trial_result_t result; /* the result object's members (diagnosis.remedy borrows from the
                                 message tree; members the object leaves out are NAN, 0 or "") */
    const cJSON *object;      /* the result object itself, borrowed from the message tree: it may
                                 hold members this worker does not know */
} cv_msg_result_t;

typedef struct {
    double heartbeat_seconds; /* > 0 */
    double lease_seconds;     /* > 0 */
    int64_t reattached[CV_MSG_LEASES_MAX];
    size_t n_reattached;
} cv_msg_welcome_t;

/* trial.objective: the job's objective, sent with the trials of external trainers, whose
 * worker picks the best reported epoch by it. */
typedef enum {
    CV_MSG_OBJECTIVE_NONE,      /* absent */
    CV_MSG_OBJECTIVE_DEV_ERROR, /* "dev_error" */
    CV_MSG_OBJECTIVE_DEV_COST,  /* "dev_cost" */
} cv_msg_objective_t;

typedef struct {
    int64_t trial_id, job_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    const cJSON *spec; /* the trial spec object, borrowed from the message tree */
    cv_msg_file_t files[CV_MSG_FILES_MAX];
    size_t n_files;
    int decide_at[CV_MSG_DECIDE_MAX]; /* epochs, strictly ascending, in [1, CV_MSG_EPOCH_MAX],
                                         after which the worker waits for a decision */
    size_t n_decide_at;               /* 0 when decide_at is absent */
    cv_msg_objective_t objective;     /* what "best" means for an external trainer's result;
                                         CV_MSG_OBJECTIVE_NONE when absent */
} cv_msg_trial_t;

/* One model of an evaluation's ensemble: evaluate.models[i]. The worker fetches it by hash like
 * a dataset file (dataset_get). */
typedef struct {
    int64_t trial_id;               /* the trial the model was trained by, >= 1 */
    char hash[CV_MSG_HASH_HEX + 1]; /* SHA-256 of the model file, lowercase hex */
    int64_t bytes;                  /* model file size, >= 0 */
} cv_msg_model_t;

/* evaluate: score the ensemble of models on the test set of the job's data. */
typedef struct {
    int64_t job_id;
    char lease[CV_MSG_LEASE_HEX + 1]; /* the task's token: the answer carries it back */
    const cJSON *spec; /* the best trial's spec (its split names the test set), borrowed */
    cv_msg_file_t files[CV_MSG_FILES_MAX]; /* the spec's dataset files */
    size_t n_files;
    cv_msg_model_t models[CV_MSG_MODELS_MAX]; /* best first */
    size_t n_models;                          /* 1..CV_MSG_MODELS_MAX */
} cv_msg_evaluate_t;

/* evaluation: the answer to evaluate. Either the score (error NULL) or the reason there is none
 * with whose fault it is. */
typedef struct {
    int64_t job_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    double test_accuracy; /* fraction of the test set classified right, [0, 1] */
    double test_cost;     /* the ensemble's mean cross-entropy on the test set, >= 0 */
    int64_t examples;     /* test examples scored, >= 1 */
    const char *error;    /* NULL for a score; else why (borrowed from the message tree) */
    int job_fault;        /* with error: 1 when the job's data is at fault, 0 the worker */
} cv_msg_evaluation_t;

/* nudge: new values for the nudgeable hyperparameters of a running trial (the trial spec's
 * cv_trial_spec_nudge rules them), applied at an epoch boundary without restarting. seq numbers
 * the trial's nudges from 1 in the order they were made; a worker applies each seq once. */
typedef struct {
    int64_t trial_id;
    int64_t seq;         /* 1.. */
    const cJSON *values; /* the new values object, borrowed from the message tree */
    int at_epoch;        /* 0: at the next epoch boundary; else the epoch (1..CV_MSG_EPOCH_MAX)
                            it took effect at in an earlier attempt, to take effect at again */
} cv_msg_nudge_t;

/* nudged: the worker's answer to a nudge, once it took effect (or, for a seq it had applied
 * already, at once with the epoch it took effect at). */
typedef struct {
    int64_t trial_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    int64_t seq;
    int epoch; /* the first epoch trained with the new values, 1..CV_MSG_EPOCH_MAX */
} cv_msg_nudged_t;

/* importance: the fANOVA importance (common/importance.h) of n trials in p parameters. The
 * arrays stay in the message tree; cv_msg_importance_rows copies them out. */
typedef struct {
    int64_t job_id;
    char lease[CV_MSG_LEASE_HEX + 1]; /* the task's token: the answer carries it back */
    int64_t seed;                     /* the forest's seed, [0, 2^53] */
    size_t n;                         /* rows, 2..CV_MSG_IMP_ROWS_MAX */
    size_t p;                         /* parameters, 1..CV_MSG_IMP_DIMS_MAX */
    const cJSON *lo, *hi; /* p finite bounds, lo[d] <= hi[d], each parameter's coordinate;
                             borrowed */
    const cJSON *x;       /* n rows of p finite coordinates; borrowed */
    const cJSON *y;       /* n finite objectives; borrowed */
} cv_msg_importance_t;

/* importance_result: the answer to importance. Either p fractions and importances (error NULL)
 * or the reason there are none. */
typedef struct {
    int64_t job_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    size_t p;                                 /* 1..CV_MSG_IMP_DIMS_MAX, 0 with error */
    double fraction[CV_MSG_IMP_DIMS_MAX];   /* variance explained alone, [0, 1] */
    double importance[CV_MSG_IMP_DIMS_MAX]; /* normalized fractions, [0, 1] */
    const char *error; /* NULL for figures; else why (borrowed from the message tree) */
} cv_msg_importance_result_t;

/* A validated message in plain C. Which member of the union is valid is said by type; the
 * messages without fields (heartbeat) use none. The cJSON pointers inside (result.object,
 * trial.spec, evaluate.spec, evaluation.error, error.message, nudge.values) borrow from the
 * message tree: from root after cv_msg_parse, from the caller's tree after cv_msg_validate. */
typedef struct {
    cv_msg_type_t type;
    union {
        cv_msg_hello_t hello;
        cv_msg_progress_t progress;
        cv_msg_result_t result;
        char dataset_get_hash[CV_MSG_HASH_HEX + 1];
        cv_msg_welcome_t welcome;
        cv_msg_trial_t trial;
        cv_msg_evaluate_t evaluate;
        cv_msg_evaluation_t evaluation;
        cv_msg_nudge_t nudge;
        cv_msg_nudged_t nudged;
        cv_msg_importance_t importance;
        cv_msg_importance_result_t importance_result;
        struct {
            int64_t trial_id;
            int stored; /* 1: committed; 0: refused as stale */
        } ack;
        struct {
            int64_t trial_id;
        } stop;
        struct {
            int64_t trial_id;
            int epoch; /* 1..CV_MSG_EPOCH_MAX: the epoch the verdict is about */
            int stop;  /* 1: prune the trial; 0: train on */
        } decision;
        struct {
            char hash[CV_MSG_HASH_HEX + 1];
            int64_t bytes; /* data bytes that follow, >= 0 */
        } dataset;
        struct {
            const char *message; /* borrowed from the message tree */
        } error;
    };
    cJSON *root; /* owned: the parsed tree (cv_msg_parse), NULL after cv_msg_validate */
} cv_msg_t;

/* The wire name of a type ("hello", "dataset_get", ...), or "none". Static storage. */
const char *cv_msg_type_name(cv_msg_type_t type);

/* Checks that msg is one valid message and fills out (caller-allocated) with its fields. msg is
 * only borrowed: out's cJSON pointers point into it, and out->root is NULL, so cv_msg_finish does
 * not free msg. Returns 0, CV_EINVAL for a missing, unknown or mistyped field or an unknown type,
 * CV_ERANGE for a value outside its range; err names the field. out is zeroed on failure. */
int cv_msg_validate(const cJSON *msg, cv_msg_t *out, char *err);

/* Decodes one JSON frame payload of len bytes (need not be NUL-terminated) and validates it as
 * cv_msg_validate does. On success out->root owns the tree and out's cJSON pointers borrow from
 * it; release with cv_msg_finish. On failure nothing is kept: a syntax error is CV_EFORMAT (err
 * gives the byte offset), a rule broken is as for cv_msg_validate. */
int cv_msg_parse(const char *payload, size_t len, cv_msg_t *out, char *err);

/* Releases what out owns (the tree from cv_msg_parse) and zeroes it. Accepts NULL, and a message
 * already finished or never filled (all zero). */
void cv_msg_finish(cv_msg_t *msg);

/* Takes the sub-object the receiver forwards out of a parsed message: result's result, trial's
 * spec or evaluate's spec. The caller owns the returned tree (cJSON_Delete); the message's
 * pointer to it becomes NULL. Returns NULL for other types, when msg does not own its tree
 * (cv_msg_validate), or when it was already taken. */
cJSON *cv_msg_take_object(cv_msg_t *msg);

/* ---- builders ------------------------------------------------------------------------------
 * Each returns a new message object that the caller frees with cJSON_Delete, or NULL with err
 * set: CV_ENOMEM, or a rule broken by an argument (the built message is run through
 * cv_msg_validate, so a builder never returns a message the peer would refuse). Pointer
 * arguments are borrowed; cJSON arguments are copied. */

/* 1 when s is a trainer name as hello.trainers and a job's "trainer" spell it:
 * [A-Za-z0-9_.-]{1,64}. */
int cv_msg_trainer_name_ok(const char *s);

/* hello from h: worker_id, version, threads, host, the token when has_token, leases when
 * n_leases > 0 and trainers when n_trainers > 0. protocol is CV_MSG_PROTOCOL. */
cJSON *cv_msg_hello(const cv_msg_hello_t *h, char *err);

cJSON *cv_msg_heartbeat(char *err);

/* progress: the epoch object is built from the numbers in m; one that is not finite (a metric
 * the trainer does not know, NAN) is sent as null. dev_error or dev_cost must be finite. */
cJSON *cv_msg_progress(int64_t trial_id, const char *lease, const cv_epoch_t *m, char *err);

/* result: the result object is built from res (see cv_msg_result_object). */
cJSON *cv_msg_result(int64_t trial_id, const char *lease, const cv_trial_result_t *res,
                     int64_t model_bytes, uint32_t model_crc32, char *err);

/* The result object of res alone, as result.result: status, best_epoch, epochs_run; the best
 * epoch's train_error, dev_error, train_cost, train_cost_reg and dev_cost (null without a best
 * epoch or when not finite), examples_per_second and seconds (null when not finite); the sizes
 * m_train, m_dev, m_test and n_params when n_params > 0 and the trial was not failed or stopped;
 * diagnosis (null without a best epoch or a verdict); test_error and test_cost when tested;
 * diverged_epoch when set; error when not ""; fault for a failed or stopped trial. Not checked
 * against the schema (cv_msg_result does that). Caller frees; NULL when out of memory. */
cJSON *cv_msg_result_object(const cv_trial_result_t *res);

cJSON *cv_msg_dataset_get(const char *hash, char *err);

/* welcome: reattached[0..n) are the trial ids of hello.leases still held; n <= 16. */
cJSON *cv_msg_welcome(double heartbeat_seconds, double lease_seconds, const int64_t *reattached,
                      size_t n_reattached, char *err);

/* trial from t: spec (copied) is the trial spec object; files[0..n_files) become the files
 * object; decide_at[0..n_decide_at) (strictly ascending epochs, at most CV_MSG_DECIDE_MAX)
 * becomes decide_at, which is left out when n_decide_at is 0. */
cJSON *cv_msg_trial(const cv_msg_trial_t *t, char *err);

cJSON *cv_msg_ack(int64_t trial_id, int stored, char *err);

cJSON *cv_msg_stop(int64_t trial_id, char *err);

/* decision: the pruner's verdict on trial_id at epoch; stop non-zero prunes it. */
cJSON *cv_msg_decision(int64_t trial_id, int epoch, int stop, char *err);

cJSON *cv_msg_dataset(const char *hash, int64_t bytes, char *err);

/* evaluate: spec (copied) is the best trial's spec object; files[0..n_files) become the files
 * object as in trial; models[0..n_models) (1..CV_MSG_MODELS_MAX) the models array. */
cJSON *cv_msg_evaluate(int64_t job_id, const char *lease, const cJSON *spec,
                       const cv_msg_file_t *files, size_t n_files, const cv_msg_model_t *models,
                       size_t n_models, char *err);

/* evaluation from e: job_id, lease, and test_accuracy, test_cost, examples when e->error is
 * NULL, else error and fault ("job" when e->job_fault, "worker" otherwise). */
cJSON *cv_msg_evaluation(const cv_msg_evaluation_t *e, char *err);

/* importance: x (n rows of p, row-major), y (n), lo and hi (p each) are copied as numbers. */
cJSON *cv_msg_importance(int64_t job_id, const char *lease, int64_t seed, const double *x,
                         const double *y, size_t n, size_t p, const double *lo, const double *hi,
                         char *err);

/* importance_result from r: job_id, lease, and fraction and importance (r->p each) when
 * r->error is NULL, else error. */
cJSON *cv_msg_importance_result(const cv_msg_importance_result_t *r, char *err);

/* Copies a validated importance message's arrays into x (n × p, row-major), y (n), lo and hi (p
 * each), all caller-allocated. */
void cv_msg_importance_rows(const cv_msg_importance_t *m, double *x, double *y, double *lo,
                            double *hi);

cJSON *cv_msg_error(const char *message, char *err);

/* nudge: values (copied) is the object of new values; at_epoch 0 leaves at_epoch out. */
cJSON *cv_msg_nudge(int64_t trial_id, int64_t seq, const cJSON *values, int at_epoch, char *err);

/* nudged: nudge seq of trial_id (under lease) took effect at epoch. */
cJSON *cv_msg_nudged(int64_t trial_id, const char *lease, int64_t seq, int epoch, char *err);

/* Encodes msg as one JSON frame: the 8-byte header followed by the compact JSON text. *buf is a
 * new buffer of *len bytes that the caller frees. msg is borrowed and not validated again.
 * Returns 0, CV_ENOMEM, or CV_ERANGE when the text exceeds CV_FRAME_MAX. */
int cv_msg_encode(const cJSON *msg, unsigned char **buf, size_t *len, char *err);

#endif
