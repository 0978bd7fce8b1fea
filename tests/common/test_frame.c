/* Unit tests of the worker wire framing (common/frame.c). Frames are assembled byte by byte here
 * from the layout in schemas/protocol.md, so the expected bytes do not come from the encoder
 * under test; every refusal names the code and the words its reason must contain. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/frame.h"
#include "testutil.h"

/* Writes a header by hand: big-endian length, kind, three reserved bytes. */
static void put_header(unsigned char *p, uint32_t len, unsigned char kind, unsigned char r1,
                       unsigned char r2, unsigned char r3) {
    p[0] = (unsigned char)(len >> 24);
    p[1] = (unsigned char)(len >> 16);
    p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
    p[4] = kind;
    p[5] = r1;
    p[6] = r2;
    p[7] = r3;
}

START_TEST(header_encodes_length_big_endian_then_kind_then_zeros) {
    unsigned char out[CV_FRAME_HEADER_SIZE];
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_frame_encode_header(CV_FRAME_DATA, 0x010203, out, err), 0);
    const unsigned char want[CV_FRAME_HEADER_SIZE] = {0x00, 0x01, 0x02, 0x03, 2, 0, 0, 0};
    ck_assert_mem_eq(out, want, sizeof(want));
}
END_TEST

START_TEST(encode_refuses_a_payload_over_the_limit) {
    unsigned char out[CV_FRAME_HEADER_SIZE];
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_frame_encode_header(CV_FRAME_JSON, CV_FRAME_MAX + 1u, out, err), CV_ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "4194305"));
    ck_assert_int_eq(cv_frame_encode_header(CV_FRAME_JSON, CV_FRAME_MAX, out, err), 0);
}
END_TEST

START_TEST(encode_refuses_an_unknown_kind) {
    unsigned char out[CV_FRAME_HEADER_SIZE];
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_frame_encode_header((cv_frame_kind_t)3, 1, out, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "kind 3"));
}
END_TEST

