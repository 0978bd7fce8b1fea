/* The worker port; see worker_server.h. Every function runs on the loop thread; file reads for
 * datasets run in libuv's thread pool (uv_fs_*), one request at a time per connection.
 *
 * Output is bounded per connection. The bytes queued for a peer (the frames of this iteration
 * not yet written plus the uv_write requests not yet completed) are counted; while they exceed
 * OUT_HIGH_WATER the connection's input is paused (uv_read_stop, and the rest of the last read
 * is kept unprocessed) and it resumes once they drain to OUT_LOW_WATER. A dataset is streamed
 * in SEND_CHUNK data frames: a chunk is read off the loop thread, written, and the next one is
 * read only when that write completed, and the connection's input is paused for the whole
 * transfer, so a peer that asks for datasets and never reads costs one chunk, not the files. */
#include "server/worker_server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/frame.h"
#include "common/hash.h"
#include "common/message.h"

#define READ_BUFFER (64 * 1024)         /* bytes per read callback */
#define SEND_CHUNK (1024 * 1024)        /* bytes per data frame when serving a dataset */
#define OUT_HIGH_WATER (4 * 1024 * 1024) /* bytes queued for a peer that pause its input */
#define OUT_LOW_WATER (1024 * 1024)      /* ... and that resume it once drained to */

typedef struct conn conn_t;

/* A dataset file being sent: open, fstat, then read a chunk / write it, until done. */
typedef struct {
    uv_fs_t fs;               /* the one file request in flight (open, fstat, read, close) */
    uv_write_t write;         /* the chunk being written */
    conn_t *c;
    uv_file fd;               /* -1 until opened */
    int64_t left;             /* bytes of the file not yet read */
    int64_t offset;           /* file offset of the next read */
    size_t chunk;             /* frame bytes (header included) of the write in flight */
    unsigned char *buf;       /* a frame header + min(file size, SEND_CHUNK) bytes, owned */
    int streaming;            /* the dataset message left: only its data frames may follow */
    char hash[CV_SHA256_HEX];
} xfer_t;

struct cv_worker_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    cv_worker_server_config_t cfg;
    char *token;
    char *data_dir;
    const cv_log_t *log;
    cv_sched_t *sched;
    conn_t *conns;
    unsigned n_conns, n_workers;
    int closing;
    int listener_closed;       /* its close callback ran */
    uint64_t serial;           /* names temporary model files */
};

struct conn {
    uv_tcp_t tcp;
    cv_worker_server_t *ws;
    cv_frame_decoder_t dec;
    cv_sched_worker_t *w;      /* set by hello */
    char id[CV_MSG_WORKER_ID_MAX + 1];
    double last_seen;
    int closing;
    int handle_closed;         /* the TCP handle's close callback ran (freed once xfer and
                                  model_job end) */
    int reading;               /* uv_read_start is in effect */
    char *rbuf;                /* READ_BUFFER bytes */
    size_t rpos, rlen;         /* rbuf[rpos, rlen): read but not yet processed (input paused) */
    size_t inflight;           /* bytes handed to uv_write whose callback has not run */
    xfer_t *xfer;              /* the dataset being sent, NULL when none */
    /* a model being received after a result message: its bytes gather in memory, then a
     * thread of the pool checks, writes and syncs them (model_job) while input waits */
    int model_receiving;
    cv_buf_t model;
    int64_t model_left;
    uint32_t model_expect;
    struct model_job *model_job; /* in flight on the thread pool, or NULL */
    int64_t model_trial;
    char model_lease[CV_MSG_LEASE_HEX + 1];
    cv_trial_result_t model_result; /* the result waiting for its model */
    cJSON *model_object;            /* its result object (owned): what model_result borrows from */
    int64_t discard_left;      /* bytes of a refused result's model still to read and drop */
    cv_buf_t out;              /* frames queued this loop iteration, written by flush */
    conn_t *next, *prev;
};

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
    unsigned char *owned; /* the bytes written, freed with the request */
    size_t len;
} write_t;

static void server_free(cv_worker_server_t *ws) {
    free(ws->data_dir);
    free(ws->token);
    free(ws);
}

/* Frees a connection whose handle is closed and whose dataset transfer, if any, has ended. The
 * last one of a closing server frees the server. */
