/* caviard: the coordinator. One libuv loop serves the HTTP API and the worker port, runs the
 * scheduler, commits its writes once per loop iteration (group commit) and, with --workers N,
 * starts and supervises N local training workers.
 *
 *   caviard [--listen HOST:PORT] [--worker-listen HOST:PORT] [--db PATH] [--data-dir DIR]
 *           [--workers N] [--worker-threads T] [--worker-bin PATH] [--noop-workers]
 *           [--port-file FILE] [--lease-seconds S] [--heartbeat-seconds S] [--max-attempts N]
 *           [--quarantine-after N] [--quarantine-seconds S] [--max-dataset-bytes N]
 *           [--reattach-seconds S] [--ask-lease-seconds S]
 *           [--token-file FILE] [--worker-token-file FILE] [--synchronous full|normal]
 *           [--db-max-bytes N] [--verbose] [--dataset-root DIR]... [--allow-remote-without-token]
 *           [--allow-remote-workers-without-token] [--trainer NAME=COMMAND]...
 *           [--http-idle-ms MS] [--http-request-ms MS] [--http-max-connections N]
 *           [--web-root DIR]
 * One caviard runs per database: it holds an exclusive lock on <db>.lock while it runs. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/message.h"
#include "common/token.h"
#include "server/api.h"
#include "server/http.h"
#include "server/paths.h"
#include "server/scheduler.h"
#include "server/store.h"
#include "server/web.h"
#include "server/worker_server.h"

#define MAX_LOCAL_WORKERS 256
/* Read-only connections of the API: store queries run at once on the thread pool (half of
 * libuv's four threads, so that evaluations still find threads and the loop a core). */
#define API_READERS 2

typedef struct {
    char listen_host[64];
    int listen_port;
    char worker_host[64];
    int worker_port;
    const char *db;
    const char *data_dir;
    int workers;
    int worker_threads;
    const char *worker_bin;
    int noop_workers;
    const char *port_file;
    double lease_seconds, heartbeat_seconds;
    int max_attempts;
    int quarantine_after; /* consecutive failed trials that quarantine a worker; 0: never */
    double quarantine_seconds;  /* how long a quarantine lasts; 0: until released (600) */
    uint64_t max_dataset_bytes; /* size cap of one dataset file of a job; 0: none */
    double reattach_seconds; /* after a restart, how long running trials wait for their workers
                                to re-attach before they are queued again; 0: at once */
    double ask_lease_seconds; /* an ask client's lease not renewed by a report for this long is
                                 lost (60) */
    const char *token_file, *worker_token_file;
    int synchronous_normal;
    int64_t db_max_bytes; /* --db-max-bytes: cap on the database file in bytes; 0: none */
    int verbose;
    /* What clients may do (server/paths.h, README "Threat model"). */
    const char *dataset_roots[CV_PATHS_MAX_ROOTS]; /* --dataset-root, canonical after start-up */
    size_t n_dataset_roots;
    int allow_remote_without_token; /* a non-loopback --listen without an API token */
    int allow_remote_workers_without_token; /* a non-loopback --worker-listen without a token */
    cv_http_limits_t http;          /* --http-idle-ms, --http-request-ms, --http-max-connections */
    const char *web_root;           /* --web-root: the dashboard's files (server/web.h) */
    const char *trainers[CV_MSG_TRAINERS_MAX]; /* --trainer NAME=COMMAND, passed to local workers */
    size_t n_trainers;
} options_t;

typedef struct daemon daemon_t;

typedef struct {
    uv_process_t proc;
    uv_timer_t restart;
    daemon_t *d;
    int index;
    int running;
} local_worker_t;

struct daemon {
    options_t opt;
    uv_loop_t *loop;
    cv_log_t log;
    cv_store_t *store, *ro;
    cv_sched_t *sched;
    cv_api_t *api;
    cv_web_t *web; /* the dashboard, in front of the API */
    cv_http_server_t *http;
    cv_worker_server_t *workers;
    uv_check_t check;
    uv_timer_t tick;
    uv_timer_t commit_timer;
    uv_timer_t drain;     /* SIGTERM: how long results in flight are waited for */
    int draining;         /* SIGTERM received: no more dispatching, stop once idle */
    double last_commit;   /* cv_clock_monotonic() of the last commit */
    uv_signal_t sigterm, sigint;
    local_worker_t local[MAX_LOCAL_WORKERS];
    char worker_bin[PATH_MAX];
    char web_root[PATH_MAX]; /* --web-root, or the one found (find_web_root) */
    char token[512], worker_token[512];
    char **worker_env;    /* environment of local workers (make_worker_env), owned */
    char dataset_roots[CV_PATHS_MAX_ROOTS][PATH_MAX]; /* canonical --dataset-root values */
    int stopping;
    int exit_code;
};

