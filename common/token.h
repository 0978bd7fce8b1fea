/* Shared secrets read from files or the environment: the API token and the worker token of
 * caviard, and the worker token of caviar-worker. Both binaries apply the same rules:
 *
 *   - surrounding whitespace (spaces, tabs, CR, LF, ...) is stripped, so "tok\n" and "  tok \r\n"
 *     both give "tok";
 *   - what is left must be non-empty, hold no whitespace or control character (a token is one
 *     word: it travels in an HTTP header and a JSON string), and be at most max bytes long.
 *
 * A token that breaks a rule is refused with a reason naming where it came from; nothing is ever
 * truncated or silently dropped (an empty token would disable authentication). */
#ifndef CV_TOKEN_H
#define CV_TOKEN_H

#include <stddef.h>

#define CV_TOKEN_FILE_MAX 4096 /* bytes read from a token file; a longer file is refused */

/* Checks the token held in text (len bytes, need not be NUL-terminated) and writes it, stripped,
 * into out (cap bytes, at least max + 1). source names the origin in reasons ("token file
 * /etc/caviar/api-token", "CAVIAR_TOKEN"). Returns 0, or CV_EINVAL with err:
 *   "<source> is empty or holds only whitespace"
 *   "<source>: the token is <n> bytes long; at most <max> are allowed"
 *   "<source>: the token contains whitespace or a control character"
 * Pure: no I/O. */
int cv_token_parse(const char *text, size_t len, size_t max, const char *source, char *out,
                   size_t cap, char *err);

/* Reads the token file at path and checks it with cv_token_parse (source "token file <path>").
 * Returns 0, CV_EINVAL as cv_token_parse does or when the file is larger than
 * CV_TOKEN_FILE_MAX, or CV_EIO with "token file <path>: <errno text>" when it cannot be read. */
int cv_token_read_file(const char *path, size_t max, char *out, size_t cap, char *err);

#endif
