/* JSON parsing with bounded depth and located errors, file loading with a size cap, and typed
 * getters whose reasons name the field and the rule broken (see json.h). */
#include "common/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/err.h"

/* Returns the byte offset at which nesting first exceeds CV_JSON_MAX_DEPTH, or len when it never
 * does. Brackets inside strings do not count. Malformed text is left for cJSON to reject: this
 * scan only has to stop cJSON from recursing a thousand levels deep on hostile input. */
static size_t depth_overflow_at(const char *text, size_t len) {
    size_t depth = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped byte cannot end the string */
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > CV_JSON_MAX_DEPTH) return i;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return len;
}

/* Formats where byte offset off of text lies, for people: "byte 17 (line 2, column 5)". */
static void describe_offset(const char *text, size_t off, char *out, size_t cap) {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    snprintf(out, cap, "byte %zu (line %zu, column %zu)", off, line, column);
}

size_t cv_json_utf8_seq(const char *text, size_t avail) {
    const unsigned char *p = (const unsigned char *)text;
    unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
    size_t n;
    if (avail == 0) return 0;
    if (p[0] < 0x80) return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        n = 2;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        n = 3;
        if (p[0] == 0xE0) lo = 0xA0; /* below: an overlong form */
        if (p[0] == 0xED) hi = 0x9F; /* above: a UTF-16 surrogate */
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        n = 4;
        if (p[0] == 0xF0) lo = 0x90; /* below: an overlong form */
        if (p[0] == 0xF4) hi = 0x8F; /* above: beyond U+10FFFF */
    } else {
        return 0; /* a continuation byte, an overlong lead (C0, C1) or F5..FF */
    }
    if (avail < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    return n;
}

size_t cv_json_utf8_invalid_at(const char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        size_t n = s[i] ? cv_json_utf8_seq(s + i, len - i) : 0;
        if (n == 0) return i;
        i += n;
    }
    return len;
}

/* One open container met by scan_strings, for naming the field of a bad string. */
typedef struct {
    char kind;       /* '{' or '[' */
    int expect_key;  /* object: the next string is a member name */
    size_t index;    /* array: index of the current element */
    const char *key; /* object: raw text of the current member's name, NULL before the first */
    size_t key_len;  /* bytes of key */
} scan_frame_t;

/* Writes the path of the value being scanned ("spec.space.lr", "keep_prob[1]") into out; the
 * innermost object's member name is left out when the bad string is that name itself. Names are
 * shown raw, with bytes that are not printable ASCII as '?', so the message stays readable. */
static void scan_path(const scan_frame_t *frames, size_t depth, int in_key, char *out, size_t cap) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t k = 0; k < depth && used + 1 < cap; k++) {
        const scan_frame_t *f = &frames[k];
        if (f->kind == '[') {
            int n = snprintf(out + used, cap - used, "[%zu]", f->index);
            used += n > 0 ? (size_t)n : 0;
            continue;
        }
        if (!f->key || (in_key && k == depth - 1)) break;
        if (used > 0 && used + 1 < cap) out[used++] = '.';
        for (size_t i = 0; i < f->key_len && i < 64 && used + 1 < cap; i++) {
            unsigned char c = (unsigned char)f->key[i];
            out[used++] = c >= 0x20 && c < 0x7F ? (char)c : '?';
        }
        out[used] = '\0';
    }
    if (used >= cap) out[cap - 1] = '\0';
}

