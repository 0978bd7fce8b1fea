/* Unit tests of the IDX reader (common/idx.c): exact values from raw and gzip files, and one
 * refusal per way a file can be wrong, each with the words its message must contain. The files
 * are written byte by byte here, so every expected value is known without the reader. */
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "common/dataset.h"
#include "common/err.h"
#include "testutil.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist/"

/* Three 2×3 images whose pixels are 0, 15, ..., 255 in file order, labelled 7, 0, 3. */
static const unsigned char PIXELS[18] = {0,   15,  30,  45,  60,  75,  90,  105, 120,
                                         135, 150, 165, 180, 195, 210, 225, 240, 255};
static const unsigned char LABELS[3] = {7, 0, 3};

static size_t put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

/* Writes an IDX image file: magic, count, rows, cols, then npix bytes of pix. */
static size_t make_images(unsigned char *buf, uint32_t magic, uint32_t count, uint32_t rows,
                          uint32_t cols, const unsigned char *pix, size_t npix) {
    size_t len = put_be32(buf, magic);
    len += put_be32(buf + len, count);
    len += put_be32(buf + len, rows);
    len += put_be32(buf + len, cols);
    memcpy(buf + len, pix, npix);
    return len + npix;
}

/* Writes an IDX label file: magic, count, then nlab bytes of lab. */
static size_t make_labels(unsigned char *buf, uint32_t magic, uint32_t count,
                          const unsigned char *lab, size_t nlab) {
    size_t len = put_be32(buf, magic);
    len += put_be32(buf + len, count);
    if (nlab) memcpy(buf + len, lab, nlab);
    return len + nlab;
}

/* Writes data gzip-compressed to a fresh temporary file named name. */
static void write_gz(char *path, const char *name, const void *data, size_t len) {
    cv_test_write_file(path, name, "", 0);
    gzFile gz = gzopen(path, "wb");
    ck_assert_ptr_nonnull(gz);
    ck_assert_int_eq(gzwrite(gz, data, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(gz), Z_OK);
}

/* Reads a whole file into buf (cap bytes) and returns its length. */
static size_t read_back(const char *path, unsigned char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t len = fread(buf, 1, cap, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_uint_lt(len, cap);
    return len;
}

/* The good label file for the three images. */
static void good_labels(char *path) {
    unsigned char buf[64];
    cv_test_write_file(path, "labels.idx", buf, make_labels(buf, 0x801, 3, LABELS, 3));
}

static void remove_files(const char *a, const char *b) {
    unlink(a);
    if (b) unlink(b);
}

static void assert_zeroed(const cv_dataset_t *ds) {
    ck_assert_ptr_null(ds->x);
    ck_assert_ptr_null(ds->y);
    ck_assert_uint_eq(ds->m, 0);
    ck_assert_uint_eq(ds->n, 0);
    ck_assert_int_eq(ds->owner, 0);
}

static void assert_three_images(const cv_dataset_t *ds) {
    ck_assert_uint_eq(ds->m, 3);
    ck_assert_uint_eq(ds->n, 6);
    ck_assert_int_eq(ds->height, 2);
    ck_assert_int_eq(ds->width, 3);
    ck_assert_int_eq(ds->classes, 8);
    ck_assert_int_eq(ds->owner, 1);
    for (int i = 0; i < 18; i++)
        ck_assert_float_eq(ds->x[i], (float)(15 * i));
    ck_assert_int_eq(ds->y[0], 7);
    ck_assert_int_eq(ds->y[1], 0);
    ck_assert_int_eq(ds->y[2], 3);
}

/* Loads and expects failure with code, checking the message holds the path and each word. */
static void expect_refusal(const char *images, const char *labels, int code, const char *path,
                           const char *word1, const char *word2) {
    cv_dataset_t ds;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_dataset_load_idx(&ds, images, labels, err), code);
    assert_zeroed(&ds);
    ck_assert_msg(strstr(err, path) != NULL, "no path in: %s", err);
    ck_assert_msg(strstr(err, word1) != NULL, "no \"%s\" in: %s", word1, err);
    if (word2) ck_assert_msg(strstr(err, word2) != NULL, "no \"%s\" in: %s", word2, err);
}

START_TEST(raw_files_load_exact_pixels_and_labels) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH], err[CV_ERRLEN] = "";
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    good_labels(labels);
    cv_dataset_t ds;
    ck_assert_int_eq(cv_dataset_load_idx(&ds, images, labels, err), CV_OK);
    assert_three_images(&ds);
    cv_dataset_finish(&ds);
    assert_zeroed(&ds);
    remove_files(images, labels);
}
END_TEST

