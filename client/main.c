/* caviar: the command-line client of the caviard coordinator. Parses the global options
 * (--server, --token, --json, which may appear anywhere before "--"), picks the command and
 * maps its result to an exit status: 0 success, 1 failure, 2 usage error, 3 stop (a pruned trial's
 * report, an ask with no trial to hand out), 130 interrupted. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "client/commands.h"
#include "common/err.h"

/* Set by SIGINT and SIGTERM; commands poll it through cv_cli_t.stop. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

typedef struct {
    const char *name;
    cv_command_fn fn;
    int needs_server; /* 0: the command makes its own connection (run) */
    const char *usage;
    const char *summary;
} command_t;

static const command_t COMMANDS[] = {
    {"submit", cv_cmd_submit, 1, "submit JOB.json [--watch] [--interval S]",
     "submit a job spec; prints the job id"},
    {"status", cv_cmd_status, 1, "status [JOB]", "list jobs, or show one job in detail"},
    {"best", cv_cmd_best, 1, "best JOB [-k K]", "the K best trials (default 5)"},
    {"trials", cv_cmd_trials, 1, "trials JOB [--order best|number] [--limit K] [--offset O]",
     "a job's trials"},
    {"trial", cv_cmd_trial, 1, "trial ID", "one trial: params, metrics, diagnosis, curve"},
    {"watch", cv_cmd_watch, 1, "watch JOB [--interval S]",
     "follow a job's progress until it ends; exit 0 if it completed"},
    {"cancel", cv_cmd_cancel, 1, "cancel JOB", "cancel a running job"},
    {"delete", cv_cmd_delete, 1, "delete JOB",
     "delete a job that is not running, with its trials and models"},
    {"extend", cv_cmd_extend, 1, "extend JOB --max-trials N [--watch] [--interval S]",
     "grow a completed job to N trials: a new round refined around its best"},
    {"evaluate", cv_cmd_evaluate, 1, "evaluate JOB [--ensemble K]",
     "test accuracy of the best trial (or the top-K ensemble)"},
    {"export", cv_cmd_export, 1, "export JOB --csv [-o FILE] | --optuna FILE [--study NAME]",
     "every trial as CSV, or as an Optuna 3.1 study (SQLite) for optuna-dashboard"},
    {"importance", cv_cmd_importance, 1, "importance JOB",
     "how much of the objective each searched parameter explains (fANOVA)"},
    {"model", cv_cmd_model, 1, "model TRIAL [-o FILE]",
     "download a trial's model file (default trial-TRIAL.model; - for stdout)"},
    {"nudge", cv_cmd_nudge, 1, "nudge TRIAL FIELD=VALUE...",
     "new hyperparameter values for a running trial, from its next epoch (panda mode)"},
    {"panda", cv_cmd_panda, 1, "panda SPEC.json [--name NAME] [--max-seconds S] [--interval S]",
     "run one long trial and watch its curve; nudge it from another shell, Ctrl-C stops it"},
    {"ask", cv_cmd_ask, 1, "ask JOB [--client NAME] [--no-wait]",
     "lease the next trial of an ask job; prints it as JSON (exit 3: no more trials)"},
    {"report", cv_cmd_report, 1, "report TRIAL --lease L epoch=E dev_error=X dev_cost=Y",
     "one epoch of an asked trial; prints continue, or stop (exit 3: pruned)"},
    {"tell", cv_cmd_tell, 1, "tell TRIAL --lease L dev_error=X dev_cost=Y | --failed REASON",
     "the result of an asked trial"},
    {"workers", cv_cmd_workers, 1, "workers [--release ID]",
     "the workers the coordinator knows; --release lifts a worker's quarantine"},
    {"run", cv_cmd_run, 0,
     "run JOB.json [--workers N] [--db PATH] [--data-dir DIR] [--ensemble K] [--keep]\n"
     "                 [--caviard PATH] [--log FILE|-] [--interval S]",
     "start a private caviard, search, report the best trials and the test accuracy"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void print_usage(FILE *out) {
    fprintf(out, "usage: caviar [--server URL] [--token T] [--json] COMMAND [ARGS]\n\n"
                 "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out,
            "\n--server defaults to $CAVIAR_SERVER or %s; --token to $CAVIAR_TOKEN.\n"
            "`caviar COMMAND --help` shows a command's options.\n",
            CV_CLI_DEFAULT_SERVER);
}

static const command_t *find_command(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(COMMANDS[i].name, name) == 0) return &COMMANDS[i];
    return NULL;
}

/* Global options, found anywhere before "--". */
typedef struct {
    const char *server;
    const char *token;
    int json;
    int help;
    int version;
} globals_t;

/* Takes the global options out of argv[1..argc) and leaves the other words, in order, in
 * words[0..*n_words). Returns 0 or CV_CLI_EUSAGE. */
static int split_globals(int argc, char **argv, globals_t *g, char **words, int *n_words,
                         char *err) {
    int n = 0, after_dashes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        size_t len = 0;
        if (after_dashes) {
            words[n++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            after_dashes = 1;
            words[n++] = argv[i];
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            g->json = 1;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            g->version = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            g->help = 1;
            continue;
        }
        if (strncmp(a, "--server", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            slot = &g->server;
            len = 8;
        } else if (strncmp(a, "--token", 7) == 0 && (a[7] == '\0' || a[7] == '=')) {
            slot = &g->token;
            len = 7;
        }
        if (!slot) {
            words[n++] = argv[i];
            continue;
        }
        if (a[len] == '=') {
            *slot = a + len + 1;
        } else if (i + 1 < argc) {
            *slot = argv[++i];
        } else {
            return cv_errf(err, CV_CLI_EUSAGE, "%.*s needs a value", (int)len, a);
        }
    }
    *n_words = n;
    return 0;
}

/* Installs the stop flag's handler for SIGINT and SIGTERM, without SA_RESTART so that sleeps
 * end early. */
static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv) {
    char err[CV_ERRLEN] = "";
    globals_t g = {0};
    int n_words = 0, status = 1;
    char **words = calloc((size_t)argc + 1, sizeof *words);
    if (!words) {
        fprintf(stderr, "caviar: out of memory\n");
        return 1;
    }
    int rc = split_globals(argc, argv, &g, words, &n_words, err);
    if (rc < 0) {
        fprintf(stderr, "caviar: %s\n", err);
        print_usage(stderr);
        free(words);
        return 2;
    }
    if (g.version) {
        printf("caviar %s\n", CV_CLIENT_VERSION);
        free(words);
        return 0;
    }
    if (n_words == 0 || (g.help && n_words == 0) || strcmp(words[0], "help") == 0) {
        const command_t *about = n_words > 1 ? find_command(words[1]) : NULL;
        if (about)
            printf("usage: caviar %s\n  %s\n", about->usage, about->summary);
        else
            print_usage(n_words == 0 && !g.help ? stderr : stdout);
        free(words);
        return n_words == 0 && !g.help ? 2 : 0;
    }
    const command_t *cmd = find_command(words[0]);
    if (!cmd) {
        fprintf(stderr, "caviar: unknown command \"%s\"\n", words[0]);
        print_usage(stderr);
        free(words);
        return 2;
    }
    if (g.help) {
        printf("usage: caviar %s\n  %s\n", cmd->usage, cmd->summary);
        free(words);
        return 0;
    }

    const char *server = g.server ? g.server : getenv("CAVIAR_SERVER");
    if (!server || !server[0]) server = CV_CLI_DEFAULT_SERVER;
    const char *token = g.token ? g.token : getenv("CAVIAR_TOKEN");
    cv_cli_t cli = {.token = token, .json = g.json, .stop = &stop_requested, .out = stdout};

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "caviar: libcurl failed to initialize\n");
        free(words);
        return 1;
    }
    install_signals();
    rc = 0;
    if (cmd->needs_server) rc = cv_http_client_create(server, token, &cli.http, err);
    if (rc < 0)
        rc = rc == CV_EINVAL ? CV_CLI_EUSAGE : rc;
    else
        rc = cmd->fn(&cli, n_words - 1, words + 1, err);
    if (fflush(stdout) != 0 && rc == 0) rc = cv_errf(err, CV_EIO, "writing to stdout failed");

    if (rc == 0) {
        status = 0;
    } else if (rc == CV_CLI_EUSAGE) {
        fprintf(stderr, "caviar %s: %s\nusage: caviar %s\n", cmd->name, err, cmd->usage);
        status = 2;
    } else if (rc == CV_CLI_ESTOP) {
        fprintf(stderr, "caviar: %s\n", err);
        status = 3;
    } else if (rc == CV_ESTOPPED) {
        fprintf(stderr, "caviar: %s\n", err[0] ? err : "interrupted");
        status = 130;
    } else {
        fprintf(stderr, "caviar: %s\n", err[0] ? err : cv_strerror(rc));
        status = 1;
    }
    cv_http_client_destroy(cli.http);
    curl_global_cleanup();
    free(words);
    return status;
}
