/* Unit tests of the CSV reader (common/csv.c): exact values for the ways a label column can be
 * chosen and for the line-ending variants, and one refusal per kind of bad content, each with
 * the line and column its message must name. */
#include <stdlib.h>
#include <string.h>

#include "common/dataset.h"
#include "common/err.h"
#include "testutil.h"

/* Header present, label column chosen by index (−1: the last). */
static const cv_csv_options_t LAST = {.header = 1, .label_index = -1, .delimiter = ','};
/* No header, label in the last column. */
static const cv_csv_options_t BARE = {.header = 0, .label_index = -1, .delimiter = ','};

/* Writes text to a temporary file, loads it with opts and removes the file. */
static int load_text(const char *text, const cv_csv_options_t *opts, cv_dataset_t *ds, char *err) {
    char path[CV_TEST_PATH];
    cv_test_write_file(path, "data.csv", text, strlen(text));
    int rc = cv_dataset_load_csv(ds, path, opts, err);
    unlink(path);
    return rc;
}

/* Expects text to be refused with code and a message holding each given word. */
static void expect_refusal(const char *text, const cv_csv_options_t *opts, int code,
                           const char *word1, const char *word2) {
    cv_dataset_t ds;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(load_text(text, opts, &ds, err), code);
    ck_assert_ptr_null(ds.x);
    ck_assert_ptr_null(ds.y);
    ck_assert_uint_eq(ds.m, 0);
    ck_assert_int_eq(ds.owner, 0);
    ck_assert_msg(strstr(err, "data.csv") != NULL, "no path in: %s", err);
    ck_assert_msg(strstr(err, word1) != NULL, "no \"%s\" in: %s", word1, err);
    if (word2) ck_assert_msg(strstr(err, word2) != NULL, "no \"%s\" in: %s", word2, err);
}

/* Loads text that must be accepted. */
static void load_ok(const char *text, const cv_csv_options_t *opts, cv_dataset_t *ds) {
    char err[CV_ERRLEN] = "";
    ck_assert_msg(load_text(text, opts, ds, err) == CV_OK, "%s", err);
    ck_assert_int_eq(ds->owner, 1);
    ck_assert_int_eq(ds->height, 0);
    ck_assert_int_eq(ds->width, 0);
}

START_TEST(rows_of_the_unlabeled_width_have_no_label) {
    /* Two fields per row and unlabeled_width 2: both are features, labels -1, no classes. */
    cv_csv_options_t o = {.header = 1, .label_index = -1, .delimiter = ',', .unlabeled_width = 2};
    cv_dataset_t ds;
    load_ok("a,b\n1.5,2\n-3,4\n", &o, &ds);
    ck_assert_uint_eq(ds.m, 2);
    ck_assert_uint_eq(ds.n, 2);
    const float want[4] = {1.5f, 2.0f, -3.0f, 4.0f};
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(ds.x[i], want[i]);
    ck_assert_int_eq(ds.y[0], -1);
    ck_assert_int_eq(ds.y[1], -1);
    ck_assert_int_eq(ds.classes, 0);
    cv_dataset_finish(&ds);
    /* One more field: the last is the label as usual. */
    load_ok("a,b,label\n1.5,2,1\n-3,4,0\n", &o, &ds);
    ck_assert_uint_eq(ds.n, 2);
    ck_assert_int_eq(ds.y[0], 1);
    ck_assert_int_eq(ds.classes, 2);
    cv_dataset_finish(&ds);
    /* A single feature column is data too. */
    o.unlabeled_width = 1;
    load_ok("a\n7\n", &o, &ds);
    ck_assert_uint_eq(ds.n, 1);
    ck_assert_float_eq(ds.x[0], 7.0f);
    ck_assert_int_eq(ds.y[0], -1);
    cv_dataset_finish(&ds);
}
END_TEST

