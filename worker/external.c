/* External trainers (worker/external.h): one trial of a program a worker offers, from its
 * working directory and environment to its reaped exit, its metric lines and its stderr tail. */
#define _GNU_SOURCE
#include "worker/external.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json.h"
#include "worker/metric_line.h"

extern char **environ;

#define TICK_MS      100  /* longest wait for output before the flags are polled again */
#define DRAIN_SECS   1.0  /* how long output is still read after the program's shell exited */
#define ENV_VALUE    4096 /* bytes of one CAVIAR_PARAM_ value; a longer one is left to the file */
#define PATH_CAP     4096

int cv_trainer_def_parse(const char *text, cv_trainer_def_t *def, char *err) {
    const char *eq = strchr(text, '=');
    if (!eq)
        return cv_errf(err, CV_EINVAL, "--trainer: want NAME=COMMAND, got '%.60s'", text);
    size_t n = (size_t)(eq - text);
    char name[CV_MSG_TRAINER_MAX + 2];
    snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name - 1 ? n : sizeof name - 1), text);
    if (n > CV_MSG_TRAINER_MAX || !cv_msg_trainer_name_ok(name))
        return cv_errf(err, CV_EINVAL, "--trainer: the name must match [A-Za-z0-9_.-]{1,64}, got "
                       "'%.*s'", (int)(n > 70 ? 70 : n), text);
    if (!strcmp(name, "builtin") || !strcmp(name, "ask"))
        return cv_errf(err, CV_EINVAL, "--trainer: '%s' is reserved (a job's builtin or ask "
                       "trainer)", name);
    const char *cmd = eq + 1;
    while (*cmd == ' ' || *cmd == '\t') cmd++;
    if (!*cmd) return cv_errf(err, CV_EINVAL, "--trainer %s: the command is empty", name);
    memcpy(def->name, name, n + 1);
    def->command = eq + 1;
    return 0;
}

/* ---- the working directory ------------------------------------------------------------- */

static int mkdir_p(const char *path) {
    char buf[PATH_CAP];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Removes path and everything under it, never following a symbolic link. */
static void remove_tree(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* This boot's id (/proc/sys/kernel/random/boot_id) into out (40 bytes), or "". */
static void boot_id(char *out, size_t cap) {
    out[0] = '\0';
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f) return;
    if (!fgets(out, (int)cap, f)) out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

/* ---- the environment -------------------------------------------------------------------- */

typedef struct {
    char **vars; /* owned, NULL-terminated; entries from environ are borrowed, the rest owned */
    size_t n, cap;
    size_t first_owned; /* vars[first_owned..n) are owned */
} env_t;

static int env_add(env_t *e, char *entry) {
    if (!entry) return -1;
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        char **v = realloc(e->vars, cap * sizeof *v);
        if (!v) {
            free(entry);
            return -1;
        }
        e->vars = v;
        e->cap = cap;
    }
    e->vars[e->n++] = entry;
    e->vars[e->n] = NULL;
    return 0;
}

static int env_addf(env_t *e, const char *name, const char *value) {
    size_t len = strlen(name) + strlen(value) + 2;
    char *s = malloc(len);
    if (s) snprintf(s, len, "%s=%s", name, value);
    return env_add(e, s);
}

static void env_free(env_t *e) {
    for (size_t i = e->first_owned; i < e->n; i++) free(e->vars[i]);
    free(e->vars);
}

/* A parameter name that can be an environment variable's: [A-Za-z_][A-Za-z0-9_]*, ≤ 64. */
static int env_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 64 || isdigit((unsigned char)s[0])) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return 0;
    return 1;
}