START_TEST(images_without_a_label_file_load_unlabeled) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], err[CV_ERRLEN] = "";
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    cv_dataset_t ds;
    ck_assert_int_eq(cv_dataset_load_idx(&ds, images, NULL, err), CV_OK);
    ck_assert_uint_eq(ds.m, 3);
    ck_assert_uint_eq(ds.n, 6);
    ck_assert_int_eq(ds.classes, 0);
    for (int i = 0; i < 18; i++)
        ck_assert_float_eq(ds.x[i], (float)(15 * i));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ds.y[i], -1);
    cv_dataset_finish(&ds);
    remove_files(images, NULL);
}
END_TEST

START_TEST(gzip_files_load_the_same_values) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH], err[CV_ERRLEN] = "";
    write_gz(images, "images.gz", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    write_gz(labels, "labels.gz", buf, make_labels(buf, 0x801, 3, LABELS, 3));
    cv_dataset_t ds;
    ck_assert_int_eq(cv_dataset_load_idx(&ds, images, labels, err), CV_OK);
    assert_three_images(&ds);
    cv_dataset_finish(&ds);
    remove_files(images, labels);
}
END_TEST

START_TEST(gzip_images_with_raw_labels_load) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH], err[CV_ERRLEN] = "";
    write_gz(images, "images.gz", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    good_labels(labels);
    cv_dataset_t ds;
    ck_assert_int_eq(cv_dataset_load_idx(&ds, images, labels, err), CV_OK);
    assert_three_images(&ds);
    cv_dataset_finish(&ds);
    remove_files(images, labels);
}
END_TEST

START_TEST(all_zero_labels_still_give_two_classes) {
    unsigned char buf[64];
    const unsigned char zeros[3] = {0, 0, 0};
    char images[CV_TEST_PATH], labels[CV_TEST_PATH], err[CV_ERRLEN] = "";
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    cv_test_write_file(labels, "labels.idx", buf, make_labels(buf, 0x801, 3, zeros, 3));
    cv_dataset_t ds;
    ck_assert_int_eq(cv_dataset_load_idx(&ds, images, labels, err), CV_OK);
    ck_assert_int_eq(ds.classes, 2);
    cv_dataset_finish(&ds);
    remove_files(images, labels);
}
END_TEST

START_TEST(wrong_magic_is_refused_showing_what_was_found) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    cv_test_write_file(images, "images.idx", buf,
                       make_images(buf, 0x12345678, 3, 2, 3, PIXELS, 18));
    good_labels(labels);
    expect_refusal(images, labels, CV_EFORMAT, images, "magic 0x12345678", "expected 0x00000803");
    remove_files(images, labels);
}
END_TEST

START_TEST(wrong_element_type_is_refused) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    /* 0x0D is the IDX code for 4-byte floats. */
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0xD03, 3, 2, 3, PIXELS, 18));
    good_labels(labels);
    expect_refusal(images, labels, CV_EFORMAT, images, "element type 0x0d", "unsigned byte");
    remove_files(images, labels);
}
END_TEST

START_TEST(wrong_dimension_count_is_refused) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    good_labels(labels);
    /* A label file (1-D) passed as the images. */
    expect_refusal(labels, labels, CV_EFORMAT, labels, "1 dimensions", "expected 3");
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    /* An image file (3-D) passed as the labels. */
    expect_refusal(images, images, CV_EFORMAT, images, "3 dimensions", "expected 1");
    remove_files(images, labels);
}
END_TEST

START_TEST(truncated_header_is_refused) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    size_t len = make_images(buf, 0x803, 3, 2, 3, PIXELS, 0);
    cv_test_write_file(images, "images.idx", buf, len - 2);
    good_labels(labels);
    expect_refusal(images, labels, CV_EFORMAT, images, "truncated IDX images header",
                   "expected 16 bytes, read 14");
    remove_files(images, labels);
}
END_TEST

START_TEST(truncated_images_are_refused_with_expected_and_read_sizes) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 15));
    good_labels(labels);
    expect_refusal(images, labels, CV_EFORMAT, images, "expected 18 bytes", "read 15");
    expect_refusal(images, labels, CV_EFORMAT, images, "truncated", "2 whole images");
    remove_files(images, labels);
}
END_TEST