START_TEST(label_column_chosen_by_header_name) {
    cv_csv_options_t o = {.header = 1, .label_name = "species", .delimiter = ','};
    cv_dataset_t ds;
    load_ok("a,species,b\n1.5,2,-3\n0.25,0,1e3\n", &o, &ds);
    ck_assert_uint_eq(ds.m, 2);
    ck_assert_uint_eq(ds.n, 2);
    const float want[4] = {1.5f, -3.0f, 0.25f, 1000.0f};
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(ds.x[i], want[i]);
    ck_assert_int_eq(ds.y[0], 2);
    ck_assert_int_eq(ds.y[1], 0);
    ck_assert_int_eq(ds.classes, 3);
    cv_dataset_finish(&ds);
}
END_TEST

START_TEST(label_column_chosen_by_index_without_header) {
    cv_csv_options_t o = {.header = 0, .label_index = 0, .delimiter = ','};
    cv_dataset_t ds;
    load_ok("1,10,20\n0,30,40\n", &o, &ds);
    ck_assert_uint_eq(ds.m, 2);
    ck_assert_uint_eq(ds.n, 2);
    const float want[4] = {10, 20, 30, 40};
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(ds.x[i], want[i]);
    ck_assert_int_eq(ds.y[0], 1);
    ck_assert_int_eq(ds.y[1], 0);
    ck_assert_int_eq(ds.classes, 2);
    cv_dataset_finish(&ds);
}
END_TEST

START_TEST(label_defaults_to_last_column) {
    cv_dataset_t ds;
    load_ok("f1,f2,label\n1,2,4\n3,4,1\n5,6,0\n", &LAST, &ds);
    ck_assert_uint_eq(ds.m, 3);
    ck_assert_uint_eq(ds.n, 2);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(ds.x[i], (float)(i + 1));
    ck_assert_int_eq(ds.y[0], 4);
    ck_assert_int_eq(ds.y[1], 1);
    ck_assert_int_eq(ds.y[2], 0);
    ck_assert_int_eq(ds.classes, 5); /* 1 + the largest label */
    cv_dataset_finish(&ds);
}
END_TEST

START_TEST(crlf_line_endings_and_trailing_blank_lines_are_accepted) {
    cv_dataset_t ds;
    load_ok("x,y\r\n1.5,0\r\n2.5,1\r\n\r\n\r\n", &LAST, &ds);
    ck_assert_uint_eq(ds.m, 2);
    ck_assert_float_eq(ds.x[0], 1.5f);
    ck_assert_float_eq(ds.x[1], 2.5f);
    ck_assert_int_eq(ds.y[1], 1);
    cv_dataset_finish(&ds);
}
END_TEST

START_TEST(last_line_without_newline_is_read) {
    cv_dataset_t ds;
    load_ok("1,0\n2,1", &BARE, &ds);
    ck_assert_uint_eq(ds.m, 2);
    ck_assert_float_eq(ds.x[1], 2.0f);
    ck_assert_int_eq(ds.y[1], 1);
    cv_dataset_finish(&ds);
}
END_TEST

START_TEST(quoted_numbers_blanks_and_other_delimiters_are_accepted) {
    cv_csv_options_t o = {.header = 1, .label_name = "y", .delimiter = ';'};
    cv_dataset_t ds;
    load_ok("\"x\" ; \"y\"\n \"0.5\" ; \"1\" \n-2;1.0\n", &o, &ds);
    ck_assert_uint_eq(ds.m, 2);
    ck_assert_float_eq(ds.x[0], 0.5f);
    ck_assert_float_eq(ds.x[1], -2.0f);
    ck_assert_int_eq(ds.y[0], 1);
    ck_assert_int_eq(ds.y[1], 1); /* "1.0" is an integer label */
    cv_dataset_finish(&ds);
}
END_TEST

