/* Unit tests of the submission-time CSV scan (server/csv_scan.c): what it accepts reads lines as
 * the worker's CSV reader does, whatever the split of the bytes into feeds; every refusal names
 * the file, the line and the column and says what to write. */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/csv_scan.h"

static cv_csv_scan_options_t options(int header, const char *name, int index, int classes) {
    return (cv_csv_scan_options_t){.field = "trial.dataset.csv", .path = "d.csv",
                                   .header = header, .label_name = name, .label_index = index,
                                   .classes = classes};
}

/* Scans text fed in chunks of chunk bytes; returns the code, the scan left in *out (finished). */
static int scan_text(const cv_csv_scan_options_t *o, const char *text, size_t chunk,
                     cv_csv_scan_t *out, char *err) {
    cv_csv_scan_init(out, o);
    size_t len = strlen(text);
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < len; at += chunk)
        rc = cv_csv_scan_feed(out, text + at, len - at < chunk ? len - at : chunk, err);
    if (rc == 0) rc = cv_csv_scan_end(out, err);
    cv_csv_scan_finish(out);
    return rc;
}

/* Expects a refusal whose reason holds every given word (NULL-terminated), in every split. */
static void expect_refused(cv_csv_scan_options_t o, const char *text, ...) {
    static const size_t chunks[] = {1, 2, 7, 4096};
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        char err[CV_ERRLEN] = "";
        cv_csv_scan_t *s = malloc(sizeof *s);
        ck_assert_ptr_nonnull(s);
        int rc = scan_text(&o, text, chunks[i], s, err);
        free(s);
        ck_assert_msg(rc < 0, "%s: accepted in chunks of %zu", text, chunks[i]);
        va_list ap;
        va_start(ap, text);
        for (const char *w = va_arg(ap, const char *); w; w = va_arg(ap, const char *))
            ck_assert_msg(strstr(err, w) != NULL, "reason \"%s\" lacks \"%s\"", err, w);
        va_end(ap);
    }
}

START_TEST(accepts_what_the_worker_reads_in_any_split) {
    const char *text = "\xEF\xBB\xBF x1 ,\"x2\", label\r\n\n0.5,1,0\r\n  \n2,3, \"2\" \n4,5,1";
    cv_csv_scan_options_t o = options(1, "label", -1, 0);
    for (size_t chunk = 1; chunk < 64; chunk++) {
        char err[CV_ERRLEN] = "";
        cv_csv_scan_t *s = malloc(sizeof *s);
        ck_assert_ptr_nonnull(s);
        ck_assert_msg(scan_text(&o, text, chunk, s, err) == 0, "chunk %zu: %s", chunk, err);
        ck_assert_uint_eq(s->rows, 3);
        ck_assert_int_eq(s->min_label, 0);
        ck_assert_int_eq(s->max_label, 2);
        ck_assert_uint_eq(s->ncols, 3);
        free(s);
    }
}
END_TEST

START_TEST(without_a_header_the_first_line_is_a_row) {
    char err[CV_ERRLEN] = "";
    cv_csv_scan_t *s = malloc(sizeof *s);
    cv_csv_scan_options_t o = options(0, NULL, 0, 4);
    ck_assert_int_eq(scan_text(&o, "3,0.5\n1,0.25\n", 3, s, err), 0);
    ck_assert_uint_eq(s->rows, 2);
    ck_assert_int_eq(s->max_label, 3);
    free(s);
}
END_TEST

START_TEST(refusals_name_the_line_and_column_and_say_what_to_write) {
    expect_refused(options(1, NULL, -1, 0), "a,b,label\n1,2,0\n5.1,3.5,setosa\n",
                   "trial.dataset.csv: d.csv line 3, column 3 (\"label\"): \"setosa\" is not a "
                   "number", "labels must be integers 0..K-1", NULL);
    expect_refused(options(1, NULL, -1, 2), "a,b,label\n1,2,0\n1,2,7\n",
                   "trial.dataset.classes: is 2 but d.csv line 3, column 3 (\"label\") has label "
                   "7", "0..1", "\"classes\": 8", NULL);
    expect_refused(options(1, NULL, -1, 0), "1,2,0\n3,4,1\n", "trial.dataset.header",
                   "(line 1) is all numbers", "\"header\": false", NULL);
    expect_refused(options(1, NULL, 1, 0), "a,b\n1,1.5\n", "line 2, column 2 (\"b\"): label "
                   "\"1.5\" is not a non-negative integer", NULL);
    expect_refused(options(1, NULL, -1, 0), "a,b\n1,-1\n", "label \"-1\"", NULL);
    expect_refused(options(1, "y", -1, 0), "a,b\n1,1\n", "trial.dataset.label_column",
                   "no column \"y\"", "\"a\", \"b\"", NULL);
    expect_refused(options(0, NULL, 5, 0), "1,2\n", "column index 5", "2 columns", NULL);
    expect_refused(options(1, NULL, -1, 0), "a,b\n1,0\n1,2,0\n",
                   "line 3 has 3 fields, expected 2 (as on line 1)", NULL);
    expect_refused(options(1, NULL, -1, 0), "a,b\n\n", "header on line 1 but no data rows", NULL);
    expect_refused(options(1, NULL, -1, 0), "  \n", "d.csv is empty", NULL);
    expect_refused(options(1, NULL, -1, 0), "a\n1\n", "line 1 has 1 column", NULL);
    expect_refused(options(1, NULL, -1, 0), "a,b\n1,10000\n", "labels must be integers below",
                   NULL);
    char nul[] = "a,b\n1,0\n";
    nul[5] = '\0';
    cv_csv_scan_t *s = malloc(sizeof *s);
    char err[CV_ERRLEN];
    cv_csv_scan_options_t o = options(1, NULL, -1, 0);
    cv_csv_scan_init(s, &o);
    ck_assert_int_lt(cv_csv_scan_feed(s, nul, 8, err), 0);
    ck_assert_ptr_nonnull(strstr(err, "line 2 contains a NUL byte"));
    ck_assert_int_lt(cv_csv_scan_end(s, err), 0); /* a failed scan stays failed */
    cv_csv_scan_finish(s);
    free(s);
}
END_TEST

START_TEST(a_long_label_is_cut_in_the_message) {
    char text[256] = "a,b\n1,";
    memset(text + strlen(text), 'x', 150);
    strcat(text, "\n");
    expect_refused(options(1, NULL, -1, 0), text, "...\" is not a number", NULL);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("csv_scan");
    TCase *tc = tcase_create("scan");
    tcase_add_test(tc, accepts_what_the_worker_reads_in_any_split);
    tcase_add_test(tc, without_a_header_the_first_line_is_a_row);
    tcase_add_test(tc, refusals_name_the_line_and_column_and_say_what_to_write);
    tcase_add_test(tc, a_long_label_is_cut_in_the_message);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
