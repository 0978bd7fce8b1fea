/* Starting and stopping caviard for `caviar run`, as declared in daemon.h. */
#include "client/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"

#define POLL_NS       50000000L /* nanoseconds between polls of the port file and the child */
#define PORT_TEXT_MAX 32        /* bytes of port file read; a port line is far shorter */

static void sleep_poll(void) {
    struct timespec ts = {0, POLL_NS};
    nanosleep(&ts, NULL); /* a signal cuts it short, which is what we want */
}

/* Returns 1 when path names an executable regular file. */
static int is_executable(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Copies a candidate into path when it is executable; 1 when found. */
static int try_candidate(const char *candidate, char *path, size_t cap) {
    if (strlen(candidate) >= cap || !is_executable(candidate)) return 0;
    snprintf(path, cap, "%s", candidate);
    return 1;
}

/* Looks for caviard in each directory of $PATH. */
static int search_path(char *path, size_t cap) {
    const char *env = getenv("PATH");
    char candidate[PATH_MAX];
    while (env && *env) {
        const char *colon = strchr(env, ':');
        size_t len = colon ? (size_t)(colon - env) : strlen(env);
        /* An empty entry means the current directory. */
        int n = len ? snprintf(candidate, sizeof candidate, "%.*s/caviard", (int)len, env)
                    : snprintf(candidate, sizeof candidate, "./caviard");
        if (n > 0 && (size_t)n < sizeof candidate && try_candidate(candidate, path, cap)) return 1;
        env = colon ? colon + 1 : NULL;
    }
    return 0;
}

int cv_daemon_find(const char *override, char *path, size_t cap, char *err) {
    char exe[PATH_MAX], candidate[PATH_MAX + 32];
    if (override) {
        if (try_candidate(override, path, cap)) return 0;
        return cv_errf(err, CV_EINVAL, "--caviard %s: not an executable file", override);
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(candidate, sizeof candidate, "%s/../server/caviard", exe);
            if (try_candidate(candidate, path, cap)) return 0;
            snprintf(candidate, sizeof candidate, "%s/caviard", exe);
            if (try_candidate(candidate, path, cap)) return 0;
        }
    } else {
        exe[0] = '\0';
    }
    if (search_path(path, cap)) return 0;
    return cv_errf(err, CV_EINVAL,
                   "caviard not found: looked for %s/../server/caviard, %s/caviard and caviard "
                   "on PATH; give its location with --caviard PATH",
                   exe[0] ? exe : "?", exe[0] ? exe : "?");
}

/* Makes the private temporary directory and the port file's name. */
static int make_tmp_dir(cv_daemon_t *d, char *err) {
    const char *base = getenv("TMPDIR");
    if (!base || !base[0]) base = "/tmp";
    if ((size_t)snprintf(d->tmp_dir, sizeof d->tmp_dir, "%s/caviar-run-XXXXXX", base) >=
        sizeof d->tmp_dir)
        return cv_errf(err, CV_EINVAL, "TMPDIR %s is too long", base);
    if (!mkdtemp(d->tmp_dir)) {
        int e = errno;
        d->tmp_dir[0] = '\0';
        return cv_errf(err, CV_EIO, "cannot create a temporary directory in %s: %s", base,
                       strerror(e));
    }
    snprintf(d->port_file, sizeof d->port_file, "%s/port", d->tmp_dir);
    return 0;
}

/* The child's side of the fork: only async-signal-safe calls until exec. */
static void run_child(const cv_daemon_t *d, char *const *argv, int log_fd, int null_fd,
                      int report_fd, pid_t parent, int keep) {
    sigset_t none;
    setpgid(0, 0);
    if (!keep) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) /* the parent died before prctl took effect */
            _exit(127);
    }
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    if (log_fd >= 0) {
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(d->path, argv);
    int e = errno;
    ssize_t ignored = write(report_fd, &e, sizeof e);
    (void)ignored;
    _exit(127);
}