START_TEST(encoded_frame_decodes_to_the_same_kind_and_payload) {
    const char *json = "{\"type\":\"hello\",\"worker\":7}";
    size_t n = strlen(json);
    unsigned char wire[64];
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_frame_encode_header(CV_FRAME_JSON, n, wire, err), 0);
    memcpy(wire + CV_FRAME_HEADER_SIZE, json, n);

    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, CV_FRAME_HEADER_SIZE + n, &used, &f, err),
                     CV_FRAME_READY);
    ck_assert_uint_eq(used, CV_FRAME_HEADER_SIZE + n);
    ck_assert_int_eq(f.kind, CV_FRAME_JSON);
    ck_assert_uint_eq(f.len, n);
    ck_assert_mem_eq(f.payload, json, n);
    ck_assert_int_eq(f.payload[n], 0); /* NUL after the payload, for string parsers */
    ck_assert_int_eq(cv_frame_decoder_partial(&dec), 0);
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(frame_fed_one_byte_at_a_time_completes_on_its_last_byte) {
    unsigned char wire[CV_FRAME_HEADER_SIZE + 5];
    put_header(wire, 5, CV_FRAME_DATA, 0, 0, 0);
    memcpy(wire + CV_FRAME_HEADER_SIZE, "\x00\x01\xfe\xff\x80", 5);

    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    char err[CV_ERRLEN] = "";
    int need_more = 0;
    for (size_t i = 0; i < sizeof(wire); i++) {
        size_t used = 0;
        int rc = cv_frame_decode(&dec, wire + i, 1, &used, &f, err);
        ck_assert_uint_eq(used, 1);
        if (i + 1 < sizeof(wire)) {
            ck_assert_int_eq(rc, CV_FRAME_NEED_MORE);
            ck_assert_int_eq(cv_frame_decoder_partial(&dec), 1);
            need_more++;
        } else {
            ck_assert_int_eq(rc, CV_FRAME_READY);
        }
    }
    ck_assert_int_eq(need_more, 12);
    ck_assert_int_eq(f.kind, CV_FRAME_DATA);
    ck_assert_uint_eq(f.len, 5);
    ck_assert_mem_eq(f.payload, "\x00\x01\xfe\xff\x80", 5);
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(two_frames_in_one_buffer_come_out_one_per_call) {
    unsigned char wire[2 * CV_FRAME_HEADER_SIZE + 3 + 2];
    put_header(wire, 3, CV_FRAME_JSON, 0, 0, 0);
    memcpy(wire + 8, "[1]", 3);
    put_header(wire + 11, 2, CV_FRAME_DATA, 0, 0, 0);
    memcpy(wire + 19, "ab", 2);

    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    char err[CV_ERRLEN] = "";
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, sizeof(wire), &used, &f, err), CV_FRAME_READY);
    ck_assert_uint_eq(used, 11);
    ck_assert_int_eq(f.kind, CV_FRAME_JSON);
    ck_assert_uint_eq(f.len, 3);
    ck_assert_mem_eq(f.payload, "[1]", 3);

    size_t used2 = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire + used, sizeof(wire) - used, &used2, &f, err),
                     CV_FRAME_READY);
    ck_assert_uint_eq(used2, 10);
    ck_assert_int_eq(f.kind, CV_FRAME_DATA);
    ck_assert_uint_eq(f.len, 2);
    ck_assert_mem_eq(f.payload, "ab", 2);
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(empty_payload_is_a_ready_frame_with_a_non_null_payload) {
    unsigned char wire[CV_FRAME_HEADER_SIZE];
    put_header(wire, 0, CV_FRAME_JSON, 0, 0, 0);
    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, sizeof(wire), &used, &f, NULL), CV_FRAME_READY);
    ck_assert_uint_eq(used, 8);
    ck_assert_uint_eq(f.len, 0);
    ck_assert_ptr_nonnull(f.payload);
    ck_assert_int_eq(f.payload[0], 0);
    ck_assert_ptr_null(dec.buf.data);
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(payload_of_exactly_the_maximum_is_accepted) {
    size_t n = CV_FRAME_MAX;
    unsigned char *wire = malloc(CV_FRAME_HEADER_SIZE + n);
    ck_assert_ptr_nonnull(wire);
    put_header(wire, (uint32_t)n, CV_FRAME_DATA, 0, 0, 0);
    memset(wire + CV_FRAME_HEADER_SIZE, 0x5a, n);
    wire[CV_FRAME_HEADER_SIZE + n - 1] = 0x7e;

    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    char err[CV_ERRLEN] = "";
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, CV_FRAME_HEADER_SIZE + n, &used, &f, err),
                     CV_FRAME_READY);
    ck_assert_uint_eq(f.len, n);
    ck_assert_int_eq(f.payload[0], 0x5a);
    ck_assert_int_eq(f.payload[n - 1], 0x7e);
    ck_assert_uint_le(dec.buf.cap, CV_FRAME_MAX + 1u);
    cv_frame_decoder_finish(&dec);
    free(wire);
}
END_TEST

START_TEST(oversize_length_is_refused_before_any_allocation) {
    unsigned char wire[CV_FRAME_HEADER_SIZE + 4];
    put_header(wire, CV_FRAME_MAX + 1u, CV_FRAME_DATA, 0, 0, 0);
    memset(wire + CV_FRAME_HEADER_SIZE, 0, 4);
    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    char err[CV_ERRLEN] = "";
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, sizeof(wire), &used, &f, err), CV_ERANGE);
    ck_assert_uint_eq(used, CV_FRAME_HEADER_SIZE); /* nothing after the bad header is taken */
    ck_assert_ptr_null(dec.buf.data);
    ck_assert_uint_eq(dec.buf.cap, 0);
    ck_assert_ptr_nonnull(strstr(err, "4194305"));
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(largest_u32_length_is_refused_before_any_allocation) {
    unsigned char wire[CV_FRAME_HEADER_SIZE];
    put_header(wire, UINT32_MAX, CV_FRAME_JSON, 0, 0, 0);
    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, sizeof(wire), &used, &f, NULL), CV_ERANGE);
    ck_assert_ptr_null(dec.buf.data);
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(unknown_kind_is_refused) {
    unsigned char wire[CV_FRAME_HEADER_SIZE];
    put_header(wire, 4, 9, 0, 0, 0);
    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    char err[CV_ERRLEN] = "";
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, sizeof(wire), &used, &f, err), CV_EFORMAT);
    ck_assert_ptr_nonnull(strstr(err, "unknown kind 9"));
    ck_assert_ptr_null(dec.buf.data);
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(kind_zero_is_refused) {
    unsigned char wire[CV_FRAME_HEADER_SIZE];
    put_header(wire, 4, 0, 0, 0, 0);
    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, sizeof(wire), &used, &f, NULL), CV_EFORMAT);
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(non_zero_reserved_byte_is_refused) {
    unsigned char wire[CV_FRAME_HEADER_SIZE];
    put_header(wire, 4, CV_FRAME_JSON, 0, 0, 1);
    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    char err[CV_ERRLEN] = "";
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, sizeof(wire), &used, &f, err), CV_EFORMAT);
    ck_assert_ptr_nonnull(strstr(err, "reserved"));
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(an_error_is_sticky_for_later_bytes) {
    unsigned char bad[CV_FRAME_HEADER_SIZE], good[CV_FRAME_HEADER_SIZE];
    put_header(bad, 1, 7, 0, 0, 0);
    put_header(good, 0, CV_FRAME_JSON, 0, 0, 0);
    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, bad, sizeof(bad), &used, &f, NULL), CV_EFORMAT);
    ck_assert_int_eq(cv_frame_decode(&dec, good, sizeof(good), &used, &f, NULL), CV_EFORMAT);
    ck_assert_uint_eq(used, 0);
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(truncated_header_reports_need_more) {
    unsigned char wire[CV_FRAME_HEADER_SIZE];
    put_header(wire, 3, CV_FRAME_JSON, 0, 0, 0);
    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, 5, &used, &f, NULL), CV_FRAME_NEED_MORE);
    ck_assert_uint_eq(used, 5);
    ck_assert_int_eq(cv_frame_decoder_partial(&dec), 1);
    cv_frame_decoder_finish(&dec);
}
END_TEST

