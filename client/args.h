/* Command-line option parsing for the client's commands, table-driven: each command lists its
 * options with their kinds and bounds, and gets its positional arguments back in order.
 *
 * Accepted spellings: "--name value", "--name=value", "-k value", "-k5"; "--" ends options; a
 * lone "-" is a positional argument. Every reason names the option and the rule, e.g.
 * "--limit: must be an integer in [1, 1000000], got \"x\"". */
#ifndef CV_CLIENT_ARGS_H
#define CV_CLIENT_ARGS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CV_ARG_FLAG,   /* no value; out is int *, set to 1 */
    CV_ARG_STRING, /* out is const char **, pointed into argv */
    CV_ARG_INT,    /* out is int64_t *, an integer in [min, max] */
    CV_ARG_NUMBER, /* out is double *, a finite number in [min, max] */
} cv_arg_kind_t;

typedef struct {
    const char *name;       /* long spelling, "--limit" */
    const char *short_name; /* short spelling, "-k", or NULL */
    cv_arg_kind_t kind;
    void *out;  /* where the value goes; its type follows kind */
    double min; /* bounds for INT and NUMBER (inclusive) */
    double max;
} cv_arg_opt_t;

/* Parses argv[0..argc) (the words after the command name) against opts[0..n_opts). Positional
 * words go into pos[0..max_pos) in order and their count into *n_pos. CV_EINVAL (a usage error)
 * for an unknown option, a missing or malformed value, fewer than min_pos or more than max_pos
 * positional words; `what` names the positionals for the message ("JOB"). Nothing allocated. */
int cv_args_parse(int argc, char **argv, const cv_arg_opt_t *opts, size_t n_opts, const char **pos,
                  size_t min_pos, size_t max_pos, size_t *n_pos, const char *what, char *err);

/* Reads a positive integer id ("JOB", "trial ID") from text. CV_EINVAL naming `what`. */
int cv_args_parse_id(const char *text, const char *what, int64_t *out, char *err);

#endif