/* Reads the four hex digits after "\u" at p (avail bytes); -1 when they are not hex. */
static long hex4(const char *p, size_t avail) {
    long v = 0;
    if (avail < 4) return -1;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Checks every string of JSON text (member names included) before cJSON decodes it: the bytes
 * must be UTF-8 (no overlong forms, no surrogates, nothing beyond U+10FFFF), and no string may
 * hold a NUL character, raw or as \u0000 (C strings would silently end there), or a \u escape of
 * half a surrogate pair. Returns 0, or CV_EFORMAT with a reason naming the field and where the
 * problem is. Malformed JSON otherwise is left to cJSON. */
static int scan_strings(const char *text, size_t len, char *err) {
    scan_frame_t frames[CV_JSON_MAX_DEPTH];
    size_t depth = 0, over = 0; /* over: containers beyond the frames (refused earlier anyway) */
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        scan_frame_t *top = depth > 0 && over == 0 ? &frames[depth - 1] : NULL;
        if (c == '{' || c == '[') {
            if (depth < CV_JSON_MAX_DEPTH && over == 0)
                frames[depth++] = (scan_frame_t){.kind = c, .expect_key = c == '{'};
            else
                over++;
        } else if (c == '}' || c == ']') {
            if (over > 0)
                over--;
            else if (depth > 0)
                depth--;
        } else if (c == ',' && top) {
            if (top->kind == '{')
                top->expect_key = 1;
            else
                top->index++;
        } else if (c == '"') {
            int in_key = top && top->kind == '{' && top->expect_key;
            const char *what = NULL;
            size_t j = i + 1, bad = 0;
            while (j < len && text[j] != '"' && !what) {
                if (text[j] == '\\' && j + 1 < len && text[j + 1] == 'u') {
                    long u = hex4(text + j + 2, len - j - 2);
                    long next = j + 7 < len && text[j + 6] == '\\' && text[j + 7] == 'u'
                                    ? hex4(text + j + 8, len - j - 8)
                                    : -1;
                    if (u == 0)
                        what = "\\u0000 (a NUL character)";
                    else if (u >= 0xDC00 && u <= 0xDFFF)
                        what = "a \\u escape of a lone surrogate";
                    else if (u >= 0xD800 && u <= 0xDBFF && !(next >= 0xDC00 && next <= 0xDFFF))
                        what = "a \\u escape of a lone surrogate";
                    bad = j;
                    j += u >= 0xD800 && u <= 0xDBFF ? 12 : 6;
                } else if (text[j] == '\\') {
                    j += 2;
                } else if (text[j] == '\0') {
                    what = "a NUL character", bad = j;
                } else {
                    size_t n = cv_json_utf8_seq(text + j, len - j);
                    if (n == 0) what = "invalid UTF-8", bad = j;
                    j += n;
                }
            }
            if (what) {
                char path[160], where[96];
                scan_path(frames, over ? 0 : depth, in_key, path, sizeof path);
                describe_offset(text, bad, where, sizeof where);
                return cv_errf(err, CV_EFORMAT, "%s%s%s in a %s at %s", path, path[0] ? ": " : "",
                               what, in_key ? "member name" : "string", where);
            }
            if (in_key) {
                top->key = text + i + 1;
                top->key_len = (j < len ? j : len) - (i + 1);
                top->expect_key = 0;
            }
            i = j; /* the closing quote */
        }
    }
    return 0;
}

int cv_json_decode(const char *text, size_t len, cJSON **out, char *err) {
    char where[96];
    *out = NULL;
    if (text == NULL || len == 0) return cv_errf(err, CV_EINVAL, "empty JSON text");

    size_t deep = depth_overflow_at(text, len);
    if (deep < len) {
        describe_offset(text, deep, where, sizeof where);
        return cv_errf(err, CV_ERANGE, "JSON nested deeper than %d levels at %s", CV_JSON_MAX_DEPTH,
                       where);
    }
    int bad = scan_strings(text, len, err);
    if (bad) return bad;

    /* require_null_terminated is off because text need not be terminated at all; instead the
     * end pointer is checked below so that "{} x" is refused as it would be with it on. */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL) {
        /* On failure cJSON sets end to the error position (what cJSON_GetErrorPtr would give,
         * but without going through its process-wide variable). */
        size_t off =
            end != NULL && end >= text && (size_t)(end - text) <= len ? (size_t)(end - text) : 0;
        describe_offset(text, off, where, sizeof where);
        return cv_errf(err, CV_EFORMAT, "invalid JSON at %s", where);
    }

    size_t off = (size_t)(end - text);
    while (off < len &&
           (text[off] == ' ' || text[off] == '\t' || text[off] == '\n' || text[off] == '\r'))
        off++;
    if (off < len) {
        cJSON_Delete(root);
        describe_offset(text, off, where, sizeof where);
        return cv_errf(err, CV_EFORMAT, "invalid JSON: unexpected data after the value at %s",
                       where);
    }
    *out = root;
    return 0;
}