static void conn_free(conn_t *c) {
    cv_worker_server_t *ws = c->ws;
    if (c->prev) c->prev->next = c->next;
    else ws->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    ws->n_conns--;
    cv_frame_decoder_finish(&c->dec);
    free(c->rbuf);
    cv_buf_finish(&c->out);
    free(c);
    /* libuv runs close callbacks in no promised order: the last one frees the server. */
    if (ws->closing && ws->listener_closed && ws->n_conns == 0) server_free(ws);
}

static void on_closed(uv_handle_t *h) {
    conn_t *c = h->data;
    c->handle_closed = 1;
    if (!c->xfer && !c->model_job) conn_free(c); /* else their last callback frees it */
}

static int conn_flush(conn_t *c);

/* Drops a connection: its trial goes back to the scheduler's queue. */
static void conn_close(conn_t *c, const char *why) {
    if (c->closing) return;
    conn_flush(c); /* a last message, such as an error, still goes out before the close */
    c->closing = 1;
    cv_worker_server_t *ws = c->ws;
    if (why) cv_log(ws->log, CV_LOG_WARN, "worker %s: %s; closing", c->id[0] ? c->id : "?", why);
    if (c->w) {
        cv_sched_worker_leave(ws->sched, c->w, cv_clock_wall());
        c->w = NULL;
        ws->n_workers--;
    }
    c->model_receiving = 0;
    cv_buf_finish(&c->model);
    cJSON_Delete(c->model_object);
    c->model_object = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* Bytes queued for the peer: written this iteration or waiting in libuv's write queue. */
static size_t conn_queued(const conn_t *c) {
    return c->inflight + c->out.len;
}

/* 1 when the connection may take more input: it is open, sends no dataset, and its output queue
 * is below the high-water mark (below the low one when its input is paused: hysteresis). */
static int conn_may_read(const conn_t *c) {
    if (c->closing || c->xfer || c->model_job) return 0;
    return conn_queued(c) < (c->reading ? (size_t)OUT_HIGH_WATER : (size_t)OUT_LOW_WATER + 1);
}

static void conn_process(conn_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* Pauses or resumes the peer's input to match conn_may_read. Input held back while paused is
 * processed before reading resumes, in order. */
static void conn_update_input(conn_t *c) {
    if (c->closing) return;
    if (!c->reading && conn_may_read(c)) {
        conn_process(c);
        if (c->closing) return;
        if (c->rpos == c->rlen && conn_may_read(c)) {
            if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
                conn_close(c, "read failed");
                return;
            }
            c->reading = 1;
        }
    }
    if (c->reading && (!conn_may_read(c) || c->rpos < c->rlen)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void after_write(uv_write_t *req, int status) {
    write_t *w = (write_t *)req;
    conn_t *c = req->data;
    c->inflight -= w->len;
    free(w->owned);
    free(w);
    if (status == 0) {
        c->last_seen = cv_clock_wall(); /* a peer that reads what we send is alive */
        conn_update_input(c);
    } else if (status != UV_ECANCELED) {
        conn_close(c, uv_strerror(status)); /* its input may be paused: no EOF would tell */
    }
}

/* Writes what the connection queued this iteration in one write. While a dataset streams, the
 * frames wait for its last data frame. */
static int conn_flush(conn_t *c) {
    if (!c->out.len || c->closing || (c->xfer && c->xfer->streaming)) return 0;
    write_t *w = calloc(1, sizeof *w);
    if (!w) return -1;
    w->owned = c->out.data; /* the write takes the queue's memory over */
    w->len = c->out.len;
    w->buf = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
    w->req.data = c;
    c->out.data = NULL;
    c->out.len = c->out.cap = 0;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, after_write)) {
        free(w->owned);
        free(w);
        return -1;
    }
    c->inflight += w->len;
    return 0;
}

/* Queues a frame (taken over) behind the others of this iteration: the scheduler's trial and
 * the acknowledgement of the previous result then leave in a single write. */
static int send_raw(conn_t *c, unsigned char *frame, size_t len) {
    if (c->closing) {
        free(frame);
        return -1;
    }
    int rc = cv_buf_append(&c->out, frame, len);
    free(frame);
    return rc ? -1 : 0;
}

/* Encodes and queues a message; frees msg. */
static int send_msg(conn_t *c, cJSON *msg) {
    char err[CV_ERRLEN];
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = msg ? cv_msg_encode(msg, &buf, &len, err) : CV_ENOMEM;
    cJSON_Delete(msg);
    return rc ? -1 : send_raw(c, buf, len);
}

/* ---- the scheduler's operations -------------------------------------------------------- */

/* The trial message is built by cv_msg_trial, the builder the protocol schema test checks. */
static int op_send_trial(void *conn, const cv_msg_trial_t *trial) {
    conn_t *c = conn;
    char err[CV_ERRLEN];
    cJSON *msg = cv_msg_trial(trial, err);
    if (msg == NULL) {
        cv_log(c->ws->log, CV_LOG_ERROR, "trial %lld: cannot build its message: %s",
               (long long)trial->trial_id, err);
        return -1;
    }
    return send_msg(c, msg);
}

static int op_send_ack(void *conn, int64_t trial_id, int stored) {
    return send_msg(conn, cv_msg_ack(trial_id, stored, NULL));
}

static int op_send_stop(void *conn, int64_t trial_id) {
    return send_msg(conn, cv_msg_stop(trial_id, NULL));
}

static int op_send_decision(void *conn, int64_t trial_id, int epoch, int stop) {
    return send_msg(conn, cv_msg_decision(trial_id, epoch, stop, NULL));
}

/* The evaluate message is built by cv_msg_evaluate from the spec text the evaluation kept. */
static int op_send_evaluate(void *conn, int64_t job_id, const char *lease, const char *spec_json,
                            const cv_msg_file_t *files, size_t n_files,
                            const cv_msg_model_t *models, size_t n_models) {
    conn_t *c = conn;
    char err[CV_ERRLEN] = "bad spec";
    cJSON *spec = cJSON_Parse(spec_json);
    cJSON *msg = spec ? cv_msg_evaluate(job_id, lease, spec, files, n_files, models, n_models, err)
                      : NULL;
    cJSON_Delete(spec);
    if (msg == NULL) {
        cv_log(c->ws->log, CV_LOG_ERROR, "job %lld: cannot build its evaluate message: %s",
               (long long)job_id, err);
        return -1;
    }
    return send_msg(c, msg);
}

static int op_send_nudge(void *conn, int64_t trial_id, int64_t seq, const cJSON *values,
                         int at_epoch) {
    return send_msg(conn, cv_msg_nudge(trial_id, seq, values, at_epoch, NULL));
}

/* The importance frame was built on the thread pool (server/api.c); it is queued as it is. */
static int op_send_importance(void *conn, const unsigned char *frame, size_t len) {
    unsigned char *copy = malloc(len);
    if (copy == NULL) return -1;
    memcpy(copy, frame, len);
    return send_raw(conn, copy, len);
}

cv_sched_ops_t cv_worker_server_ops(void) {
    return (cv_sched_ops_t){op_send_trial,    op_send_ack,      op_send_stop,
                            op_send_decision, op_send_evaluate, op_send_nudge,
                            op_send_importance};
}

/* ---- messages --------------------------------------------------------------------------- */

static int on_hello(conn_t *c, const cv_msg_hello_t *h) {
    cv_worker_server_t *ws = c->ws;
    char err[CV_ERRLEN];
    if (ws->token && !cv_secret_equal(ws->token, h->has_token ? h->token : "")) {
        send_msg(c, cv_msg_error("wrong or missing worker token", err));
        conn_close(c, "wrong worker token");
        return -1;
    }
    snprintf(c->id, sizeof c->id, "%s", h->worker_id);
    int64_t trials[CV_MSG_LEASES_MAX], reattached[CV_MSG_LEASES_MAX];
    char leases[CV_MSG_LEASES_MAX][33];
    for (size_t i = 0; i < h->n_leases; i++) {
        trials[i] = h->leases[i].trial_id;
        memcpy(leases[i], h->leases[i].lease, 33);
    }
    int n = 0;
    c->w = cv_sched_worker_join(ws->sched, c, h->worker_id, h->version, h->threads, h->host,
                                trials, (const char(*)[33])leases, (int)h->n_leases, reattached,
                                &n, cv_clock_wall());
    if (!c->w) {
        conn_close(c, "out of memory");
        return -1;
    }
    cv_sched_worker_set_trainers(c->w, (const char(*)[CV_MSG_TRAINER_MAX + 1])h->trainers,
                                 h->n_trainers);
    ws->n_workers++;
    cv_log(ws->log, CV_LOG_INFO, "worker %s connected (%d threads, %s, %zu external trainer(s))",
           c->id, h->threads, h->host, h->n_trainers);
    int rc = send_msg(c, cv_msg_welcome(ws->cfg.heartbeat_seconds, ws->cfg.lease_seconds,
                                        reattached, (size_t)n, err));
    if (rc == 0) cv_sched_worker_welcomed(ws->sched, c->w);
    return rc;
}

static int finish_result(conn_t *c, int64_t trial_id, const char *lease,
                         const cv_trial_result_t *result, const char *model_path) {
    char err[CV_ERRLEN];
    int rc = cv_sched_on_result(c->ws->sched, c->w, trial_id, lease, result, model_path,
                                cv_clock_wall(), err);
    if (rc) {
        if (model_path) unlink(model_path);
        conn_close(c, err);
        return -1;
    }
    return 0;
}

static int on_result(conn_t *c, cv_msg_t *m) {
    cv_worker_server_t *ws = c->ws;
    const cv_msg_result_t *r = &m->result;
    if (r->model_bytes == 0) return finish_result(c, r->trial_id, r->lease, &r->result, NULL);
    if (!cv_sched_holds_lease(ws->sched, c->w, r->trial_id, r->lease)) {
        /* A stale lease: refused now (ack stored false, or the connection closed for a trial
         * that does not exist), and the model's data frames are read and dropped unwritten. */
        c->discard_left = r->model_bytes;
        return finish_result(c, r->trial_id, r->lease, &r->result, NULL);
    }
    c->model_receiving = 1;
    cv_buf_init(&c->model, 1u << 16, (size_t)r->model_bytes);
    c->model_left = r->model_bytes;
    c->model_expect = r->model_crc32;
    c->model_trial = r->trial_id;
    memcpy(c->model_lease, r->lease, sizeof c->model_lease);
    c->model_result = r->result;
    c->model_object = cv_msg_take_object(m);
    return c->model_object ? 0 : -1;
}

/* A received model checked, written and synced on the thread pool: the loop never waits for
 * the disk or the checksum. */
typedef struct model_job {
    uv_work_t work;
    conn_t *c;
    cv_buf_t data;         /* the model's bytes, owned */
    uint32_t expect;       /* their CRC-32 as the worker sent it */
    char tmp[PATH_MAX];    /* where they go */
    const char *failed;    /* NULL, or why they were not stored */
} model_job_t;

static void model_work(uv_work_t *work) {
    model_job_t *j = work->data;
    uint32_t crc = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), j->data.data, j->data.len);
    if (crc != j->expect) {
        j->failed = "model checksum mismatch";
        return;
    }
    FILE *f = fopen(j->tmp, "wb");
    int ok = f && fwrite(j->data.data, 1, j->data.len, f) == j->data.len && fflush(f) == 0 &&
             fsync(fileno(f)) == 0;
    if (f) ok = fclose(f) == 0 && ok;
    if (!ok) {
        j->failed = "cannot write the model file";
        unlink(j->tmp);
    }
}

