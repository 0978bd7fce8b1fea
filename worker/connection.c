/* caviar-worker's connection to the coordinator: the socket and its poll loop, the handling of
 * every coordinator message, dataset resolution and caching, the training thread with its
 * outbox, and model upload; see connection.h for the design and a trial's life on the worker. */
#include "worker/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/hash.h"
#include "common/message.h"
#include "common/rng.h"
#include "common/trial_spec.h"
#include "worker/evaluate.h"
#include "worker/report.h"
#include "worker/trainer.h"

#define BACKOFF_FIRST   0.1        /* seconds before the first reconnection attempt */
#define BACKOFF_CAP     10.0       /* seconds, the longest wait between attempts */
#define CONNECT_TIMEOUT 10.0       /* seconds one connect() may take */
#define TICK_MS         250        /* longest poll() sleep: how soon the stop flag is seen */
#define READ_CHUNK      65536      /* bytes read from the socket per recv() */
#define UPLOAD_CHUNK    (1u << 20) /* model bytes per data frame (at most CV_FRAME_MAX) */
#define OUT_HIGH_WATER  (2u << 20) /* queued bytes above which the model upload pauses */
#define EPOCH_RING      64         /* epochs an outbox holds; beyond, the oldest are dropped */
#define PENDING_MAX     8          /* unacknowledged results kept; beyond, the oldest go */
#define MEMO_MAX        32         /* remembered SHA-256 of spec paths */
#define WPATH           4096       /* bytes of a file path */
#define STOP_GRACE      3.0        /* seconds a stopping worker waits for its acknowledgements */

_Static_assert(UPLOAD_CHUNK <= CV_FRAME_MAX, "a model chunk fits in one frame");
_Static_assert(PENDING_MAX + 2 <= CV_MSG_LEASES_MAX, "hello.leases holds every lease");

#define LOG(w, level, ...) cv_log((w)->opt->log, (level), __VA_ARGS__)

/* ---- byte queue --------------------------------------------------------------------------- */

/* Bytes waiting for the socket: [off, len) of data. */
typedef struct {
    unsigned char *data; /* owned, cap bytes */
    size_t off, len, cap;
} bytes_t;

static size_t bytes_queued(const bytes_t *b) {
    return b->len - b->off;
}

/* Makes room for n more bytes at data + len; returns that pointer or NULL when out of memory. */
static unsigned char *bytes_reserve(bytes_t *b, size_t n) {
    if (b->off > 0 && b->len + n > b->cap) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (d == NULL) return NULL;
        b->data = d;
        b->cap = cap;
    }
    return b->data + b->len;
}

static int bytes_append(bytes_t *b, const void *p, size_t n) {
    if (n == 0) return 0; /* p may be NULL then */
    unsigned char *dst = bytes_reserve(b, n);
    if (dst == NULL) return CV_ENOMEM;
    memcpy(dst, p, n);
    b->len += n;
    return 0;
}

static void bytes_consume(bytes_t *b, size_t n) {
    b->off += n;
    if (b->off == b->len) b->off = b->len = 0;
}

static void bytes_free(bytes_t *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- state -------------------------------------------------------------------------------- */

/* One trial training in its own thread. Created and freed by the main thread. */
typedef struct {
    pthread_t thread;
    int64_t trial_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    cv_trial_spec_t spec;              /* read by the thread */
    char model_path[WPATH];            /* where the trainer saves the best model */
    int wake_fd;                       /* write end of the main loop's wake pipe */
    atomic_int stop;                   /* main → thread: stop after the current epoch */
    atomic_int prune;                  /* main → thread: prune after the current epoch */
    int decide_at[CV_MSG_DECIDE_MAX];  /* epochs after which the thread waits for a decision */
    size_t n_decide_at;
    double decision_wait;              /* seconds one such wait lasts at most */
    pthread_mutex_t lock;              /* guards epochs, head, count, done and the decision
                                          fields below */
    pthread_cond_t decided;            /* broadcast when online, decided_epoch, stop or prune
                                          change */
    int online;                        /* welcomed: progress reaches the coordinator, decisions
                                          can come */
    int decided_epoch;                 /* the latest epoch a decision named, 0 for none */
    int unanswered_epoch;              /* the latest epoch whose wait ran out, 0 for none */
    int unanswered_logged;             /* main thread only: unanswered_epoch already logged */
    cv_msg_epoch_t epochs[EPOCH_RING]; /* epochs not yet drained, oldest at head */
    size_t head, count;
    int done; /* the thread has finished; the fields below are final */
    int rc;   /* cv_train_run's return */
    cv_train_result_t res;
    char err[CV_ERRLEN];
    int64_t model_bytes;  /* size of the saved model, 0 when none */
    uint32_t model_crc32; /* zlib crc32 of the model file */
    int discard;          /* main thread only: stopped, send nothing more */
} run_t;

/* A result sent (or to send) and not yet acknowledged. */
typedef struct {
    int64_t trial_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    unsigned char *frame; /* owned: the encoded result message */
    size_t frame_len;
    char model_path[WPATH]; /* the model file, "" when model_bytes is 0 */
    int64_t model_bytes;
    int to_send; /* 1: send at the next chance (welcomed, no upload running) */
} pending_t;

/* A model file being streamed as data frames after its result message. */
typedef struct {
    FILE *f;          /* open while an upload runs, else NULL */
    int64_t left;     /* bytes still to send */
    int64_t trial_id; /* whose model it is */
} upload_t;

typedef enum {
    FETCH_IDLE,      /* no dataset transfer */
    FETCH_ASKED,     /* dataset_get sent, waiting for the dataset message */
    FETCH_RECEIVING, /* data frames are arriving */
} fetch_state_t;

/* A dataset file coming from the coordinator into <cache>/<hash>.tmp. */
typedef struct {
    fetch_state_t state;
    char hash[CV_MSG_HASH_HEX + 1];
    FILE *f; /* NULL while receiving when the file could not be created */
    char tmp[WPATH];
    int64_t want, have;     /* bytes declared and received */
    char failed[CV_ERRLEN]; /* why the file is unusable, "" when all is well */
    int failed_job;         /* 1 when failed says the bytes are not the ones the job named (the
                               file changed on the coordinator): the job's fault, not ours */
} fetch_t;

/* A trial whose files are being resolved before it trains. */
typedef struct {
    int active;
    int64_t trial_id;
    char lease[CV_MSG_LEASE_HEX + 1];
    cJSON *spec; /* owned; dataset paths are rewritten in place as files resolve */
    cv_msg_file_t files[CV_MSG_FILES_MAX];
    size_t n_files, next; /* files[0..next) are resolved */
    int decide_at[CV_MSG_DECIDE_MAX]; /* the trial's decision epochs */
    size_t n_decide_at;
    int ready;            /* spec parsed into parsed; waiting for the previous thread */
    cv_trial_spec_t parsed;
} prep_t;

/* The hash of a file, valid while its size and mtime stay the same. */
typedef struct {
    char path[WPATH];
    off_t size;
    struct timespec mtime;
    char hash[CV_SHA256_HEX];
} memo_t;

typedef struct {
    const cv_conn_options_t *opt;
    cv_rng_t rng;             /* reconnection jitter */
    double backoff;           /* seconds of the next wait before jitter */
    int wake[2];              /* pipe: training threads wake the poll loop */
    int fd;                   /* the socket, -1 when disconnected */
    int welcomed;             /* 1 once this connection's welcome arrived */
    double hb_every, hb_next; /* heartbeat period and next deadline, seconds */
    cv_frame_decoder_t dec;
    bytes_t out;      /* frames waiting for the socket */
    bytes_t deferred; /* JSON frames held back while a model upload runs */
    upload_t up;
    fetch_t fetch;
    prep_t prep;
    run_t *run; /* the training thread, or NULL */
    pending_t pending[PENDING_MAX];
    size_t n_pending;
    memo_t memo[MEMO_MAX];
    size_t memo_next; /* slot the next memo entry replaces */
    cv_wk_eval_t *eval; /* the test-set evaluation held (worker/evaluate.h), or NULL */
} worker_t;

static void wake_main(int fd) {
    const char byte = 1;
    ssize_t n = write(fd, &byte, 1); /* a full pipe already holds a wake-up */
    (void)n;
}

/* ---- public helpers ----------------------------------------------------------------------- */

double cv_conn_noop_dev_error(double learning_rate, int64_t trial_id) {
    if (!(isfinite(learning_rate) && learning_rate > 0)) learning_rate = 1e-3;
    double e = fabs(log10(learning_rate) + 2.5) / 10;
    e = (e < 1 ? e : 1) + 0.001 * (double)(trial_id % 7);
    return e < 1 ? e : 1;
}

int cv_conn_parse_address(const char *text, char *host, size_t host_cap, char *port,
                          size_t port_cap, char *err) {
    const char *h = text, *colon;
    size_t hlen;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return cv_errf(err, CV_EINVAL, "--connect %s: expected [IPV6]:PORT", text);
        h = text + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL) return cv_errf(err, CV_EINVAL, "--connect %s: expected HOST:PORT", text);
        hlen = (size_t)(colon - text);
    }
    const char *p = colon + 1;
    if (hlen == 0 || *p == '\0')
        return cv_errf(err, CV_EINVAL, "--connect %s: expected HOST:PORT", text);
    if (hlen >= host_cap || strlen(p) >= port_cap)
        return cv_errf(err, CV_EINVAL, "--connect %s: host or port too long", text);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    strcpy(port, p);
    return 0;
}

