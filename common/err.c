/* Error code descriptions and the reason-buffer formatter declared in err.h. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *cv_strerror(int code) {
    switch (code) {
    case CV_OK: return "success";
    case CV_ENOMEM: return "out of memory";
    case CV_EIO: return "input/output error";
    case CV_EINVAL: return "invalid argument";
    case CV_EFORMAT: return "malformed input";
    case CV_ERANGE: return "value out of range";
    case CV_EDIVERGE: return "training diverged";
    case CV_ESTOPPED: return "stopped";
    case CV_EUNAVAIL: return "unavailable";
    default: return "unknown error";
    }
}

int cv_errf(char *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, CV_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return code;
}