/* The program's environment: the worker's own without CAVIAR_* variables, then the trial's. */
static int build_env(env_t *e, const cJSON *params, const cv_external_options_t *o,
                     const char *workdir, const char *params_file, int epochs) {
    for (char **p = environ; p && *p; p++)
        if (strncmp(*p, "CAVIAR_", 7) != 0 && env_add(e, *p) != 0) return -1;
    e->first_owned = e->n;
    char num[32], name[80];
    const cJSON *item;
    cJSON_ArrayForEach(item, params) {
        if (!env_name_ok(item->string)) continue;
        char value[ENV_VALUE];
        if (cJSON_IsString(item)) {
            if (strlen(item->valuestring) >= sizeof value) continue;
            snprintf(value, sizeof value, "%s", item->valuestring);
        } else if (cJSON_IsBool(item)) {
            snprintf(value, sizeof value, "%s", cJSON_IsTrue(item) ? "true" : "false");
        } else if (cJSON_IsNumber(item)) {
            char *text = cJSON_PrintUnformatted(item);
            if (!text) return -1;
            snprintf(value, sizeof value, "%s", text);
            cJSON_free(text);
        } else {
            continue; /* arrays, objects and null: in params.json only */
        }
        snprintf(name, sizeof name, "CAVIAR_PARAM_%s", item->string);
        for (char *c = name + 13; *c; c++) *c = (char)toupper((unsigned char)*c);
        if (env_addf(e, name, value)) return -1;
    }
    snprintf(num, sizeof num, "%lld", (long long)o->trial_id);
    if (env_addf(e, "CAVIAR_TRIAL_ID", num)) return -1;
    snprintf(num, sizeof num, "%lld", (long long)o->job_id);
    if (env_addf(e, "CAVIAR_JOB_ID", num)) return -1;
    snprintf(num, sizeof num, "%d", epochs);
    if (env_addf(e, "CAVIAR_EPOCHS", num)) return -1;
    if (env_addf(e, "CAVIAR_WORKDIR", workdir)) return -1;
    return env_addf(e, "CAVIAR_PARAMS_FILE", params_file);
}

/* ---- the running program ---------------------------------------------------------------- */

typedef enum { END_NONE, END_STOP, END_PRUNE, END_TIMEOUT, END_BAD_LINE } end_t;

typedef struct {
    const cv_external_options_t *o;
    pid_t pid;
    int out_fd, err_fd;         /* -1 once at EOF */
    char line[CV_METRIC_LINE_MAX + 2];
    size_t line_len;
    int line_overflow;          /* the line being read is too long: discarded up to its end */
    long line_no;               /* stdout lines read */
    char tail[CV_TRAINER_STDERR_TAIL];
    size_t tail_len;            /* ring of the last stderr bytes: tail_len <= sizeof tail */
    size_t tail_head;           /* next write position */
    int epochs;                 /* CAVIAR_EPOCHS */
    int reports;                /* epoch reports read */
    int64_t last_epoch;
    double report_at;           /* monotonic seconds of the last report (or of the start) */
    cv_epoch_t best;            /* the best report so far (by best_key) */
    int have_final;
    cv_epoch_t final;
    end_t end;                  /* why the program is being stopped, END_NONE while it runs */
    char why[CV_ERRLEN];        /* the reason of END_BAD_LINE */
    double term_at, kill_at;    /* monotonic seconds SIGTERM and SIGKILL were (are) due */
    int killed;                 /* SIGKILL sent */
} run_t;

/* 1 when report a beats b: a lower objective (dev_cost when by_cost, else dev_error); a report
 * without it loses to one with it, and two without it compare by the other metric. */
static int better(const cv_epoch_t *a, const cv_epoch_t *b, int by_cost) {
    double x = by_cost ? a->dev_cost : a->dev_error, y = by_cost ? b->dev_cost : b->dev_error;
    if (isfinite(x) && isfinite(y)) return x < y;
    if (isfinite(x) != isfinite(y)) return isfinite(x);
    x = by_cost ? a->dev_error : a->dev_cost;
    y = by_cost ? b->dev_error : b->dev_cost;
    return isfinite(x) && (!isfinite(y) || x < y);
}

