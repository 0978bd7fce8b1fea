/* Tests of the worker's byte queue (worker/byte_queue.c): bytes come out in the order they went
 * in, across growth and compaction, with the exact capacities doubling gives, and an absurd size
 * is refused with the queue left as it was. */
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "testutil.h"
#include "worker/byte_queue.h"

START_TEST(append_then_consume_gives_the_bytes_back_in_order) {
    cv_bytes_t q;
    cv_bytes_init(&q);
    ck_assert_uint_eq(cv_bytes_queued(&q), 0);
    ck_assert_int_eq(cv_bytes_append(&q, "hello", 5), 0);
    ck_assert_int_eq(cv_bytes_append(&q, " world", 6), 0);
    ck_assert_uint_eq(cv_bytes_queued(&q), 11);
    ck_assert_mem_eq(cv_bytes_head(&q), "hello world", 11);
    cv_bytes_consume(&q, 6);
    ck_assert_uint_eq(cv_bytes_queued(&q), 5);
    ck_assert_mem_eq(cv_bytes_head(&q), "world", 5);
    cv_bytes_consume(&q, 5);
    ck_assert_uint_eq(cv_bytes_queued(&q), 0);
    /* an emptied queue starts again at the start of its storage */
    ck_assert_uint_eq(q.off, 0);
    ck_assert_uint_eq(q.buf.len, 0);
    ck_assert_ptr_eq(cv_bytes_head(&q), q.buf.data);
    ck_assert_int_eq(cv_bytes_append(&q, NULL, 0), 0);
    ck_assert_uint_eq(cv_bytes_queued(&q), 0);
    cv_bytes_finish(&q);
    ck_assert_ptr_null(q.buf.data);
}
END_TEST

START_TEST(storage_starts_at_4096_bytes_and_doubles) {
    cv_bytes_t q;
    cv_bytes_init(&q);
    ck_assert_ptr_null(q.buf.data); /* nothing allocated before the first byte */
    static unsigned char in[20000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i % 251);
    ck_assert_int_eq(cv_bytes_append(&q, in, 1), 0);
    ck_assert_uint_eq(q.buf.cap, 4096);
    ck_assert_int_eq(cv_bytes_append(&q, in + 1, 4095), 0);
    ck_assert_uint_eq(q.buf.cap, 4096);
    ck_assert_int_eq(cv_bytes_append(&q, in + 4096, 1), 0);
    ck_assert_uint_eq(q.buf.cap, 8192);
    ck_assert_int_eq(cv_bytes_append(&q, in + 4097, sizeof in - 4097), 0);
    ck_assert_uint_eq(q.buf.cap, 32768);
    ck_assert_uint_eq(cv_bytes_queued(&q), sizeof in);
    ck_assert_mem_eq(cv_bytes_head(&q), in, sizeof in);
    cv_bytes_finish(&q);
}
END_TEST

START_TEST(a_consumed_front_is_compacted_instead_of_growing) {
    cv_bytes_t q;
    cv_bytes_init(&q);
    unsigned char block[4096];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (unsigned char)i;
    ck_assert_int_eq(cv_bytes_append(&q, block, sizeof block), 0);
    cv_bytes_consume(&q, 4000); /* 96 bytes left, at offset 4000 */
    ck_assert_uint_eq(q.off, 4000);
    ck_assert_int_eq(cv_bytes_append(&q, "tail", 4), 0);
    ck_assert_uint_eq(q.buf.cap, 4096); /* 100 bytes fit once the front is gone */
    ck_assert_uint_eq(q.off, 0);
    ck_assert_uint_eq(cv_bytes_queued(&q), 100);
    ck_assert_mem_eq(cv_bytes_head(&q), block + 4000, 96);
    ck_assert_mem_eq(cv_bytes_head(&q) + 96, "tail", 4);
    cv_bytes_finish(&q);
}
END_TEST

START_TEST(a_front_is_left_in_place_while_the_back_has_room) {
    cv_bytes_t q;
    cv_bytes_init(&q);
    ck_assert_int_eq(cv_bytes_append(&q, "0123456789", 10), 0);
    cv_bytes_consume(&q, 4);
    ck_assert_int_eq(cv_bytes_append(&q, "ab", 2), 0);
    ck_assert_uint_eq(q.off, 4); /* no memmove needed: nothing moved */
    ck_assert_uint_eq(cv_bytes_queued(&q), 8);
    ck_assert_mem_eq(cv_bytes_head(&q), "456789ab", 8);
    cv_bytes_finish(&q);
}
END_TEST

START_TEST(reserve_then_commit_counts_what_was_written) {
    cv_bytes_t q;
    cv_bytes_init(&q);
    ck_assert_int_eq(cv_bytes_append(&q, "head:", 5), 0);
    unsigned char *dst = cv_bytes_reserve(&q, 100);
    ck_assert_ptr_nonnull(dst);
    ck_assert_uint_eq(cv_bytes_queued(&q), 5); /* reserved bytes are not queued yet */
    memcpy(dst, "abc", 3);
    cv_bytes_commit(&q, 3); /* fewer than reserved */
    ck_assert_uint_eq(cv_bytes_queued(&q), 8);
    ck_assert_mem_eq(cv_bytes_head(&q), "head:abc", 8);
    cv_bytes_finish(&q);
}
END_TEST

START_TEST(an_absurd_size_is_refused_and_the_queue_kept) {
    cv_bytes_t q;
    cv_bytes_init(&q);
    ck_assert_int_eq(cv_bytes_append(&q, "keep", 4), 0);
    cv_bytes_consume(&q, 1);
    ck_assert_ptr_null(cv_bytes_reserve(&q, SIZE_MAX));
    ck_assert_ptr_null(cv_bytes_reserve(&q, SIZE_MAX - 2)); /* would wrap len + n around */
    ck_assert_ptr_null(cv_bytes_reserve(&q, (size_t)CV_BYTES_MAX));
    ck_assert_int_eq(cv_bytes_append(&q, "x", (size_t)CV_BYTES_MAX), CV_ERANGE);
    ck_assert_uint_eq(q.buf.cap, 4096);
    ck_assert_uint_eq(cv_bytes_queued(&q), 3);
    ck_assert_mem_eq(cv_bytes_head(&q), "eep", 3);
    cv_bytes_finish(&q);
}
END_TEST

static Suite *byte_queue_suite(void) {
    Suite *s = suite_create("byte_queue");
    TCase *tc = tcase_create("queue");
    tcase_add_test(tc, append_then_consume_gives_the_bytes_back_in_order);
    tcase_add_test(tc, storage_starts_at_4096_bytes_and_doubles);
    tcase_add_test(tc, a_consumed_front_is_compacted_instead_of_growing);
    tcase_add_test(tc, a_front_is_left_in_place_while_the_back_has_room);
    tcase_add_test(tc, reserve_then_commit_counts_what_was_written);
    tcase_add_test(tc, an_absurd_size_is_refused_and_the_queue_kept);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(byte_queue_suite)