START_TEST(truncated_gzip_images_are_refused) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    write_gz(images, "images.gz", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 15));
    good_labels(labels);
    expect_refusal(images, labels, CV_EFORMAT, images, "expected 18 bytes", "read 15");
    remove_files(images, labels);
}
END_TEST

START_TEST(gzip_stream_cut_short_is_refused) {
    unsigned char buf[64], gz[256];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    write_gz(images, "images.gz", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    size_t len = read_back(images, gz, sizeof gz);
    /* Drop the 8-byte trailer (CRC-32 and length): every pixel is there, the stream is not. */
    cv_test_write_file(images, "images.gz", gz, len - 8);
    good_labels(labels);
    expect_refusal(images, labels, CV_EFORMAT, images, "corrupt gzip stream", NULL);
    remove_files(images, labels);
}
END_TEST

START_TEST(gzip_stream_with_bad_checksum_is_refused) {
    unsigned char buf[64], gz[256];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    good_labels(labels);
    write_gz(images, "images.gz", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    size_t len = read_back(images, gz, sizeof gz);
    gz[len - 8] ^= 0xff; /* first byte of the CRC-32 */
    cv_test_write_file(images, "images.gz", gz, len);
    expect_refusal(images, labels, CV_EFORMAT, images, "corrupt gzip stream", NULL);
    remove_files(images, labels);
}
END_TEST

START_TEST(truncated_labels_are_refused_with_expected_and_read_counts) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    cv_test_write_file(labels, "labels.idx", buf, make_labels(buf, 0x801, 3, LABELS, 2));
    expect_refusal(images, labels, CV_EFORMAT, labels, "truncated label data",
                   "expected 3 labels, read 2");
    remove_files(images, labels);
}
END_TEST

START_TEST(image_and_label_counts_that_differ_are_refused) {
    unsigned char buf[64];
    const unsigned char four[4] = {1, 2, 3, 4};
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    cv_test_write_file(labels, "labels.idx", buf, make_labels(buf, 0x801, 4, four, 4));
    expect_refusal(images, labels, CV_EFORMAT, images, "3 images", "4 labels");
    remove_files(images, labels);
}
END_TEST

START_TEST(trailing_bytes_after_images_are_refused) {
    unsigned char buf[64], pix[19];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    memcpy(pix, PIXELS, 18);
    pix[18] = 9;
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0x803, 3, 2, 3, pix, 19));
    good_labels(labels);
    expect_refusal(images, labels, CV_EFORMAT, images, "trailing bytes", "images");
    remove_files(images, labels);
}
END_TEST

START_TEST(trailing_bytes_after_labels_are_refused) {
    unsigned char buf[64];
    const unsigned char four[4] = {7, 0, 3, 1};
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0x803, 3, 2, 3, PIXELS, 18));
    write_gz(labels, "labels.gz", buf, make_labels(buf, 0x801, 3, four, 4));
    expect_refusal(images, labels, CV_EFORMAT, labels, "trailing bytes", "labels");
    remove_files(images, labels);
}
END_TEST

START_TEST(absurd_image_count_is_refused_before_allocating) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    /* Only the header: the reader must refuse on the declared count alone. */
    cv_test_write_file(images, "images.idx", buf,
                       make_images(buf, 0x803, 4000000000u, 28, 28, PIXELS, 0));
    cv_test_write_file(labels, "labels.idx", buf, make_labels(buf, 0x801, 4000000000u, NULL, 0));
    expect_refusal(images, labels, CV_ERANGE, images, "4000000000 images", "limit");
    remove_files(images, labels);
}
END_TEST

START_TEST(absurd_image_size_is_refused_before_allocating) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    cv_test_write_file(images, "images.idx", buf,
                       make_images(buf, 0x803, 3, 65536, 65536, PIXELS, 0));
    good_labels(labels);
    expect_refusal(images, labels, CV_ERANGE, images, "65536x65536", NULL);
    remove_files(images, labels);
}
END_TEST