static void stop_program(run_t *r, end_t why) {
    if (r->end != END_NONE) return;
    r->end = why;
    kill(-r->pid, SIGTERM);
    r->term_at = cv_clock_monotonic();
    r->kill_at = r->term_at + r->o->grace;
}

static void on_line(run_t *r, const char *line, size_t len) {
    char err[CV_ERRLEN];
    cv_epoch_t m;
    r->line_no++;
    if (r->end != END_NONE) return;
    int kind = cv_metric_line_parse(line, len, &m, err);
    if (kind < 0) {
        snprintf(r->why, sizeof r->why, "stdout line %ld: %.400s", r->line_no, err);
        stop_program(r, END_BAD_LINE);
        return;
    }
    if (kind == CV_METRIC_FINAL) {
        r->final = m;
        r->have_final = 1;
        return;
    }
    if (kind != CV_METRIC_EPOCH) return;
    if (m.epoch <= r->last_epoch || m.epoch > r->epochs) {
        snprintf(r->why, sizeof r->why, "stdout line %ld: epoch: must be above %lld (the last "
                 "reported) and at most %d (CAVIAR_EPOCHS), got %lld", r->line_no,
                 (long long)r->last_epoch, r->epochs, (long long)m.epoch);
        stop_program(r, END_BAD_LINE);
        return;
    }
    r->last_epoch = m.epoch;
    double now = cv_clock_monotonic();
    if (!isfinite(m.seconds)) m.seconds = now - r->report_at; /* since the previous report */
    r->report_at = now;
    if (r->reports++ == 0 || better(&m, &r->best, r->o->by_dev_cost)) r->best = m;
    int verdict = r->o->on_epoch ? r->o->on_epoch(&m, r->o->userdata) : CV_EPOCH_GO_ON;
    if (verdict == CV_EPOCH_PRUNE) stop_program(r, END_PRUNE);
    else if (verdict != CV_EPOCH_GO_ON) stop_program(r, END_STOP);
}

/* Reads what fd has: stdout into lines, stderr into the tail. Returns 0, or 1 at EOF. */
static int read_fd(run_t *r, int fd) {
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) return errno == EINTR || errno == EAGAIN ? 0 : 1;
    if (n == 0) return 1;
    if (fd == r->err_fd) {
        for (ssize_t i = 0; i < n; i++) {
            r->tail[r->tail_head] = buf[i];
            r->tail_head = (r->tail_head + 1) % sizeof r->tail;
            if (r->tail_len < sizeof r->tail) r->tail_len++;
        }
        return 0;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            if (!r->line_overflow) on_line(r, r->line, r->line_len);
            r->line_len = 0;
            r->line_overflow = 0;
        } else if (r->line_len < sizeof r->line - 1) {
            r->line[r->line_len++] = buf[i];
        } else if (!r->line_overflow) { /* too long: a metric line is refused, others skipped */
            on_line(r, r->line, r->line_len);
            r->line_overflow = 1;
        }
    }
    return 0;
}

/* The stderr tail as text: valid UTF-8, no control characters but newlines and tabs, starting
 * at a line when it was cut. */
static void tail_text(const run_t *r, char *out, size_t cap) {
    size_t n = r->tail_len < cap - 1 ? r->tail_len : cap - 1;
    size_t start = (r->tail_head + sizeof r->tail - n) % sizeof r->tail;
    for (size_t i = 0; i < n; i++) out[i] = r->tail[(start + i) % sizeof r->tail];
    out[n] = '\0';
    char *s = out;
    if (r->tail_len == sizeof r->tail) { /* cut: from the next line on, when there is one */
        char *nl = strchr(out, '\n');
        if (nl && nl[1]) s = nl + 1;
    }
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' ')) s[--len] = '\0';
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t') s[i] = ' ';
    size_t bad;
    while ((bad = cv_json_utf8_invalid_at(s, len)) < len) s[bad] = '?';
    memmove(out, s, len + 1);
}

