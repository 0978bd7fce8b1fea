/* Small helpers over cJSON shared by every JSON reader: reading a file, and typed field access
 * that names the field and the rule broken in the reason buffer.
 *
 * The getters take the item already looked up and the field's path as it should appear in a
 * message ("learning_rate", "dataset.images", "keep_prob[1]"); every reason they write begins
 * with that path, e.g. "batch_size: must be an integer, got 2.5". They allocate nothing. */
#ifndef CV_JSON_H
#define CV_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define CV_JSON_MAX_DEPTH  64  /* nesting refused beyond this (cJSON's own limit is deeper) */
#define CV_JSON_MAX_FIELDS 128 /* names a cv_json_check_fields list may hold */
#define CV_JSON_INT_MAX    9007199254740992LL /* 2^53: beyond it a double skips integers */

/* Parses len bytes of JSON text (need not be NUL-terminated). Returns a tree the caller frees
 * with cJSON_Delete, or NULL with err giving the byte offset of the problem. Refuses nesting
 * deeper than CV_JSON_MAX_DEPTH. */
cJSON *cv_json_parse(const char *text, size_t len, char *err);

/* Bytes of the UTF-8 sequence starting text (avail bytes available): 1..4, or 0 when it is not
 * a well-formed sequence (a stray continuation byte, an overlong form, a surrogate, a code point
 * beyond U+10FFFF, bytes F5..FF, a sequence cut short). */
size_t cv_json_utf8_seq(const char *text, size_t avail);

/* Offset of the first byte of s[0..len) that does not begin a well-formed UTF-8 sequence or is
 * NUL, or len when all of it is valid text. */
size_t cv_json_utf8_invalid_at(const char *s, size_t len);

/* Reads a whole file (at most max_bytes) and parses it as cv_json_parse does; err names the path.
 */
cJSON *cv_json_load_file(const char *path, size_t max_bytes, char *err);

/* cv_json_parse with a code: 0 and *out set to a tree the caller frees with cJSON_Delete, or a
 * negative code and *out NULL. CV_EFORMAT for a syntax error or data after the value (err gives
 * the byte offset, line and column), for a string (or member name) that is not UTF-8 (overlong
 * forms, surrogates and bytes beyond U+10FFFF included), that holds a NUL character (raw or
 * \u0000: a C string would end there) or a \u escape of half a surrogate pair (err names the
 * field by its path, e.g. "spec.name: invalid UTF-8 in a string at byte 9 (line 1, column
 * 10)"), CV_ERANGE for nesting deeper than CV_JSON_MAX_DEPTH,
 * CV_EINVAL for empty text. cJSON cannot tell a failed allocation from a syntax error, so an
 * out-of-memory parse is also reported as CV_EFORMAT. */
int cv_json_decode(const char *text, size_t len, cJSON **out, char *err);

/* cv_json_load_file with a code: CV_EIO when the file cannot be opened or read (err names the
 * path and gives errno's text), CV_ERANGE when it holds more than max_bytes, CV_ENOMEM, or
 * cv_json_decode's codes with the path prefixed to the reason. The text buffer is freed before
 * returning; *out is as for cv_json_decode. */
int cv_json_decode_file(const char *path, size_t max_bytes, cJSON **out, char *err);

/* The JSON type of item as a message word: "object", "array", "string", "number", "boolean",
 * "null", or "nothing" for NULL. Static storage. */
const char *cv_json_type_name(const cJSON *item);

/* The name in known[0..count) closest to name by edit distance (ignoring case; a swap of two
 * neighbouring characters is one edit), when it is close enough to be a typing slip: at most 2
 * edits and at most one per 3 characters of name. NULL otherwise. The first of equally close names
 * wins. Returns a pointer into known. */
const char *cv_json_closest_name(const char *name, const char *const *known, size_t count);

/* Refuses a member of object obj whose name is not in known[0..count), and a name given twice
 * (cJSON keeps both, and a reader would silently take the first). field is the object's path for
 * the message ("dataset" gives "dataset: unknown field \"foo\""), or NULL / "" at the top level
 * ("unknown field \"foo\""); a known name close to the unknown one is suggested:
 * "unknown field \"patiance\" (did you mean \"patience\"?)" (cv_json_closest_name).
 * obj must be an object; count at most CV_JSON_MAX_FIELDS. */
int cv_json_check_fields(const cJSON *obj, const char *field, const char *const *known,
                         size_t count, char *err);

/* An interval of accepted numbers. Use -HUGE_VAL / HUGE_VAL for an unbounded side. */
typedef struct {
    double lo, hi; /* the bounds */
    int lo_open;   /* 1: lo itself is refused, "(lo, ..." */
    int hi_open;   /* 1: hi itself is refused, "..., hi)" */
} cv_json_range_t;

/* Reads a finite number in range into *out: "learning_rate: must be a number, got string",
 * "keep_prob[1]: must be in (0, 1], got 1.5", "l2: must be >= 0, got -1". *out is untouched on
 * failure. */
int cv_json_get_number(const cJSON *item, const char *field, cv_json_range_t range, double *out,
                       char *err);

/* Reads an integral number in [lo, hi] into *out: "batch_size: must be an integer, got 2.5",
 * "epochs: must be an integer in [1, 100000], got 0". hi >= CV_JSON_INT_MAX reads as unbounded
 * above ("must be an integer >= 0"); bounds are clamped to ±CV_JSON_INT_MAX, where doubles still
 * hold every integer. A JSON 3.0 counts as the integer 3, as in JSON Schema. */
int cv_json_get_int(const cJSON *item, const char *field, int64_t lo, int64_t hi, int64_t *out,
                    char *err);

/* Reads true or false into *out as 1 or 0: "augment_flip: must be a boolean, got number". */
int cv_json_get_bool(const cJSON *item, const char *field, int *out, char *err);

/* Copies a non-empty string shorter than cap bytes into out (cap bytes, with its terminator):
 * "dataset.images: must be a non-empty string", "...: must be shorter than 1024 bytes". */
int cv_json_get_string(const cJSON *item, const char *field, char *out, size_t cap, char *err);

/* Reads a string equal to one of names[0..count) and stores its index in *out:
 * "optimizer: must be one of \"gd\", \"momentum\", \"rmsprop\", \"adam\", got \"sgd\"". */
int cv_json_get_enum(const cJSON *item, const char *field, const char *const *names, size_t count,
                     int *out, char *err);

#endif
