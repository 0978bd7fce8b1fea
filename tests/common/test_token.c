/* Specification of common/token.c: how caviard and caviar-worker read a token from a file or an
 * environment variable. Surrounding whitespace goes, an empty or whitespace-only token, a token
 * with whitespace inside and a token over the limit are refused naming their source, and nothing
 * is ever truncated. */
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/token.h"
#include "testutil.h"

static int parse(const char *text, size_t max, char *out, char *err) {
    return cv_token_parse(text, strlen(text), max, "CAVIAR_TOKEN", out, 512, err);
}

START_TEST(surrounding_whitespace_is_stripped) {
    char out[512], err[CV_ERRLEN];
    const char *cases[] = {"s3cret", "s3cret\n", "s3cret\r\n", "  s3cret  ", "\ts3cret\t\n",
                           "\n\ns3cret\n\n", " \r\n s3cret \r\n "};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_int_eq(parse(cases[i], 511, out, err), 0);
        ck_assert_str_eq(out, "s3cret");
    }
}
END_TEST

START_TEST(empty_and_whitespace_only_tokens_are_refused) {
    char out[512], err[CV_ERRLEN];
    const char *cases[] = {"", "\n", "\r\n", "   ", " \t \n \n", "\n\n\n"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_int_eq(parse(cases[i], 511, out, err), CV_EINVAL);
        ck_assert_str_eq(err, "CAVIAR_TOKEN is empty or holds only whitespace");
    }
}
END_TEST

START_TEST(whitespace_or_control_characters_inside_are_refused) {
    char out[512], err[CV_ERRLEN];
    const char *cases[] = {"two words", "first\nsecond", "tab\tinside", "bell\a", "del\x7f"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_int_eq(parse(cases[i], 511, out, err), CV_EINVAL);
        ck_assert_str_eq(err,
                         "CAVIAR_TOKEN: the token contains whitespace or a control character");
    }
}
END_TEST

START_TEST(a_token_over_the_limit_is_refused_not_truncated) {
    char text[600], out[512], err[CV_ERRLEN];
    memset(text, 'k', sizeof text);
    text[511] = '\0';
    ck_assert_int_eq(parse(text, 511, out, err), 0); /* exactly the limit */
    ck_assert_uint_eq(strlen(out), 511);
    text[511] = 'k';
    text[512] = '\0';
    ck_assert_int_eq(parse(text, 511, out, err), CV_EINVAL);
    ck_assert_str_eq(err, "CAVIAR_TOKEN: the token is 512 bytes long; at most 511 are allowed");
    ck_assert_int_eq(parse("abcd", 3, out, err), CV_EINVAL); /* a smaller limit (worker token) */
    ck_assert_str_eq(err, "CAVIAR_TOKEN: the token is 4 bytes long; at most 3 are allowed");
}
END_TEST

START_TEST(files_follow_the_same_rules_and_name_the_file) {
    char path[CV_TEST_PATH], out[512], err[CV_ERRLEN], want[CV_ERRLEN + 64];
    cv_test_write_file(path, "token-ok", "  api-token-1\r\n", 15);
    ck_assert_int_eq(cv_token_read_file(path, 511, out, sizeof out, err), 0);
    ck_assert_str_eq(out, "api-token-1");
    remove(path);

    cv_test_write_file(path, "token-empty", "", 0);
    ck_assert_int_eq(cv_token_read_file(path, 511, out, sizeof out, err), CV_EINVAL);
    snprintf(want, sizeof want, "token file %s is empty or holds only whitespace", path);
    ck_assert_str_eq(err, want);
    remove(path);

    cv_test_write_file(path, "token-blank", "\n  \n", 4);
    ck_assert_int_eq(cv_token_read_file(path, 511, out, sizeof out, err), CV_EINVAL);
    snprintf(want, sizeof want, "token file %s is empty or holds only whitespace", path);
    ck_assert_str_eq(err, want);
    remove(path);
}
END_TEST

START_TEST(unreadable_files_directories_and_fifos_are_refused) {
    char path[CV_TEST_PATH], out[512], err[CV_ERRLEN], want[CV_ERRLEN + 64];
    ck_assert_int_eq(cv_token_read_file("/nonexistent/caviar-token", 511, out, 512, err), CV_EIO);
    ck_assert_str_eq(err, "token file /nonexistent/caviar-token: No such file or directory");

    ck_assert_int_eq(cv_token_read_file("/", 511, out, sizeof out, err), CV_EINVAL);
    ck_assert_str_eq(err, "token file /: not a regular file");

    cv_test_write_file(path, "token-fifo", "", 0);
    remove(path);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    /* Nobody writes to the FIFO: a blocking open or read would hang the test. */
    ck_assert_int_eq(cv_token_read_file(path, 511, out, sizeof out, err), CV_EINVAL);
    snprintf(want, sizeof want, "token file %s: not a regular file", path);
    ck_assert_str_eq(err, want);
    remove(path);
}
END_TEST

START_TEST(a_file_larger_than_a_token_file_can_be_is_refused) {
    static char big[CV_TOKEN_FILE_MAX + 1];
    char path[CV_TEST_PATH], out[512], err[CV_ERRLEN];
    memset(big, 'x', sizeof big);
    cv_test_write_file(path, "token-big", big, sizeof big);
    ck_assert_int_eq(cv_token_read_file(path, 511, out, sizeof out, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "larger than 4096 bytes"));
    remove(path);
}
END_TEST

static Suite *token_suite(void) {
    Suite *s = suite_create("token");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, surrounding_whitespace_is_stripped);
    tcase_add_test(tc, empty_and_whitespace_only_tokens_are_refused);
    tcase_add_test(tc, whitespace_or_control_characters_inside_are_refused);
    tcase_add_test(tc, a_token_over_the_limit_is_refused_not_truncated);
    tcase_add_test(tc, files_follow_the_same_rules_and_name_the_file);
    tcase_add_test(tc, unreadable_files_directories_and_fifos_are_refused);
    tcase_add_test(tc, a_file_larger_than_a_token_file_can_be_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(token_suite)