/* The child: its own process group, killed with the worker, in workdir, stdout and stderr to the
 * pipes, every signal back to its default; then the shell. Only async-signal-safe calls. */
static void child_exec(const char *workdir, int out_w, int err_w, const char *command,
                       char **env, pid_t parent, int max_fd) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0) _exit(127);
    if (chdir(workdir) != 0) _exit(127);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int fd = 3; fd < max_fd; fd++) close(fd);
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    execve("/bin/sh", argv, env);
    _exit(127);
}

/* Records the running group: "<pgid> <boot id>" in record. */
static void record_group(const char *record, pid_t pgid) {
    char boot[64], text[96];
    boot_id(boot, sizeof boot);
    int fd = open(record, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    int n = snprintf(text, sizeof text, "%ld %s\n", (long)pgid, boot);
    ssize_t w = write(fd, text, (size_t)n);
    (void)w;
    close(fd);
}

/* Waits for the program: reads its output, polls the caller, enforces the timeout and the grace,
 * and reaps it. Returns the wait status. */
static int supervise(run_t *r) {
    const cv_external_options_t *o = r->o;
    double started = cv_clock_monotonic(), exited_at = 0;
    int status = 0, reaped = 0;
    while (!reaped || ((r->out_fd >= 0 || r->err_fd >= 0) &&
                       cv_clock_monotonic() < exited_at + DRAIN_SECS)) {
        struct pollfd p[2];
        nfds_t n = 0;
        if (r->out_fd >= 0) p[n++] = (struct pollfd){.fd = r->out_fd, .events = POLLIN};
        if (r->err_fd >= 0) p[n++] = (struct pollfd){.fd = r->err_fd, .events = POLLIN};
        int ready = n ? poll(p, n, TICK_MS) : (nanosleep(&(struct timespec){0, TICK_MS * 1000000L},
                                                         NULL), 0);
        for (nfds_t i = 0; ready > 0 && i < n; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (read_fd(r, p[i].fd)) {
                close(p[i].fd);
                if (p[i].fd == r->out_fd) r->out_fd = -1;
                else r->err_fd = -1;
            }
        }
        if (!reaped) {
            pid_t got = waitpid(r->pid, &status, WNOHANG);
            if (got == r->pid) {
                reaped = 1;
                exited_at = cv_clock_monotonic();
                kill(-r->pid, SIGKILL); /* nothing of the program outlives its shell */
                continue;
            }
        }
        if (reaped) continue;
        double now = cv_clock_monotonic();
        int verdict = o->poll ? o->poll(o->userdata) : CV_EPOCH_GO_ON;
        if (verdict == CV_EPOCH_PRUNE) stop_program(r, END_PRUNE);
        else if (verdict != CV_EPOCH_GO_ON) stop_program(r, END_STOP);
        if (o->timeout > 0 && now - started >= o->timeout) stop_program(r, END_TIMEOUT);
        if (r->end != END_NONE && !r->killed && now >= r->kill_at) {
            kill(-r->pid, SIGKILL);
            r->killed = 1;
        }
    }
    if (r->out_fd >= 0) close(r->out_fd);
    if (r->err_fd >= 0) close(r->err_fd);
    r->out_fd = r->err_fd = -1;
    return status;
}

/* How the program ended, into res. */
static void conclude(run_t *r, int status, double seconds, cv_trial_result_t *res) {
    char tail[CV_TRAINER_STDERR_TAIL + 1], head[CV_ERRLEN];
    tail_text(r, tail, sizeof tail);
    *res = (cv_trial_result_t){.status = CV_TRIAL_FAILED, .examples_per_second = NAN,
                               .seconds = seconds, .epochs_run = (int)r->last_epoch};
    head[0] = '\0';
    switch (r->end) {
    case END_STOP:
        res->status = CV_TRIAL_STOPPED;
        snprintf(res->error, sizeof res->error, "the program was stopped");
        return;
    case END_PRUNE:
        if (r->reports == 0) break;
        res->status = CV_TRIAL_PRUNED;
        res->best_epoch = (int)r->best.epoch;
        res->best = r->best;
        return;
    case END_TIMEOUT:
        snprintf(head, sizeof head, "the program ran past --trainer-timeout %g s and was "
                 "stopped", r->o->timeout);
        break;
    case END_BAD_LINE: snprintf(head, sizeof head, "%s", r->why); break;
    case END_NONE:
        if (WIFSIGNALED(status))
            snprintf(head, sizeof head, "the program was killed by signal %d (%s)",
                     WTERMSIG(status), strsignal(WTERMSIG(status)));
        else if (WEXITSTATUS(status) != 0)
            snprintf(head, sizeof head, "the program ended with exit status %d%s",
                     WEXITSTATUS(status),
                     WEXITSTATUS(status) == 127 ? " (127: command not found, or it could not "
                                                  "start)" : "");
        else if (r->reports == 0 && !r->have_final)
            snprintf(head, sizeof head, "the program reported no metric (no 'caviar: epoch=N "
                     "dev_error=...' line on its stdout)");
        break;
    }
    if (head[0] == '\0' && r->end == END_NONE) { /* exit 0 with metrics: completed */
        res->status = CV_TRIAL_COMPLETED;
        res->best = r->reports ? r->best : r->final;
        res->best_epoch = (int)r->best.epoch;
        if (r->have_final) {
            cv_epoch_t f = r->final;
            f.epoch = f.epoch ? f.epoch : r->reports ? r->best.epoch : r->epochs;
            res->best = f;
            res->best_epoch = (int)f.epoch;
        }
        if (res->epochs_run < res->best_epoch) res->epochs_run = res->best_epoch;
        return;
    }
    if (head[0] == '\0') snprintf(head, sizeof head, "the program was pruned before it reported");
    if (tail[0])
        snprintf(res->error, sizeof res->error, "%s; stderr ends with:\n%s", head, tail);
    else
        snprintf(res->error, sizeof res->error, "%s (its stderr was empty)", head);
}

/* The trial's epochs: spec.epochs when it is an integer >= 1, else 1. */
static int spec_epochs(const cJSON *spec) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(spec, "epochs");
    if (cJSON_IsNumber(e) && e->valuedouble >= 1 && e->valuedouble <= CV_METRIC_EPOCH_MAX &&
        e->valuedouble == floor(e->valuedouble))
        return (int)e->valuedouble;
    return 1;
}