cJSON *cv_json_parse(const char *text, size_t len, char *err) {
    cJSON *root = NULL;
    (void)cv_json_decode(text, len, &root, err);
    return root;
}

/* Reads all of f into a malloc'd buffer (caller frees *buf) of at most max_bytes. size_hint is
 * the size fstat reported, used only to allocate once in the common case. */
static int read_all(FILE *f, const char *path, size_t max_bytes, size_t size_hint, char **buf,
                    size_t *len, char *err) {
    /* One byte beyond the cap is read so that a file over it is noticed, not truncated. */
    size_t limit = max_bytes < SIZE_MAX ? max_bytes + 1 : SIZE_MAX;
    size_t first = size_hint + 1 < limit ? size_hint + 1 : limit;
    if (first < 64) first = 64 < limit ? 64 : limit;
    cv_buf_t b;
    cv_buf_init(&b, first, limit);
    if (cv_buf_reserve(&b, 1) != 0)
        return cv_errf(err, CV_ENOMEM, "%s: cannot allocate %zu bytes", path, first);

    for (;;) {
        if (b.len == b.cap) {
            if (b.cap >= limit) break;
            if (cv_buf_reserve(&b, 1) != 0) {
                cv_buf_finish(&b);
                return cv_errf(err, CV_ENOMEM, "%s: cannot allocate more than %zu bytes", path,
                               b.len);
            }
        }
        size_t got = fread(b.data + b.len, 1, b.cap - b.len, f);
        b.len += got;
        if (got == 0) {
            if (ferror(f)) {
                int saved = errno;
                cv_buf_finish(&b);
                return cv_errf(err, CV_EIO, "%s: cannot read: %s", path, strerror(saved));
            }
            break; /* end of file */
        }
    }
    if (b.len > max_bytes) {
        cv_buf_finish(&b);
        return cv_errf(err, CV_ERANGE, "%s: larger than the %zu bytes allowed", path, max_bytes);
    }
    *buf = (char *)b.data; /* the caller takes the buffer over */
    *len = b.len;
    return 0;
}

int cv_json_decode_file(const char *path, size_t max_bytes, cJSON **out, char *err) {
    char inner[CV_ERRLEN];
    char *text = NULL;
    size_t len = 0;
    int rc;
    *out = NULL;

    FILE *f = fopen(path, "rb");
    if (f == NULL) return cv_errf(err, CV_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        rc = cv_errf(err, CV_EIO, "%s: cannot stat: %s", path, strerror(errno));
        goto close_file;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = cv_errf(err, CV_EIO, "%s: cannot read: %s", path, strerror(EISDIR));
        goto close_file;
    }
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max_bytes) {
        rc = cv_errf(err, CV_ERANGE, "%s: %jd bytes, larger than the %zu allowed", path,
                     (intmax_t)st.st_size, max_bytes);
        goto close_file;
    }
    size_t hint = S_ISREG(st.st_mode) ? (size_t)st.st_size : 0;
    rc = read_all(f, path, max_bytes, hint, &text, &len, err);
    if (rc != 0) goto close_file;

    rc = cv_json_decode(text, len, out, inner);
    if (rc != 0) cv_errf(err, rc, "%s: %s", path, inner);
    free(text);
close_file:
    fclose(f); /* read-only: a failing close loses nothing */
    return rc;
}

cJSON *cv_json_load_file(const char *path, size_t max_bytes, char *err) {
    cJSON *root = NULL;
    (void)cv_json_decode_file(path, max_bytes, &root, err);
    return root;
}

const char *cv_json_type_name(const cJSON *item) {
    if (item == NULL) return "nothing";
    if (cJSON_IsObject(item)) return "object";
    if (cJSON_IsArray(item)) return "array";
    if (cJSON_IsString(item)) return "string";
    if (cJSON_IsNumber(item)) return "number";
    if (cJSON_IsBool(item)) return "boolean";
    if (cJSON_IsNull(item)) return "null";
    return "invalid value";
}

/* The separator after a field path in a message: ": ", or "" when there is no path. */
static const char *prefix_sep(const char *field) {
    return field != NULL && field[0] != '\0' ? ": " : "";
}

