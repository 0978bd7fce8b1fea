/* Token files and token strings; see token.h. */
#include "common/token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

static int is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int cv_token_parse(const char *text, size_t len, size_t max, const char *source, char *out,
                   size_t cap, char *err) {
    const unsigned char *p = (const unsigned char *)text;
    size_t start = 0, end = len;
    while (start < end && is_space(p[start]))
        start++;
    while (end > start && is_space(p[end - 1]))
        end--;
    size_t n = end - start;
    if (n == 0) return cv_errf(err, CV_EINVAL, "%s is empty or holds only whitespace", source);
    if (n > max || n + 1 > cap)
        return cv_errf(err, CV_EINVAL, "%s: the token is %zu bytes long; at most %zu are allowed",
                       source, n, max < cap - 1 ? max : cap - 1);
    for (size_t i = start; i < end; i++)
        if (p[i] < 0x21 || p[i] == 0x7f)
            return cv_errf(err, CV_EINVAL,
                           "%s: the token contains whitespace or a control character", source);
    memcpy(out, text + start, n);
    out[n] = '\0';
    return 0;
}

int cv_token_read_file(const char *path, size_t max, char *out, size_t cap, char *err) {
    char buf[CV_TOKEN_FILE_MAX + 1], source[64 + 4096];
    snprintf(source, sizeof source, "token file %s", path);
    /* O_NONBLOCK: a FIFO given by mistake is refused below instead of blocking start-up. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return cv_errf(err, CV_EIO, "%s: %s", source, strerror(errno));
    struct stat st;
    int rc = 0;
    size_t len = 0;
    if (fstat(fd, &st) != 0) {
        rc = cv_errf(err, CV_EIO, "%s: %s", source, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = cv_errf(err, CV_EINVAL, "%s: not a regular file", source);
        goto done;
    }
    while (len < sizeof buf) {
        ssize_t got = read(fd, buf + len, sizeof buf - len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            rc = cv_errf(err, CV_EIO, "%s: %s", source, strerror(errno));
            goto done;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    if (len > CV_TOKEN_FILE_MAX) {
        rc = cv_errf(err, CV_EINVAL, "%s: larger than %d bytes; it must hold only the token",
                     source, CV_TOKEN_FILE_MAX);
        goto done;
    }
    rc = cv_token_parse(buf, len, max, source, out, cap, err);
done:
    close(fd);
    return rc;
}