static void usage(FILE *out) {
    fputs("usage: caviard [--listen HOST:PORT] [--worker-listen HOST:PORT] [--db PATH]\n"
          "               [--data-dir DIR] [--workers N] [--worker-threads T]\n"
          "               [--worker-bin PATH] [--noop-workers] [--port-file FILE]\n"
          "               [--lease-seconds S] [--heartbeat-seconds S] [--max-attempts N]\n"
          "               [--quarantine-after N] [--quarantine-seconds S]\n"
          "               [--max-dataset-bytes N]\n"
          "               [--reattach-seconds S] [--ask-lease-seconds S]\n"
          "               [--token-file FILE] [--worker-token-file FILE]\n"
          "               [--synchronous full|normal] [--db-max-bytes N] [--verbose]\n"
          "               [--dataset-root DIR]... [--allow-remote-without-token]\n"
          "               [--allow-remote-workers-without-token]\n"
          "               [--http-idle-ms MS] [--http-request-ms MS] [--http-max-connections N]\n"
          "               [--web-root DIR] [--trainer NAME=COMMAND]...\n"
          "Every option takes its value as --opt VALUE or --opt=VALUE.\n"
          "Defaults: --listen 127.0.0.1:8470 --worker-listen 127.0.0.1:8471 --db caviar.db\n"
          "          --data-dir caviar-data --workers 0\n"
          "--db-max-bytes N is a cap on the database file; writes beyond it fail.\n"
          "--reattach-seconds S (default 30): after a restart, trials that were running wait\n"
          "  that long for their workers to re-attach before they are queued again.\n"
          "--ask-lease-seconds S (default 60): a trial handed out by POST /v1/jobs/{id}/ask\n"
          "  whose client sends no report or tell for that long is queued again.\n"
          "Tokens may also come from CAVIAR_TOKEN and CAVIAR_WORKER_TOKEN. A token file holds\n"
          "the token alone; surrounding whitespace is stripped, an empty or blank one refused.\n"
          "Without a token, a non-loopback --listen (--worker-listen) is refused unless\n"
          "--allow-remote-without-token (--allow-remote-workers-without-token).\n"
          "Local workers get the worker token in their environment and exit with caviard.\n"
          "--trainer NAME=COMMAND (repeatable) is passed on to the local workers, which then\n"
          "  run COMMAND for the trials of jobs whose trainer is NAME.\n"
          "--web-root DIR: the dashboard's files, served at / (default: share/caviar/web\n"
          "  beside the binary, else the web/ directory of the source tree it was built from).\n",
          out);
}

static int parse_hostport(const char *s, char *host, size_t cap, int *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= cap) return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (host[0] == '[') { /* [::1] */
        memmove(host, host + 1, strlen(host));
        char *rb = strchr(host, ']');
        if (rb) *rb = '\0';
    }
    *port = (int)p;
    return 0;
}

/* How an option's value is read and where it goes. */
typedef enum {
    ARG_FLAG,     /* no value: the int field becomes 1 */
    ARG_STRING,   /* the const char * field points at the value */
    ARG_INT,      /* an int field, a whole number in [lo, hi] */
    ARG_UINT,     /* an unsigned field, a whole number in [lo, hi] */
    ARG_I64,      /* an int64_t field, a whole number in [lo, hi] */
    ARG_U64,      /* a uint64_t field, a whole number in [lo, hi] */
    ARG_POSITIVE, /* a double field, a number above 0 */
    ARG_NONNEG,   /* a double field, a number of at least 0 */
    ARG_HOSTPORT, /* HOST:PORT into the char[64] field and the int field at offset2 */
    ARG_CHOICE,   /* an int field, the index of the value in choices */
    ARG_ROOT,     /* one more --dataset-root (repeatable) */
    ARG_TRAINER,  /* one more --trainer NAME=COMMAND (repeatable) */
} arg_kind_t;

/* One command-line option, Redis-config style: every option is a row, and one function reads a
 * row's value into options_t. getopt_long's table is made from these rows (its val is the row's
 * index plus OPT_FIRST). */
typedef struct {
    const char *name;
    arg_kind_t kind;
    size_t offset;               /* of the field in options_t */
    size_t offset2;              /* ARG_HOSTPORT: of the port field */
    long long lo, hi;            /* bounds of a whole number */
    const char *want;            /* what a bad value should have been, for the message */
    const char *const *choices;  /* ARG_CHOICE: the values, NULL-terminated */
} option_spec_t;

#define OPT_FIRST 256 /* getopt_long's val of OPTIONS[0] */
#define FIELD(f) offsetof(options_t, f)

static const char *const SYNC_CHOICES[] = {"full", "normal", NULL};

