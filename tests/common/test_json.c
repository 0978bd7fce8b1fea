/* Unit tests of common/json.c: bounded parsing with located errors, file loading, and the typed
 * getters' exact messages. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "testutil.h"

/* Parses a NUL-terminated literal through cv_json_decode, returning the code. */
static int decode(const char *text, cJSON **out, char *err) {
    return cv_json_decode(text, strlen(text), out, err);
}

/* Parses a NUL-terminated literal that the test expects to be valid. */
static cJSON *parse_ok(const char *text) {
    char err[CV_ERRLEN] = "";
    cJSON *root = cv_json_parse(text, strlen(text), err);
    ck_assert_msg(root != NULL, "%s", err);
    return root;
}

/* Builds text of depth nested arrays: "[[[...]]]". The caller frees it. */
static char *nested_arrays(int depth) {
    char *text = malloc((size_t)depth * 2 + 1);
    ck_assert_ptr_nonnull(text);
    memset(text, '[', (size_t)depth);
    memset(text + depth, ']', (size_t)depth);
    text[depth * 2] = '\0';
    return text;
}

START_TEST(parse_reads_an_object) {
    char err[CV_ERRLEN] = "";
    const char *text = "{\"a\": 1.5, \"b\": [true, null], \"c\": \"x\"}";
    cJSON *root = cv_json_parse(text, strlen(text), err);
    ck_assert_ptr_nonnull(root);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(root, "a")->valuedouble, 1.5);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "b")), 2);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "c")->valuestring, "x");
    cJSON_Delete(root);
}
END_TEST

START_TEST(parse_needs_no_terminator) {
    /* An exact-size heap copy with no NUL after it: the sanitizer build sees any over-read. */
    const char *src = "{\"n\": 12345}";
    size_t len = strlen(src);
    char *text = malloc(len);
    ck_assert_ptr_nonnull(text);
    memcpy(text, src, len);
    char err[CV_ERRLEN] = "";
    cJSON *root = cv_json_parse(text, len, err);
    ck_assert_ptr_nonnull(root);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(root, "n")->valuedouble, 12345);
    cJSON_Delete(root);
    free(text);
}
END_TEST

START_TEST(parse_reads_only_len_bytes) {
    /* The bytes after len are garbage that would fail the parse if read. */
    const char *text = "[1, 2]xyz";
    char err[CV_ERRLEN] = "";
    cJSON *root = cv_json_parse(text, 6, err);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cJSON_GetArraySize(root), 2);
    cJSON_Delete(root);
}
END_TEST

START_TEST(syntax_error_reports_its_offset) {
    /* The 'x' is byte 7. */
    char err[CV_ERRLEN] = "";
    cJSON *root = (cJSON *)1;
    ck_assert_int_eq(decode("[1, 2, x]", &root, err), CV_EFORMAT);
    ck_assert_ptr_null(root);
    ck_assert_str_eq(err, "invalid JSON at byte 7 (line 1, column 8)");
}
END_TEST

START_TEST(syntax_error_reports_its_line) {
    char err[CV_ERRLEN] = "";
    const char *text = "{\n  \"a\": 1,\n  \"b\": nul\n}";
    ck_assert_ptr_null(cv_json_parse(text, strlen(text), err));
    /* "nul" starts at byte 19, the 8th byte of line 3. */
    ck_assert_str_eq(err, "invalid JSON at byte 19 (line 3, column 8)");
}
END_TEST

START_TEST(data_after_the_value_is_refused) {
    char err[CV_ERRLEN] = "";
    cJSON *root = NULL;
    ck_assert_int_eq(decode("{} \n x", &root, err), CV_EFORMAT);
    ck_assert_ptr_null(root);
    ck_assert_str_eq(err, "invalid JSON: unexpected data after the value at byte 5 "
                          "(line 2, column 2)");
}
END_TEST