START_TEST(many_rows_cross_read_blocks_and_growth) {
    /* 5000 rows of "i,i/2,i%7" are about 60 KiB, so lines straddle the 64 KiB read block and
     * the feature matrix grows several times. */
    size_t cap = 5000 * 32, len = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    len += (size_t)snprintf(text, cap, "a,b,label\n");
    for (int i = 0; i < 5000; i++)
        len += (size_t)snprintf(text + len, cap - len, "%d,%g,%d\n", i, i * 0.5, i % 7);
    cv_dataset_t ds;
    load_ok(text, &LAST, &ds);
    free(text);
    ck_assert_uint_eq(ds.m, 5000);
    ck_assert_uint_eq(ds.n, 2);
    size_t wrong = 0;
    for (int i = 0; i < 5000; i++) {
        wrong += ds.x[2 * i] != (float)i;
        wrong += ds.x[2 * i + 1] != (float)i * 0.5f;
        wrong += ds.y[i] != i % 7;
    }
    ck_assert_uint_eq(wrong, 0);
    ck_assert_int_eq(ds.classes, 7);
    cv_dataset_finish(&ds);
}
END_TEST

START_TEST(largest_allowed_label_is_accepted) {
    cv_dataset_t ds;
    load_ok("1,9999\n", &BARE, &ds);
    ck_assert_int_eq(ds.classes, CV_DATASET_MAX_CLASSES);
    cv_dataset_finish(&ds);
}
END_TEST

START_TEST(ragged_row_is_refused_naming_its_line) {
    expect_refusal("a,b,c\n1,2,0\n3,4\n5,6,1\n", &LAST, CV_EFORMAT, "line 3 has 2 fields",
                   "expected 3");
    expect_refusal("1,2,0\n3,4,5,1\n", &BARE, CV_EFORMAT, "line 2 has 4 fields", "expected 3");
}
END_TEST

START_TEST(line_numbers_count_the_header_and_blank_lines) {
    expect_refusal("a,b\n\n1,0\nx,1\n", &LAST, CV_EFORMAT, "line 4", "\"x\"");
}
END_TEST

START_TEST(non_numeric_field_is_refused_naming_line_and_column) {
    expect_refusal("a,b,c\n1,2,0\n3,abc,1\n", &LAST, CV_EFORMAT, "line 3, column 2 (\"b\")",
                   "\"abc\" is not a number");
    expect_refusal("1,2.5x,0\n", &BARE, CV_EFORMAT, "line 1, column 2", "\"2.5x\"");
}
END_TEST

START_TEST(empty_field_is_refused) {
    expect_refusal("1,,0\n", &BARE, CV_EFORMAT, "line 1, column 2", "empty field");
}
END_TEST

START_TEST(nan_and_infinite_features_are_refused) {
    expect_refusal("a,b\nnan,0\n", &LAST, CV_EFORMAT, "line 2, column 1",
                   "\"nan\" is not a finite");
    expect_refusal("a,b\n1,0\n-inf,1\n", &LAST, CV_EFORMAT, "line 3", "\"-inf\" is not a finite");
    expect_refusal("1,0\nInfinity,1\n", &BARE, CV_EFORMAT, "line 2", "not a finite");
    expect_refusal("1e999,0\n", &BARE, CV_EFORMAT, "line 1", "not a finite");
    expect_refusal("1e300,0\n", &BARE, CV_ERANGE, "line 1", "too large for a float");
}
END_TEST

START_TEST(negative_label_is_refused) {
    expect_refusal("a,y\n1,0\n2,-1\n", &LAST, CV_EFORMAT, "line 3, column 2 (\"y\")",
                   "label \"-1\" is not a non-negative integer");
}
END_TEST

START_TEST(non_integer_label_is_refused) {
    expect_refusal("1,1.5\n", &BARE, CV_EFORMAT, "line 1, column 2",
                   "label \"1.5\" is not a non-negative integer");
    expect_refusal("1,nan\n", &BARE, CV_EFORMAT, "line 1, column 2", "not a finite");
}
END_TEST

START_TEST(label_over_the_class_limit_is_refused) {
    expect_refusal("1,0\n2,10000\n", &BARE, CV_ERANGE, "line 2", "must be below 10000");
}
END_TEST

START_TEST(unknown_label_name_is_refused) {
    cv_csv_options_t o = {.header = 1, .label_name = "target", .delimiter = ','};
    expect_refusal("a,b\n1,0\n", &o, CV_EINVAL, "no column named \"target\"", "line 1");
}
END_TEST

