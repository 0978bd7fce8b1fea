/* Tests of the growable byte buffer (common/buf.c): the exact capacities doubling gives, the cut
 * at the limit, refusals that leave the buffer as it was, and bytes kept across every growth. */
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "testutil.h"

START_TEST(init_allocates_nothing_and_finish_accepts_an_empty_buffer) {
    cv_buf_t b;
    cv_buf_init(&b, 16, 1000);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    cv_buf_finish(&b);
    cv_buf_finish(NULL);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(capacity_starts_at_first_and_doubles_to_fit) {
    cv_buf_t b;
    cv_buf_init(&b, 16, 1u << 20);
    ck_assert_int_eq(cv_buf_reserve(&b, 1), 0);
    ck_assert_uint_eq(b.cap, 16);
    ck_assert_uint_eq(b.len, 0); /* reserving does not count bytes as used */
    b.len = 16;
    ck_assert_int_eq(cv_buf_reserve(&b, 1), 0);
    ck_assert_uint_eq(b.cap, 32);
    ck_assert_int_eq(cv_buf_reserve(&b, 100), 0); /* 116 needed: 32 → 64 → 128 */
    ck_assert_uint_eq(b.cap, 128);
    ck_assert_int_eq(cv_buf_reserve(&b, 112), 0); /* 128 fits: no growth */
    ck_assert_uint_eq(b.cap, 128);
    cv_buf_finish(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(first_of_zero_counts_as_one) {
    cv_buf_t b;
    cv_buf_init(&b, 0, 100);
    ck_assert_int_eq(cv_buf_reserve(&b, 1), 0);
    ck_assert_uint_eq(b.cap, 1);
    ck_assert_int_eq(cv_buf_reserve(&b, 3), 0);
    ck_assert_uint_eq(b.cap, 4);
    cv_buf_finish(&b);
}
END_TEST

START_TEST(appended_bytes_survive_every_growth) {
    cv_buf_t b;
    cv_buf_init(&b, 4, 4096);
    unsigned char want[1000];
    for (size_t i = 0; i < sizeof want; i++) {
        want[i] = (unsigned char)(i * 7 + 3);
        ck_assert_int_eq(cv_buf_append(&b, &want[i], 1), 0);
    }
    ck_assert_uint_eq(b.len, 1000);
    ck_assert_uint_eq(b.cap, 1024); /* 4 doubled eight times */
    ck_assert_mem_eq(b.data, want, sizeof want);
    ck_assert_int_eq(cv_buf_append(&b, NULL, 0), 0); /* nothing to copy: allowed */
    ck_assert_uint_eq(b.len, 1000);
    cv_buf_finish(&b);
}
END_TEST

START_TEST(the_last_step_is_cut_to_the_limit_and_beyond_is_refused) {
    cv_buf_t b;
    cv_buf_init(&b, 64, 100);
    ck_assert_int_eq(cv_buf_append(&b, "0123456789", 10), 0);
    ck_assert_uint_eq(b.cap, 64);
    ck_assert_int_eq(cv_buf_reserve(&b, 60), 0); /* 70: doubling would give 128 */
    ck_assert_uint_eq(b.cap, 100);
    ck_assert_int_eq(cv_buf_reserve(&b, 90), 0); /* exactly the limit */
    ck_assert_int_eq(cv_buf_reserve(&b, 91), CV_ERANGE);
    ck_assert_int_eq(cv_buf_append(&b, "x", 1) == 0 && b.len == 11, 1);
    char big[90] = {0};
    ck_assert_int_eq(cv_buf_append(&b, big, 90), CV_ERANGE); /* 101 bytes */
    ck_assert_uint_eq(b.len, 11);                            /* unchanged on refusal */
    ck_assert_mem_eq(b.data, "0123456789x", 11);
    cv_buf_finish(&b);
}
END_TEST

START_TEST(a_first_larger_than_the_limit_is_cut_to_the_limit) {
    cv_buf_t b;
    cv_buf_init(&b, 4096, 10);
    ck_assert_int_eq(cv_buf_reserve(&b, 3), 0);
    ck_assert_uint_eq(b.cap, 10);
    cv_buf_finish(&b);
}
END_TEST

START_TEST(absurd_sizes_are_refused_before_allocating) {
    cv_buf_t b;
    cv_buf_init(&b, 16, SIZE_MAX);
    ck_assert_int_eq(cv_buf_append(&b, "abc", 3), 0);
    /* len + n would wrap around: refused, not allocated short */
    ck_assert_int_eq(cv_buf_reserve(&b, SIZE_MAX - 1), CV_ERANGE);
    ck_assert_int_eq(cv_buf_reserve(&b, SIZE_MAX), CV_ERANGE);
    ck_assert_uint_eq(b.cap, 16);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_mem_eq(b.data, "abc", 3);
    cv_buf_finish(&b);
}
END_TEST

START_TEST(a_limit_of_zero_holds_nothing) {
    cv_buf_t b;
    cv_buf_init(&b, 16, 0);
    ck_assert_int_eq(cv_buf_reserve(&b, 0), 0);
    ck_assert_int_eq(cv_buf_reserve(&b, 1), CV_ERANGE);
    ck_assert_ptr_null(b.data);
    cv_buf_finish(&b);
}
END_TEST

static Suite *buf_suite(void) {
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("growth");
    tcase_add_test(tc, init_allocates_nothing_and_finish_accepts_an_empty_buffer);
    tcase_add_test(tc, capacity_starts_at_first_and_doubles_to_fit);
    tcase_add_test(tc, first_of_zero_counts_as_one);
    tcase_add_test(tc, appended_bytes_survive_every_growth);
    tcase_add_test(tc, the_last_step_is_cut_to_the_limit_and_beyond_is_refused);
    tcase_add_test(tc, a_first_larger_than_the_limit_is_cut_to_the_limit);
    tcase_add_test(tc, absurd_sizes_are_refused_before_allocating);
    tcase_add_test(tc, a_limit_of_zero_holds_nothing);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(buf_suite)