/* Writes params (without "trainer") to path. Returns 0 or -1 with errno. */
static int write_params(const char *path, const cJSON *spec) {
    cJSON *params = cJSON_Duplicate(spec, 1);
    if (!params) return errno = ENOMEM, -1;
    cJSON_DeleteItemFromObjectCaseSensitive(params, "trainer");
    char *text = cJSON_PrintUnformatted(params);
    cJSON_Delete(params);
    if (!text) return errno = ENOMEM, -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    int rc = fd >= 0 && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 ? 0 : -1;
    int saved = errno;
    if (fd >= 0) close(fd);
    cJSON_free(text);
    errno = saved;
    return rc;
}

int cv_external_run(const cJSON *spec, const cv_external_options_t *o, cv_trial_result_t *res,
                    char *err) {
    char workdir[PATH_CAP], params_file[PATH_CAP], record[PATH_CAP];
    env_t env = {0};
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, rc = 0;
    double started = cv_clock_monotonic();
    run_t *r = calloc(1, sizeof *r);
    workdir[0] = record[0] = '\0';
    if (!r) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory starting the program");
        goto fail;
    }
    if (mkdir_p(o->runs_dir) != 0) {
        rc = cv_errf(err, CV_EIO, "cannot create %s: %s", o->runs_dir, strerror(errno));
        goto fail;
    }
    snprintf(workdir, sizeof workdir, "%s/trial-%lld-XXXXXX", o->runs_dir,
             (long long)o->trial_id);
    if (!mkdtemp(workdir)) {
        rc = cv_errf(err, CV_EIO, "cannot create a working directory in %s: %s", o->runs_dir,
                     strerror(errno));
        workdir[0] = '\0';
        goto fail;
    }
    snprintf(params_file, sizeof params_file, "%s/params.json", workdir);
    snprintf(record, sizeof record, "%s.pgid", workdir);
    if (write_params(params_file, spec) != 0) {
        rc = cv_errf(err, CV_EIO, "cannot write %s: %s", params_file, strerror(errno));
        goto fail;
    }
    r->o = o;
    r->epochs = spec_epochs(spec);
    cJSON *params = cJSON_Duplicate(spec, 1);
    if (params) cJSON_DeleteItemFromObjectCaseSensitive(params, "trainer");
    int env_failed = !params || build_env(&env, params, o, workdir, params_file, r->epochs) != 0;
    cJSON_Delete(params);
    if (env_failed) {
        rc = cv_errf(err, CV_ENOMEM, "out of memory building the program's environment");
        goto fail;
    }
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        rc = cv_errf(err, CV_EIO, "cannot create a pipe: %s", strerror(errno));
        goto fail;
    }
    pid_t parent = getpid();
    long max_fd = sysconf(_SC_OPEN_MAX);
    max_fd = max_fd > 0 && max_fd < 65536 ? max_fd : 65536;
    pid_t pid = fork();
    if (pid < 0) {
        rc = cv_errf(err, CV_EIO, "cannot start the program: fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) child_exec(workdir, out_pipe[1], err_pipe[1], o->command, env.vars, parent,
                              (int)max_fd);
    setpgid(pid, pid); /* also here, so that the group exists before it is signalled */
    record_group(record, pid);
    close(out_pipe[1]);
    close(err_pipe[1]);
    r->pid = pid;
    r->report_at = cv_clock_monotonic();
    r->out_fd = out_pipe[0];
    r->err_fd = err_pipe[0];
    int status = supervise(r);
    conclude(r, status, cv_clock_monotonic() - started, res);
    unlink(record);
    remove_tree(workdir);
    env_free(&env);
    free(r);
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0) close(out_pipe[i]);
        if (err_pipe[i] >= 0) close(err_pipe[i]);
    }
    if (workdir[0]) remove_tree(workdir);
    env_free(&env);
    free(r);
    *res = (cv_trial_result_t){.status = CV_TRIAL_FAILED, .examples_per_second = NAN,
                               .seconds = cv_clock_monotonic() - started};
    snprintf(res->error, sizeof res->error, "%s", err);
    return rc;
}