static const option_spec_t OPTIONS[] = {
    {"listen", ARG_HOSTPORT, FIELD(listen_host), FIELD(listen_port), 0, 0, "HOST:PORT", NULL},
    {"worker-listen", ARG_HOSTPORT, FIELD(worker_host), FIELD(worker_port), 0, 0, "HOST:PORT",
     NULL},
    {"db", ARG_STRING, FIELD(db), 0, 0, 0, NULL, NULL},
    {"data-dir", ARG_STRING, FIELD(data_dir), 0, 0, 0, NULL, NULL},
    {"workers", ARG_INT, FIELD(workers), 0, 0, MAX_LOCAL_WORKERS, "an integer from 0 to 256",
     NULL},
    {"worker-threads", ARG_INT, FIELD(worker_threads), 0, 1, 1024, "an integer from 1 to 1024",
     NULL},
    {"worker-bin", ARG_STRING, FIELD(worker_bin), 0, 0, 0, NULL, NULL},
    {"web-root", ARG_STRING, FIELD(web_root), 0, 0, 0, NULL, NULL},
    {"noop-workers", ARG_FLAG, FIELD(noop_workers), 0, 0, 0, NULL, NULL},
    {"port-file", ARG_STRING, FIELD(port_file), 0, 0, 0, NULL, NULL},
    {"lease-seconds", ARG_POSITIVE, FIELD(lease_seconds), 0, 0, 0, "a number of seconds above 0",
     NULL},
    {"heartbeat-seconds", ARG_POSITIVE, FIELD(heartbeat_seconds), 0, 0, 0,
     "a number of seconds above 0", NULL},
    {"max-attempts", ARG_INT, FIELD(max_attempts), 0, 1, INT_MAX, "an integer of at least 1",
     NULL},
    {"quarantine-after", ARG_INT, FIELD(quarantine_after), 0, 0, INT_MAX,
     "an integer of at least 0 (0: never)", NULL},
    {"quarantine-seconds", ARG_NONNEG, FIELD(quarantine_seconds), 0, 0, 0,
     "a number of seconds of at least 0 (0: until released)", NULL},
    {"max-dataset-bytes", ARG_U64, FIELD(max_dataset_bytes), 0, 0, INT64_MAX,
     "a number of bytes (0: no limit)", NULL},
    {"reattach-seconds", ARG_NONNEG, FIELD(reattach_seconds), 0, 0, 0,
     "a number of seconds of at least 0 (0: queue them again at once)", NULL},
    {"ask-lease-seconds", ARG_POSITIVE, FIELD(ask_lease_seconds), 0, 0, 0,
     "a number of seconds above 0", NULL},
    {"token-file", ARG_STRING, FIELD(token_file), 0, 0, 0, NULL, NULL},
    {"worker-token-file", ARG_STRING, FIELD(worker_token_file), 0, 0, 0, NULL, NULL},
    {"synchronous", ARG_CHOICE, FIELD(synchronous_normal), 0, 0, 0, "full or normal",
     SYNC_CHOICES},
    {"db-max-bytes", ARG_I64, FIELD(db_max_bytes), 0, 1, INT64_MAX,
     "a number of bytes of at least 1", NULL},
    {"verbose", ARG_FLAG, FIELD(verbose), 0, 0, 0, NULL, NULL},
    {"dataset-root", ARG_ROOT, 0, 0, 0, 0, "a directory", NULL},
    {"trainer", ARG_TRAINER, 0, 0, 0, 0,
     "NAME=COMMAND, NAME matching [A-Za-z0-9_.-]{1,64} and COMMAND not empty", NULL},
    {"allow-remote-without-token", ARG_FLAG, FIELD(allow_remote_without_token), 0, 0, 0, NULL,
     NULL},
    {"allow-remote-workers-without-token", ARG_FLAG, FIELD(allow_remote_workers_without_token), 0,
     0, 0, NULL, NULL},
    {"http-idle-ms", ARG_U64, FIELD(http.idle_timeout_ms), 0, 1, INT64_MAX,
     "a number of milliseconds of at least 1", NULL},
    {"http-request-ms", ARG_U64, FIELD(http.request_timeout_ms), 0, 1, INT64_MAX,
     "a number of milliseconds of at least 1", NULL},
    {"http-max-connections", ARG_UINT, FIELD(http.max_connections), 0, 1, UINT_MAX,
     "an integer of at least 1", NULL},
};
#define N_OPTIONS (sizeof OPTIONS / sizeof *OPTIONS)

/* The long name of the option whose getopt value is val, for messages. */
static const char *option_name(int val) {
    return val >= OPT_FIRST && (size_t)(val - OPT_FIRST) < N_OPTIONS ? OPTIONS[val - OPT_FIRST].name
                                                                     : "?";
}

/* Reads a whole decimal integer in [lo, hi]. Returns 0 or -1. */
static int read_int64(const char *text, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Reads a finite number above lo (strictly when strict), at most 1e9. Returns 0 or -1. */
static int read_number(const char *text, int strict, double *out) {
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(strict ? v > 0 : v >= 0) || v > 1e9) return -1;
    *out = v;
    return 0;
}

/* Applies option spec with its value v (NULL for flags) to o. Returns 0, or -1 after a message
 * naming the option and what it takes. */