START_TEST(label_name_without_header_is_refused) {
    cv_csv_options_t o = {.header = 0, .label_name = "y", .delimiter = ','};
    expect_refusal("1,0\n", &o, CV_EINVAL, "no header", NULL);
}
END_TEST

START_TEST(label_index_past_the_last_column_is_refused) {
    cv_csv_options_t o = {.header = 0, .label_index = 3, .delimiter = ','};
    expect_refusal("1,2,0\n", &o, CV_EINVAL, "label index 3", "3 columns");
}
END_TEST

START_TEST(single_column_is_refused) {
    expect_refusal("1\n2\n", &BARE, CV_EFORMAT, "line 1 has 1 column", NULL);
}
END_TEST

START_TEST(empty_file_is_refused) {
    expect_refusal("", &LAST, CV_EFORMAT, "empty", NULL);
    expect_refusal("\n\r\n  \n", &BARE, CV_EFORMAT, "empty", NULL);
}
END_TEST

START_TEST(header_without_rows_is_refused) {
    expect_refusal("a,b,c\n", &LAST, CV_EFORMAT, "no data rows", NULL);
    expect_refusal("a,b,c\r\n\r\n", &LAST, CV_EFORMAT, "no data rows", NULL);
}
END_TEST

START_TEST(line_over_sixteen_mebibytes_is_refused) {
    size_t len = (17u << 20) + 2;
    char *text = malloc(len + 1);
    ck_assert_ptr_nonnull(text);
    memcpy(text, "1,0\n", 4);
    memset(text + 4, '1', len - 4);
    text[len] = '\0';
    expect_refusal(text, &BARE, CV_ERANGE, "line 2 is longer than 16 MiB", NULL);
    free(text);
}
END_TEST

START_TEST(missing_file_is_an_io_error) {
    cv_dataset_t ds;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_dataset_load_csv(&ds, "/nonexistent/data.csv", &LAST, err), CV_EIO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/data.csv"));
    ck_assert_ptr_null(ds.x);
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("csv");
    TCase *load = tcase_create("load");
    tcase_add_test(load, label_column_chosen_by_header_name);
    tcase_add_test(load, rows_of_the_unlabeled_width_have_no_label);
    tcase_add_test(load, label_column_chosen_by_index_without_header);
    tcase_add_test(load, label_defaults_to_last_column);
    tcase_add_test(load, crlf_line_endings_and_trailing_blank_lines_are_accepted);
    tcase_add_test(load, last_line_without_newline_is_read);
    tcase_add_test(load, quoted_numbers_blanks_and_other_delimiters_are_accepted);
    tcase_add_test(load, many_rows_cross_read_blocks_and_growth);
    tcase_add_test(load, largest_allowed_label_is_accepted);
    suite_add_tcase(s, load);

    TCase *refuse = tcase_create("refuse");
    tcase_add_test(refuse, ragged_row_is_refused_naming_its_line);
    tcase_add_test(refuse, line_numbers_count_the_header_and_blank_lines);
    tcase_add_test(refuse, non_numeric_field_is_refused_naming_line_and_column);
    tcase_add_test(refuse, empty_field_is_refused);
    tcase_add_test(refuse, nan_and_infinite_features_are_refused);
    tcase_add_test(refuse, negative_label_is_refused);
    tcase_add_test(refuse, non_integer_label_is_refused);
    tcase_add_test(refuse, label_over_the_class_limit_is_refused);
    tcase_add_test(refuse, unknown_label_name_is_refused);
    tcase_add_test(refuse, label_name_without_header_is_refused);
    tcase_add_test(refuse, label_index_past_the_last_column_is_refused);
    tcase_add_test(refuse, single_column_is_refused);
    tcase_add_test(refuse, empty_file_is_refused);
    tcase_add_test(refuse, header_without_rows_is_refused);
    tcase_add_test(refuse, line_over_sixteen_mebibytes_is_refused);
    tcase_add_test(refuse, missing_file_is_an_io_error);
    suite_add_tcase(s, refuse);
    return s;
}

CV_TEST_MAIN(make_suite)