/* Longest name the suggestion compares; longer names get no suggestion. */
#define SUGGEST_MAX 64

static int fold(char c) {
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Edit distance between a and b ignoring case: insertions, deletions, substitutions and swaps of
 * two neighbouring characters each count 1 ("patiance" → "patience" is 1, "max_trails" →
 * "max_trials" is 1). Both strings are at most SUGGEST_MAX bytes. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb) {
    size_t rows[3][SUGGEST_MAX + 1]; /* rows i − 2, i − 1 and i of the distance matrix */
    for (size_t j = 0; j <= lb; j++)
        rows[1][j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t *cur = rows[(i + 1) % 3], *prev = rows[i % 3], *prev2 = rows[(i + 2) % 3];
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = fold(a[i - 1]) != fold(b[j - 1]);
            size_t d = prev[j - 1] + cost;
            if (prev[j] + 1 < d) d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
                fold(a[i - 2]) == fold(b[j - 1]) && prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
        }
    }
    return la == 0 ? lb : rows[(la + 1) % 3][lb];
}

const char *cv_json_closest_name(const char *name, const char *const *known, size_t count) {
    size_t len = strlen(name), best_d = SIZE_MAX;
    const char *best = NULL;
    if (len == 0 || len > SUGGEST_MAX) return NULL;
    for (size_t k = 0; k < count; k++) {
        size_t lk = strlen(known[k]);
        if (lk > SUGGEST_MAX) continue;
        size_t d = edit_distance(name, len, known[k], lk);
        if (d < best_d) {
            best_d = d;
            best = known[k];
        }
    }
    /* At most 2 edits, and at most one edit per 3 characters typed, so "lr" suggests nothing. */
    return best != NULL && best_d <= 2 && 3 * best_d <= len ? best : NULL;
}

int cv_json_check_fields(const cJSON *obj, const char *field, const char *const *known,
                         size_t count, char *err) {
    const char *name = field != NULL ? field : "";
    if (!cJSON_IsObject(obj))
        return cv_errf(err, CV_EINVAL, "%s%smust be an object, got %s", name, prefix_sep(field),
                       cv_json_type_name(obj));
    if (count > CV_JSON_MAX_FIELDS)
        return cv_errf(err, CV_EINVAL, "%s%stoo many known fields (%zu) for the checker", name,
                       prefix_sep(field), count);

    /* One flag per known name, so a member given twice is found in count steps, not n². */
    unsigned char seen[CV_JSON_MAX_FIELDS] = {0};
    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        size_t k = 0;
        while (k < count && strcmp(known[k], m->string) != 0)
            k++;
        if (k == count) {
            const char *near = cv_json_closest_name(m->string, known, count);
            return cv_errf(err, CV_EINVAL, "%s%sunknown field \"%s\"%s%s%s", name,
                           prefix_sep(field), m->string, near ? " (did you mean \"" : "",
                           near ? near : "", near ? "\"?)" : "");
        }
        if (seen[k])
            return cv_errf(err, CV_EINVAL, "%s%sfield \"%s\" given twice", name, prefix_sep(field),
                           m->string);
        seen[k] = 1;
    }
    return 0;
}

/* Formats x with the fewest significant digits that read back as x, so that 0.1 prints as 0.1
 * and 1.0000001 does not print as 1. */
static void format_number(double x, char *out, size_t cap) {
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, cap, "%.*g", digits, x);
        if (strtod(out, NULL) == x) return;
    }
}