static int apply_option(options_t *o, const option_spec_t *spec, const char *v) {
    char *field = (char *)o + spec->offset;
    long long n = 0;
    double x = 0;
    int bad = 0;
    switch (spec->kind) {
    case ARG_FLAG: *(int *)(void *)field = 1; break;
    case ARG_STRING: *(const char **)(void *)field = v; break;
    case ARG_INT:
    case ARG_UINT:
    case ARG_I64:
    case ARG_U64:
        if ((bad = read_int64(v, spec->lo, spec->hi, &n))) break;
        if (spec->kind == ARG_INT) *(int *)(void *)field = (int)n;
        else if (spec->kind == ARG_UINT) *(unsigned *)(void *)field = (unsigned)n;
        else if (spec->kind == ARG_I64) *(int64_t *)(void *)field = n;
        else *(uint64_t *)(void *)field = (uint64_t)n;
        break;
    case ARG_POSITIVE:
    case ARG_NONNEG:
        if (!(bad = read_number(v, spec->kind == ARG_POSITIVE, &x))) *(double *)(void *)field = x;
        break;
    case ARG_HOSTPORT:
        bad = parse_hostport(v, field, sizeof o->listen_host, (int *)(void *)((char *)o +
                                                                               spec->offset2));
        break;
    case ARG_CHOICE:
        bad = 1;
        for (int i = 0; bad && spec->choices[i]; i++)
            if (!strcmp(v, spec->choices[i])) *(int *)(void *)field = i, bad = 0;
        break;
    case ARG_ROOT:
        if (o->n_dataset_roots == CV_PATHS_MAX_ROOTS) {
            fprintf(stderr, "caviard: --dataset-root: at most %d roots\n", CV_PATHS_MAX_ROOTS);
            return -1;
        }
        if (!(bad = !*v)) o->dataset_roots[o->n_dataset_roots++] = v;
        break;
    case ARG_TRAINER: {
        if (o->n_trainers == CV_MSG_TRAINERS_MAX) {
            fprintf(stderr, "caviard: --trainer: at most %d trainers\n", CV_MSG_TRAINERS_MAX);
            return -1;
        }
        const char *eq = strchr(v, '=');
        char name[CV_MSG_TRAINER_MAX + 1];
        size_t n = eq ? (size_t)(eq - v) : 0;
        bad = !eq || n > CV_MSG_TRAINER_MAX || !eq[1 + strspn(eq + 1, " \t")];
        if (!bad) {
            memcpy(name, v, n);
            name[n] = '\0';
            bad = !cv_msg_trainer_name_ok(name) || !strcmp(name, "builtin") ||
                  !strcmp(name, "ask");
        }
        if (!bad) o->trainers[o->n_trainers++] = v;
        break;
    }
    }
    if (bad) {
        fprintf(stderr, "caviard: bad value for --%s: '%s' (want %s)\n", spec->name, v,
                spec->want);
        return -1;
    }
    return 0;
}

/* Parses the command line into o (defaults first). Returns 0, 1 for --help (main prints the
 * usage and exits 0), or -1 after a message naming the option at fault. Nothing here exits.
 * The strings in o point into argv. */
static int parse_options(options_t *o, int argc, char **argv) {
    struct option longs[N_OPTIONS + 2];
    for (size_t i = 0; i < N_OPTIONS; i++)
        longs[i] = (struct option){OPTIONS[i].name,
                                   OPTIONS[i].kind == ARG_FLAG ? no_argument : required_argument,
                                   NULL, OPT_FIRST + (int)i};
    longs[N_OPTIONS] = (struct option){"help", no_argument, NULL, 'h'};
    longs[N_OPTIONS + 1] = (struct option){NULL, 0, NULL, 0};
    *o = (options_t){.listen_port = 8470, .worker_port = 8471, .db = "caviar.db",
                     .data_dir = "caviar-data", .lease_seconds = 10, .heartbeat_seconds = 2,
                     .max_attempts = 3, .quarantine_after = 3, .quarantine_seconds = 600,
                     .reattach_seconds = 30, .ask_lease_seconds = 60,
                     .max_dataset_bytes = CV_DATASET_DEFAULT_MAX_BYTES};
    strcpy(o->listen_host, "127.0.0.1");
    strcpy(o->worker_host, "127.0.0.1");
    cv_http_limits_default(&o->http);
    opterr = 0; /* the messages below name the option */
    optind = 1;
    for (;;) {
        int val = getopt_long(argc, argv, ":h", longs, NULL);
        if (val == -1) break;
        if (val == 'h') return 1;
        if (val == ':') {
            fprintf(stderr, "caviard: --%s needs a value\n", option_name(optopt));
            return -1;
        }
        if (val == '?' && optopt >= OPT_FIRST) {
            fprintf(stderr, "caviard: --%s takes no value\n", option_name(optopt));
            return -1;
        }
        if (val == '?') {
            fprintf(stderr, "caviard: unknown or ambiguous option '%s'\n", argv[optind - 1]);
            return -1;
        }
        if (apply_option(o, &OPTIONS[val - OPT_FIRST], optarg)) return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "caviard: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Reads a token (common/token.h): from file when given, else from the environment variable
 * (unset or empty: no token, out ""). A token that breaks the rules is refused naming its
 * source. Returns 0 or -1 after printing the reason. */
static int read_token(const char *file, const char *env, size_t max, char *out, size_t cap) {
    char err[CV_ERRLEN];
    const char *value = getenv(env);
    out[0] = '\0';
    int rc = 0;
    if (file)
        rc = cv_token_read_file(file, max, out, cap, err);
    else if (value && *value)
        rc = cv_token_parse(value, strlen(value), max, env, out, cap, err);
    if (rc) fprintf(stderr, "caviard: %s\n", err);
    return rc ? -1 : 0;
}

/* 1 when host (an address literal) is a loopback address: 127.0.0.0/8, ::1 or ::ffff:127.x. */
static int is_loopback(const char *host) {
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1) return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) != 1) return 0;
    static const unsigned char one[16] = {[15] = 1}, v4[12] = {[10] = 0xff, [11] = 0xff};
    return !memcmp(a, one, 16) || (!memcmp(a, v4, 12) && a[12] == 127);
}

/* Refuses what start-up options would expose, and canonicalizes the dataset roots. Without an
 * API token the API listens on loopback only, unless --allow-remote-without-token; without a
 * worker token the worker port does too, unless --allow-remote-workers-without-token. */