static void after_model(uv_work_t *work, int status) {
    model_job_t *j = work->data;
    conn_t *c = j->c;
    c->model_job = NULL;
    if (status && !j->failed) j->failed = "cannot write the model file";
    if (c->closing) { /* the worker went meanwhile: it sends the result again after its hello */
        if (!j->failed) unlink(j->tmp);
        if (c->handle_closed && !c->xfer) conn_free(c);
    } else if (j->failed) {
        conn_close(c, j->failed);
    } else if (finish_result(c, c->model_trial, c->model_lease, &c->model_result, j->tmp) == 0) {
        cJSON_Delete(c->model_object);
        c->model_object = NULL;
        conn_update_input(c); /* what arrived meanwhile, in order */
    }
    cv_buf_finish(&j->data);
    free(j);
}

static int on_data(conn_t *c, const unsigned char *data, size_t len) {
    if (c->discard_left > 0 && (int64_t)len <= c->discard_left) {
        c->discard_left -= (int64_t)len;
        return 0;
    }
    if (!c->model_receiving || (int64_t)len > c->model_left) {
        conn_close(c, "unexpected data frame");
        return -1;
    }
    if (cv_buf_append(&c->model, data, len)) {
        conn_close(c, "out of memory receiving the model file");
        return -1;
    }
    c->model_left -= (int64_t)len;
    if (c->model_left > 0) return 0;
    cv_worker_server_t *ws = c->ws;
    model_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        conn_close(c, "out of memory receiving the model file");
        return -1;
    }
    *j = (model_job_t){.c = c, .data = c->model, .expect = c->model_expect};
    j->work.data = j;
    snprintf(j->tmp, sizeof j->tmp, "%s/tmp/%llu-%lld.model.part", ws->data_dir,
             (unsigned long long)++ws->serial, (long long)c->model_trial);
    c->model_receiving = 0;
    cv_buf_init(&c->model, 1u << 16, 0); /* the bytes are the job's now */
    c->model_job = j;
    if (uv_queue_work(ws->loop, &j->work, model_work, after_model)) {
        c->model_job = NULL;
        cv_buf_finish(&j->data);
        free(j);
        conn_close(c, "cannot store the model file");
        return -1;
    }
    return 0; /* input waits for the model job (conn_may_read) */
}

