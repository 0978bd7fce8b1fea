/* caviar-worker's connection to the coordinator: the socket, the poll loop and the session
 * (hello, heartbeats, reconnection with backoff, the hand-back on a stop request), and the two
 * public helpers of connection.h. What each message does, how datasets resolve, the training
 * thread and the results live beside it (connection_internal.h lists the files); see
 * connection.h for the design and a trial's life on the worker. */
#include "worker/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "worker/connection_internal.h"

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
int cv_conn_send_msg(worker_t *w, cJSON *msg, const char *why) {
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
    rc = cv_bytes_append(w->up.f ? &w->deferred : &w->out, buf, len);
    free(buf);
    return rc;
}

/* Writes what the socket accepts now. Returns 0, or CV_EIO when the connection is gone. */
static int flush_out(worker_t *w) {
    while (cv_bytes_queued(&w->out) > 0) {
        ssize_t n = send(w->fd, cv_bytes_head(&w->out), cv_bytes_queued(&w->out),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n < 0) {
            LOG(w, CV_LOG_WARN, "connection lost while sending: %s", strerror(errno));
            return CV_EIO;
        }
        cv_bytes_consume(&w->out, (size_t)n);
    }
    return 0;
}

/* Reads what the socket holds and handles every complete frame. Returns 0, CV_EIO when the
 * coordinator closed the connection, or the code of cv_conn_on_frame. */
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
        if (rc == CV_FRAME_READY && (rc = cv_conn_on_frame(w, &frame)) != 0) return rc;
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
        r = errno == EINPROGRESS ? wait_connected(w, fd, cv_clock_monotonic() + CONNECT_TIMEOUT)
                                 : errno;
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
    for (size_t i = 0; i < w->opt->n_trainers && i < CV_MSG_TRAINERS_MAX; i++)
        memcpy(h.trainers[h.n_trainers++], w->opt->trainers[i].name, CV_MSG_TRAINER_MAX + 1);
    cv_frame_decoder_init(&w->dec);
    w->welcomed = 0;
    LOG(w, CV_LOG_INFO, "connected to %s:%s as %s (%zu lease(s) held)", w->opt->host, w->opt->port,
        w->opt->worker_id, h.n_leases);
    cJSON *hello = cv_msg_hello(&h, err);
    if (hello == NULL) {
        LOG(w, CV_LOG_ERROR, "cannot build hello: %s", err);
        return CV_EINVAL;
    }
    return cv_conn_send_msg(w, hello, err);
}

/* Ends the session: the socket, queued frames, an upload and a transfer in progress go. The
 * trial being prepared or trained and the unacknowledged results stay for the next session. */
static void session_close(worker_t *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    w->welcomed = 0;
    if (w->run) cv_conn_train_set_online(w->run, 0); /* a wait for a decision ends: train on */
    cv_frame_decoder_finish(&w->dec);
    cv_bytes_consume(&w->out, cv_bytes_queued(&w->out));
    cv_bytes_consume(&w->deferred, cv_bytes_queued(&w->deferred));
    if (w->up.f) fclose(w->up.f);
    w->up = (upload_t){0};
    cv_conn_fetch_reset(w);
    cv_wk_eval_destroy(w->eval); /* the coordinator gives it to another worker */
    w->eval = NULL;
    cv_conn_importance_destroy(w->importance); /* the same */
    w->importance = NULL;
}

/* One turn of a connected session: queue what is due, wait for the socket or a wake-up, read
 * and write. Returns 0 to go on, or the code that ends the session. */
static int session_step(worker_t *w) {
    char err[CV_ERRLEN];
    int rc = cv_conn_train_service(w);
    if (rc == 0) rc = cv_conn_eval_service(w);
    if (rc == 0) rc = cv_conn_importance_service(w);
    if (rc == 0) rc = cv_conn_send_next_pending(w);
    if (rc == 0) rc = cv_conn_pump_upload(w);
    double now = cv_clock_monotonic();
    if (rc == 0 && w->welcomed && now >= w->hb_next) {
        w->hb_next = now + w->hb_every;
        rc = cv_conn_send_msg(w, cv_msg_heartbeat(err), err);
    }
    if (rc) return rc;

    int ms = TICK_MS;
    if (w->welcomed && (w->hb_next - now) * 1000 < ms) ms = (int)((w->hb_next - now) * 1000) + 1;
    struct pollfd p[2] = {
        {.fd = w->fd, .events = (short)(POLLIN | (cv_bytes_queued(&w->out) ? POLLOUT : 0))},
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

/* Why a trial handed back unfinished ended. */
#define STOPPED_REASON "the worker was stopped (SIGTERM or SIGINT) and gives it back"

/* Hands back the trial being trained and the one being prepared as `stopped` results. */
static void give_back_held(worker_t *w) {
    if (w->run && !w->run->discard) {
        LOG(w, CV_LOG_INFO, "trial %lld: stopping; handing it back", (long long)w->run->trial_id);
        cv_conn_add_failure(w, w->run->trial_id, w->run->lease, CV_TRIAL_STOPPED, STOPPED_REASON, 0,
                            FAULT_WORKER);
        cv_conn_train_discard(w);
    }
    if (w->prep.active) {
        LOG(w, CV_LOG_INFO, "trial %lld: stopping; handing it back", (long long)w->prep.trial_id);
        cv_conn_add_failure(w, w->prep.trial_id, w->prep.lease, CV_TRIAL_STOPPED, STOPPED_REASON, 0,
                            FAULT_WORKER);
        cv_conn_prep_clear(w);
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
    cv_conn_train_shutdown(w);
    session_close(w);
    cv_conn_prep_clear(w);
    while (w->n_pending > 0)
        cv_conn_drop_pending(w, &w->pending[0]);
    cv_bytes_finish(&w->out);
    cv_bytes_finish(&w->deferred);
    close(w->wake[0]);
    close(w->wake[1]);
    cv_conn_nudges_finish(&w->nudges);
}

int cv_conn_run(const cv_conn_options_t *opts, char *err) {
    worker_t *w = calloc(1, sizeof *w);
    if (w == NULL) return cv_errf(err, CV_ENOMEM, "out of memory");
    w->opt = opts;
    w->fd = -1;
    w->backoff = BACKOFF_FIRST;
    cv_bytes_init(&w->out);
    cv_bytes_init(&w->deferred);
    cv_dcache_init(&w->cache, opts->cache_dir, opts->log);
    cv_rng_seed(&w->rng, (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
                             (uint64_t)(cv_clock_monotonic() * 1e9));
    if (cv_conn_nudges_init(&w->nudges) != 0) {
        free(w);
        return cv_errf(err, CV_ENOMEM, "cannot create a mutex");
    }
    if (pipe(w->wake) != 0) {
        int rc = cv_errf(err, CV_EIO, "cannot create a pipe: %s", strerror(errno));
        cv_conn_nudges_finish(&w->nudges);
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
            (void)cv_conn_train_service(w); /* progress is dropped, results kept */
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