int cv_daemon_start(cv_daemon_t *d, const cv_daemon_options_t *opt, char *err) {
    char workers[32], listen[] = "127.0.0.1:0", worker_listen[] = "127.0.0.1:0";
    int log_fd = -1, null_fd = -1, report[2] = {-1, -1}, rc;

    memset(d, 0, sizeof *d);
    rc = cv_daemon_find(opt->caviard, d->path, sizeof d->path, err);
    if (rc < 0) return rc;
    rc = make_tmp_dir(d, err);
    if (rc < 0) return rc;
    snprintf(workers, sizeof workers, "%ld", opt->workers);
    char *argv[] = {d->path,
                    "--listen",
                    listen,
                    "--worker-listen",
                    worker_listen,
                    "--workers",
                    workers,
                    (char *)"--db",
                    (char *)opt->db,
                    "--data-dir",
                    (char *)opt->data_dir,
                    "--port-file",
                    d->port_file,
                    NULL};

    if (opt->log_path) {
        log_fd = open(opt->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0) {
            rc =
                cv_errf(err, CV_EIO, "cannot open log file %s: %s", opt->log_path, strerror(errno));
            goto fail;
        }
    }
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (pipe(report) != 0 || fcntl(report[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(report[1], F_SETFD, FD_CLOEXEC) != 0) {
        rc = cv_errf(err, CV_EIO, "cannot create a pipe: %s", strerror(errno));
        goto fail;
    }
    fflush(NULL); /* buffered output must not be written twice */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = cv_errf(err, CV_EIO, "cannot fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) run_child(d, argv, log_fd, null_fd, report[1], parent, opt->keep);
    setpgid(pid, pid); /* also done by the child; whichever runs first wins, both agree */
    d->pid = pid;
    close(report[1]);
    report[1] = -1;

    /* The pipe closes on a successful exec; an errno arrives when exec failed. */
    int child_errno = 0;
    ssize_t got;
    do
        got = read(report[0], &child_errno, sizeof child_errno);
    while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof child_errno) {
        waitpid(pid, &d->wait_status, 0);
        d->reaped = 1;
        rc = cv_errf(err, CV_EIO, "cannot run %s: %s", d->path, strerror(child_errno));
        goto fail;
    }
    close(report[0]);
    if (null_fd >= 0) close(null_fd);
    if (log_fd >= 0) close(log_fd);
    return 0;

fail:
    if (report[0] >= 0) close(report[0]);
    if (report[1] >= 0) close(report[1]);
    if (null_fd >= 0) close(null_fd);
    if (log_fd >= 0) close(log_fd);
    d->pid = 0;
    cv_daemon_finish(d);
    return rc;
}

int cv_daemon_exited(cv_daemon_t *d) {
    if (d->reaped || d->pid <= 0) return 1;
    pid_t got = waitpid(d->pid, &d->wait_status, WNOHANG);
    if (got == d->pid || (got < 0 && errno == ECHILD)) {
        d->reaped = 1;
        return 1;
    }
    return 0;
}

void cv_daemon_describe_exit(const cv_daemon_t *d, char *buf, size_t cap) {
    if (!d->reaped)
        snprintf(buf, cap, "is still running");
    else if (WIFEXITED(d->wait_status))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(d->wait_status));
    else if (WIFSIGNALED(d->wait_status))
        snprintf(buf, cap, "was killed by signal %d", WTERMSIG(d->wait_status));
    else
        snprintf(buf, cap, "ended (wait status %d)", d->wait_status);
}

/* Reads the port file; 1 with *port set when it holds a complete line, 0 when not yet. */
static int read_port_file(const char *path, int *port, char *err, int *bad) {
    char text[PORT_TEXT_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, text, PORT_TEXT_MAX);
    close(fd);
    if (n <= 0) return 0;
    text[n] = '\0';
    if (!memchr(text, '\n', (size_t)n) && n < PORT_TEXT_MAX) return 0; /* still being written */
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || (*end != '\n' && *end != '\r') || v < 1 || v > 65535) {
        *bad = 1;
        cv_errf(err, CV_EFORMAT, "port file %s does not hold a port: \"%.*s\"", path,
                (int)strcspn(text, "\n"), text);
        return 0;
    }
    *port = (int)v;
    return 1;
}

int cv_daemon_wait_port(cv_daemon_t *d, double timeout_s, volatile sig_atomic_t *stop, char *err) {
    char how[64];
    double deadline = cv_clock_monotonic() + timeout_s;
    for (;;) {
        int bad = 0;
        if (read_port_file(d->port_file, &d->port, err, &bad)) return 0;
        if (bad) return CV_EFORMAT;
        if (stop && *stop)
            return cv_errf(err, CV_ESTOPPED, "interrupted while caviard was starting");
        if (cv_daemon_exited(d)) {
            cv_daemon_describe_exit(d, how, sizeof how);
            return cv_errf(err, CV_EIO, "caviard (%s) %s before it was listening", d->path, how);
        }
        if (cv_clock_monotonic() > deadline)
            return cv_errf(err, CV_ERANGE, "caviard did not write its port file %s within %.0f s",
                           d->port_file, timeout_s);
        sleep_poll();
    }
}

int cv_daemon_stop(cv_daemon_t *d, double timeout_s, char *err) {
    char how[64];
    if (d->pid <= 0) return 0;
    if (!cv_daemon_exited(d)) {
        kill(d->pid, SIGTERM);
        double deadline = cv_clock_monotonic() + timeout_s;
        while (!cv_daemon_exited(d) && cv_clock_monotonic() < deadline)
            sleep_poll();
        if (!d->reaped) {
            kill(-d->pid, SIGKILL);
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &d->wait_status, 0);
            d->reaped = 1;
            return cv_errf(err, CV_EIO,
                           "caviard did not stop within %.0f s of SIGTERM and was "
                           "killed",
                           timeout_s);
        }
    }
    if (WIFEXITED(d->wait_status) && WEXITSTATUS(d->wait_status) == 0) return 0;
    cv_daemon_describe_exit(d, how, sizeof how);
    return cv_errf(err, CV_EIO, "caviard %s", how);
}

void cv_daemon_finish(cv_daemon_t *d) {
    if (d->port_file[0]) unlink(d->port_file);
    if (d->tmp_dir[0]) rmdir(d->tmp_dir);
    d->port_file[0] = '\0';
    d->tmp_dir[0] = '\0';
}
