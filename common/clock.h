/* The two clocks caviar reads, in seconds as doubles: wall time for what is stored and shown
 * (unix seconds), monotonic time for intervals, timeouts and throughput. */
#ifndef CV_CLOCK_H
#define CV_CLOCK_H

/* Unix time in seconds (CLOCK_REALTIME). */
double cv_clock_wall(void);

/* Seconds since an arbitrary start that never jumps (CLOCK_MONOTONIC). */
double cv_clock_monotonic(void);

#endif