START_TEST(trailing_whitespace_is_accepted) {
    char err[CV_ERRLEN] = "";
    cJSON *root = NULL;
    ck_assert_int_eq(decode(" {}\r\n\t ", &root, err), 0);
    ck_assert(cJSON_IsObject(root));
    cJSON_Delete(root);
}
END_TEST

START_TEST(empty_text_is_refused) {
    char err[CV_ERRLEN] = "";
    cJSON *root = NULL;
    ck_assert_int_eq(cv_json_decode("", 0, &root, err), CV_EINVAL);
    ck_assert_str_eq(err, "empty JSON text");
}
END_TEST

START_TEST(nesting_at_the_limit_is_accepted) {
    char err[CV_ERRLEN] = "";
    char *text = nested_arrays(CV_JSON_MAX_DEPTH);
    cJSON *root = cv_json_parse(text, strlen(text), err);
    ck_assert_msg(root != NULL, "%s", err);
    cJSON_Delete(root);
    free(text);
}
END_TEST

START_TEST(deep_nesting_is_refused) {
    char err[CV_ERRLEN] = "";
    char *text = nested_arrays(CV_JSON_MAX_DEPTH + 1);
    cJSON *root = NULL;
    ck_assert_int_eq(cv_json_decode(text, strlen(text), &root, err), CV_ERANGE);
    ck_assert_ptr_null(root);
    /* The 65th '[' is byte 64. */
    ck_assert_str_eq(err, "JSON nested deeper than 64 levels at byte 64 (line 1, column 65)");
    free(text);
}
END_TEST

START_TEST(deep_nesting_is_refused_before_cjson_limit) {
    /* Far beyond cJSON's own limit of 1000: refused by the pre-scan, not by recursion. */
    char err[CV_ERRLEN] = "";
    char *text = nested_arrays(100000);
    ck_assert_ptr_null(cv_json_parse(text, strlen(text), err));
    ck_assert_ptr_nonnull(strstr(err, "nested deeper than 64"));
    free(text);
}
END_TEST

START_TEST(brackets_inside_strings_do_not_nest) {
    char text[256];
    memset(text, 0, sizeof text);
    strcpy(text, "[\"");
    memset(text + 2, '[', 100); /* 100 brackets inside a string, with an escaped quote */
    strcat(text, "\\\"{{{\"]");
    char err[CV_ERRLEN] = "";
    cJSON *root = cv_json_parse(text, strlen(text), err);
    ck_assert_msg(root != NULL, "%s", err);
    cJSON_Delete(root);
}
END_TEST

/* Decodes text (len bytes: it may hold NUL) and expects CV_EFORMAT with exactly reason. */
static void expect_text_refused(const char *text, size_t len, const char *reason) {
    char err[CV_ERRLEN] = "";
    cJSON *root = (cJSON *)1;
    ck_assert_int_eq(cv_json_decode(text, len, &root, err), CV_EFORMAT);
    ck_assert_ptr_null(root);
    ck_assert_str_eq(err, reason);
}

