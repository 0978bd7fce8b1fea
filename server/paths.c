/* Dataset path confinement and refused output fields; see paths.h. */
#include "server/paths.h"

#include <errno.h>
#include <fcntl.h>
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

/* 1 when path (absolute) fails to resolve only because an entry is missing inside a root: the
 * longest leading part of path that resolves lies inside a root, and the component after it
 * does not exist at all. Anything else that does not resolve (a missing entry below a directory
 * outside, reached by ".." or through a symbolic link; a dangling or looping link) counts as
 * outside, so that a client cannot tell a missing file outside the roots from an existing one. */
static int missing_inside(const char *path, const char *const *roots, size_t n_roots) {
    char prefix[PATH_MAX], abs[PATH_MAX], root[PATH_MAX];
    size_t len = strlen(path);
    if (path[0] != '/' || len >= sizeof prefix) return 0;
    for (size_t cut = len; cut > 0;) {
        while (cut > 0 && path[cut - 1] != '/') /* the start of the last component */
            cut--;
        size_t end = cut;                       /* the ancestor without trailing slashes */
        while (end > 1 && path[end - 1] == '/')
            end--;
        if (cut == 0) return 0;
        memcpy(prefix, path, end);
        prefix[end] = '\0';
        if (!realpath(prefix, abs)) {
            cut = end == 1 ? 0 : end;
            continue;
        }
        /* prefix resolves: does the component after it exist in any form? */
        size_t next = strcspn(path + cut, "/");
        struct stat st;
        memcpy(prefix, path, cut + next);
        prefix[cut + next] = '\0';
        if (lstat(prefix, &st) == 0) return 0;
        for (size_t i = 0; i < n_roots; i++)
            if (realpath(roots[i], root) && cv_path_is_inside(abs, root)) return 1;
        return 0;
    }
    return 0;
}

/* What a file of mode m is, for messages: "a directory", "a FIFO", "a device", ... */
static const char *file_kind(mode_t m) {
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m) || S_ISBLK(m) ? "a device" : S_ISSOCK(m) ? "a socket" : "something else";
}

int cv_path_open_regular(const char *field, const char *given, const char *abs, uint64_t *size,
                         char *err) {
    struct stat st;
    if (stat(abs, &st) == 0 && !S_ISREG(st.st_mode))
        return cv_errf(err, CV_EINVAL, "%s: %s is %s, not a regular file", field, given,
                       file_kind(st.st_mode));
    int fd = open(abs, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return cv_errf(err, CV_EINVAL, "%s: cannot open %s: %s", field, given,
                               strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { /* replaced since the stat */
        close(fd);
        return cv_errf(err, CV_EINVAL, "%s: %s is %s, not a regular file", field, given,
                       file_kind(st.st_mode));
    }
    if (size) *size = (uint64_t)st.st_size;
    return fd;
}

/* Refuses anything but a regular file (cv_path_open_regular, then closed). */
static int check_regular(const char *field, const char *given, const char *abs, char *err) {
    int fd = cv_path_open_regular(field, given, abs, NULL, err);
    if (fd < 0) return fd;
    close(fd);
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
        if (n_roots > 0 && !missing_inside(path, roots, n_roots))
            return cv_errf(err, CV_EINVAL, "%s: %s is outside the dataset roots", field, given);
        return cannot_open(field, given, path, e, err);
    }
    if (n_roots > 0) {
        int inside = 0;
        for (size_t i = 0; i < n_roots && !inside; i++)
            inside = realpath(roots[i], root) && cv_path_is_inside(abs, root);
        if (!inside)
            return cv_errf(err, CV_EINVAL, "%s: %s is outside the dataset roots", field, given);
    }
    int rc = check_regular(field, given, abs, err);
    if (rc) return rc;
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
