/* stderr logger; see log.h. One fprintf per line keeps lines whole across threads. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void cv_log(const cv_log_t *log, cv_log_level_t level, const char *fmt, ...) {
    cv_log_level_t min = log ? log->min_level : CV_LOG_INFO;
    if (level < min) return;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, log && log->name ? log->name : "caviar", names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