/* ---- sending ------------------------------------------------------------------------------ */

/* Queues msg (consumed; NULL means its builder failed with reason why) as one JSON frame. While
 * a model upload runs the frame waits in deferred, so nothing comes between a result and its
 * data frames. Without a connection the message is dropped. */
static int send_msg(worker_t *w, cJSON *msg, const char *why) {
    char err[CV_ERRLEN];
    unsigned char *buf = NULL;
    size_t len = 0;
    if (msg == NULL) {
        LOG(w, CV_LOG_WARN, "message not sent: %s", why);
        return 0;
    }
    if (w->fd < 0) {
        cJSON_Delete(msg);
        return 0;
    }
    int rc = cv_msg_encode(msg, &buf, &len, err);
    cJSON_Delete(msg);
    if (rc) {
        LOG(w, CV_LOG_ERROR, "cannot encode a message: %s", err);
        return rc;
    }
    rc = bytes_append(w->up.f ? &w->deferred : &w->out, buf, len);
    free(buf);
    return rc;
}

/* Writes what the socket accepts now. Returns 0, or CV_EIO when the connection is gone. */
static int flush_out(worker_t *w) {
    while (bytes_queued(&w->out) > 0) {
        ssize_t n = send(w->fd, w->out.data + w->out.off, bytes_queued(&w->out),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n < 0) {
            LOG(w, CV_LOG_WARN, "connection lost while sending: %s", strerror(errno));
            return CV_EIO;
        }
        bytes_consume(&w->out, (size_t)n);
    }
    return 0;
}

/* ---- unacknowledged results --------------------------------------------------------------- */

static pending_t *find_pending(worker_t *w, int64_t trial_id) {
    for (size_t i = 0; i < w->n_pending; i++)
        if (w->pending[i].trial_id == trial_id) return &w->pending[i];
    return NULL;
}

/* Forgets pending result p: its frame, and its model file. An upload of that model in progress
 * goes on from its open stream. */
static void drop_pending(worker_t *w, pending_t *p) {
    free(p->frame);
    if (p->model_path[0]) unlink(p->model_path);
    size_t i = (size_t)(p - w->pending);
    memmove(p, p + 1, (w->n_pending - i - 1) * sizeof *p);
    w->n_pending--;
}

/* Whose fault a failed trial is, as result.fault says: the job's (its data, its spec, its size:
 * every worker would fail it the same way) or this worker's (anything else). The coordinator
 * fails the job for the first, and counts only the second against the worker. */
typedef enum { FAULT_WORKER, FAULT_JOB } fault_t;

/* A failed trial's result object: no metrics, the reason in error, whose fault in fault. NULL
 * when out of memory. */
static cJSON *failed_result(const char *reason, double seconds, fault_t fault) {
    static const char *const nulls[] = {"train_error",        "dev_error", "train_cost",
                                        "train_cost_reg",     "dev_cost",  "diagnosis",
                                        "examples_per_second"};
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "status", "failed") &&
             cJSON_AddNumberToObject(o, "best_epoch", 0) &&
             cJSON_AddNumberToObject(o, "epochs_run", 0);
    for (size_t i = 0; ok && i < sizeof nulls / sizeof nulls[0]; i++)
        ok = cJSON_AddNullToObject(o, nulls[i]) != NULL;
    ok = ok && cJSON_AddNumberToObject(o, "seconds", isfinite(seconds) ? seconds : 0) &&
         cJSON_AddStringToObject(o, "error", reason) &&
         cJSON_AddStringToObject(o, "fault", fault == FAULT_JOB ? "job" : "worker");
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Turns a trial's end into an unacknowledged result to send. result is consumed (NULL: out of
 * memory); model_path (may be "") is the model file, which the pending result then owns. A
 * result the validator refuses is replaced by a failed result giving the reason. */
static void queue_result(worker_t *w, int64_t trial_id, const char *lease, unsigned char *frame,
                         size_t frame_len, const char *model_path, int64_t model_bytes);

static void add_result(worker_t *w, int64_t trial_id, const char *lease, cJSON *result,
                       const char *model_path, int64_t model_bytes, uint32_t crc) {
    char err[CV_ERRLEN] = "out of memory building the result";
    cJSON *msg = result ? cv_msg_result(trial_id, lease, result, model_bytes, crc, err) : NULL;
    cJSON_Delete(result);
    if (msg == NULL) {
        LOG(w, CV_LOG_ERROR, "trial %lld: %s; reporting it as failed", (long long)trial_id, err);
        if (model_path[0]) unlink(model_path);
        model_path = "";
        model_bytes = 0;
        cJSON *failed = failed_result(err, 0, FAULT_WORKER);
        msg = failed ? cv_msg_result(trial_id, lease, failed, 0, 0, err) : NULL;
        cJSON_Delete(failed);
        if (msg == NULL) {
            LOG(w, CV_LOG_ERROR, "trial %lld: result dropped: %s", (long long)trial_id, err);
            return;
        }
    }
    unsigned char *frame = NULL;
    size_t frame_len = 0;
    int rc = cv_msg_encode(msg, &frame, &frame_len, err);
    cJSON_Delete(msg);
    if (rc) {
        LOG(w, CV_LOG_ERROR, "trial %lld: result dropped: %s", (long long)trial_id, err);
        if (model_path[0]) unlink(model_path);
        return;
    }
    queue_result(w, trial_id, lease, frame, frame_len, model_path, model_bytes);
}

/* Keeps an encoded result frame (taken over) until its acknowledgement, and marks it to send. */
static void queue_result(worker_t *w, int64_t trial_id, const char *lease, unsigned char *frame,
                         size_t frame_len, const char *model_path, int64_t model_bytes) {
    pending_t p = {.trial_id = trial_id, .model_bytes = model_bytes, .to_send = 1,
                   .frame = frame, .frame_len = frame_len};
    snprintf(p.lease, sizeof p.lease, "%s", lease);
    snprintf(p.model_path, sizeof p.model_path, "%s", model_path);
    if (w->n_pending == PENDING_MAX) {
        LOG(w, CV_LOG_WARN, "trial %lld: forgetting its unacknowledged result to make room",
            (long long)w->pending[0].trial_id);
        drop_pending(w, &w->pending[0]);
    }
    w->pending[w->n_pending++] = p;
}

/* Sends the first pending result marked to_send, when the connection is welcomed and no other
 * upload runs: its frame, then its model as data frames (pump_upload). */
static int send_next_pending(worker_t *w) {
    if (!w->welcomed || w->up.f) return 0;
    for (size_t i = 0; i < w->n_pending; i++) {
        pending_t *p = &w->pending[i];
        if (!p->to_send) continue;
        p->to_send = 0;
        FILE *f = NULL;
        if (p->model_bytes > 0 && (f = fopen(p->model_path, "rb")) == NULL) {
            LOG(w, CV_LOG_ERROR, "trial %lld: result dropped: cannot open its model %s: %s",
                (long long)p->trial_id, p->model_path, strerror(errno));
            drop_pending(w, p);
            return 0;
        }
        int rc = bytes_append(&w->out, p->frame, p->frame_len);
        if (rc) {
            if (f) fclose(f);
            return rc;
        }
        LOG(w, CV_LOG_DEBUG, "trial %lld: result sent (%lld model bytes follow)",
            (long long)p->trial_id, (long long)p->model_bytes);
        w->up = (upload_t){.f = f, .left = p->model_bytes, .trial_id = p->trial_id};
        return 0;
    }
    return 0;
}