START_TEST(invalid_utf8_is_refused_naming_the_field) {
    /* The bad byte is byte 9 in each: {"name":"<9>...  */
    static const char *const bad[] = {
        "{\"name\":\"\xff\"}",             /* never in UTF-8 */
        "{\"name\":\"\xf5\x80\x80\x80\"}", /* lead byte beyond F4 */
        "{\"name\":\"\xc0\xaf\"}",         /* overlong '/' */
        "{\"name\":\"\xe0\x80\xaf\"}",     /* overlong, three bytes */
        "{\"name\":\"\xf0\x80\x80\xaf\"}", /* overlong, four bytes */
        "{\"name\":\"\xed\xa0\x80\"}",     /* the surrogate U+D800 */
        "{\"name\":\"\xf4\x90\x80\x80\"}", /* U+110000, beyond Unicode */
        "{\"name\":\"\x80\"}",             /* a stray continuation byte */
        "{\"name\":\"\xc3\"}",             /* a sequence cut by the quote */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_text_refused(bad[i], strlen(bad[i]),
                            "name: invalid UTF-8 in a string at byte 9 (line 1, column 10)");
}
END_TEST

START_TEST(the_path_of_a_bad_string_is_named) {
    const char *text = "{\"spec\": {\"tags\": [\"ok\", \"a\xc3\x28\"]}}";
    expect_text_refused(text, strlen(text),
                        "spec.tags[1]: invalid UTF-8 in a string at byte 27 (line 1, column 28)");
    text = "{\"a\": 1, \"b\xff\": 2}";
    expect_text_refused(text, strlen(text),
                        "invalid UTF-8 in a member name at byte 11 (line 1, column 12)");
    text = "{\"a\": {\"\xff\": 2}}";
    expect_text_refused(text, strlen(text),
                        "a: invalid UTF-8 in a member name at byte 8 (line 1, column 9)");
    text = "[\"\xfe\"]";
    expect_text_refused(text, strlen(text),
                        "[0]: invalid UTF-8 in a string at byte 2 (line 1, column 3)");
}
END_TEST

START_TEST(nul_characters_are_refused) {
    const char *text = "{\"name\": \"ab\\u0000cd\"}";
    expect_text_refused(text, strlen(text),
                        "name: \\u0000 (a NUL character) in a string at "
                        "byte 12 (line 1, column 13)");
    static const char raw[] = "{\"name\": \"ab\0cd\"}";
    expect_text_refused(raw, sizeof raw - 1,
                        "name: a NUL character in a string at byte 12 (line 1, column 13)");
    text = "{\"x\": [1, {\"k\\u0000\": 1}]}";
    expect_text_refused(text, strlen(text),
                        "x[1]: \\u0000 (a NUL character) in a member name "
                        "at byte 13 (line 1, column 14)");
}
END_TEST

START_TEST(lone_surrogate_escapes_are_refused) {
    const char *text = "{\"h\": \"\\ud800x\"}";
    expect_text_refused(text, strlen(text),
                        "h: a \\u escape of a lone surrogate in a string at "
                        "byte 7 (line 1, column 8)");
    text = "{\"h\": \"\\uDC00\"}";
    expect_text_refused(text, strlen(text),
                        "h: a \\u escape of a lone surrogate in a string at "
                        "byte 7 (line 1, column 8)");
}
END_TEST

START_TEST(valid_text_and_escapes_are_accepted) {
    /* Two-, three- and four-byte characters at the edges of their ranges, an escaped pair, an
     * escaped backslash before "u0000" (which is then plain text), and \u0001. */
    const char *text = "{\"s\": \"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
                       "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\", \"e\": \"\\ud83d\\ude00\", "
                       "\"b\": \"\\\\u0000\", \"c\": \"\\u0001\", \"\xc3\xa9\": [\"\\\"\"]}";
    cJSON *root = parse_ok(text);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "e")->valuestring, "\xf0\x9f\x98\x80");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "b")->valuestring, "\\u0000");
    cJSON_Delete(root);
}
END_TEST

START_TEST(utf8_checks_of_c_strings) {
    ck_assert_uint_eq(cv_json_utf8_invalid_at("abc\xc3\xa9", 5), 5);
    ck_assert_uint_eq(cv_json_utf8_invalid_at("ab\xc3", 3), 2);
    ck_assert_uint_eq(cv_json_utf8_invalid_at("a\xed\xbf\xbf", 4), 1);
    ck_assert_uint_eq(cv_json_utf8_invalid_at("a\0b", 3), 1);
    ck_assert_uint_eq(cv_json_utf8_seq("\xf4\x8f\xbf\xbf", 4), 4);
    ck_assert_uint_eq(cv_json_utf8_seq("\xf4\x8f\xbf", 3), 0);
    ck_assert_uint_eq(cv_json_utf8_seq("\xc1\xbf", 2), 0);
}
END_TEST

START_TEST(load_file_reads_json) {
    char path[CV_TEST_PATH];
    const char *text = "{\"epochs\": 3}\n";
    cv_test_write_file(path, "load.json", text, strlen(text));
    char err[CV_ERRLEN] = "";
    cJSON *root = cv_json_load_file(path, 1024, err);
    ck_assert_msg(root != NULL, "%s", err);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(root, "epochs")->valuedouble, 3);
    cJSON_Delete(root);
    unlink(path);
}
END_TEST