static int check_exposure(daemon_t *d) {
    char err[CV_ERRLEN];
    for (size_t i = 0; i < d->opt.n_dataset_roots; i++) {
        if (cv_path_root_resolve(d->opt.dataset_roots[i], d->dataset_roots[i], PATH_MAX, err)) {
            fprintf(stderr, "caviard: --dataset-root: %s\n", err);
            return -1;
        }
        d->opt.dataset_roots[i] = d->dataset_roots[i];
    }
    if (!d->token[0] && !is_loopback(d->opt.listen_host) && !d->opt.allow_remote_without_token) {
        fprintf(stderr, "caviard: --listen %s is not a loopback address and no API token is set "
                "(--token-file or CAVIAR_TOKEN): anyone who can reach it could submit and cancel "
                "jobs; set a token, or pass --allow-remote-without-token\n", d->opt.listen_host);
        return -1;
    }
    if (!d->worker_token[0] && !is_loopback(d->opt.worker_host) &&
        !d->opt.allow_remote_workers_without_token) {
        fprintf(stderr, "caviard: --worker-listen %s is not a loopback address and no worker "
                "token is set (--worker-token-file or CAVIAR_WORKER_TOKEN): anyone who can reach "
                "it could take trials, post results and fetch datasets; set a worker token, or "
                "pass --allow-remote-workers-without-token\n", d->opt.worker_host);
        return -1;
    }
    return 0;
}

/* Takes the database's lock file, <db>.lock, for the life of the process: an exclusive flock(2)
 * that a second caviard on the same database cannot take, released by the kernel however this
 * process ends. The file holds the owner's pid, for the second one's message. Returns the open
 * descriptor (close-on-exec, so local workers do not inherit the lock), or -1 after printing the
 * reason. */
static int lock_database(const char *db) {
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s.lock", db) >= sizeof path) {
        fprintf(stderr, "caviard: --db %s: path too long\n", db);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "caviard: cannot open the lock file %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char text[32] = "";
        ssize_t n = e == EWOULDBLOCK ? pread(fd, text, sizeof text - 1, 0) : -1;
        long pid = n > 0 ? strtol(text, NULL, 10) : 0;
        if (e != EWOULDBLOCK)
            fprintf(stderr, "caviard: cannot lock %s: %s\n", path, strerror(e));
        else if (pid > 0)
            fprintf(stderr, "caviard: database %s is in use by another caviard (pid %ld, lock "
                    "file %s); stop it first, or give this one another --db\n", db, pid, path);
        else
            fprintf(stderr, "caviard: database %s is in use by another caviard (lock file %s); "
                    "stop it first, or give this one another --db\n", db, path);
        close(fd);
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        fprintf(stderr, "caviard: warning: cannot write the pid into %s: %s\n", path,
                strerror(errno));
    return fd;
}

/* ---- local workers ---------------------------------------------------------------------- */

static void spawn_worker(local_worker_t *lw);

static void on_restart(uv_timer_t *t) {
    local_worker_t *lw = t->data;
    if (!lw->d->stopping) spawn_worker(lw);
}

static void on_worker_exit(uv_process_t *p, int64_t status, int signal) {
    local_worker_t *lw = p->data;
    lw->running = 0;
    uv_close((uv_handle_t *)p, NULL);
    if (lw->d->stopping) return;
    cv_log(&lw->d->log, CV_LOG_WARN, "local worker %d exited (status %lld, signal %d); restarting",
           lw->index, (long long)status, signal);
    uv_timer_start(&lw->restart, on_restart, 1000, 0);
}

/* The environment of local workers: this process's, with CAVIAR_WORKER_TOKEN set to the worker
 * token when there is one and removed when there is none. The token travels there, never in
 * argv, where `ps` would show it to every local user. Returns a NULL-terminated array (the
 * caller frees it and its last-but-one string with free_worker_env) or NULL when out of memory. */
static char **make_worker_env(const char *token) {
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env), *entry = NULL;
    size_t k = 0;
    if (!env) return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "CAVIAR_WORKER_TOKEN=", 20) != 0) env[k++] = environ[i];
    if (token[0]) {
        size_t len = strlen("CAVIAR_WORKER_TOKEN=") + strlen(token) + 1;
        if (!(entry = malloc(len))) {
            free(env);
            return NULL;
        }
        snprintf(entry, len, "CAVIAR_WORKER_TOKEN=%s", token);
        env[k++] = entry;
    }
    env[k] = NULL;
    return env;
}

/* Frees what make_worker_env allocated (the token entry is the only string it owns). Accepts
 * NULL. */
static void free_worker_env(char **env) {
    if (!env) return;
    for (size_t i = 0; env[i]; i++)
        if (!strncmp(env[i], "CAVIAR_WORKER_TOKEN=", 20)) free(env[i]);
    free(env);
}