/* Moves model bytes into data frames while the output queue is short. When the upload ends the
 * deferred JSON frames follow. A model file that ends early breaks the promise made by
 * model_bytes: the result is dropped and the connection closed (CV_EIO). */
static int pump_upload(worker_t *w) {
    unsigned char header[CV_FRAME_HEADER_SIZE];
    while (w->up.f && bytes_queued(&w->out) < OUT_HIGH_WATER) {
        size_t n = w->up.left < (int64_t)UPLOAD_CHUNK ? (size_t)w->up.left : UPLOAD_CHUNK;
        if (n > 0) {
            int rc = cv_frame_encode_header(CV_FRAME_DATA, n, header, NULL);
            unsigned char *dst = rc ? NULL : bytes_reserve(&w->out, sizeof header + n);
            if (dst == NULL) return CV_ENOMEM;
            size_t got = fread(dst + sizeof header, 1, n, w->up.f);
            if (got != n) {
                LOG(w, CV_LOG_ERROR, "trial %lld: model file ended %lld bytes early",
                    (long long)w->up.trial_id, (long long)(w->up.left - (int64_t)got));
                pending_t *p = find_pending(w, w->up.trial_id);
                if (p) drop_pending(w, p);
                fclose(w->up.f);
                w->up.f = NULL;
                return CV_EIO;
            }
            memcpy(dst, header, sizeof header);
            w->out.len += sizeof header + n;
            w->up.left -= (int64_t)n;
        }
        if (w->up.left == 0) {
            fclose(w->up.f);
            w->up.f = NULL;
            int rc = bytes_append(&w->out, w->deferred.data + w->deferred.off,
                                  bytes_queued(&w->deferred));
            if (rc) return rc;
            bytes_consume(&w->deferred, bytes_queued(&w->deferred));
        }
    }
    return 0;
}

/* ---- training thread ---------------------------------------------------------------------- */

static int is_decision_epoch(const run_t *r, int epoch) {
    for (size_t i = 0; i < r->n_decide_at; i++)
        if (r->decide_at[i] == epoch) return 1;
    return 0;
}

/* Training thread: after epoch's progress went to the outbox, waits until a decision names
 * epoch (or a later one), a stop or prune is asked, the worker is not (or no longer) welcomed,
 * or decision_wait seconds have passed; the last two train on. */
static void await_decision(run_t *r, int epoch) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    double whole = floor(r->decision_wait);
    deadline.tv_sec += (time_t)whole;
    deadline.tv_nsec += (long)((r->decision_wait - whole) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (r->online && r->decided_epoch < epoch && !atomic_load(&r->stop) &&
           !atomic_load(&r->prune)) {
        if (pthread_cond_timedwait(&r->decided, &r->lock, &deadline) == ETIMEDOUT) {
            if (r->decided_epoch < epoch) r->unanswered_epoch = epoch;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
}

static int on_epoch(const cv_epoch_metrics_t *m, void *userdata) {
    run_t *r = userdata;
    cv_msg_epoch_t e = {.epoch = m->epoch,
                        .train_cost = m->train_cost,
                        .train_cost_reg = m->train_cost_reg,
                        .dev_cost = m->dev_cost,
                        .train_error = m->train_error,
                        .dev_error = m->dev_error,
                        .learning_rate = m->learning_rate,
                        .seconds = m->seconds,
                        .examples_per_second = m->examples_per_second};
    pthread_mutex_lock(&r->lock);
    if (r->count == EPOCH_RING) { /* the main thread is behind: drop the oldest epoch */
        r->head = (r->head + 1) % EPOCH_RING;
        r->count--;
    }
    r->epochs[(r->head + r->count) % EPOCH_RING] = e;
    r->count++;
    pthread_mutex_unlock(&r->lock);
    wake_main(r->wake_fd);
    if (is_decision_epoch(r, m->epoch)) await_decision(r, m->epoch);
    if (atomic_load(&r->stop)) return CV_EPOCH_STOP;
    return atomic_load(&r->prune) ? CV_EPOCH_PRUNE : CV_EPOCH_GO_ON;
}

/* Size and zlib crc32 of the file at path. Returns 0 or -1. */
static int model_digest(const char *path, int64_t *bytes, uint32_t *crc) {
    unsigned char buf[65536];
    FILE *f = fopen(path, "rb");
    if (f == NULL) return -1;
    uLong c = crc32(0L, Z_NULL, 0);
    int64_t total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        c = crc32(c, buf, (uInt)n);
        total += (int64_t)n;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) return -1;
    *bytes = total;
    *crc = (uint32_t)c;
    return 0;
}

static void *train_main(void *arg) {
    run_t *r = arg;
    cv_train_options_t opts = {.on_epoch = on_epoch, .userdata = r, .save_model = r->model_path};
    r->rc = cv_train_run(&r->spec, &opts, &r->res, r->err);
    if (r->rc == 0 && model_digest(r->model_path, &r->model_bytes, &r->model_crc32) != 0)
        r->model_bytes = 0;
    pthread_mutex_lock(&r->lock);
    r->done = 1;
    pthread_mutex_unlock(&r->lock);
    wake_main(r->wake_fd);
    return NULL;
}

/* The result object of a finished run (NULL when out of memory). Metrics of a run without a
 * best epoch are null: there is nothing to report. */
static cJSON *run_result(const run_t *r) {
    static const char *const metrics[] = {"train_error", "dev_error", "train_cost",
                                          "train_cost_reg", "dev_cost"};
    if (r->rc != 0 || r->res.status == CV_TRIAL_FAILED)
        return failed_result(r->res.error[0] ? r->res.error : r->err, r->res.seconds,
                             r->res.job_fault ? FAULT_JOB : FAULT_WORKER);
    cJSON *o = cv_report_result(&r->res, NULL);
    for (size_t i = 0; o && r->res.best_epoch == 0 && i < sizeof metrics / sizeof *metrics; i++) {
        cJSON *null = cJSON_CreateNull();
        if (null == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(o, metrics[i], null)) {
            cJSON_Delete(null);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

static void prep_clear(worker_t *w);

/* Main thread: tells the training thread whether decisions can reach it (online: welcomed). */
static void run_set_online(run_t *r, int online) {
    pthread_mutex_lock(&r->lock);
    r->online = online;
    pthread_cond_broadcast(&r->decided);
    pthread_mutex_unlock(&r->lock);
}

/* Creates r's mutex and condition variable (on the monotonic clock). Returns 0 or -1. */
static int run_sync_init(run_t *r) {
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) return -1;
    int ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&r->decided, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!ok) return -1;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        pthread_cond_destroy(&r->decided);
        return -1;
    }
    return 0;
}

static void run_sync_finish(run_t *r) {
    pthread_cond_destroy(&r->decided);
    pthread_mutex_destroy(&r->lock);
}

/* Starts the prepared trial in a training thread. Signals stay with the main thread. A thread
 * that cannot start fails the trial. Consumes w->prep. */
static void start_run(worker_t *w) {
    char reason[CV_ERRLEN];
    prep_t *p = &w->prep;
    if (w->opt->fail_trials) { /* the test hook of a broken worker (connection.h) */
        snprintf(reason, sizeof reason, "CAVIAR_WORKER_FAIL_TRIALS is set: failing on purpose");
        LOG(w, CV_LOG_WARN, "trial %lld: %s", (long long)p->trial_id, reason);
        add_result(w, p->trial_id, p->lease, failed_result(reason, 0, FAULT_WORKER), "", 0, 0);
        prep_clear(w);
        return;
    }
    run_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(reason, sizeof reason, "out of memory starting the trial");
        goto failed;
    }
    r->trial_id = p->trial_id;
    memcpy(r->lease, p->lease, sizeof r->lease);
    r->spec = p->parsed;
    r->wake_fd = w->wake[1];
    atomic_init(&r->stop, 0);
    atomic_init(&r->prune, 0);
    memcpy(r->decide_at, p->decide_at, sizeof r->decide_at);
    r->n_decide_at = p->n_decide_at;
    r->decision_wait = w->opt->decision_wait > 0 ? w->opt->decision_wait : CV_DECISION_WAIT;
    r->online = w->welcomed;
    snprintf(r->model_path, sizeof r->model_path, "%s/caviar-model-%lld-XXXXXX", w->opt->tmp_dir,
             (long long)r->trial_id);
    int fd = mkstemp(r->model_path);
    if (fd < 0) {
        snprintf(reason, sizeof reason, "cannot create a model file in %s: %s", w->opt->tmp_dir,
                 strerror(errno));
        goto failed;
    }
    close(fd);
    if (run_sync_init(r) != 0) {
        unlink(r->model_path);
        snprintf(reason, sizeof reason, "cannot create a mutex or condition variable");
        goto failed;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, train_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        run_sync_finish(r);
        unlink(r->model_path);
        snprintf(reason, sizeof reason, "cannot start a training thread: %s", strerror(rc));
        goto failed;
    }
    LOG(w, CV_LOG_INFO, "trial %lld: training", (long long)r->trial_id);
    w->run = r;
    prep_clear(w);
    return;
failed:
    free(r);
    add_result(w, p->trial_id, p->lease, failed_result(reason, 0, FAULT_WORKER), "", 0, 0);
    prep_clear(w);
}