/* ---- serving datasets ------------------------------------------------------------------- */

static void after_xfer_close(uv_fs_t *req);

/* Ends the transfer: closes the file off the loop thread; after_xfer_close frees it. why (NULL
 * when the whole file was sent) closes the connection. */
static void xfer_end(xfer_t *x, const char *why) {
    conn_t *c = x->c;
    x->streaming = 0;
    if (why) conn_close(c, why);
    uv_fs_req_cleanup(&x->fs);
    if (x->fd < 0 || uv_fs_close(c->ws->loop, &x->fs, x->fd, after_xfer_close)) {
        x->fd = -1;
        after_xfer_close(&x->fs);
    }
}

static void after_xfer_close(uv_fs_t *req) {
    xfer_t *x = req->data;
    conn_t *c = x->c;
    uv_fs_req_cleanup(req);
    free(x->buf);
    free(x);
    c->xfer = NULL;
    if (c->handle_closed) {
        if (!c->model_job) conn_free(c);
        return;
    }
    if (c->closing) return;
    if (conn_flush(c)) { /* the messages that waited behind the data frames */
        conn_close(c, "cannot write");
        return;
    }
    conn_update_input(c);
}

static void after_xfer_read(uv_fs_t *req);

/* Reads the next chunk into x->buf, in the thread pool. */
static void xfer_read_next(xfer_t *x) {
    uv_fs_req_cleanup(&x->fs);
    size_t n = x->left < SEND_CHUNK ? (size_t)x->left : SEND_CHUNK;
    uv_buf_t b = uv_buf_init((char *)x->buf + CV_FRAME_HEADER_SIZE, (unsigned)n);
    if (uv_fs_read(x->c->ws->loop, &x->fs, x->fd, &b, 1, x->offset, after_xfer_read))
        xfer_end(x, "cannot read the dataset");
}

