/* The commands of the `caviar` client, one function each (implemented by command group in
 * client/cmd_*.c; commands_internal.h lists them), and what they share.
 *
 * Every command takes the words after its name, returns 0 or a negative code, and writes a
 * reason into err (CV_ERRLEN bytes). main() turns codes into exit statuses: CV_CLI_EUSAGE exits
 * 2, CV_CLI_ESTOP exits 3, CV_ESTOPPED (interrupted) exits 130, every other failure exits 1. */
#ifndef CV_CLIENT_COMMANDS_H
#define CV_CLIENT_COMMANDS_H

#include <signal.h>
#include <stdio.h>

#include "client/http_client.h"

#define CV_CLI_EUSAGE -30 /* the command line is wrong; the reason says how */
#define CV_CLI_EHTTP  -31 /* the server answered with an error status; the reason is its message */
#define CV_CLI_EJOB   -32 /* the job ended without completing (watch, run) */
#define CV_CLI_ESTOP  -33 /* ask/tell: stop (report: the trial is pruned; ask: no trial): exit 3 */

#define CV_CLI_DEFAULT_SERVER "http://127.0.0.1:8470"

/* What every command runs with. Everything is borrowed from main(). */
typedef struct {
    cv_http_client_t *http;      /* connection to the server */
    const char *token;           /* bearer token, or NULL */
    int json;                    /* 1: print the server's JSON answers instead of tables */
    volatile sig_atomic_t *stop; /* becomes non-zero on SIGINT or SIGTERM */
    FILE *out;                   /* where results go (stdout) */
} cv_cli_t;

typedef int (*cv_command_fn)(cv_cli_t *cli, int argc, char **argv, char *err);

int cv_cmd_submit(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_status(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_best(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_trials(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_trial(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_watch(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_cancel(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_delete(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_extend(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_evaluate(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_export(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_importance(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_workers(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_model(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_run(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_nudge(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_panda(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_ask(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_report(cv_cli_t *cli, int argc, char **argv, char *err);
int cv_cmd_tell(cv_cli_t *cli, int argc, char **argv, char *err);

#endif