START_TEST(zero_images_are_refused) {
    unsigned char buf[64];
    char images[CV_TEST_PATH], labels[CV_TEST_PATH];
    cv_test_write_file(images, "images.idx", buf, make_images(buf, 0x803, 0, 2, 3, PIXELS, 0));
    cv_test_write_file(labels, "labels.idx", buf, make_labels(buf, 0x801, 0, NULL, 0));
    expect_refusal(images, labels, CV_EFORMAT, images, "0 images", NULL);
    remove_files(images, labels);
}
END_TEST

START_TEST(missing_file_is_an_io_error_naming_it) {
    char labels[CV_TEST_PATH];
    good_labels(labels);
    const char *missing = "/nonexistent/caviar/images.idx";
    expect_refusal(missing, labels, CV_EIO, missing, "No such file", NULL);
    remove_files(labels, NULL);
}
END_TEST

START_TEST(fashion_mnist_test_set_loads_when_present) {
    const char *images = FASHION_DIR "t10k-images-idx3-ubyte.gz";
    const char *labels = FASHION_DIR "t10k-labels-idx1-ubyte.gz";
    if (access(images, R_OK) != 0 || access(labels, R_OK) != 0) {
        fprintf(stderr, "skipped: %s not present\n", images);
        return;
    }
    cv_dataset_t ds;
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_dataset_load_idx(&ds, images, labels, err) == CV_OK, "%s", err);
    ck_assert_uint_eq(ds.m, 10000);
    ck_assert_uint_eq(ds.n, 784);
    ck_assert_int_eq(ds.height, 28);
    ck_assert_int_eq(ds.width, 28);
    ck_assert_int_eq(ds.classes, 10);
    /* Counted, not asserted per pixel: each Check assertion costs a message to the runner. */
    float lo = ds.x[0], hi = ds.x[0];
    size_t fractional = 0;
    for (size_t i = 0; i < ds.m * ds.n; i++) {
        if (ds.x[i] < lo) lo = ds.x[i];
        if (ds.x[i] > hi) hi = ds.x[i];
        fractional += ds.x[i] != (float)(int)ds.x[i];
    }
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_float_eq(hi, 255.0f);
    ck_assert_uint_eq(fractional, 0);
    /* The test set is balanced: 1000 examples of each class. */
    int per_class[10] = {0};
    for (size_t i = 0; i < ds.m; i++) {
        ck_assert_int_ge(ds.y[i], 0);
        ck_assert_int_lt(ds.y[i], 10);
        per_class[ds.y[i]]++;
    }
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(per_class[c], 1000);
    cv_dataset_finish(&ds);
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("idx");
    TCase *load = tcase_create("load");
    tcase_add_test(load, raw_files_load_exact_pixels_and_labels);
    tcase_add_test(load, images_without_a_label_file_load_unlabeled);
    tcase_add_test(load, gzip_files_load_the_same_values);
    tcase_add_test(load, gzip_images_with_raw_labels_load);
    tcase_add_test(load, all_zero_labels_still_give_two_classes);
    tcase_add_test(load, fashion_mnist_test_set_loads_when_present);
    suite_add_tcase(s, load);

    TCase *refuse = tcase_create("refuse");
    tcase_add_test(refuse, wrong_magic_is_refused_showing_what_was_found);
    tcase_add_test(refuse, wrong_element_type_is_refused);
    tcase_add_test(refuse, wrong_dimension_count_is_refused);
    tcase_add_test(refuse, truncated_header_is_refused);
    tcase_add_test(refuse, truncated_images_are_refused_with_expected_and_read_sizes);
    tcase_add_test(refuse, truncated_gzip_images_are_refused);
    tcase_add_test(refuse, gzip_stream_cut_short_is_refused);
    tcase_add_test(refuse, gzip_stream_with_bad_checksum_is_refused);
    tcase_add_test(refuse, truncated_labels_are_refused_with_expected_and_read_counts);
    tcase_add_test(refuse, image_and_label_counts_that_differ_are_refused);
    tcase_add_test(refuse, trailing_bytes_after_images_are_refused);
    tcase_add_test(refuse, trailing_bytes_after_labels_are_refused);
    tcase_add_test(refuse, absurd_image_count_is_refused_before_allocating);
    tcase_add_test(refuse, absurd_image_size_is_refused_before_allocating);
    tcase_add_test(refuse, zero_images_are_refused);
    tcase_add_test(refuse, missing_file_is_an_io_error_naming_it);
    suite_add_tcase(s, refuse);
    return s;
}

CV_TEST_MAIN(make_suite)
