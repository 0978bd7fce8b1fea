/* The value renderings declared in format.h. */
#include "client/format.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Copies text into buf (truncating) and returns buf. */
static char *copy_text(const char *text, char *buf, size_t cap) {
    if (cap == 0) return buf;
    snprintf(buf, cap, "%s", text);
    return buf;
}

char *cv_fmt_number_digits(const cJSON *v, int digits, char *buf, size_t cap) {
    if (!cJSON_IsNumber(v)) return copy_text("-", buf, cap);
    double x = v->valuedouble;
    if (cap == 0) return buf;
    if (x == floor(x) && fabs(x) < 1e15)
        snprintf(buf, cap, "%.0f", x);
    else
        snprintf(buf, cap, "%.*g", digits < 1 ? 1 : digits > 17 ? 17 : digits, x);
    return buf;
}

char *cv_fmt_number(const cJSON *v, char *buf, size_t cap) {
    return cv_fmt_number_digits(v, 4, buf, cap);
}

char *cv_fmt_exact(const cJSON *v, char *buf, size_t cap) {
    if (!cJSON_IsNumber(v)) return copy_text("", buf, cap);
    double x = v->valuedouble;
    char tmp[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(tmp, sizeof tmp, "%.*g", digits, x);
        if (strtod(tmp, NULL) == x) break;
    }
    return copy_text(tmp, buf, cap);
}

/* The shared body of cv_fmt_value and cv_fmt_value_exact. */
static char *format_value(const cJSON *v, int exact, char *buf, size_t cap) {
    if (!v || cJSON_IsNull(v)) return copy_text(exact ? "" : "-", buf, cap);
    if (cJSON_IsString(v)) return copy_text(v->valuestring, buf, cap);
    if (cJSON_IsBool(v)) return copy_text(cJSON_IsTrue(v) ? "true" : "false", buf, cap);
    if (cJSON_IsNumber(v)) return exact ? cv_fmt_exact(v, buf, cap) : cv_fmt_number(v, buf, cap);
    char *text = cJSON_PrintUnformatted(v);
    copy_text(text ? text : "?", buf, cap);
    cJSON_free(text);
    return buf;
}

char *cv_fmt_value(const cJSON *v, char *buf, size_t cap) {
    return format_value(v, 0, buf, cap);
}

char *cv_fmt_value_exact(const cJSON *v, char *buf, size_t cap) {
    return format_value(v, 1, buf, cap);
}

char *cv_fmt_diagnosis(const cJSON *v, char *buf, size_t cap) {
    if (cJSON_IsObject(v)) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
        return copy_text(cJSON_IsString(name) ? name->valuestring : "?", buf, cap);
    }
    if (cJSON_IsString(v)) return copy_text(v->valuestring, buf, cap);
    return copy_text("-", buf, cap);
}

char *cv_fmt_time(const cJSON *v, char *buf, size_t cap) {
    if (cJSON_IsString(v)) return copy_text(v->valuestring, buf, cap);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 1e12))
        return copy_text("-", buf, cap);
    time_t t = (time_t)v->valuedouble;
    struct tm tm;
    if (!localtime_r(&t, &tm) || cap == 0 || strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        return copy_text("-", buf, cap);
    return buf;
}

void cv_fmt_csv_field(FILE *out, const char *text) {
    size_t n = strlen(text);
    int quote =
        strpbrk(text, ",\"\r\n") != NULL || (n > 0 && (text[0] == ' ' || text[n - 1] == ' '));
    if (!quote) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const char *p = text; *p; p++) {
        if (*p == '"') fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}