/* Drains the training thread's outbox: progress messages while the trial is wanted and the
 * connection welcomed, and at its end the result (or nothing, for a discarded trial). Then
 * starts a prepared trial that was waiting for the thread. */
static int service_run(worker_t *w) {
    run_t *r = w->run;
    if (r) {
        cv_msg_epoch_t batch[EPOCH_RING];
        size_t n = 0;
        pthread_mutex_lock(&r->lock);
        for (; n < r->count; n++)
            batch[n] = r->epochs[(r->head + n) % EPOCH_RING];
        r->head = r->count = 0;
        int done = r->done, unanswered = r->unanswered_epoch;
        pthread_mutex_unlock(&r->lock);
        if (unanswered > r->unanswered_logged) {
            LOG(w, CV_LOG_WARN, "trial %lld: no decision on epoch %d within %g s; training on",
                (long long)r->trial_id, unanswered, r->decision_wait);
            r->unanswered_logged = unanswered;
        }
        for (size_t i = 0; i < n && !r->discard && w->welcomed; i++) {
            char err[CV_ERRLEN];
            int rc = send_msg(w, cv_msg_progress(r->trial_id, r->lease, &batch[i], err), err);
            if (rc) return rc;
        }
        if (!done) return 0;
        pthread_join(r->thread, NULL);
        run_sync_finish(r);
        w->run = NULL;
        if (r->discard || r->res.status == CV_TRIAL_STOPPED) {
            LOG(w, CV_LOG_INFO, "trial %lld: stopped after %d epochs", (long long)r->trial_id,
                r->res.epochs_run);
            unlink(r->model_path);
        } else {
            LOG(w, CV_LOG_INFO, "trial %lld: %s after %d epochs", (long long)r->trial_id,
                cv_trial_status_name(r->res.status), r->res.epochs_run);
            if (r->model_bytes == 0) unlink(r->model_path);
            add_result(w, r->trial_id, r->lease, run_result(r),
                       r->model_bytes > 0 ? r->model_path : "", r->model_bytes, r->model_crc32);
        }
        free(r);
    }
    if (w->run == NULL && w->prep.active && w->prep.ready) start_run(w);
    return 0;
}

/* Asks the running thread to stop at its next epoch end (at once when it waits for a decision);
 * nothing more is sent for it. */
static void discard_run(worker_t *w) {
    run_t *r = w->run;
    if (r == NULL || r->discard) return;
    r->discard = 1;
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->stop, 1);
    pthread_cond_broadcast(&r->decided);
    pthread_mutex_unlock(&r->lock);
}

/* ---- dataset resolution ------------------------------------------------------------------- */

static void prep_clear(worker_t *w) {
    cJSON_Delete(w->prep.spec);
    memset(&w->prep, 0, sizeof w->prep);
}

/* Fails the trial being prepared with a result saying why and whose fault it is. */
static void prep_fail(worker_t *w, const char *reason, fault_t fault) {
    LOG(w, CV_LOG_WARN, "trial %lld: failed: %s", (long long)w->prep.trial_id, reason);
    add_result(w, w->prep.trial_id, w->prep.lease, failed_result(reason, 0, fault), "", 0, 0);
    prep_clear(w);
}

/* Creates dir and its missing parents. */
static int make_dirs(const char *dir, char *err) {
    char path[WPATH];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return cv_errf(err, CV_ERANGE, "%s: path too long", dir);
    for (char *s = path + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return cv_errf(err, CV_EIO, "%s: cannot create: %s", path, strerror(errno));
        *s = saved;
        if (saved == '\0') return 0;
    }
}

/* The SHA-256 of the regular file at path (size st), remembered per path, size and mtime. */
static int hash_of(worker_t *w, const char *path, const struct stat *st, char hex[CV_SHA256_HEX]) {
    for (size_t i = 0; i < MEMO_MAX; i++) {
        memo_t *m = &w->memo[i];
        if (m->hash[0] && m->size == st->st_size && m->mtime.tv_sec == st->st_mtim.tv_sec &&
            m->mtime.tv_nsec == st->st_mtim.tv_nsec && strcmp(m->path, path) == 0) {
            memcpy(hex, m->hash, CV_SHA256_HEX);
            return 0;
        }
    }
    char err[CV_ERRLEN];
    if (cv_sha256_file(path, hex, NULL, err) != 0) {
        LOG(w, CV_LOG_WARN, "cannot hash %s", err);
        return CV_EIO;
    }
    memo_t *m = &w->memo[w->memo_next];
    w->memo_next = (w->memo_next + 1) % MEMO_MAX;
    if (snprintf(m->path, sizeof m->path, "%s", path) >= (int)sizeof m->path) return 0;
    m->size = st->st_size;
    m->mtime = st->st_mtim;
    memcpy(m->hash, hex, CV_SHA256_HEX);
    return 0;
}

/* Looks for a verified local copy of file f, whose spec path is spec_path: the spec's path when
 * it has the right size and SHA-256, else <cache>/<hash> when it has the right size. Returns 1
 * with path (WPATH bytes) set, or 0 when the file must be fetched. */