static void spawn_worker(local_worker_t *lw) {
    daemon_t *d = lw->d;
    char connect[96], id[32], threads[16], parent[24];
    snprintf(connect, sizeof connect, "127.0.0.1:%d", cv_worker_server_port(d->workers));
    snprintf(id, sizeof id, "local-%d", lw->index);
    snprintf(threads, sizeof threads, "%d", d->opt.worker_threads);
    char *args[16 + 2 * CV_MSG_TRAINERS_MAX];
    int n = 0;
    args[n++] = d->worker_bin;
    args[n++] = "--connect";
    args[n++] = connect;
    args[n++] = "--id";
    args[n++] = id;
    args[n++] = "--threads";
    args[n++] = threads;
    if (d->opt.noop_workers) args[n++] = "--noop";
    for (size_t i = 0; i < d->opt.n_trainers; i++) {
        args[n++] = "--trainer";
        args[n++] = (char *)d->opt.trainers[i];
    }
    /* The worker ends when this process does, even killed by SIGKILL (worker/main.c). */
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    args[n++] = "--exit-with-parent";
    args[n++] = parent;
    args[n] = NULL;
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t po = {.file = d->worker_bin, .args = args, .env = d->worker_env,
                               .exit_cb = on_worker_exit, .stdio = stdio, .stdio_count = 3};
    lw->proc.data = lw;
    int rc = uv_spawn(d->loop, &lw->proc, &po);
    if (rc) {
        cv_log(&d->log, CV_LOG_ERROR, "cannot start %s: %s", d->worker_bin, uv_strerror(rc));
        uv_close((uv_handle_t *)&lw->proc, NULL);
        return;
    }
    lw->running = 1;
}

/* Writes rel, taken from the directory of caviard's own executable, into out (cap bytes);
 * 1 when that path is accessible with mode (access(2)), else 0. */
static int beside_self(const char *rel, int mode, char *out, size_t cap) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 0;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash) return 0;
    *slash = '\0';
    int len = snprintf(out, cap, "%s/%s", self, rel);
    return len > 0 && (size_t)len < cap && access(out, mode) == 0;
}

/* The worker binary local workers run: --worker-bin, else caviar-worker beside caviard (an
 * installed tree) or in the build tree's worker/, else caviar-worker from PATH. */
static void find_worker_bin(daemon_t *d) {
    char *out = d->worker_bin;
    size_t cap = sizeof d->worker_bin;
    if (d->opt.worker_bin)
        snprintf(out, cap, "%s", d->opt.worker_bin);
    else if (!beside_self("../worker/caviar-worker", X_OK, out, cap) &&
             !beside_self("caviar-worker", X_OK, out, cap))
        snprintf(out, cap, "caviar-worker");
}

/* The dashboard's directory: --web-root, else share/caviar/web beside an installed binary, else
 * the source tree's web/ this build came from (CV_WEB_DIR). */
static void find_web_root(daemon_t *d) {
    char *out = d->web_root;
    size_t cap = sizeof d->web_root;
    if (d->opt.web_root)
        snprintf(out, cap, "%s", d->opt.web_root);
    else if (beside_self("../share/caviar/web/index.html", R_OK, out, cap))
        out[strlen(out) - strlen("/index.html")] = '\0';
    else
        snprintf(out, cap, "%s", CV_WEB_DIR);
}

/* ---- loop hooks ------------------------------------------------------------------------- */

static void stop(daemon_t *d, int code);

/* Group commit: after each round of I/O the loop hands out trials, then commits and
 * acknowledges, but at most once per COMMIT_INTERVAL_MS unless a batch is already large; a timer
 * brings the loop back for a commit that waits. Fewer, larger commits write and sync the WAL less
 * often (the sync itself runs on the thread pool: sched_commit.c). */
#define COMMIT_INTERVAL_MS 2
#define COMMIT_BATCH 256

static void commit_now(daemon_t *d) {
    double now = cv_clock_wall();
    d->last_commit = cv_clock_monotonic();
    if (cv_sched_flush(d->sched, now)) stop(d, 1);
    if (d->workers) cv_worker_server_flush(d->workers);
    if (d->draining && !d->stopping && cv_sched_busy(d->sched) == 0) stop(d, 0);
}

static void on_commit_timer(uv_timer_t *t) {
    daemon_t *d = t->data;
    if (!d->stopping) commit_now(d);
}

static void on_check(uv_check_t *h) {
    daemon_t *d = h->data;
    if (!d->stopping && !d->draining) cv_sched_dispatch(d->sched, cv_clock_wall());
    double since = cv_clock_monotonic() - d->last_commit;
    if (since * 1000 >= COMMIT_INTERVAL_MS || cv_sched_pending(d->sched) >= COMMIT_BATCH) {
        uv_timer_stop(&d->commit_timer);
        commit_now(d);
    } else if (!uv_is_active((uv_handle_t *)&d->commit_timer)) {
        uv_timer_start(&d->commit_timer, on_commit_timer, COMMIT_INTERVAL_MS, 0);
    }
    /* Messages that wait for no commit (a trial, a welcome) leave now. */
    if (d->workers) cv_worker_server_flush(d->workers);
}

static void on_tick(uv_timer_t *t) {
    daemon_t *d = t->data;
    double now = cv_clock_wall();
    cv_sched_tick(d->sched, now);
    cv_worker_server_check(d->workers, now);
}

static void on_drain_timeout(uv_timer_t *t) {
    daemon_t *d = t->data;
    cv_log(&d->log, CV_LOG_INFO, "%d trials still running; they keep their leases for the "
           "workers to re-attach after a restart", cv_sched_busy(d->sched));
    stop(d, 0);
}