static void after_xfer_write(uv_write_t *req, int status) {
    xfer_t *x = req->data;
    conn_t *c = x->c;
    c->inflight -= x->chunk;
    if (status < 0 || c->closing) {
        xfer_end(x, status < 0 && !c->closing ? uv_strerror(status) : NULL);
        return;
    }
    c->last_seen = cv_clock_wall(); /* a peer that reads what we send is alive */
    if (c->ws->sched) cv_sched_count_served(c->ws->sched, x->chunk - CV_FRAME_HEADER_SIZE);
    if (x->left > 0) xfer_read_next(x);
    else xfer_end(x, NULL);
}

static void after_xfer_read(uv_fs_t *req) {
    xfer_t *x = req->data;
    conn_t *c = x->c;
    ssize_t n = req->result;
    if (c->closing) {
        xfer_end(x, NULL);
        return;
    }
    if (n <= 0) {
        xfer_end(x, n == 0 ? "the dataset file shrank while it was being sent"
                           : "cannot read the dataset");
        return;
    }
    cv_frame_encode_header(CV_FRAME_DATA, (size_t)n, x->buf, NULL);
    x->offset += n;
    x->left -= n;
    x->chunk = CV_FRAME_HEADER_SIZE + (size_t)n;
    uv_buf_t b = uv_buf_init((char *)x->buf, (unsigned)x->chunk);
    x->write.data = x;
    if (uv_write(&x->write, (uv_stream_t *)&c->tcp, &b, 1, after_xfer_write)) {
        xfer_end(x, "cannot send the dataset");
        return;
    }
    c->inflight += x->chunk;
}

