/* Dataset path confinement and refused output fields; see paths.h. */
#include "server/paths.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

int cv_path_is_inside(const char *path, const char *root) {
    size_t n = strlen(root);
    if (path[0] != '/' || root[0] != '/') return 0;
    if (n == 1) return 1; /* "/" holds every absolute path */
    if (strncmp(path, root, n) != 0) return 0;
    return path[n] == '\0' || path[n] == '/';
}

int cv_path_root_resolve(const char *root, char *out, size_t cap, char *err) {
    char abs[PATH_MAX];
    struct stat st;
    if (!realpath(root, abs))
        return cv_errf(err, CV_EINVAL, "dataset root %s: %s", root, strerror(errno));
    if (stat(abs, &st) || !S_ISDIR(st.st_mode))
        return cv_errf(err, CV_EINVAL, "dataset root %s: not a directory", root);
    if (strlen(abs) >= cap) return cv_errf(err, CV_ERANGE, "dataset root %s: path too long", root);
    memcpy(out, abs, strlen(abs) + 1);
    return 0;
}

/* 1 when path, read as text, has a "." or ".." component. */
static int has_dot_component(const char *path) {
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) return 1;
        p += len;
    }
    return 0;
}

/* 1 when the absolute path, read as text without touching the filesystem, lies inside one of
 * the roots, whether as configured or canonical. It decides which reason a path that does not
 * resolve gets, so that a client cannot probe which files exist outside the roots. */
static int lexically_inside(const char *path, const char *const *roots, size_t n_roots) {
    if (path[0] != '/' || has_dot_component(path)) return 0;
    for (size_t i = 0; i < n_roots; i++) {
        char abs[PATH_MAX];
        if (cv_path_is_inside(path, roots[i])) return 1;
        if (realpath(roots[i], abs) && cv_path_is_inside(path, abs)) return 1;
    }
    return 0;
}

/* The refusal of a dataset file that does not resolve. A relative path is named with the
 * absolute path it was looked for at (under the first root, or the working directory), so that
 * the reader knows where caviard looked. */
static int cannot_open(const char *field, const char *given, const char *path, int e, char *err) {
    char cwd[PATH_MAX];
    if (path[0] == '/' && strcmp(path, given) != 0)
        return cv_errf(err, CV_EINVAL, "%s: cannot open %s (looked for %s): %s", field, given, path,
                       strerror(e));
    if (path[0] != '/' && getcwd(cwd, sizeof cwd))
        return cv_errf(err, CV_EINVAL, "%s: cannot open %s (looked for %s%s%s): %s", field, given,
                       cwd, strcmp(cwd, "/") ? "/" : "", path, strerror(e));
    return cv_errf(err, CV_EINVAL, "%s: cannot open %s: %s", field, given, strerror(e));
}

int cv_path_resolve_dataset(const char *field, const char *given, const char *const *roots,
                            size_t n_roots, char *out, size_t cap, char *err) {
    char joined[PATH_MAX], abs[PATH_MAX], root[PATH_MAX];
    const char *path = given;
    if (n_roots > 0 && given[0] != '/') { /* relative: under the first root */
        if (!realpath(roots[0], root))
            return cv_errf(err, CV_EINVAL, "%s: dataset root %s: %s", field, roots[0],
                           strerror(errno));
        int n = snprintf(joined, sizeof joined, "%s/%s", root, given);
        if (n < 0 || (size_t)n >= sizeof joined)
            return cv_errf(err, CV_ERANGE, "%s: path too long", field);
        path = joined;
    }
    if (!realpath(path, abs)) {
        int e = errno;
        if (n_roots > 0 && !lexically_inside(path, roots, n_roots))
            return cv_errf(err, CV_EINVAL, "%s: %s is outside the dataset roots", field, given);
        return cannot_open(field, given, path, e, err);
    }
    if (n_roots > 0) {
        int inside = 0;
        for (size_t i = 0; i < n_roots && !inside; i++)
            inside = realpath(roots[i], root) && cv_path_is_inside(abs, root);
        if (!inside)
            return cv_errf(err, CV_EINVAL, "%s: %s is outside the dataset roots", field, given);
        struct stat st;
        if (stat(abs, &st) || !S_ISREG(st.st_mode))
            return cv_errf(err, CV_EINVAL, "%s: %s is not a regular file", field, given);
    }
    size_t len = strlen(abs);
    if (len >= cap) return cv_errf(err, CV_ERANGE, "%s: path too long", field);
    memcpy(out, abs, len + 1);
    return 0;
}

int cv_paths_check_job_trial(const cJSON *trial, char *err) {
    if (cJSON_GetObjectItemCaseSensitive(trial, "save_model"))
        return cv_errf(err, CV_EINVAL,
                       "trial.save_model: a job may not name a model file; the coordinator "
                       "keeps every trial's model under its data directory");
    return 0;
}