START_TEST(load_file_names_a_missing_path) {
    char err[CV_ERRLEN] = "";
    cJSON *root = NULL;
    ck_assert_int_eq(cv_json_decode_file("/nonexistent/caviar.json", 1024, &root, err), CV_EIO);
    ck_assert_ptr_null(root);
    ck_assert_str_eq(err, "/nonexistent/caviar.json: cannot open: No such file or directory");
}
END_TEST

START_TEST(load_file_refuses_a_file_over_the_cap) {
    char path[CV_TEST_PATH];
    const char *text = "[1, 2, 3, 4, 5]"; /* 15 bytes */
    cv_test_write_file(path, "big.json", text, strlen(text));
    char err[CV_ERRLEN] = "", want[CV_TEST_PATH + 128];
    cJSON *root = NULL;
    ck_assert_int_eq(cv_json_decode_file(path, 14, &root, err), CV_ERANGE);
    snprintf(want, sizeof want, "%s: 15 bytes, larger than the 14 allowed", path);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(cv_json_decode_file(path, 15, &root, err), 0);
    cJSON_Delete(root);
    unlink(path);
}
END_TEST

START_TEST(load_file_prefixes_syntax_errors_with_the_path) {
    char path[CV_TEST_PATH];
    const char *text = "[1, 2, x]";
    cv_test_write_file(path, "bad.json", text, strlen(text));
    char err[CV_ERRLEN] = "", want[CV_TEST_PATH + 128];
    ck_assert_ptr_null(cv_json_load_file(path, 1024, err));
    snprintf(want, sizeof want, "%s: invalid JSON at byte 7 (line 1, column 8)", path);
    ck_assert_str_eq(err, want);
    unlink(path);
}
END_TEST

START_TEST(load_file_refuses_a_directory) {
    char err[CV_ERRLEN] = "";
    cJSON *root = NULL;
    ck_assert_int_eq(cv_json_decode_file("/", 1024, &root, err), CV_EIO);
    ck_assert_str_eq(err, "/: cannot read: Is a directory");
}
END_TEST

START_TEST(type_names) {
    cJSON *root = parse_ok("[{}, [], \"s\", 1, true, null]");
    ck_assert_ptr_nonnull(root);
    const char *want[] = {"object", "array", "string", "number", "boolean", "null"};
    for (int i = 0; i < 6; i++)
        ck_assert_str_eq(cv_json_type_name(cJSON_GetArrayItem(root, i)), want[i]);
    ck_assert_str_eq(cv_json_type_name(NULL), "nothing");
    cJSON_Delete(root);
}
END_TEST

START_TEST(check_fields_names_an_unknown_field) {
    static const char *const known[] = {"a", "b"};
    char err[CV_ERRLEN] = "";
    cJSON *root = parse_ok("{\"a\": 1, \"foo\": 2}");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cv_json_check_fields(root, NULL, known, 2, err), CV_EINVAL);
    ck_assert_str_eq(err, "unknown field \"foo\"");
    ck_assert_int_eq(cv_json_check_fields(root, "dataset", known, 2, err), CV_EINVAL);
    ck_assert_str_eq(err, "dataset: unknown field \"foo\"");
    cJSON_Delete(root);
}
END_TEST

START_TEST(check_fields_suggests_the_nearest_known_field) {
    static const char *const known[] = {"epochs", "patience", "seed", "l1", "l2"};
    char err[CV_ERRLEN] = "";
    cJSON *root = parse_ok("{\"patiance\": 3}");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cv_json_check_fields(root, "trial", known, 5, err), CV_EINVAL);
    ck_assert_str_eq(err, "trial: unknown field \"patiance\" (did you mean \"patience\"?)");
    cJSON_Delete(root);
}
END_TEST