/* Refuses the dataset_get: an error message, then the connection closes. */
static void xfer_refuse(xfer_t *x, const char *why) {
    char err[CV_ERRLEN];
    if (!x->c->closing) send_msg(x->c, cv_msg_error("cannot read the dataset with that hash", err));
    xfer_end(x, why);
}

static void after_xfer_stat(uv_fs_t *req) {
    xfer_t *x = req->data;
    conn_t *c = x->c;
    char err[CV_ERRLEN];
    if (c->closing) {
        xfer_end(x, NULL);
        return;
    }
    if (req->result < 0 || !S_ISREG(req->statbuf.st_mode)) {
        xfer_refuse(x, "its dataset file is no longer a readable regular file");
        return;
    }
    x->left = (int64_t)req->statbuf.st_size;
    size_t cap = x->left < SEND_CHUNK ? (size_t)x->left : SEND_CHUNK;
    if (!(x->buf = malloc(CV_FRAME_HEADER_SIZE + cap)) ||
        send_msg(c, cv_msg_dataset(x->hash, x->left, err)) || conn_flush(c)) {
        xfer_end(x, "cannot send the dataset");
        return;
    }
    x->streaming = 1; /* from here on only data frames, until the last one */
    if (x->left > 0) xfer_read_next(x);
    else xfer_end(x, NULL);
}

static void after_xfer_open(uv_fs_t *req) {
    xfer_t *x = req->data;
    conn_t *c = x->c;
    if (req->result >= 0) x->fd = (uv_file)req->result;
    if (c->closing) {
        xfer_end(x, NULL);
        return;
    }
    if (req->result < 0) {
        cv_log(c->ws->log, CV_LOG_ERROR, "dataset %s: %s", x->hash,
               uv_strerror((int)req->result));
        xfer_refuse(x, "its dataset file cannot be opened");
        return;
    }
    uv_fs_req_cleanup(req);
    if (uv_fs_fstat(c->ws->loop, &x->fs, x->fd, after_xfer_stat))
        xfer_refuse(x, "its dataset file cannot be read");
}

/* Starts sending the dataset with that hash: the connection's input pauses until the transfer
 * ends (conn_may_read), so one transfer runs at a time per connection. The transfer (xfer_t,
 * owned by c->xfer) is freed by after_xfer_close, which also frees a connection that closed in
 * the meantime. Returns 0, or -1 when the connection was closed. */
static int serve_dataset(conn_t *c, const char *hash) {
    char err[CV_ERRLEN];
    const char *path = cv_sched_dataset_path(c->ws->sched, hash);
    xfer_t *x = path ? calloc(1, sizeof *x) : NULL;
    if (!path) {
        send_msg(c, cv_msg_error("no dataset with that hash", err));
        conn_close(c, "asked for an unknown dataset");
        return -1;
    }
    if (!x) {
        conn_close(c, "out of memory");
        return -1;
    }
    x->c = c;
    x->fd = -1;
    x->fs.data = x;
    snprintf(x->hash, sizeof x->hash, "%s", hash);
    /* O_NONBLOCK: a FIFO put in the file's place cannot block a thread of the pool. */
    if (uv_fs_open(c->ws->loop, &x->fs, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0,
                   after_xfer_open)) {
        free(x);
        conn_close(c, "cannot open the dataset");
        return -1;
    }
    c->xfer = x;
    return 0;
}

