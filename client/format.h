/* Text renderings of API values shared by the client's commands: numbers as people read them
 * and as CSV keeps them exactly, parameter values, diagnoses, timestamps, and CSV quoting.
 *
 * Every function writes into a caller-owned buffer of cap bytes (truncating, always
 * NUL-terminated when cap > 0) and returns that buffer, so calls can sit in argument lists. */
#ifndef CV_CLIENT_FORMAT_H
#define CV_CLIENT_FORMAT_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#define CV_FMT_CELL 128 /* bytes of a buffer that holds any single table cell */

/* A number for a table: "-" when v is missing, null or not a number; an integer without a
 * fraction when v holds one below 1e15 in magnitude; otherwise 4 significant digits ("0.1234",
 * "3.2e-05"). */
char *cv_fmt_number(const cJSON *v, char *buf, size_t cap);

/* A number for a table with `digits` significant digits (1..17), same rules as cv_fmt_number. */
char *cv_fmt_number_digits(const cJSON *v, int digits, char *buf, size_t cap);

/* A number written so that reading it back gives the same double: the shortest of %.15g, %.16g
 * and %.17g that round-trips. Empty for a missing or non-number v. */
char *cv_fmt_exact(const cJSON *v, char *buf, size_t cap);

/* Any value for a table: strings as they are, booleans as true/false, numbers as cv_fmt_number,
 * null or missing as "-", objects and arrays as compact JSON. */
char *cv_fmt_value(const cJSON *v, char *buf, size_t cap);

/* Like cv_fmt_value, but exact numbers (cv_fmt_exact) and empty text for null or missing: the
 * form a CSV cell wants before quoting. */
char *cv_fmt_value_exact(const cJSON *v, char *buf, size_t cap);

/* A trial's diagnosis: the "name" of a diagnosis object ("high_variance"), a string as it is,
 * "-" for null or missing. */
char *cv_fmt_diagnosis(const cJSON *v, char *buf, size_t cap);

/* A timestamp (seconds since the epoch, as the server stores them) as local
 * "YYYY-MM-DD HH:MM:SS"; a string is shown as it is; "-" for null or missing. */
char *cv_fmt_time(const cJSON *v, char *buf, size_t cap);

/* Writes text to out as one RFC 4180 CSV field: quoted (with doubled quotes) when it holds a
 * comma, a quote, a CR or LF, or leading or trailing spaces; as it is otherwise. */
void cv_fmt_csv_field(FILE *out, const char *text);

#endif