START_TEST(closest_name_counts_edits_and_gives_up_when_far) {
    static const char *const known[] = {"max_trials", "max_parallel", "max_seconds", "seed", "l2"};
    /* A swap of two neighbours is one edit. */
    ck_assert_str_eq(cv_json_closest_name("max_trails", known, 5), "max_trials");
    /* Case is ignored. */
    ck_assert_str_eq(cv_json_closest_name("Max_Seconds", known, 5), "max_seconds");
    /* Two edits in ten characters: a typing slip. */
    ck_assert_str_eq(cv_json_closest_name("max_paralel", known, 5), "max_parallel");
    ck_assert_str_eq(cv_json_closest_name("seeds", known, 5), "seed");
    /* Three edits, or one edit in a two-letter name, is another word. */
    ck_assert_ptr_null(cv_json_closest_name("max_tri", known, 5));
    ck_assert_ptr_null(cv_json_closest_name("lr", known, 5));
    ck_assert_ptr_null(cv_json_closest_name("priority", known, 5));
    ck_assert_ptr_null(cv_json_closest_name("", known, 5));
}
END_TEST

START_TEST(check_fields_refuses_a_repeated_field) {
    static const char *const known[] = {"a", "b"};
    char err[CV_ERRLEN] = "";
    cJSON *root = parse_ok("{\"a\": 1, \"b\": 2, \"a\": 3}");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cv_json_check_fields(root, NULL, known, 2, err), CV_EINVAL);
    ck_assert_str_eq(err, "field \"a\" given twice");
    cJSON_Delete(root);
}
END_TEST

START_TEST(get_number_names_the_wrong_type) {
    char err[CV_ERRLEN] = "";
    double x = 7;
    cJSON *s = cJSON_CreateString("0.1");
    cv_json_range_t any = {-HUGE_VAL, HUGE_VAL, 0, 0};
    ck_assert_int_eq(cv_json_get_number(s, "learning_rate", any, &x, err), CV_EINVAL);
    ck_assert_str_eq(err, "learning_rate: must be a number, got string");
    ck_assert_double_eq(x, 7); /* untouched */
    cJSON_Delete(s);
}
END_TEST

START_TEST(get_number_describes_each_kind_of_range) {
    char err[CV_ERRLEN] = "";
    double x = 0;
    cJSON *n = cJSON_CreateNumber(1.5);
    cv_json_range_t half_open = {0, 1, 1, 0}, at_least = {0, HUGE_VAL, 0, 0},
                    below = {-HUGE_VAL, 1, 0, 1};
    ck_assert_int_eq(cv_json_get_number(n, "keep_prob[1]", half_open, &x, err), CV_ERANGE);
    ck_assert_str_eq(err, "keep_prob[1]: must be in (0, 1], got 1.5");
    ck_assert_int_eq(cv_json_get_number(n, "beta", below, &x, err), CV_ERANGE);
    ck_assert_str_eq(err, "beta: must be < 1, got 1.5");
    cJSON_SetNumberValue(n, -0.1);
    ck_assert_int_eq(cv_json_get_number(n, "l2", at_least, &x, err), CV_ERANGE);
    ck_assert_str_eq(err, "l2: must be >= 0, got -0.1");
    cJSON_Delete(n);
}
END_TEST

START_TEST(get_number_shows_the_value_exactly) {
    /* 1.0000001 must not print as "1", which would look inside (0, 1]. */
    char err[CV_ERRLEN] = "";
    double x = 0;
    cJSON *n = cJSON_CreateNumber(1.0000001);
    cv_json_range_t half_open = {0, 1, 1, 0};
    ck_assert_int_eq(cv_json_get_number(n, "p", half_open, &x, err), CV_ERANGE);
    ck_assert_str_eq(err, "p: must be in (0, 1], got 1.0000001");
    cJSON_Delete(n);
}
END_TEST