/* Handles one JSON frame. Returns 0 to go on, -1 when the connection was closed. */
static int on_message(conn_t *c, const char *payload, size_t len) {
    cv_worker_server_t *ws = c->ws;
    char err[CV_ERRLEN];
    cv_msg_t m;
    if (cv_msg_parse(payload, len, &m, err)) {
        conn_close(c, err);
        return -1;
    }
    int rc = 0;
    if (!c->w && m.type != CV_MSG_HELLO) {
        conn_close(c, "the first message must be hello");
        rc = -1;
    } else if ((c->model_receiving || c->discard_left > 0) && m.type != CV_MSG_HEARTBEAT) {
        conn_close(c, "a message arrived before the model's data frames");
        rc = -1;
    } else {
        cv_sched_worker_seen(c->w, cv_clock_wall()); /* no slot yet before hello */
        switch (m.type) {
        case CV_MSG_HELLO:
            if (c->w) {
                conn_close(c, "a second hello");
                rc = -1;
            } else {
                rc = on_hello(c, &m.hello);
            }
            break;
        case CV_MSG_HEARTBEAT: break;
        case CV_MSG_PROGRESS:
            if (cv_sched_on_progress(ws->sched, c->w, m.progress.trial_id, m.progress.lease,
                                     &m.progress.metrics, err) < 0)
                cv_log(ws->log, CV_LOG_ERROR, "trial %lld progress: %s",
                       (long long)m.progress.trial_id, err);
            break;
        case CV_MSG_RESULT: rc = on_result(c, &m); break;
        case CV_MSG_DATASET_GET: rc = serve_dataset(c, m.dataset_get_hash); break;
        case CV_MSG_NUDGED:
            if (cv_sched_on_nudged(ws->sched, c->w, m.nudged.trial_id, m.nudged.lease, m.nudged.seq,
                                   m.nudged.epoch, cv_clock_wall(), err) < 0)
                cv_log(ws->log, CV_LOG_ERROR, "trial %lld nudged: %s", (long long)m.nudged.trial_id,
                       err);
            break;
        case CV_MSG_EVALUATION:
            if (cv_evals_on_answer(cv_sched_evals(ws->sched), ws->sched, c->w, c->id,
                                   &m.evaluation, err) < 0)
                cv_log(ws->log, CV_LOG_ERROR, "job %lld evaluation: %s",
                       (long long)m.evaluation.job_id, err);
            break;
        case CV_MSG_IMPORTANCE_RESULT:
            if (cv_evals_on_importance(cv_sched_evals(ws->sched), c->w, c->id,
                                       &m.importance_result, cv_clock_wall(), err) == CV_ENOMEM)
                cv_log(ws->log, CV_LOG_ERROR, "job %lld importance: %s",
                       (long long)m.importance_result.job_id, err);
            break;
        default:
            snprintf(err, sizeof err, "a worker may not send %s", cv_msg_type_name(m.type));
            conn_close(c, err);
            rc = -1;
        }
    }
    cv_msg_finish(&m);
    return rc;
}

/* ---- connections ------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    conn_t *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->rbuf, READ_BUFFER);
}

/* Decodes and handles the frames in rbuf[rpos, rlen) until they run out, the connection closes
 * or its input pauses (a dataset being sent, a full output queue); what is left waits there. */
static void conn_process(conn_t *c) {
    char err[CV_ERRLEN];
    while (c->rpos < c->rlen && conn_may_read(c)) {
        size_t used = 0;
        cv_frame_t frame;
        int rc = cv_frame_decode(&c->dec, (const unsigned char *)c->rbuf + c->rpos,
                                 c->rlen - c->rpos, &used, &frame, err);
        c->rpos += used;
        if (rc < 0) {
            conn_close(c, err);
            return;
        }
        if (rc == CV_FRAME_NEED_MORE) break;
        int r = frame.kind == CV_FRAME_JSON
                    ? on_message(c, (const char *)frame.payload, frame.len)
                    : on_data(c, frame.payload, frame.len);
        if (r) return;
    }
    if (c->rpos == c->rlen) c->rpos = c->rlen = 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    conn_t *c = stream->data;
    (void)buf; /* always c->rbuf */
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? (c->w && cv_frame_decoder_partial(&c->dec)
                                             ? "connection closed mid-frame"
                                             : NULL)
                                      : uv_strerror((int)nread));
        return;
    }
    if (nread == 0) return;
    c->last_seen = cv_clock_wall();
    c->rpos = 0;
    c->rlen = (size_t)nread;
    conn_process(c);
    conn_update_input(c);
}

