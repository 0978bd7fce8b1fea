/* Specification of common/hash.c: SHA-256 digests against the FIPS 180-2 test vectors, of files
 * and buffers alike, and the secret comparison that checks tokens. */
#include <string.h>

#include "common/err.h"
#include "common/hash.h"
#include "testutil.h"

/* FIPS 180-2, appendix B.1: SHA-256("abc"). */
#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/* SHA-256 of the empty string. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

START_TEST(buffer_digest_matches_the_test_vectors) {
    char hex[CV_SHA256_HEX];
    cv_sha256_buffer("abc", 3, hex);
    ck_assert_str_eq(hex, ABC_SHA256);
    cv_sha256_buffer("", 0, hex);
    ck_assert_str_eq(hex, EMPTY_SHA256);
}
END_TEST

START_TEST(file_digest_equals_the_buffer_digest_and_reports_the_size) {
    char path[CV_TEST_PATH], hex[CV_SHA256_HEX], err[CV_ERRLEN];
    uint64_t bytes = 0;
    cv_test_write_file(path, "abc.txt", "abc", 3);
    ck_assert_int_eq(cv_sha256_file(path, hex, &bytes, err), 0);
    ck_assert_str_eq(hex, ABC_SHA256);
    ck_assert_uint_eq(bytes, 3);
    remove(path);
}
END_TEST

START_TEST(missing_file_is_refused_naming_the_path) {
    char hex[CV_SHA256_HEX], err[CV_ERRLEN];
    ck_assert_int_eq(cv_sha256_file("/nonexistent/caviar-data.csv", hex, NULL, err), CV_EIO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/caviar-data.csv"));
}
END_TEST

START_TEST(secret_equal_only_for_identical_strings) {
    ck_assert_int_eq(cv_secret_equal("s3cret-token", "s3cret-token"), 1);
    ck_assert_int_eq(cv_secret_equal("s3cret-token", "s3cret-tokeN"), 0); /* same length */
    ck_assert_int_eq(cv_secret_equal("s3cret-token", "s3cret"), 0);       /* a prefix */
    ck_assert_int_eq(cv_secret_equal("s3cret-token", "s3cret-token-"), 0);
    ck_assert_int_eq(cv_secret_equal("s3cret-token", ""), 0);
    ck_assert_int_eq(cv_secret_equal("", ""), 1);
}
END_TEST

static Suite *hash_suite(void) {
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("sha256");
    tcase_add_test(tc, buffer_digest_matches_the_test_vectors);
    tcase_add_test(tc, file_digest_equals_the_buffer_digest_and_reports_the_size);
    tcase_add_test(tc, missing_file_is_refused_naming_the_path);
    tcase_add_test(tc, secret_equal_only_for_identical_strings);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(hash_suite)
