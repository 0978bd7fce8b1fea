/* Clock readings; see clock.h. */
#include "common/clock.h"

#include <time.h>

static double read_clock(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double cv_clock_wall(void) {
    return read_clock(CLOCK_REALTIME);
}

double cv_clock_monotonic(void) {
    return read_clock(CLOCK_MONOTONIC);
}