static int find_local(worker_t *w, const cv_msg_file_t *f, const char *spec_path, char *path) {
    struct stat st;
    char hex[CV_SHA256_HEX];
    if (stat(spec_path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == f->bytes &&
        hash_of(w, spec_path, &st, hex) == 0 && strcmp(hex, f->hash) == 0) {
        snprintf(path, WPATH, "%s", spec_path);
        return 1;
    }
    if (w->opt->cache_dir == NULL) return 0;
    snprintf(path, WPATH, "%s/%s", w->opt->cache_dir, f->hash);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == f->bytes;
}

/* Moves the trial being prepared forward: resolves its files in order, asking the coordinator
 * for a missing one (one transfer at a time), then parses the spec and starts training, or
 * fails the trial with the reason. */
static int prep_advance(worker_t *w) {
    prep_t *p = &w->prep;
    char reason[CV_ERRLEN], path[WPATH];
    while (p->active && !p->ready && p->next < p->n_files) {
        const cv_msg_file_t *f = &p->files[p->next];
        cJSON *ds = cJSON_GetObjectItemCaseSensitive(p->spec, "dataset");
        cJSON *item = cJSON_IsObject(ds) ? cJSON_GetObjectItemCaseSensitive(ds, f->field) : NULL;
        if (!cJSON_IsString(item)) {
            snprintf(reason, sizeof reason, "files.%s: the spec has no dataset.%s path to resolve",
                     f->field, f->field);
            prep_fail(w, reason, FAULT_JOB);
            return 0;
        }
        if (find_local(w, f, item->valuestring, path)) {
            if (strcmp(path, item->valuestring) != 0) {
                LOG(w, CV_LOG_INFO, "trial %lld: dataset.%s is %s", (long long)p->trial_id,
                    f->field, path);
                cJSON *s = cJSON_CreateString(path);
                if (s == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(ds, f->field, s)) {
                    cJSON_Delete(s);
                    prep_fail(w, "out of memory rewriting the spec", FAULT_WORKER);
                    return 0;
                }
            }
            p->next++;
            continue;
        }
        if (w->opt->cache_dir == NULL) {
            /* The file is at the path the job named but is not the one it was submitted with:
             * on a worker sharing the coordinator's files, it changed since. */
            struct stat st;
            if (stat(item->valuestring, &st) == 0 && S_ISREG(st.st_mode)) {
                snprintf(reason, sizeof reason,
                         "files.%s: %s is not the file the job was submitted with (%lld bytes "
                         "now, %lld bytes with SHA-256 %s then): it changed after submission",
                         f->field, item->valuestring, (long long)st.st_size, (long long)f->bytes,
                         f->hash);
                prep_fail(w, reason, FAULT_JOB);
                return 0;
            }
            snprintf(reason, sizeof reason,
                     "files.%s: %s is not here and there is no cache directory to fetch it into",
                     f->field, item->valuestring);
            prep_fail(w, reason, FAULT_WORKER);
            return 0;
        }
        if (!w->welcomed || w->fetch.state != FETCH_IDLE) return 0; /* asked again later */
        char err[CV_ERRLEN];
        LOG(w, CV_LOG_INFO, "trial %lld: fetching dataset.%s (%s, %lld bytes)",
            (long long)p->trial_id, f->field, f->hash, (long long)f->bytes);
        w->fetch.state = FETCH_ASKED;
        memcpy(w->fetch.hash, f->hash, sizeof w->fetch.hash);
        return send_msg(w, cv_msg_dataset_get(f->hash, err), err);
    }
    if (!p->active || p->ready) return 0;
    if (cv_trial_spec_from_json(&p->parsed, p->spec, reason) != 0) {
        prep_fail(w, reason, FAULT_JOB);
        return 0;
    }
    p->ready = 1;
    if (w->run == NULL) start_run(w);
    return 0;
}

static int eval_fetched(worker_t *w, const fetch_t *t);

/* Ends a transfer: closes the file, checks its SHA-256 against the hash asked for, and moves it
 * to <cache>/<hash>; then lets the trial waiting for it go on (or fail). */
static int fetch_complete(worker_t *w) {
    fetch_t *t = &w->fetch;
    char final[WPATH], hex[CV_SHA256_HEX], err[CV_ERRLEN];
    if (t->f && fclose(t->f) != 0 && !t->failed[0])
        cv_errf(t->failed, CV_EIO, "%s: cannot write: %s", t->tmp, strerror(errno));
    t->f = NULL;
    t->state = FETCH_IDLE;
    if (!t->failed[0] && cv_sha256_file(t->tmp, hex, NULL, err) != 0)
        cv_errf(t->failed, CV_EIO, "%s", err);
    else if (!t->failed[0] && strcmp(hex, t->hash) != 0) {
        snprintf(t->failed, sizeof t->failed, "dataset %s: the %lld bytes received have SHA-256 %s "
                 "(the file changed after the job was submitted)", t->hash, (long long)t->have,
                 hex);
        t->failed_job = 1;
    }
    snprintf(final, sizeof final, "%s/%s", w->opt->cache_dir, t->hash);
    if (!t->failed[0] && rename(t->tmp, final) != 0)
        cv_errf(t->failed, CV_EIO, "%s: cannot rename to %s: %s", t->tmp, final, strerror(errno));
    if (t->failed[0])
        unlink(t->tmp);
    else
        LOG(w, CV_LOG_INFO, "dataset %s: %lld bytes cached", t->hash, (long long)t->have);

    prep_t *p = &w->prep;
    if (p->active && !p->ready && p->next < p->n_files &&
        strcmp(p->files[p->next].hash, t->hash) == 0) {
        if (t->failed[0]) {
            prep_fail(w, t->failed, t->failed_job ? FAULT_JOB : FAULT_WORKER);
            return 0;
        }
        if (t->have != p->files[p->next].bytes) {
            char reason[CV_ERRLEN];
            snprintf(reason, sizeof reason,
                     "files.%s: the trial says %lld bytes, the coordinator "
                     "sent %lld",
                     p->files[p->next].field, (long long)p->files[p->next].bytes,
                     (long long)t->have);
            prep_fail(w, reason, FAULT_JOB);
            return 0;
        }
    } else if (t->failed[0]) {
        LOG(w, CV_LOG_WARN, "%s", t->failed);
    }
    int rc = eval_fetched(w, t);
    return rc ? rc : prep_advance(w);
}

/* ---- test-set evaluation (worker/evaluate.h) ------------------------------------------------
 * The evaluation's files resolve like a trial's: a local file of the right size and SHA-256, or
 * the cache, or a fetch from the coordinator (one transfer at a time). The answer goes out when
 * the scoring thread is done; an evaluation is dropped with its session (the coordinator gives
 * it to another worker). */

static int eval_advance(worker_t *w) {
    cv_wk_eval_file_t *f;
    char path[WPATH], err[CV_ERRLEN];
    while (w->eval && (f = cv_wk_eval_next(w->eval)) != NULL) {
        cv_msg_file_t mf = {.bytes = f->bytes};
        memcpy(mf.hash, f->hash, sizeof mf.hash);
        if (find_local(w, &mf, f->spec_path ? f->spec_path : "", path)) {
            cv_wk_eval_resolved(w->eval, path);
            continue;
        }
        if (w->opt->cache_dir == NULL) {
            snprintf(err, sizeof err, "%s is not here and there is no cache directory to fetch "
                     "it into", f->what);
            cv_wk_eval_fail(w->eval, err, 0);
            break;
        }
        if (!w->welcomed || w->fetch.state != FETCH_IDLE) return 0; /* asked again later */
        LOG(w, CV_LOG_INFO, "job %lld evaluation: fetching %s (%s, %lld bytes)",
            (long long)cv_wk_eval_job(w->eval), f->what, f->hash, (long long)f->bytes);
        w->fetch.state = FETCH_ASKED;
        memcpy(w->fetch.hash, f->hash, sizeof w->fetch.hash);
        return send_msg(w, cv_msg_dataset_get(f->hash, err), err);
    }
    if (w->eval) cv_wk_eval_start(w->eval, w->wake[1]);
    return 0;
}

/* A fetch ended: a failed one for the evaluation's file ends the evaluation. */
static int eval_fetched(worker_t *w, const fetch_t *t) {
    cv_wk_eval_file_t *f = w->eval ? cv_wk_eval_next(w->eval) : NULL;
    if (f && t->failed[0] && strcmp(f->hash, t->hash) == 0)
        cv_wk_eval_fail(w->eval, t->failed, t->failed_job);
    return eval_advance(w);
}

static int on_evaluate(worker_t *w, cv_msg_t *msg) {
    char err[CV_ERRLEN];
    if (w->eval) {
        LOG(w, CV_LOG_ERROR, "coordinator sent an evaluation of job %lld while one of job %lld "
            "is still held", (long long)msg->evaluate.job_id, (long long)cv_wk_eval_job(w->eval));
        return CV_EFORMAT;
    }
    if (cv_wk_eval_create(&w->eval, msg, w->opt->cache_dir, err) != 0) return CV_ENOMEM;
    LOG(w, CV_LOG_INFO, "job %lld: evaluating %zu model(s) on the test set",
        (long long)msg->evaluate.job_id, msg->evaluate.n_models);
    return eval_advance(w);
}

/* Sends the evaluation's answer once its thread is done. */
static int service_eval(worker_t *w) {
    char err[CV_ERRLEN];
    if (!w->eval || !cv_wk_eval_done(w->eval)) return 0;
    cJSON *answer = cv_wk_eval_answer(w->eval, err);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(answer, "error");
    if (e)
        LOG(w, CV_LOG_WARN, "job %lld evaluation failed: %s", (long long)cv_wk_eval_job(w->eval),
            cJSON_GetStringValue(e));
    else if (answer)
        LOG(w, CV_LOG_INFO, "job %lld evaluated: test accuracy %g",
            (long long)cv_wk_eval_job(w->eval),
            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(answer, "test_accuracy")));
    cv_wk_eval_destroy(w->eval);
    w->eval = NULL;
    return send_msg(w, answer, err);
}

/* Abandons a transfer (the connection is gone); the partial file is removed. */
static void fetch_reset(worker_t *w) {
    fetch_t *t = &w->fetch;
    if (t->state == FETCH_RECEIVING) {
        if (t->f) fclose(t->f);
        unlink(t->tmp);
    }
    memset(t, 0, sizeof *t);
}

/* ---- coordinator messages ----------------------------------------------------------------- */

