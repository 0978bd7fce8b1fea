/* The rows hyperparameter importance (common/importance.h) is computed from: a job's completed
 * trials as the API lists them, each searched parameter in the coordinate it is sampled on
 * (common/space.h; a categorical parameter as the index of its value), and the job's objective.
 * The CLI and the coordinator both build their rows here, so that they compute the same
 * figures from the same trials. Pure: no I/O, nothing allocated. */
#ifndef CV_IMPORTANCE_ROWS_H
#define CV_IMPORTANCE_ROWS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/space.h"

/* How replies name p's scale: "linear", "log", "one_minus_log", "power_of_two" or
 * "categorical". Static storage. */
const char *cv_importance_scale_name(const cv_space_param_t *p);

/* The bounds of every parameter of space in its coordinate into lo and hi (n_params each); a
 * categorical parameter of K values spans [-0.5, K - 0.5]. */
void cv_importance_bounds(const cv_space_t *space, double *lo, double *hi);

/* Fills x (one row of space->n_params coordinates per trial, row-major) and y with the trials
 * (an array of trial objects, borrowed) whose status is "completed", whose objective (their
 * "objective" member, else the member named objective) is a finite number, and that have a
 * value the space knows for every parameter, in the array's order. x and y must hold as many
 * rows as trials has elements. Returns the number of rows written. */
size_t cv_importance_rows(const cv_space_t *space, const cJSON *trials, const char *objective,
                          double *x, double *y);

#endif