static void on_connection(uv_stream_t *server, int status) {
    cv_worker_server_t *ws = server->data;
    if (status < 0 || ws->closing) return;
    conn_t *c = calloc(1, sizeof *c);
    if (!c || !(c->rbuf = malloc(READ_BUFFER))) {
        if (c) free(c);
        return; /* the connection waits in the backlog until memory returns */
    }
    c->ws = ws;
    cv_buf_init(&c->out, 4096, SIZE_MAX);
    cv_frame_decoder_init(&c->dec);
    uv_tcp_init(ws->loop, &c->tcp);
    c->tcp.data = c;
    c->next = ws->conns;
    if (ws->conns) ws->conns->prev = c;
    ws->conns = c;
    ws->n_conns++;
    c->last_seen = cv_clock_wall();
    if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
        conn_close(c, "accept failed");
        return;
    }
    if (ws->n_conns > ws->cfg.max_connections) {
        conn_close(c, "too many worker connections");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_update_input(c);
}

int cv_worker_server_create(cv_worker_server_t **out, uv_loop_t *loop, const char *host, int port,
                            const cv_worker_server_config_t *config, const cv_log_t *log,
                            char *err) {
    *out = NULL;
    cv_worker_server_t *ws = calloc(1, sizeof *ws);
    if (!ws) return cv_errf(err, CV_ENOMEM, "out of memory");
    ws->loop = loop;
    ws->cfg = *config;
    ws->log = log;
    if (!ws->cfg.max_connections) ws->cfg.max_connections = 4096;
    if (ws->cfg.heartbeat_seconds <= 0) ws->cfg.heartbeat_seconds = 2;
    if (ws->cfg.lease_seconds <= 0) ws->cfg.lease_seconds = 10;
    ws->data_dir = strdup(config->data_dir);
    if (config->token && *config->token) ws->token = strdup(config->token);
    if (!ws->data_dir || (config->token && *config->token && !ws->token)) {
        free(ws->data_dir);
        free(ws);
        return cv_errf(err, CV_ENOMEM, "out of memory");
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/tmp", ws->data_dir);
    if (mkdir(tmp, 0755) && errno != EEXIST) {
        free(ws->data_dir);
        free(ws->token);
        free(ws);
        return cv_errf(err, CV_EIO, "%s: %s", tmp, strerror(errno));
    }
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc) rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    uv_tcp_init(loop, &ws->listener);
    ws->listener.data = ws;
    if (rc == 0) rc = uv_tcp_bind(&ws->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&ws->listener, 511, on_connection);
    if (rc) {
        cv_errf(err, CV_EIO, "worker port %s:%d: %s", host, port, uv_strerror(rc));
        cv_worker_server_close(ws);
        return CV_EIO;
    }
    *out = ws;
    return 0;
}

void cv_worker_server_attach(cv_worker_server_t *ws, cv_sched_t *sched) {
    ws->sched = sched;
}

int cv_worker_server_port(const cv_worker_server_t *ws) {
    struct sockaddr_storage addr;
    int len = sizeof addr;
    if (uv_tcp_getsockname(&ws->listener, (struct sockaddr *)&addr, &len)) return 0;
    if (addr.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&addr)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
}

unsigned cv_worker_server_workers(const cv_worker_server_t *ws) {
    return ws->n_workers;
}

void cv_worker_server_flush(cv_worker_server_t *ws) {
    for (conn_t *c = ws->conns, *next; c; c = next) {
        next = c->next;
        if (conn_flush(c)) conn_close(c, "cannot write");
    }
}

void cv_worker_server_check(cv_worker_server_t *ws, double now) {
    for (conn_t *c = ws->conns, *next; c; c = next) {
        next = c->next;
        if (!c->closing && now - c->last_seen > ws->cfg.lease_seconds)
            conn_close(c, "silent past its lease");
    }
}

static void on_listener_closed(uv_handle_t *h) {
    cv_worker_server_t *ws = h->data;
    ws->listener_closed = 1;
    if (ws->n_conns == 0) server_free(ws);
}

void cv_worker_server_close(cv_worker_server_t *ws) {
    if (!ws) return;
    ws->closing = 1;
    for (conn_t *c = ws->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c, NULL);
    }
    uv_close((uv_handle_t *)&ws->listener, on_listener_closed);
}