START_TEST(truncated_payload_reports_need_more_and_holds_only_what_arrived) {
    unsigned char wire[CV_FRAME_HEADER_SIZE + 10];
    put_header(wire, 1000000, CV_FRAME_DATA, 0, 0, 0);
    memset(wire + CV_FRAME_HEADER_SIZE, 1, 10);
    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    cv_frame_t f;
    size_t used = 0;
    ck_assert_int_eq(cv_frame_decode(&dec, wire, sizeof(wire), &used, &f, NULL),
                     CV_FRAME_NEED_MORE);
    ck_assert_uint_eq(used, sizeof(wire));
    ck_assert_int_eq(cv_frame_decoder_partial(&dec), 1);
    ck_assert_uint_lt(dec.buf.cap, 1000000); /* the declared million bytes were not reserved */
    cv_frame_decoder_finish(&dec);
    ck_assert_ptr_null(dec.buf.data);
    ck_assert_int_eq(cv_frame_decoder_partial(&dec), 0);
}
END_TEST

START_TEST(finish_accepts_null) {
    cv_frame_decoder_finish(NULL);
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("frame");
    TCase *encode = tcase_create("encode");
    tcase_add_test(encode, header_encodes_length_big_endian_then_kind_then_zeros);
    tcase_add_test(encode, encode_refuses_a_payload_over_the_limit);
    tcase_add_test(encode, encode_refuses_an_unknown_kind);
    suite_add_tcase(s, encode);

    TCase *decode = tcase_create("decode");
    tcase_add_test(decode, encoded_frame_decodes_to_the_same_kind_and_payload);
    tcase_add_test(decode, frame_fed_one_byte_at_a_time_completes_on_its_last_byte);
    tcase_add_test(decode, two_frames_in_one_buffer_come_out_one_per_call);
    tcase_add_test(decode, empty_payload_is_a_ready_frame_with_a_non_null_payload);
    tcase_add_test(decode, payload_of_exactly_the_maximum_is_accepted);
    tcase_add_test(decode, truncated_header_reports_need_more);
    tcase_add_test(decode, truncated_payload_reports_need_more_and_holds_only_what_arrived);
    tcase_add_test(decode, finish_accepts_null);
    suite_add_tcase(s, decode);

    TCase *refuse = tcase_create("refuse");
    tcase_add_test(refuse, oversize_length_is_refused_before_any_allocation);
    tcase_add_test(refuse, largest_u32_length_is_refused_before_any_allocation);
    tcase_add_test(refuse, unknown_kind_is_refused);
    tcase_add_test(refuse, kind_zero_is_refused);
    tcase_add_test(refuse, non_zero_reserved_byte_is_refused);
    tcase_add_test(refuse, an_error_is_sticky_for_later_bytes);
    suite_add_tcase(s, refuse);
    return s;
}

CV_TEST_MAIN(make_suite)