START_TEST(get_number_refuses_infinity) {
    char err[CV_ERRLEN] = "";
    double x = 0;
    cJSON *root = parse_ok("[1e999]");
    ck_assert_ptr_nonnull(root);
    cv_json_range_t any = {-HUGE_VAL, HUGE_VAL, 0, 0};
    ck_assert_int_eq(cv_json_get_number(root->child, "l2", any, &x, err), CV_ERANGE);
    ck_assert_str_eq(err, "l2: must be a finite number");
    cJSON_Delete(root);
}
END_TEST

START_TEST(get_int_refuses_a_fraction) {
    char err[CV_ERRLEN] = "";
    int64_t v = 0;
    cJSON *n = cJSON_CreateNumber(2.5);
    ck_assert_int_eq(cv_json_get_int(n, "batch_size", 1, 100, &v, err), CV_EINVAL);
    ck_assert_str_eq(err, "batch_size: must be an integer, got 2.5");
    cJSON_Delete(n);
}
END_TEST

START_TEST(get_int_describes_its_range) {
    char err[CV_ERRLEN] = "";
    int64_t v = 0;
    cJSON *n = cJSON_CreateNumber(0);
    ck_assert_int_eq(cv_json_get_int(n, "epochs", 1, 100000, &v, err), CV_ERANGE);
    ck_assert_str_eq(err, "epochs: must be an integer in [1, 100000], got 0");
    cJSON_SetNumberValue(n, -1);
    ck_assert_int_eq(cv_json_get_int(n, "seed", 0, CV_JSON_INT_MAX, &v, err), CV_ERANGE);
    ck_assert_str_eq(err, "seed: must be an integer >= 0, got -1");
    cJSON_Delete(n);
}
END_TEST

START_TEST(get_int_accepts_integral_numbers_up_to_2_pow_53) {
    char err[CV_ERRLEN] = "";
    int64_t v = 0;
    cJSON *root = parse_ok("[3.0, 9007199254740992, 9007199254740994]");
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cv_json_get_int(cJSON_GetArrayItem(root, 0), "a", 0, 10, &v, err), 0);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(
        cv_json_get_int(cJSON_GetArrayItem(root, 1), "seed", 0, CV_JSON_INT_MAX, &v, err), 0);
    ck_assert_int_eq(v, 9007199254740992LL);
    ck_assert_int_eq(
        cv_json_get_int(cJSON_GetArrayItem(root, 2), "seed", 0, CV_JSON_INT_MAX, &v, err),
        CV_ERANGE);
    cJSON_Delete(root);
}
END_TEST

START_TEST(get_bool_names_the_wrong_type) {
    char err[CV_ERRLEN] = "";
    int b = 5;
    cJSON *n = cJSON_CreateNumber(1);
    ck_assert_int_eq(cv_json_get_bool(n, "augment_flip", &b, err), CV_EINVAL);
    ck_assert_str_eq(err, "augment_flip: must be a boolean, got number");
    ck_assert_int_eq(b, 5);
    cJSON_Delete(n);
    cJSON *t = cJSON_CreateTrue();
    ck_assert_int_eq(cv_json_get_bool(t, "augment_flip", &b, err), 0);
    ck_assert_int_eq(b, 1);
    cJSON_Delete(t);
}
END_TEST

START_TEST(get_string_refuses_empty_and_long) {
    char err[CV_ERRLEN] = "", out[8];
    cJSON *s = cJSON_CreateString("");
    ck_assert_int_eq(cv_json_get_string(s, "dataset.images", out, sizeof out, err), CV_EINVAL);
    ck_assert_str_eq(err, "dataset.images: must be a non-empty string");
    ck_assert_ptr_nonnull(cJSON_SetValuestring(s, "12345678"));
    ck_assert_int_eq(cv_json_get_string(s, "dataset.images", out, sizeof out, err), CV_ERANGE);
    ck_assert_str_eq(err, "dataset.images: must be shorter than 8 bytes, got 8");
    ck_assert_ptr_nonnull(cJSON_SetValuestring(s, "1234567"));
    ck_assert_int_eq(cv_json_get_string(s, "dataset.images", out, sizeof out, err), 0);
    ck_assert_str_eq(out, "1234567");
    cJSON_Delete(s);
}
END_TEST