/* ---- start-up: groups left by a worker that died ------------------------------------------ */

int cv_external_reap(const char *runs_dir, const cv_log_t *log, char *err) {
    DIR *d = opendir(runs_dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        return cv_errf(err, CV_EIO, "cannot read %s: %s", runs_dir, strerror(errno));
    }
    char boot[64], path[PATH_CAP];
    boot_id(boot, sizeof boot);
    int signalled = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".pgid") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", runs_dir, e->d_name);
        FILE *f = fopen(path, "r");
        long pgid = 0;
        char was[64] = "";
        if (f) {
            if (fscanf(f, "%ld %63s", &pgid, was) < 1) pgid = 0;
            fclose(f);
        }
        /* A group recorded during another boot is long gone; its number may be reused. */
        if (pgid > 1 && !strcmp(was, boot) && kill(-(pid_t)pgid, SIGKILL) == 0) {
            signalled++;
            cv_log(log, CV_LOG_WARN, "ended process group %ld, left running by an earlier run of "
                   "this worker (%s)", pgid, e->d_name);
        }
        unlink(path);
    }
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "trial-", 6) != 0) continue;
        snprintf(path, sizeof path, "%s/%s", runs_dir, e->d_name);
        remove_tree(path);
    }
    closedir(d);
    return signalled;
}
