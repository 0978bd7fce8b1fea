/* caviard as a child process of `caviar run`: finding the binary, starting it on an ephemeral
 * loopback port, learning the port from the file it writes once listening, and stopping it.
 *
 * The child runs in its own process group, so a Ctrl-C at the terminal reaches only caviar,
 * which then cancels the job and stops the daemon in order. Unless it is to be kept, the child
 * also gets SIGTERM from the kernel if caviar dies first (Linux PR_SET_PDEATHSIG). */
#ifndef CV_CLIENT_DAEMON_H
#define CV_CLIENT_DAEMON_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    const char *caviard;  /* the binary; NULL: beside caviar (../server/caviard, ./caviard), PATH */
    const char *db;       /* --db PATH */
    const char *data_dir; /* --data-dir DIR */
    long workers;         /* --workers N */
    const char *log_path; /* file its stdout and stderr are appended to; NULL: inherit ours */
    int keep;             /* 1: let it outlive caviar (no parent-death signal) */
} cv_daemon_options_t;

/* A started daemon. Caller-allocated; cv_daemon_start initializes it, cv_daemon_finish cleans
 * it up. */
typedef struct {
    pid_t pid;              /* the child's pid (and process group), 0 when none was started */
    int reaped;             /* 1 once waitpid collected it */
    int wait_status;        /* its wait status once reaped */
    int port;               /* the HTTP port it reported, 0 until known */
    char path[PATH_MAX];    /* the caviard binary that was started */
    char tmp_dir[PATH_MAX]; /* private temporary directory holding the port file, or "" */
    char port_file[PATH_MAX + 16]; /* tmp_dir/port */
} cv_daemon_t;

/* Resolves the caviard binary into path (cap bytes): opt->caviard when given (must be
 * executable), else the directory of /proc/self/exe's ../server/caviard, then caviard in the same
 * directory, then the first executable caviard on $PATH. CV_EINVAL naming the places tried. */
int cv_daemon_find(const char *override, char *path, size_t cap, char *err);

/* Starts caviard with --listen 127.0.0.1:0 --worker-listen 127.0.0.1:0 --workers N --db PATH
 * --data-dir DIR --port-file FILE (in a fresh temporary directory): both ports ephemeral, so
 * that several runs and a system caviard can coexist. On success d describes the running child; on
 * failure nothing is left running or on disk. CV_EINVAL (binary not found), CV_EIO (temporary
 * directory, log file, fork or exec failed, with errno's text). */
int cv_daemon_start(cv_daemon_t *d, const cv_daemon_options_t *opt, char *err);

/* Waits up to timeout_s seconds for the port file, polling, and stores the port in d->port.
 * CV_ESTOPPED as soon as *stop becomes non-zero, CV_EIO when the child exits first (err gives its
 * exit status), CV_EFORMAT for a port file that does not hold a port, CV_ERANGE on timeout. */
int cv_daemon_wait_port(cv_daemon_t *d, double timeout_s, volatile sig_atomic_t *stop, char *err);

/* Returns 1 (and records its status) when the child has exited, 0 while it runs. */
int cv_daemon_exited(cv_daemon_t *d);

/* Describes how the child ended ("exited with status 1", "was killed by signal 9") into buf. */
void cv_daemon_describe_exit(const cv_daemon_t *d, char *buf, size_t cap);

/* Sends SIGTERM and waits up to timeout_s seconds for the child to exit, then kills its whole
 * process group with SIGKILL. 0 when it exited with status 0 after SIGTERM (or had already
 * exited so), CV_EIO otherwise (err says how it ended). */
int cv_daemon_stop(cv_daemon_t *d, double timeout_s, char *err);

/* Removes the port file and temporary directory. Does not signal the child: a daemon kept with
 * --keep goes on running. Safe on a daemon that failed to start. */
void cv_daemon_finish(cv_daemon_t *d);

#endif