START_TEST(get_enum_lists_the_choices) {
    static const char *const names[] = {"gd", "momentum", "rmsprop", "adam"};
    char err[CV_ERRLEN] = "";
    int e = -1;
    cJSON *s = cJSON_CreateString("sgd");
    ck_assert_int_eq(cv_json_get_enum(s, "optimizer", names, 4, &e, err), CV_EINVAL);
    ck_assert_str_eq(err, "optimizer: must be one of \"gd\", \"momentum\", \"rmsprop\", \"adam\", "
                          "got \"sgd\"");
    ck_assert_ptr_nonnull(cJSON_SetValuestring(s, "rmsprop"));
    ck_assert_int_eq(cv_json_get_enum(s, "optimizer", names, 4, &e, err), 0);
    ck_assert_int_eq(e, 2);
    cJSON_Delete(s);
}
END_TEST

static Suite *json_suite(void) {
    Suite *s = suite_create("json");
    TCase *parse = tcase_create("parse");
    tcase_add_test(parse, parse_reads_an_object);
    tcase_add_test(parse, parse_needs_no_terminator);
    tcase_add_test(parse, parse_reads_only_len_bytes);
    tcase_add_test(parse, syntax_error_reports_its_offset);
    tcase_add_test(parse, syntax_error_reports_its_line);
    tcase_add_test(parse, data_after_the_value_is_refused);
    tcase_add_test(parse, trailing_whitespace_is_accepted);
    tcase_add_test(parse, empty_text_is_refused);
    tcase_add_test(parse, nesting_at_the_limit_is_accepted);
    tcase_add_test(parse, deep_nesting_is_refused);
    tcase_add_test(parse, deep_nesting_is_refused_before_cjson_limit);
    tcase_add_test(parse, brackets_inside_strings_do_not_nest);
    tcase_add_test(parse, invalid_utf8_is_refused_naming_the_field);
    tcase_add_test(parse, the_path_of_a_bad_string_is_named);
    tcase_add_test(parse, nul_characters_are_refused);
    tcase_add_test(parse, lone_surrogate_escapes_are_refused);
    tcase_add_test(parse, valid_text_and_escapes_are_accepted);
    tcase_add_test(parse, utf8_checks_of_c_strings);
    suite_add_tcase(s, parse);

    TCase *file = tcase_create("file");
    tcase_add_test(file, load_file_reads_json);
    tcase_add_test(file, load_file_names_a_missing_path);
    tcase_add_test(file, load_file_refuses_a_file_over_the_cap);
    tcase_add_test(file, load_file_prefixes_syntax_errors_with_the_path);
    tcase_add_test(file, load_file_refuses_a_directory);
    suite_add_tcase(s, file);

    TCase *get = tcase_create("getters");
    tcase_add_test(get, type_names);
    tcase_add_test(get, check_fields_names_an_unknown_field);
    tcase_add_test(get, check_fields_suggests_the_nearest_known_field);
    tcase_add_test(get, closest_name_counts_edits_and_gives_up_when_far);
    tcase_add_test(get, check_fields_refuses_a_repeated_field);
    tcase_add_test(get, get_number_names_the_wrong_type);
    tcase_add_test(get, get_number_describes_each_kind_of_range);
    tcase_add_test(get, get_number_shows_the_value_exactly);
    tcase_add_test(get, get_number_refuses_infinity);
    tcase_add_test(get, get_int_refuses_a_fraction);
    tcase_add_test(get, get_int_describes_its_range);
    tcase_add_test(get, get_int_accepts_integral_numbers_up_to_2_pow_53);
    tcase_add_test(get, get_bool_names_the_wrong_type);
    tcase_add_test(get, get_string_refuses_empty_and_long);
    tcase_add_test(get, get_enum_lists_the_choices);
    suite_add_tcase(s, get);
    return s;
}

CV_TEST_MAIN(json_suite)
