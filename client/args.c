/* The option parser declared in args.h. */
#include "client/args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* Finds the option spelled `word` (up to len bytes); NULL when unknown. */
static const cv_arg_opt_t *find_option(const cv_arg_opt_t *opts, size_t n_opts, const char *word,
                                       size_t len) {
    for (size_t i = 0; i < n_opts; i++) {
        const char *names[2] = {opts[i].name, opts[i].short_name};
        for (int k = 0; k < 2; k++)
            if (names[k] && strlen(names[k]) == len && strncmp(names[k], word, len) == 0)
                return &opts[i];
    }
    return NULL;
}

/* Stores text as the value of opt. */
static int store_value(const cv_arg_opt_t *opt, const char *text, char *err) {
    char *end;
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
                           opt->name, opt->min, opt->max, text);
        *(int64_t *)opt->out = v;
        return 0;
    case CV_ARG_NUMBER:
        errno = 0;
        x = strtod(text, &end);
        if (end == text || *end || errno || !isfinite(x) || x < opt->min || x > opt->max)
            return cv_errf(err, CV_EINVAL, "%s: must be a number in [%g, %g], got \"%s\"",
                           opt->name, opt->min, opt->max, text);
        *(double *)opt->out = x;
        return 0;
    case CV_ARG_FLAG:
    default:
        *(int *)opt->out = 1;
        return 0;
    }
}

int cv_args_parse(int argc, char **argv, const cv_arg_opt_t *opts, size_t n_opts, const char **pos,
                  size_t min_pos, size_t max_pos, size_t *n_pos, const char *what, char *err) {
    int options_done = 0;
    size_t n = 0;
    for (int i = 0; i < argc; i++) {
        const char *word = argv[i];
        if (options_done || word[0] != '-' || strcmp(word, "-") == 0) {
            if (n == max_pos) return cv_errf(err, CV_EINVAL, "unexpected argument \"%s\"", word);
            pos[n++] = word;
            continue;
        }
        if (strcmp(word, "--") == 0) {
            options_done = 1;
            continue;
        }
        /* "--name=value" and "-k5" carry their value in the same word. */
        const char *inline_value = NULL;
        size_t len = strlen(word);
        const cv_arg_opt_t *opt = NULL;
        if (word[1] == '-') {
            const char *eq = strchr(word, '=');
            if (eq) {
                len = (size_t)(eq - word);
                inline_value = eq + 1;
            }
            opt = find_option(opts, n_opts, word, len);
        } else {
            opt = find_option(opts, n_opts, word, len);
            if (!opt && len > 2) {
                opt = find_option(opts, n_opts, word, 2);
                inline_value = word + 2;
            }
        }
        if (!opt) return cv_errf(err, CV_EINVAL, "unknown option \"%.*s\"", (int)len, word);
        if (opt->kind == CV_ARG_FLAG) {
            if (inline_value) return cv_errf(err, CV_EINVAL, "%s takes no value", opt->name);
            *(int *)opt->out = 1;
            continue;
        }
        if (!inline_value) {
            if (i + 1 == argc) return cv_errf(err, CV_EINVAL, "%s needs a value", opt->name);
            inline_value = argv[++i];
        }
        int rc = store_value(opt, inline_value, err);
        if (rc < 0) return rc;
    }
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