/* The first signal stops dispatching and waits up to DRAIN_MS for the results in flight (each is
 * committed and acknowledged as usual); the second one, or the end of the wait, stops. */
#define DRAIN_MS 2000

static void on_signal(uv_signal_t *s, int signum) {
    daemon_t *d = s->data;
    if (d->draining || cv_sched_busy(d->sched) == 0) {
        cv_log(&d->log, CV_LOG_INFO, "signal %d: shutting down", signum);
        stop(d, 0);
        return;
    }
    cv_log(&d->log, CV_LOG_INFO, "signal %d: shutting down after the results in flight "
           "(at most %d ms)", signum, DRAIN_MS);
    d->draining = 1;
    uv_timer_start(&d->drain, on_drain_timeout, DRAIN_MS, 0);
}

static void stop(daemon_t *d, int code) {
    if (d->stopping) return;
    d->stopping = 1;
    d->exit_code = code;
    /* Dataset checks in flight stop at their next block instead of reading on. */
    if (d->api) cv_api_stop(d->api);
    cv_sched_stop_checks(d->sched);
    for (int i = 0; i < d->opt.workers; i++) {
        if (d->local[i].running) uv_process_kill(&d->local[i].proc, SIGTERM);
        uv_timer_stop(&d->local[i].restart);
        uv_close((uv_handle_t *)&d->local[i].restart, NULL);
    }
    /* The trials in flight keep their leases in the store: their workers go on training and
     * re-attach after a restart (--reattach-seconds). */
    cv_sched_detach(d->sched);
    cv_worker_server_close(d->workers);
    d->workers = NULL;
    if (cv_sched_flush(d->sched, cv_clock_wall()) || cv_sched_sync_now(d->sched))
        d->exit_code = 1;
    cv_http_server_close(d->http, NULL);
    d->http = NULL;
    uv_check_stop(&d->check);
    uv_close((uv_handle_t *)&d->check, NULL);
    uv_timer_stop(&d->tick);
    uv_close((uv_handle_t *)&d->tick, NULL);
    uv_timer_stop(&d->commit_timer);
    uv_close((uv_handle_t *)&d->commit_timer, NULL);
    uv_timer_stop(&d->drain);
    uv_close((uv_handle_t *)&d->drain, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void on_walk_close(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* The port file: the API port on the first line (what `caviar run` reads), the worker port on
 * the second. Written to a temporary name and renamed, so a reader never sees half of it. */
static int write_port_file(const char *path, int port, int worker_port) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "%d\n%d\n", port, worker_port);
    if (fclose(f) || rename(tmp, path)) return -1;
    return 0;
}

int main(int argc, char **argv) {
    daemon_t d;
    memset(&d, 0, sizeof d);
    int parsed = parse_options(&d.opt, argc, argv);
    if (parsed) {
        usage(parsed > 0 ? stdout : stderr);
        return parsed > 0 ? 0 : 2;
    }
    d.log = (cv_log_t){.min_level = d.opt.verbose ? CV_LOG_DEBUG : CV_LOG_INFO, .name = "caviard"};
    if (read_token(d.opt.token_file, "CAVIAR_TOKEN", sizeof d.token - 1, d.token,
                   sizeof d.token) ||
        read_token(d.opt.worker_token_file, "CAVIAR_WORKER_TOKEN", CV_MSG_TOKEN_MAX,
                   d.worker_token, sizeof d.worker_token) ||
        check_exposure(&d))
        return 1;
    if (!d.opt.worker_threads) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        int per = d.opt.workers ? (int)(cpus / d.opt.workers) : 1;
        d.opt.worker_threads = per < 1 ? 1 : per;
    }
    char err[CV_ERRLEN];
    int lock_fd = lock_database(d.opt.db);
    if (lock_fd < 0) return 1;
    if (mkdir(d.opt.data_dir, 0755) && errno != EEXIST) {
        fprintf(stderr, "caviard: %s: %s\n", d.opt.data_dir, strerror(errno));
        close(lock_fd);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    d.loop = uv_default_loop();
    /* synchronous=FULL's guarantee without its wait on the loop: commits are synced on the
     * thread pool and acknowledged after (server/store_sync.c). */
    cv_store_options_t so = {.synchronous_normal = d.opt.synchronous_normal,
                             .deferred_sync = !d.opt.synchronous_normal,
                             .max_bytes = d.opt.db_max_bytes};
    if (cv_store_open_with(d.opt.db, &so, &d.store, err) ||
        cv_store_open_readonly(d.opt.db, &d.ro, err)) {
        fprintf(stderr, "caviard: %s\n", err);
        cv_store_close(d.store);
        close(lock_fd);
        return 1;
    }
    cv_worker_server_config_t wc = {.heartbeat_seconds = d.opt.heartbeat_seconds,
                                    .lease_seconds = d.opt.lease_seconds,
                                    .token = d.worker_token,
                                    .data_dir = d.opt.data_dir};
    cv_sched_config_t sc = {.store = d.store, .data_dir = d.opt.data_dir,
                            .max_attempts = d.opt.max_attempts,
                            .reattach_seconds = d.opt.reattach_seconds,
                            .ask_lease_seconds = d.opt.ask_lease_seconds,
                            .quarantine_after = d.opt.quarantine_after ? d.opt.quarantine_after
                                                                        : -1,
                            .log = &d.log,
                            .ops = cv_worker_server_ops(),
                            .dataset_roots = d.opt.dataset_roots,
                            .n_dataset_roots = d.opt.n_dataset_roots,
                            .max_dataset_bytes = d.opt.max_dataset_bytes,
                            .quarantine_seconds = d.opt.quarantine_seconds,
                            .loop = d.loop,
                            .deferred_sync = so.deferred_sync};
    if (cv_worker_server_create(&d.workers, d.loop, d.opt.worker_host, d.opt.worker_port, &wc,
                                &d.log, err) ||
        cv_sched_create(&d.sched, &sc, cv_clock_wall(), err) ||
        cv_api_create(&d.api, d.loop, d.sched, d.ro, d.token, &d.log, err) ||
        cv_api_open_readers(d.api, d.opt.db, API_READERS, err) ||
        (find_web_root(&d), cv_web_create(&d.web, d.loop, d.web_root, d.api, err)) ||
        cv_http_server_create(&d.http, d.loop, d.opt.listen_host, d.opt.listen_port, &d.opt.http,
                              cv_web_on_request, d.web, err) ||
        cv_http_server_start(d.http, err)) {
        fprintf(stderr, "caviard: %s\n", err);
        d.exit_code = 1;
        goto shutdown;
    }
    cv_worker_server_attach(d.workers, d.sched);
    cv_http_server_on_answered(d.http, cv_api_on_answered, d.api);
    if (!d.token[0] && !is_loopback(d.opt.listen_host))
        cv_log(&d.log, CV_LOG_WARN, "no API token is set and the API listens on %s: anyone who "
               "can reach it can submit and cancel jobs", d.opt.listen_host);
    else if (!d.token[0])
        cv_log(&d.log, CV_LOG_INFO, "no API token: listening on loopback only");
    if (!d.worker_token[0] && !is_loopback(d.opt.worker_host))
        cv_log(&d.log, CV_LOG_WARN, "no worker token is set and the worker port listens on %s: "
               "anyone who can reach it can post results", d.opt.worker_host);
    for (size_t i = 0; i < d.opt.n_dataset_roots; i++)
        cv_log(&d.log, CV_LOG_INFO, "dataset root %s", d.opt.dataset_roots[i]);
    uv_check_init(d.loop, &d.check);
    d.check.data = &d;
    uv_check_start(&d.check, on_check);
    uv_timer_init(d.loop, &d.commit_timer);
    d.commit_timer.data = &d;
    uv_timer_init(d.loop, &d.drain);
    d.drain.data = &d;
    uv_timer_init(d.loop, &d.tick);
    d.tick.data = &d;
    uv_timer_start(&d.tick, on_tick, 1000, 1000);
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    find_worker_bin(&d);
    if (d.opt.workers && !(d.worker_env = make_worker_env(d.worker_token))) {
        fprintf(stderr, "caviard: out of memory\n");
        d.opt.workers = 0; /* none started: stop() has no timers of theirs to close */
        stop(&d, 1);
    }
    for (int i = 0; i < d.opt.workers; i++) {
        local_worker_t *lw = &d.local[i];
        lw->d = &d;
        lw->index = i;
        uv_timer_init(d.loop, &lw->restart);
        lw->restart.data = lw;
        spawn_worker(lw);
    }
    cv_log(&d.log, CV_LOG_INFO, "API on http://%s:%d, workers on %s:%d, database %s, %d local "
           "workers", d.opt.listen_host, cv_http_server_port(d.http), d.opt.worker_host,
           cv_worker_server_port(d.workers), d.opt.db, d.opt.workers);
    if (cv_web_root(d.web)[0])
        cv_log(&d.log, CV_LOG_INFO, "dashboard on http://%s:%d/ (files from %s)",
               d.opt.listen_host, cv_http_server_port(d.http), cv_web_root(d.web));
    else
        cv_log(&d.log, CV_LOG_WARN, "no dashboard: %s is not a directory (see --web-root)",
               d.web_root);
    if (d.opt.port_file && write_port_file(d.opt.port_file, cv_http_server_port(d.http),
                                              cv_worker_server_port(d.workers))) {
        fprintf(stderr, "caviard: cannot write %s: %s\n", d.opt.port_file, strerror(errno));
        stop(&d, 1);
    }
    uv_run(d.loop, UV_RUN_DEFAULT);
    while (!cv_api_idle(d.api) || !cv_web_idle(d.web) || !cv_sched_idle(d.sched))
        uv_run(d.loop, UV_RUN_ONCE);

shutdown:
    if (!d.stopping) {
        cv_worker_server_close(d.workers);
        cv_http_server_close(d.http, NULL);
    }
    uv_walk(d.loop, on_walk_close, NULL);
    uv_run(d.loop, UV_RUN_DEFAULT);
    cv_web_destroy(d.web);
    cv_api_destroy(d.api);
    cv_sched_destroy(d.sched);
    cv_store_close(d.ro);
    cv_store_close(d.store);
    free_worker_env(d.worker_env);
    if (uv_loop_close(d.loop)) cv_log(&d.log, CV_LOG_WARN, "handles left open at exit");
    cv_log(&d.log, CV_LOG_INFO, "stopped");
    close(lock_fd); /* last: the database is closed */
    return d.exit_code;
}