/* Describes range r in words: "in (0, 1]", ">= 0", "< 1", or "" when unbounded. */
static void describe_range(cv_json_range_t r, char *out, size_t cap) {
    char lo[32], hi[32];
    format_number(r.lo, lo, sizeof lo);
    format_number(r.hi, hi, sizeof hi);
    int has_lo = isfinite(r.lo), has_hi = isfinite(r.hi);
    if (has_lo && has_hi)
        snprintf(out, cap, "in %c%s, %s%c", r.lo_open ? '(' : '[', lo, hi, r.hi_open ? ')' : ']');
    else if (has_lo)
        snprintf(out, cap, "%s %s", r.lo_open ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(out, cap, "%s %s", r.hi_open ? "<" : "<=", hi);
    else
        snprintf(out, cap, "finite");
}

static int in_range(double x, cv_json_range_t r) {
    if (r.lo_open ? !(x > r.lo) : !(x >= r.lo)) return 0;
    if (r.hi_open ? !(x < r.hi) : !(x <= r.hi)) return 0;
    return 1;
}

int cv_json_get_number(const cJSON *item, const char *field, cv_json_range_t range, double *out,
                       char *err) {
    char got[32], rule[96];
    if (!cJSON_IsNumber(item))
        return cv_errf(err, CV_EINVAL, "%s: must be a number, got %s", field,
                       cv_json_type_name(item));
    double x = item->valuedouble;
    if (!isfinite(x)) /* 1e999 parses to infinity */
        return cv_errf(err, CV_ERANGE, "%s: must be a finite number", field);
    if (!in_range(x, range)) {
        format_number(x, got, sizeof got);
        describe_range(range, rule, sizeof rule);
        return cv_errf(err, CV_ERANGE, "%s: must be %s, got %s", field, rule, got);
    }
    *out = x;
    return 0;
}

int cv_json_get_int(const cJSON *item, const char *field, int64_t lo, int64_t hi, int64_t *out,
                    char *err) {
    char got[32];
    if (!cJSON_IsNumber(item))
        return cv_errf(err, CV_EINVAL, "%s: must be an integer, got %s", field,
                       cv_json_type_name(item));
    double x = item->valuedouble;
    if (!isfinite(x)) return cv_errf(err, CV_ERANGE, "%s: must be a finite number", field);
    format_number(x, got, sizeof got);
    if (x != floor(x)) return cv_errf(err, CV_EINVAL, "%s: must be an integer, got %s", field, got);

    int unbounded = hi >= CV_JSON_INT_MAX;
    if (lo < -CV_JSON_INT_MAX) lo = -CV_JSON_INT_MAX;
    if (hi > CV_JSON_INT_MAX) hi = CV_JSON_INT_MAX;
    /* lo and hi are exact as doubles now, so comparing in double is exact too. */
    if (x < (double)lo || x > (double)hi) {
        if (unbounded)
            return cv_errf(err, CV_ERANGE, "%s: must be an integer >= %" PRId64 ", got %s", field,
                           lo, got);
        return cv_errf(err, CV_ERANGE,
                       "%s: must be an integer in [%" PRId64 ", %" PRId64 "], got %s", field, lo,
                       hi, got);
    }
    *out = (int64_t)x;
    return 0;
}

int cv_json_get_bool(const cJSON *item, const char *field, int *out, char *err) {
    if (!cJSON_IsBool(item))
        return cv_errf(err, CV_EINVAL, "%s: must be a boolean, got %s", field,
                       cv_json_type_name(item));
    *out = cJSON_IsTrue(item) ? 1 : 0;
    return 0;
}

int cv_json_get_string(const cJSON *item, const char *field, char *out, size_t cap, char *err) {
    if (!cJSON_IsString(item))
        return cv_errf(err, CV_EINVAL, "%s: must be a string, got %s", field,
                       cv_json_type_name(item));
    size_t len = strlen(item->valuestring);
    if (len == 0) return cv_errf(err, CV_EINVAL, "%s: must be a non-empty string", field);
    if (len >= cap)
        return cv_errf(err, CV_ERANGE, "%s: must be shorter than %zu bytes, got %zu", field, cap,
                       len);
    memcpy(out, item->valuestring, len + 1);
    return 0;
}

int cv_json_get_enum(const cJSON *item, const char *field, const char *const *names, size_t count,
                     int *out, char *err) {
    if (!cJSON_IsString(item))
        return cv_errf(err, CV_EINVAL, "%s: must be a string, got %s", field,
                       cv_json_type_name(item));
    for (size_t i = 0; i < count; i++) {
        if (strcmp(item->valuestring, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    /* List the accepted names; the reason buffer's size bounds the list. */
    char list[CV_ERRLEN];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < count && used < sizeof list; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s\"%s\"", i > 0 ? ", " : "", names[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
    return cv_errf(err, CV_EINVAL, "%s: must be one of %s, got \"%.64s\"", field, list,
                   item->valuestring);
}
