/* The option parser declared in args.h, over glibc's getopt_long: the command's table becomes
 * getopt's long options and short option string, and getopt's answers become values checked
 * against the table's kinds and bounds, or a reason naming the option. */
#include "client/args.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define LONG_ONLY_BASE 256 /* getopt's value of table entry i without a short name: base + i */
#define MAX_OPTIONS    32  /* entries of one command's table */

/* "--limit (-n)" or "--limit": how reasons name the option of table entry opt. */
static const char *option_name(const cv_arg_opt_t *opt, char *buf, size_t cap) {
    if (opt->short_name)
        snprintf(buf, cap, "%s (%s)", opt->name, opt->short_name);
    else
        snprintf(buf, cap, "%s", opt->name);
    return buf;
}

/* The table entry getopt answered `val` for, or NULL. */
static const cv_arg_opt_t *entry_of(const cv_arg_opt_t *opts, size_t n_opts, int val) {
    if (val >= LONG_ONLY_BASE && (size_t)(val - LONG_ONLY_BASE) < n_opts)
        return &opts[val - LONG_ONLY_BASE];
    for (size_t i = 0; i < n_opts; i++)
        if (opts[i].short_name && opts[i].short_name[1] == val) return &opts[i];
    return NULL;
}

/* Stores text as the value of opt. */
static int store_value(const cv_arg_opt_t *opt, const char *text, char *err) {
    char *end, name[64];
    double x;
    long long v;
    switch (opt->kind) {
    case CV_ARG_STRING:
        *(const char **)opt->out = text;
        return 0;
    case CV_ARG_INT:
        errno = 0;
        v = strtoll(text, &end, 10);
        if (end == text || *end || errno || (double)v < opt->min || (double)v > opt->max)
            return cv_errf(err, CV_EINVAL, "%s: must be an integer in [%.0f, %.0f], got \"%s\"",
                           option_name(opt, name, sizeof name), opt->min, opt->max, text);
        *(int64_t *)opt->out = v;
        return 0;
    case CV_ARG_NUMBER:
        errno = 0;
        x = strtod(text, &end);
        if (end == text || *end || errno || !isfinite(x) || x < opt->min || x > opt->max)
            return cv_errf(err, CV_EINVAL, "%s: must be a number in [%g, %g], got \"%s\"",
                           option_name(opt, name, sizeof name), opt->min, opt->max, text);
        *(double *)opt->out = x;
        return 0;
    case CV_ARG_FLAG:
    default:
        *(int *)opt->out = 1;
        return 0;
    }
}

/* Builds getopt_long's tables from opts: longopts (n_opts + 1 entries, the last zero) and the
 * short option string (":" first, so that a missing value is told apart). */
static int build_tables(const cv_arg_opt_t *opts, size_t n_opts, struct option *longopts,
                        char *shortopts, size_t cap, char *err) {
    size_t n = 0;
    shortopts[n++] = ':';
    for (size_t i = 0; i < n_opts; i++) {
        const cv_arg_opt_t *o = &opts[i];
        int has_short = o->short_name && o->short_name[0] == '-' && o->short_name[1] &&
                        o->short_name[1] != '-' && !o->short_name[2];
        if (strncmp(o->name, "--", 2) != 0 || (o->short_name && !has_short))
            return cv_errf(err, CV_EINVAL, "option table: %s is not \"--name\" with \"-x\"",
                           o->name);
        longopts[i] = (struct option){
            .name = o->name + 2,
            .has_arg = o->kind == CV_ARG_FLAG ? no_argument : required_argument,
            .flag = NULL,
            .val = has_short ? o->short_name[1] : LONG_ONLY_BASE + (int)i,
        };
        if (has_short) {
            if (n + 3 > cap) return cv_errf(err, CV_ERANGE, "option table too long");
            shortopts[n++] = o->short_name[1];
            if (o->kind != CV_ARG_FLAG) shortopts[n++] = ':';
        }
    }
    longopts[n_opts] = (struct option){0};
    shortopts[n] = '\0';
    return 0;
}

/* The reason for getopt's '?' or ':' answer about argv[optind - 1]. */
static int refusal(int answer, const cv_arg_opt_t *opts, size_t n_opts, char **argv, int index,
                   char *err) {
    char name[64];
    const cv_arg_opt_t *opt = entry_of(opts, n_opts, optopt);
    const char *word = index >= 1 ? argv[index - 1] : "?";
    if (answer == ':')
        return cv_errf(err, CV_EINVAL, "%s needs a value",
                       opt ? option_name(opt, name, sizeof name) : word);
    if (opt)
        return cv_errf(err, CV_EINVAL, "%s takes no value", option_name(opt, name, sizeof name));
    if (optopt) return cv_errf(err, CV_EINVAL, "unknown option \"-%c\"", optopt);
    size_t len = strcspn(word, "=");
    return cv_errf(err, CV_EINVAL, "unknown option \"%.*s\"", (int)len, word);
}

int cv_args_parse(int argc, char **argv, const cv_arg_opt_t *opts, size_t n_opts, const char **pos,
                  size_t min_pos, size_t max_pos, size_t *n_pos, const char *what, char *err) {
    struct option longopts[MAX_OPTIONS + 1];
    char shortopts[3 * MAX_OPTIONS + 2];
    if (n_opts > MAX_OPTIONS) return cv_errf(err, CV_ERANGE, "option table too long");
    int rc = build_tables(opts, n_opts, longopts, shortopts, sizeof shortopts, err);
    if (rc < 0) return rc;
    /* getopt wants a program name first; it permutes the pointers, never the strings. */
    char **args = malloc(((size_t)argc + 2) * sizeof *args);
    if (!args) return cv_errf(err, CV_ENOMEM, "out of memory");
    args[0] = (char *)"caviar";
    memcpy(args + 1, argv, (size_t)argc * sizeof *args);
    args[argc + 1] = NULL;
    optind = 0; /* glibc: start afresh (a previous parse may have left state behind) */
    opterr = 0; /* reasons are ours, in err */
    int answer;
    while (rc == 0 && (answer = getopt_long(argc + 1, args, shortopts, longopts, NULL)) != -1) {
        const cv_arg_opt_t *opt = entry_of(opts, n_opts, answer);
        if (answer == '?' || answer == ':' || !opt)
            rc = refusal(answer, opts, n_opts, args, optind, err);
        else
            rc = store_value(opt, optarg, err);
    }
    size_t n = 0;
    for (int i = optind; rc == 0 && i < argc + 1; i++) {
        if (n == max_pos)
            rc = cv_errf(err, CV_EINVAL, "unexpected argument \"%s\"", args[i]);
        else
            pos[n++] = args[i];
    }
    free(args);
    if (rc < 0) return rc;
    if (n < min_pos) return cv_errf(err, CV_EINVAL, "missing %s", what);
    *n_pos = n;
    return 0;
}

int cv_args_parse_id(const char *text, const char *what, int64_t *out, char *err) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno || v <= 0 || text[0] == '+' || text[0] == ' ')
        return cv_errf(err, CV_EINVAL, "%s must be a positive integer, got \"%s\"", what, text);
    *out = v;
    return 0;
}
