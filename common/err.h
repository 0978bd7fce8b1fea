/* Error codes and the human-readable reason buffer shared by every module.
 *
 * A function that can fail returns 0 on success or one of the negative CV_E* codes below, and
 * writes a sentence naming the problem (the JSON field, the file and line) into a caller-owned
 * buffer of CV_ERRLEN bytes. The buffer argument may be NULL when the caller does not want it. */
#ifndef CV_ERR_H
#define CV_ERR_H

#include <stddef.h>

#define CV_ERRLEN 512 /* bytes of every reason buffer */

enum {
    CV_OK       = 0,
    CV_ENOMEM   = -1, /* an allocation failed */
    CV_EIO      = -2, /* a read, write or open failed; errno's text is in the reason */
    CV_EINVAL   = -3, /* a caller's argument or a spec field broke a rule */
    CV_EFORMAT  = -4, /* a file or message is malformed, truncated or lies about its sizes */
    CV_ERANGE   = -5, /* a value is outside what the format or the limits allow */
    CV_EDIVERGE = -6, /* training produced a NaN or an infinity */
    CV_ESTOPPED = -7, /* work was asked to stop before it finished */
    CV_EUNAVAIL = -8, /* nothing connected can do the work (no worker offers a job's trainer) */
};

/* Returns a static, constant description of a CV_E* code. */
const char *cv_strerror(int code);

/* Formats a reason into err (CV_ERRLEN bytes; ignored when NULL). Always returns code, so a
 * failing path can read `return cv_errf(err, CV_EINVAL, "...", ...);`. */
int cv_errf(char *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
