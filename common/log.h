/* Leveled logging to stderr with a UTC timestamp and the program name.
 *
 * The only process-wide setting is the minimum level, held by the caller in a cv_log_t and passed
 * in; modules that log take a const cv_log_t * (NULL logs at the default level). */
#ifndef CV_LOG_H
#define CV_LOG_H

typedef enum { CV_LOG_DEBUG = 0, CV_LOG_INFO, CV_LOG_WARN, CV_LOG_ERROR } cv_log_level_t;

typedef struct {
    cv_log_level_t min_level; /* messages below this level are dropped */
    const char *name;         /* program name printed on every line */
} cv_log_t;

void cv_log(const cv_log_t *log, cv_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