static int in_ids(const int64_t *ids, size_t n, int64_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

static int on_welcome(worker_t *w, const cv_msg_welcome_t *m) {
    w->welcomed = 1;
    w->backoff = BACKOFF_FIRST;
    w->hb_every = m->heartbeat_seconds;
    w->hb_next = cv_clock_monotonic() + m->heartbeat_seconds;
    LOG(w, CV_LOG_INFO, "welcomed: heartbeat every %g s, %zu lease(s) reattached",
        m->heartbeat_seconds, m->n_reattached);
    for (size_t i = 0; i < w->n_pending;) {
        pending_t *p = &w->pending[i];
        if (in_ids(m->reattached, m->n_reattached, p->trial_id)) {
            p->to_send = 1;
            i++;
        } else {
            LOG(w, CV_LOG_INFO, "trial %lld: not reattached; its result is dropped",
                (long long)p->trial_id);
            drop_pending(w, p);
        }
    }
    if (w->run && !w->run->discard && !in_ids(m->reattached, m->n_reattached, w->run->trial_id)) {
        LOG(w, CV_LOG_INFO, "trial %lld: not reattached; stopping it", (long long)w->run->trial_id);
        discard_run(w);
    } else if (w->run && !w->run->discard) {
        run_set_online(w->run, 1);
    }
    if (w->prep.active && !in_ids(m->reattached, m->n_reattached, w->prep.trial_id)) {
        LOG(w, CV_LOG_INFO, "trial %lld: not reattached; abandoned", (long long)w->prep.trial_id);
        prep_clear(w);
    }
    return prep_advance(w);
}

/* The --noop answer: a completed result computed from the spec's learning rate alone. It is
 * formatted straight into a frame: this mode exists to measure the coordinator, so the worker
 * should cost as little as possible. */
static void noop_trial(worker_t *w, const cv_msg_trial_t *t) {
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(t->spec, "learning_rate");
    double d = cv_conn_noop_dev_error(cJSON_IsNumber(lr) ? lr->valuedouble : 1e-3, t->trial_id);
    enum { CAP = 512 };
    unsigned char *frame = malloc(CV_FRAME_HEADER_SIZE + CAP);
    if (!frame) {
        LOG(w, CV_LOG_ERROR, "trial %lld: out of memory", (long long)t->trial_id);
        return;
    }
    int n = snprintf((char *)frame + CV_FRAME_HEADER_SIZE, CAP,
                     "{\"type\":\"result\",\"trial_id\":%lld,\"lease\":\"%s\",\"model_bytes\":0,"
                     "\"model_crc32\":0,\"result\":{\"status\":\"completed\",\"best_epoch\":1,"
                     "\"epochs_run\":1,\"train_error\":%.17g,\"dev_error\":%.17g,"
                     "\"train_cost\":%.17g,\"train_cost_reg\":%.17g,\"dev_cost\":%.17g,"
                     "\"diagnosis\":null,\"examples_per_second\":0,\"seconds\":0}}",
                     (long long)t->trial_id, t->lease, 0.9 * d, d, 1.8 * d, 1.8 * d, 2 * d);
    if (n <= 0 || n >= CAP ||
        cv_frame_encode_header(CV_FRAME_JSON, (size_t)n, frame, NULL)) {
        free(frame);
        return;
    }
    queue_result(w, t->trial_id, t->lease, frame, CV_FRAME_HEADER_SIZE + (size_t)n, "", 0);
}

static int on_trial(worker_t *w, cv_msg_t *msg) {
    const cv_msg_trial_t *t = &msg->trial;
    if (w->prep.active || (w->run && !w->run->discard)) {
        LOG(w, CV_LOG_ERROR, "coordinator sent trial %lld while trial %lld is still held",
            (long long)t->trial_id,
            (long long)(w->prep.active ? w->prep.trial_id : w->run->trial_id));
        return CV_EFORMAT;
    }
    LOG(w, CV_LOG_DEBUG, "trial %lld (job %lld): received", (long long)t->trial_id,
        (long long)t->job_id);
    if (w->opt->noop) {
        noop_trial(w, t);
        return 0;
    }
    prep_t *p = &w->prep;
    p->active = 1;
    p->trial_id = t->trial_id;
    memcpy(p->lease, t->lease, sizeof p->lease);
    memcpy(p->files, t->files, sizeof p->files);
    p->n_files = t->n_files;
    memcpy(p->decide_at, t->decide_at, sizeof p->decide_at);
    p->n_decide_at = t->n_decide_at;
    p->spec = cv_msg_take_object(msg);
    if (p->spec == NULL) {
        prep_fail(w, "out of memory taking the spec", FAULT_WORKER);
        return 0;
    }
    return prep_advance(w);
}

static int on_ack(worker_t *w, int64_t trial_id, int stored) {
    pending_t *p = find_pending(w, trial_id);
    if (p == NULL) {
        LOG(w, CV_LOG_DEBUG, "ack for trial %lld, which has no result here", (long long)trial_id);
        return 0;
    }
    LOG(w, CV_LOG_DEBUG, "trial %lld: result %s", (long long)trial_id,
        stored ? "stored" : "refused as stale");
    drop_pending(w, p);
    return 0;
}

/* Abandons the trial wherever it is; the coordinator expects nothing more for it. */
static int on_stop(worker_t *w, int64_t trial_id) {
    pending_t *p = find_pending(w, trial_id);
    if (w->run && !w->run->discard && w->run->trial_id == trial_id) {
        LOG(w, CV_LOG_INFO, "trial %lld: stop requested", (long long)trial_id);
        discard_run(w);
    } else if (w->prep.active && w->prep.trial_id == trial_id) {
        LOG(w, CV_LOG_INFO, "trial %lld: stopped before training", (long long)trial_id);
        prep_clear(w);
    } else if (p) {
        drop_pending(w, p);
    } else {
        LOG(w, CV_LOG_DEBUG, "stop for trial %lld, which is not here", (long long)trial_id);
    }
    return 0;
}

/* The pruner's verdict on the trial in training at epoch: stop prunes it (at once when the
 * thread waits at that epoch, else at its next epoch end); go-on ends a wait for that epoch. A
 * decision for a trial not in training here is ignored. */
static int on_decision(worker_t *w, int64_t trial_id, int epoch, int stop) {
    run_t *r = w->run;
    if (r == NULL || r->discard || r->trial_id != trial_id) {
        LOG(w, CV_LOG_DEBUG, "decision for trial %lld, which is not training here",
            (long long)trial_id);
        return 0;
    }
    LOG(w, CV_LOG_INFO, "trial %lld: %s at epoch %d", (long long)trial_id,
        stop ? "pruned" : "goes on", epoch);
    pthread_mutex_lock(&r->lock);
    if (epoch > r->decided_epoch) r->decided_epoch = epoch;
    if (stop) atomic_store(&r->prune, 1);
    pthread_cond_broadcast(&r->decided);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static int on_dataset(worker_t *w, const char *hash, int64_t bytes) {
    fetch_t *t = &w->fetch;
    char err[CV_ERRLEN];
    if (t->state != FETCH_ASKED || strcmp(t->hash, hash) != 0) {
        LOG(w, CV_LOG_ERROR, "coordinator sent dataset %s, which was not asked for", hash);
        return CV_EFORMAT;
    }
    t->state = FETCH_RECEIVING;
    t->want = bytes;
    t->have = 0;
    t->failed[0] = '\0';
    t->failed_job = 0;
    snprintf(t->tmp, sizeof t->tmp, "%s/%s.tmp", w->opt->cache_dir, hash);
    if (make_dirs(w->opt->cache_dir, err) != 0)
        cv_errf(t->failed, CV_EIO, "%s", err);
    else if ((t->f = fopen(t->tmp, "wb")) == NULL)
        cv_errf(t->failed, CV_EIO, "%s: cannot create: %s", t->tmp, strerror(errno));
    return bytes == 0 ? fetch_complete(w) : 0;
}

static int on_data(worker_t *w, const cv_frame_t *f) {
    fetch_t *t = &w->fetch;
    if (t->state != FETCH_RECEIVING || (int64_t)f->len > t->want - t->have) {
        LOG(w, CV_LOG_ERROR,
            "coordinator sent a data frame of %zu bytes that no dataset "
            "message announced",
            f->len);
        return CV_EFORMAT;
    }
    if (t->f && fwrite(f->payload, 1, f->len, t->f) != f->len && !t->failed[0])
        cv_errf(t->failed, CV_EIO, "%s: cannot write: %s", t->tmp, strerror(errno));
    t->have += (int64_t)f->len;
    return t->have == t->want ? fetch_complete(w) : 0;
}

/* An error message that answers dataset_get means the coordinator cannot serve that file:
 * asking again after reconnecting would only repeat the refusal, so the trial fails. */
static void on_refusal(worker_t *w, const char *message) {
    prep_t *p = &w->prep;
    char reason[CV_ERRLEN];
    if (w->fetch.state != FETCH_ASKED || !p->active || p->ready || p->next >= p->n_files ||
        strcmp(p->files[p->next].hash, w->fetch.hash) != 0)
        return;
    cv_errf(reason, CV_EIO, "files.%s: the coordinator cannot serve dataset %s: %s",
            p->files[p->next].field, w->fetch.hash, message);
    prep_fail(w, reason, FAULT_JOB);
}

/* Handles one frame from the coordinator. Returns 0, or the code that ends the connection:
 * CV_EFORMAT for a protocol violation, CV_ESTOPPED for an error message, CV_ENOMEM. */
static int on_frame(worker_t *w, const cv_frame_t *f) {
    char err[CV_ERRLEN];
    if (f->kind == CV_FRAME_DATA) return on_data(w, f);
    if (w->fetch.state == FETCH_RECEIVING) {
        LOG(w, CV_LOG_ERROR, "coordinator sent a message in the middle of dataset %s's data",
            w->fetch.hash);
        return CV_EFORMAT;
    }
    cv_msg_t msg;
    if (cv_msg_parse((const char *)f->payload, f->len, &msg, err) != 0) {
        LOG(w, CV_LOG_ERROR, "malformed message from the coordinator: %s", err);
        return CV_EFORMAT;
    }
    int rc = 0;
    if (!w->welcomed && msg.type != CV_MSG_WELCOME && msg.type != CV_MSG_ERROR) {
        LOG(w, CV_LOG_ERROR, "coordinator sent %s before welcome", cv_msg_type_name(msg.type));
        rc = CV_EFORMAT;
    } else {
        switch (msg.type) {
        case CV_MSG_WELCOME:
            if (w->welcomed) {
                LOG(w, CV_LOG_ERROR, "coordinator sent a second welcome");
                rc = CV_EFORMAT;
            } else {
                rc = on_welcome(w, &msg.welcome);
            }
            break;
        case CV_MSG_TRIAL:
            rc = on_trial(w, &msg);
            break;
        case CV_MSG_ACK:
            rc = on_ack(w, msg.ack.trial_id, msg.ack.stored);
            break;
        case CV_MSG_STOP:
            rc = on_stop(w, msg.stop.trial_id);
            break;
        case CV_MSG_DATASET:
            rc = on_dataset(w, msg.dataset.hash, msg.dataset.bytes);
            break;
        case CV_MSG_DECISION:
            rc = on_decision(w, msg.decision.trial_id, msg.decision.epoch, msg.decision.stop);
            break;
        case CV_MSG_EVALUATE:
            rc = on_evaluate(w, &msg);
            break;
        case CV_MSG_ERROR:
            LOG(w, CV_LOG_ERROR, "coordinator refused this worker: %s", msg.error.message);
            on_refusal(w, msg.error.message);
            rc = CV_ESTOPPED;
            break;
        default:
            LOG(w, CV_LOG_ERROR, "coordinator sent %s, which only workers send",
                cv_msg_type_name(msg.type));
            rc = CV_EFORMAT;
            break;
        }
    }
    cv_msg_finish(&msg);
    return rc;
}

/* Reads what the socket holds and handles every complete frame. Returns 0, CV_EIO when the
 * coordinator closed the connection, or the code of on_frame. */
static int read_socket(worker_t *w) {
    unsigned char buf[READ_CHUNK];
    char err[CV_ERRLEN];
    ssize_t n = recv(w->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    if (n <= 0) {
        if (n < 0)
            LOG(w, CV_LOG_WARN, "connection lost: %s", strerror(errno));
        else if (cv_frame_decoder_partial(&w->dec))
            LOG(w, CV_LOG_WARN, "coordinator closed the connection in the middle of a frame");
        else
            LOG(w, CV_LOG_INFO, "coordinator closed the connection");
        return CV_EIO;
    }
    size_t off = 0;
    while (off < (size_t)n) {
        size_t used = 0;
        cv_frame_t frame;
        int rc = cv_frame_decode(&w->dec, buf + off, (size_t)n - off, &used, &frame, err);
        if (rc < 0) {
            LOG(w, CV_LOG_ERROR, "bad frame from the coordinator: %s", err);
            return CV_EFORMAT;
        }
        off += used;
        if (rc == CV_FRAME_READY && (rc = on_frame(w, &frame)) != 0) return rc;
    }
    return 0;
}

/* ---- connection --------------------------------------------------------------------------- */

/* Waits until a non-blocking connect on fd finishes. Returns 0 when connected, the errno of a
 * failure (ETIMEDOUT after the deadline), or -1 when a stop was asked. */
static int wait_connected(worker_t *w, int fd, double deadline) {
    for (;;) {
        if (*w->opt->stop) return -1;
        double left = deadline - cv_clock_monotonic();
        if (left <= 0) return ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int ms = left * 1000 < TICK_MS ? (int)(left * 1000) + 1 : TICK_MS;
        int r = poll(&p, 1, ms);
        if (r < 0 && errno != EINTR) return errno;
        if (r > 0) {
            int so = 0;
            socklen_t len = sizeof so;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len) != 0) return errno;
            return so;
        }
    }
}

/* Connects a non-blocking socket to one address. Returns 0 with *out set, an errno, or -1 when
 * a stop was asked. */
static int connect_one(worker_t *w, const struct addrinfo *ai, int *out) {
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) return errno;
    int r = 0;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        r = errno;
    else if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        r = errno == EINPROGRESS ? wait_connected(w, fd, cv_clock_monotonic() + CONNECT_TIMEOUT) : errno;
    if (r != 0) {
        close(fd);
        return r;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *out = fd;
    return 0;
}

/* Connects to the coordinator, trying each address getaddrinfo gives. Returns 0 with w->fd
 * set, CV_ESTOPPED when a stop was asked, or CV_EIO with err saying why. */
static int open_socket(worker_t *w, char *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list = NULL;
    int g = getaddrinfo(w->opt->host, w->opt->port, &hints, &list);
    if (g != 0)
        return cv_errf(err, CV_EIO, "cannot resolve %s:%s: %s", w->opt->host, w->opt->port,
                       gai_strerror(g));
    int why = 0;
    for (struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
        why = connect_one(w, ai, &w->fd);
        if (why <= 0) break;
    }
    freeaddrinfo(list);
    if (why == -1) return CV_ESTOPPED;
    if (why != 0 || w->fd < 0)
        return cv_errf(err, CV_EIO, "cannot connect to %s:%s: %s", w->opt->host, w->opt->port,
                       why ? strerror(why) : "no address");
    return 0;
}

/* Starts a session on the new socket: a fresh decoder, then hello listing every lease held. */
static int session_start(worker_t *w) {
    char err[CV_ERRLEN];
    cv_msg_hello_t h = {.threads = w->opt->threads};
    snprintf(h.worker_id, sizeof h.worker_id, "%s", w->opt->worker_id);
    snprintf(h.version, sizeof h.version, "%s", w->opt->version);
    snprintf(h.host, sizeof h.host, "%s", w->opt->hostname);
    if (w->opt->token) {
        snprintf(h.token, sizeof h.token, "%s", w->opt->token);
        h.has_token = 1;
    }
    if (w->run && !w->run->discard) {
        h.leases[h.n_leases].trial_id = w->run->trial_id;
        memcpy(h.leases[h.n_leases++].lease, w->run->lease, CV_MSG_LEASE_HEX + 1);
    }
    if (w->prep.active) {
        h.leases[h.n_leases].trial_id = w->prep.trial_id;
        memcpy(h.leases[h.n_leases++].lease, w->prep.lease, CV_MSG_LEASE_HEX + 1);
    }
    for (size_t i = 0; i < w->n_pending; i++) {
        h.leases[h.n_leases].trial_id = w->pending[i].trial_id;
        memcpy(h.leases[h.n_leases++].lease, w->pending[i].lease, CV_MSG_LEASE_HEX + 1);
    }
    cv_frame_decoder_init(&w->dec);
    w->welcomed = 0;
    LOG(w, CV_LOG_INFO, "connected to %s:%s as %s (%zu lease(s) held)", w->opt->host, w->opt->port,
        w->opt->worker_id, h.n_leases);
    cJSON *hello = cv_msg_hello(&h, err);
    if (hello == NULL) {
        LOG(w, CV_LOG_ERROR, "cannot build hello: %s", err);
        return CV_EINVAL;
    }
    return send_msg(w, hello, err);
}

/* Ends the session: the socket, queued frames, an upload and a transfer in progress go. The
 * trial being prepared or trained and the unacknowledged results stay for the next session. */
static void session_close(worker_t *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    w->welcomed = 0;
    if (w->run) run_set_online(w->run, 0); /* a wait for a decision ends: train on */
    cv_frame_decoder_finish(&w->dec);
    bytes_consume(&w->out, bytes_queued(&w->out));
    bytes_consume(&w->deferred, bytes_queued(&w->deferred));
    if (w->up.f) fclose(w->up.f);
    w->up = (upload_t){0};
    fetch_reset(w);
    cv_wk_eval_destroy(w->eval); /* the coordinator gives it to another worker */
    w->eval = NULL;
}

/* One turn of a connected session: queue what is due, wait for the socket or a wake-up, read
 * and write. Returns 0 to go on, or the code that ends the session. */
static int session_step(worker_t *w) {
    char err[CV_ERRLEN];
    int rc = service_run(w);
    if (rc == 0) rc = service_eval(w);
    if (rc == 0) rc = send_next_pending(w);
    if (rc == 0) rc = pump_upload(w);
    double now = cv_clock_monotonic();
    if (rc == 0 && w->welcomed && now >= w->hb_next) {
        w->hb_next = now + w->hb_every;
        rc = send_msg(w, cv_msg_heartbeat(err), err);
    }
    if (rc) return rc;

    int ms = TICK_MS;
    if (w->welcomed && (w->hb_next - now) * 1000 < ms) ms = (int)((w->hb_next - now) * 1000) + 1;
    struct pollfd p[2] = {
        {.fd = w->fd, .events = (short)(POLLIN | (bytes_queued(&w->out) ? POLLOUT : 0))},
        {.fd = w->wake[0], .events = POLLIN},
    };
    if (poll(p, 2, ms) < 0) return errno == EINTR ? 0 : CV_EIO;
    if (p[1].revents & POLLIN) {
        char drain[64];
        while (read(w->wake[0], drain, sizeof drain) > 0) {
        }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        rc = read_socket(w);
        if (rc) return rc;
    }
    if (p[0].revents & POLLOUT) return flush_out(w);
    return 0;
}

/* Sleeps up to seconds (at most one tick) while disconnected, waking for the training thread. */
static void idle_wait(worker_t *w, double seconds) {
    int ms = seconds * 1000 < TICK_MS ? (int)(seconds * 1000) + 1 : TICK_MS;
    struct pollfd p = {.fd = w->wake[0], .events = POLLIN};
    if (poll(&p, 1, ms) > 0) {
        char drain[64];
        while (read(w->wake[0], drain, sizeof drain) > 0) {
        }
    }
}

/* The next wait before reconnecting: backoff jittered by ±50%, then doubled up to the cap. */
static double next_delay(worker_t *w) {
    double d = w->backoff * (0.5 + cv_rng_uniform(&w->rng));
    w->backoff = w->backoff * 2 < BACKOFF_CAP ? w->backoff * 2 : BACKOFF_CAP;
    return d;
}

/* A trial handed back unfinished: status stopped, no metrics, the reason in error. */
static cJSON *stopped_result(void) {
    cJSON *o = failed_result("the worker was stopped (SIGTERM or SIGINT) and gives it back", 0,
                             FAULT_WORKER);
    cJSON *status = o ? cJSON_CreateString("stopped") : NULL;
    if (status == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(o, "status", status)) {
        cJSON_Delete(status);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Hands back the trial being trained and the one being prepared as `stopped` results. */
static void give_back_held(worker_t *w) {
    if (w->run && !w->run->discard) {
        LOG(w, CV_LOG_INFO, "trial %lld: stopping; handing it back", (long long)w->run->trial_id);
        add_result(w, w->run->trial_id, w->run->lease, stopped_result(), "", 0, 0);
        discard_run(w);
    }
    if (w->prep.active) {
        LOG(w, CV_LOG_INFO, "trial %lld: stopping; handing it back", (long long)w->prep.trial_id);
        add_result(w, w->prep.trial_id, w->prep.lease, stopped_result(), "", 0, 0);
        prep_clear(w);
    }
}

/* On a stop request (SIGTERM or SIGINT: a Slurm preemption or time limit, a pod's termination,
 * scaling down) while welcomed: the trials held go back to the coordinator as `stopped` results,
 * which it queues again without counting the attempt (it then sends this worker no more trials),
 * and the session goes on for up to STOP_GRACE seconds while results wait for their
 * acknowledgements. A trial that arrives meanwhile is handed back too. Without a connection
 * nothing is sent, and the coordinator sees the lease lost as after a crash. */
static void hand_back_on_stop(worker_t *w) {
    double deadline = cv_clock_monotonic() + STOP_GRACE;
    while (w->fd >= 0 && w->welcomed) {
        give_back_held(w);
        if (w->n_pending == 0 || cv_clock_monotonic() >= deadline) break;
        if (session_step(w) != 0) break;
    }
}

/* Stops and joins a training thread, then drops everything still held. */
static void shutdown_worker(worker_t *w) {
    if (w->run) {
        discard_run(w);
        pthread_join(w->run->thread, NULL);
        run_sync_finish(w->run);
        unlink(w->run->model_path);
        free(w->run);
        w->run = NULL;
    }
    session_close(w);
    prep_clear(w);
    while (w->n_pending > 0)
        drop_pending(w, &w->pending[0]);
    bytes_free(&w->out);
    bytes_free(&w->deferred);
    close(w->wake[0]);
    close(w->wake[1]);
}

int cv_conn_run(const cv_conn_options_t *opts, char *err) {
    worker_t *w = calloc(1, sizeof *w);
    if (w == NULL) return cv_errf(err, CV_ENOMEM, "out of memory");
    w->opt = opts;
    w->fd = -1;
    w->backoff = BACKOFF_FIRST;
    cv_rng_seed(&w->rng, (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
                             (uint64_t)(cv_clock_monotonic() * 1e9));
    if (pipe(w->wake) != 0) {
        int rc = cv_errf(err, CV_EIO, "cannot create a pipe: %s", strerror(errno));
        free(w);
        return rc;
    }
    for (int i = 0; i < 2; i++) {
        (void)fcntl(w->wake[i], F_SETFL, fcntl(w->wake[i], F_GETFL) | O_NONBLOCK);
        (void)fcntl(w->wake[i], F_SETFD, FD_CLOEXEC);
    }

    int result = 0;
    double next_attempt = 0;
    while (!*opts->stop) {
        if (w->fd < 0) {
            (void)service_run(w); /* progress is dropped, results kept */
            double now = cv_clock_monotonic();
            if (now < next_attempt) {
                idle_wait(w, next_attempt - now);
                continue;
            }
            char why[CV_ERRLEN] = "cannot start the session";
            int rc = open_socket(w, why);
            if (rc == CV_ESTOPPED) break;
            if (rc == 0) rc = session_start(w);
            if (rc == 0) continue;
            session_close(w);
            if (opts->once) {
                result = cv_errf(err, CV_EIO, "%s", why);
                break;
            }
            double delay = next_delay(w);
            LOG(w, CV_LOG_WARN, "%s; retrying in %.2f s", why, delay);
            next_attempt = cv_clock_monotonic() + delay;
            continue;
        }
        int rc = session_step(w);
        if (rc == 0) continue;
        session_close(w);
        if (opts->once) {
            if (rc == CV_EFORMAT)
                result = cv_errf(err, rc, "the coordinator broke the protocol");
            else if (rc == CV_ESTOPPED)
                result = cv_errf(err, rc, "the coordinator refused this worker");
            else if (rc != CV_EIO)
                result = cv_errf(err, rc, "the connection failed: %s", cv_strerror(rc));
            break;
        }
        double delay = next_delay(w);
        LOG(w, CV_LOG_INFO, "reconnecting in %.2f s", delay);
        next_attempt = cv_clock_monotonic() + delay;
    }
    if (*opts->stop) {
        LOG(w, CV_LOG_INFO, "stopping");
        hand_back_on_stop(w);
    }
    shutdown_worker(w);
    free(w);
    return result;
}
