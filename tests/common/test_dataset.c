/* Unit tests of the dataset operations (common/dataset.c): views, the in-place shuffle, the
 * train/dev/test split, the normalizer and image augmentation. Expected values come from hand
 * computation or from a second, differently written derivation in the test. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/dataset.h"
#include "common/err.h"
#include "testutil.h"

/* An owned dataset of m rows whose row i is {i, 2i + 0.5, −i} with label i mod 5: feature 0
 * identifies the row, and the others tell whether the row travelled in one piece. */
static cv_dataset_t make_rows(size_t m) {
    cv_dataset_t ds = {.m = m, .n = 3, .classes = 5, .owner = 1};
    ds.x = malloc(m * 3 * sizeof *ds.x);
    ds.y = malloc(m * sizeof *ds.y);
    ck_assert_ptr_nonnull(ds.x);
    ck_assert_ptr_nonnull(ds.y);
    for (size_t i = 0; i < m; i++) {
        ds.x[3 * i] = (float)i;
        ds.x[3 * i + 1] = 2.0f * (float)i + 0.5f;
        ds.x[3 * i + 2] = -(float)i;
        ds.y[i] = (int32_t)(i % 5);
    }
    return ds;
}

/* Counts, in seen, the rows of v by their identifying feature; fails when a row is torn. */
static void tally_rows(const cv_dataset_t *v, int *seen, size_t m) {
    for (size_t r = 0; r < v->m; r++) {
        const float *x = v->x + 3 * r;
        size_t id = (size_t)x[0];
        ck_assert_uint_lt(id, m);
        ck_assert_float_eq(x[1], 2.0f * (float)id + 0.5f);
        ck_assert_float_eq(x[2], -(float)id);
        ck_assert_int_eq(v->y[r], (int32_t)(id % 5));
        seen[id]++;
    }
}

START_TEST(auto_split_below_a_million_is_60_20_20) {
    cv_split_fractions_t f = cv_split_auto(999999);
    ck_assert_double_eq(f.train, 0.6);
    ck_assert_double_eq(f.dev, 0.2);
    ck_assert_double_eq(f.test, 0.2);
}
END_TEST

START_TEST(auto_split_from_a_million_is_98_1_1) {
    cv_split_fractions_t f = cv_split_auto(1000000);
    ck_assert_double_eq(f.train, 0.98);
    ck_assert_double_eq(f.dev, 0.01);
    ck_assert_double_eq(f.test, 0.01);
}
END_TEST

START_TEST(split_sizes_round_train_and_dev_and_give_test_the_rest) {
    /* 10 · (0.6, 0.2) = (6, 2) → test 2; 7 · (0.6, 0.2) = (4.2, 1.4) → (4, 1) → test 2. */
    const size_t m[2] = {10, 7}, want[2][3] = {{6, 2, 2}, {4, 1, 2}};
    for (int k = 0; k < 2; k++) {
        cv_dataset_t all = make_rows(m[k]), train, dev, test;
        cv_rng_t rng;
        cv_rng_seed(&rng, 1);
        char err[CV_ERRLEN] = "";
        ck_assert_int_eq(
            cv_dataset_split(&all, cv_split_auto(m[k]), &rng, &train, &dev, &test, err), CV_OK);
        ck_assert_uint_eq(train.m, want[k][0]);
        ck_assert_uint_eq(dev.m, want[k][1]);
        ck_assert_uint_eq(test.m, want[k][2]);
        cv_dataset_finish(&all);
    }
}
END_TEST

START_TEST(split_views_borrow_consecutive_ranges_of_one_buffer) {
    cv_dataset_t all = make_rows(10), train, dev, test;
    cv_rng_t rng;
    cv_rng_seed(&rng, 2);
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_dataset_split(&all, cv_split_auto(10), &rng, &train, &dev, &test, err),
                     CV_OK);
    ck_assert_ptr_eq(train.x, all.x);
    ck_assert_ptr_eq(dev.x, all.x + 6 * 3);
    ck_assert_ptr_eq(test.x, all.x + 8 * 3);
    ck_assert_ptr_eq(dev.y, all.y + 6);
    ck_assert_ptr_eq(test.y, all.y + 8);
    ck_assert_int_eq(train.owner, 0);
    ck_assert_int_eq(dev.owner, 0);
    ck_assert_int_eq(test.owner, 0);
    ck_assert_int_eq(test.classes, 5);
    ck_assert_uint_eq(test.n, 3);
    /* Finishing a view releases nothing: all is still whole (ASan would see a double free). */
    cv_dataset_finish(&train);
    ck_assert_ptr_null(train.x);
    int seen[10] = {0};
    tally_rows(&all, seen, 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(seen[i], 1);
    cv_dataset_finish(&all);
}
END_TEST

START_TEST(split_partitions_the_rows_each_exactly_once) {
    const size_t m = 1000;
    cv_dataset_t all = make_rows(m), train, dev, test;
    cv_rng_t rng;
    cv_rng_seed(&rng, 3);
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_dataset_split(&all, cv_split_auto(m), &rng, &train, &dev, &test, err),
                     CV_OK);
    int *seen = calloc(m, sizeof *seen);
    ck_assert_ptr_nonnull(seen);
    tally_rows(&train, seen, m);
    tally_rows(&dev, seen, m);
    tally_rows(&test, seen, m);
    size_t once = 0, in_place = 0;
    for (size_t i = 0; i < m; i++) {
        once += seen[i] == 1;
        in_place += all.x[3 * i] == (float)i;
    }
    ck_assert_uint_eq(once, m);
    ck_assert_uint_lt(in_place, m / 10); /* it was shuffled: a random permutation fixes ~1 row */
    free(seen);
    cv_dataset_finish(&all);
}
END_TEST

START_TEST(same_seed_gives_the_same_split) {
    cv_dataset_t a = make_rows(200), b = make_rows(200), c = make_rows(200), tr, dv, te;
    cv_rng_t ra, rb, rc;
    cv_rng_seed(&ra, 42);
    cv_rng_seed(&rb, 42);
    cv_rng_seed(&rc, 43);
    char err[CV_ERRLEN] = "";
    cv_split_fractions_t f = {0.5, 0.25, 0.25};
    ck_assert_int_eq(cv_dataset_split(&a, f, &ra, &tr, &dv, &te, err), CV_OK);
    ck_assert_int_eq(cv_dataset_split(&b, f, &rb, &tr, &dv, &te, err), CV_OK);
    ck_assert_int_eq(cv_dataset_split(&c, f, &rc, &tr, &dv, &te, err), CV_OK);
    ck_assert_int_eq(memcmp(a.x, b.x, 200 * 3 * sizeof *a.x), 0);
    ck_assert_int_eq(memcmp(a.y, b.y, 200 * sizeof *a.y), 0);
    ck_assert_int_ne(memcmp(a.x, c.x, 200 * 3 * sizeof *a.x), 0);
    cv_dataset_finish(&a);
    cv_dataset_finish(&b);
    cv_dataset_finish(&c);
}
END_TEST

START_TEST(split_that_leaves_dev_empty_is_refused_without_shuffling) {
    /* 2 · 0.2 = 0.4 rounds to 0 dev rows. */
    cv_dataset_t all = make_rows(2), train, dev, test;
    cv_rng_t rng;
    cv_rng_seed(&rng, 4);
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_dataset_split(&all, cv_split_auto(2), &rng, &train, &dev, &test, err),
                     CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "0 for dev"));
    ck_assert_ptr_null(train.x);
    ck_assert_float_eq(all.x[0], 0.0f);
    ck_assert_float_eq(all.x[3], 1.0f);
    cv_dataset_finish(&all);
}
END_TEST

START_TEST(split_fractions_not_summing_to_one_are_refused) {
    cv_dataset_t all = make_rows(10), train, dev, test;
    cv_rng_t rng;
    cv_rng_seed(&rng, 5);
    char err[CV_ERRLEN] = "";
    cv_split_fractions_t f = {0.7, 0.2, 0.2};
    ck_assert_int_eq(cv_dataset_split(&all, f, &rng, &train, &dev, &test, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "sum to 1"));
    cv_dataset_finish(&all);
}
END_TEST

START_TEST(shuffle_moves_rows_whole_and_is_reproducible) {
    cv_dataset_t a = make_rows(50), b = make_rows(50);
    cv_rng_t ra, rb;
    cv_rng_seed(&ra, 6);
    cv_rng_seed(&rb, 6);
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_dataset_shuffle(&a, &ra, err), CV_OK);
    ck_assert_int_eq(cv_dataset_shuffle(&b, &rb, err), CV_OK);
    int seen[50] = {0};
    tally_rows(&a, seen, 50);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_int_eq(memcmp(a.x, b.x, 50 * 3 * sizeof *a.x), 0);
    size_t in_place = 0;
    for (size_t i = 0; i < 50; i++)
        in_place += a.x[3 * i] == (float)i;
    ck_assert_uint_lt(in_place, 10);
    cv_dataset_finish(&a);
    cv_dataset_finish(&b);
}
END_TEST

START_TEST(view_points_into_the_rows_it_names) {
    cv_dataset_t ds = make_rows(6);
    ds.height = 1;
    ds.width = 3;
    cv_dataset_t v = cv_dataset_view(&ds, 2, 3);
    ck_assert_ptr_eq(v.x, ds.x + 6);
    ck_assert_ptr_eq(v.y, ds.y + 2);
    ck_assert_uint_eq(v.m, 3);
    ck_assert_uint_eq(v.n, 3);
    ck_assert_int_eq(v.owner, 0);
    ck_assert_int_eq(v.width, 3);
    ck_assert_float_eq(v.x[0], 2.0f);
    cv_dataset_finish(&v);
    cv_dataset_finish(&ds);
    ck_assert_ptr_null(ds.x);
    cv_dataset_finish(NULL);
}
END_TEST

START_TEST(check_labels_names_the_first_label_out_of_range) {
    cv_dataset_t ds = make_rows(5); /* labels 0 1 2 3 4 */
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_dataset_check_labels(&ds, 5, err), CV_OK);
    ck_assert_int_eq(cv_dataset_check_labels(&ds, 3, err), CV_ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "example 3"));
    ck_assert_ptr_nonnull(strstr(err, "label 3"));
    ds.y[1] = -1;
    ck_assert_int_eq(cv_dataset_check_labels(&ds, 5, err), CV_ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "example 1"));
    cv_dataset_finish(&ds);
}
END_TEST

/* Train: feature 0 = {1, 2, 3, 4} (mean 2.5, σ² = 1.25), feature 1 = {10, 20, 30, 100}
 * (mean 40, σ² = (900 + 400 + 100 + 3600) / 4 = 1250), feature 2 constant 7.3. */
static const float TRAIN[12] = {1, 10, 7.3f, 2, 20, 7.3f, 3, 30, 7.3f, 4, 100, 7.3f};

static cv_dataset_t borrow(float *x, size_t m, size_t n, int32_t *y) {
    return (cv_dataset_t){.x = x, .y = y, .m = m, .n = n, .classes = 2};
}

START_TEST(normalized_train_features_have_mean_0_and_variance_1) {
    float x[12];
    int32_t y[4] = {0};
    memcpy(x, TRAIN, sizeof x);
    cv_dataset_t train = borrow(x, 4, 3, y);
    cv_normalizer_t norm;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_normalizer_fit(&norm, &train, err), CV_OK);
    ck_assert_uint_eq(norm.n, 3);
    ck_assert_float_eq(norm.mean[0], 2.5f);
    ck_assert_float_eq(norm.mean[1], 40.0f);
    ck_assert_float_eq_tol(norm.inv_std[0], 1.0f / sqrtf(1.25f), 1e-6f);
    ck_assert_float_eq_tol(norm.inv_std[1], 1.0f / sqrtf(1250.0f), 1e-8f);
    cv_normalizer_apply(&norm, &train);
    for (int j = 0; j < 2; j++) {
        double sum = 0, sq = 0;
        for (int i = 0; i < 4; i++)
            sum += x[3 * i + j];
        double mean = sum / 4;
        for (int i = 0; i < 4; i++)
            sq += (x[3 * i + j] - mean) * (x[3 * i + j] - mean);
        ck_assert_double_eq_tol(mean, 0.0, 1e-6);
        ck_assert_double_eq_tol(sq / 4, 1.0, 1e-6);
    }
    cv_normalizer_finish(&norm);
    ck_assert_ptr_null(norm.mean);
    cv_normalizer_finish(NULL);
}
END_TEST

START_TEST(dev_is_normalized_with_the_train_statistics) {
    float x[12];
    int32_t y[4] = {0};
    memcpy(x, TRAIN, sizeof x);
    cv_dataset_t train = borrow(x, 4, 3, y);
    cv_normalizer_t norm;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_normalizer_fit(&norm, &train, err), CV_OK);
    /* (5 − 2.5)/√1.25 = √5, (90 − 40)/√1250 = √2; a row at the train means maps to 0. Dev's
     * own statistics (mean 3.75, 65, 7.3) would give other values. */
    float dev_x[6] = {5, 90, 7.3f, 2.5f, 40, 7.3f};
    int32_t dev_y[2] = {0};
    cv_dataset_t dev = borrow(dev_x, 2, 3, dev_y);
    cv_normalizer_apply(&norm, &dev);
    ck_assert_float_eq_tol(dev_x[0], sqrtf(5.0f), 1e-6f);
    ck_assert_float_eq_tol(dev_x[1], sqrtf(2.0f), 1e-6f);
    ck_assert_float_eq(dev_x[2], 0.0f);
    ck_assert_float_eq(dev_x[3], 0.0f);
    ck_assert_float_eq(dev_x[4], 0.0f);
    cv_normalizer_finish(&norm);
}
END_TEST

START_TEST(constant_feature_maps_to_zero_without_nan) {
    float x[12];
    int32_t y[4] = {0};
    memcpy(x, TRAIN, sizeof x);
    cv_dataset_t train = borrow(x, 4, 3, y);
    cv_normalizer_t norm;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_normalizer_fit(&norm, &train, err), CV_OK);
    ck_assert_float_eq(norm.inv_std[2], 1.0f);
    cv_normalizer_apply(&norm, &train);
    for (int i = 0; i < 4; i++) {
        ck_assert(isfinite(x[3 * i + 2]));
        ck_assert_float_eq(x[3 * i + 2], 0.0f);
    }
    cv_normalizer_finish(&norm);
}
END_TEST

START_TEST(apply_rows_matches_apply) {
    float a[12], b[12];
    int32_t y[4] = {0};
    memcpy(a, TRAIN, sizeof a);
    memcpy(b, TRAIN, sizeof b);
    cv_dataset_t train = borrow(a, 4, 3, y);
    cv_normalizer_t norm;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_normalizer_fit(&norm, &train, err), CV_OK);
    cv_normalizer_apply(&norm, &train);
    cv_normalizer_apply_rows(&norm, b, 4);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    cv_normalizer_finish(&norm);
}
END_TEST

START_TEST(normalizer_refuses_an_empty_training_set) {
    cv_dataset_t empty = {.n = 3};
    cv_normalizer_t norm;
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_normalizer_fit(&norm, &empty, err), CV_EINVAL);
    ck_assert_ptr_null(norm.mean);
    ck_assert_ptr_null(norm.inv_std);
}
END_TEST

/* The 3×4 test image holds 1..12 row by row. */
static void fill_images(float *x, size_t rows) {
    for (size_t r = 0; r < rows; r++)
        for (int p = 0; p < 12; p++)
            x[r * 12 + p] = (float)(p + 1);
}

/* Forward map, the other way round from the library's: pixel (i, j) of src (mirrored first when
 * mirror is set) lands at (i + dy, j + dx); everything not landed on is fill. */
static void expected_shift(float *out, const float *src, int h, int w, int mirror, int dx, int dy,
                           float fill) {
    for (int p = 0; p < h * w; p++)
        out[p] = fill;
    for (int i = 0; i < h; i++) {
        for (int j = 0; j < w; j++) {
            int ti = i + dy, tj = (mirror ? w - 1 - j : j) + dx;
            if (ti >= 0 && ti < h && tj >= 0 && tj < w) out[ti * w + tj] = src[i * w + j];
        }
    }
}

START_TEST(flip_without_translation_mirrors_each_row_or_leaves_it) {
    /* [1 2 3; 4 5 6] mirrored left-right is [3 2 1; 6 5 4]. */
    const float orig[6] = {1, 2, 3, 4, 5, 6}, mirrored[6] = {3, 2, 1, 6, 5, 4};
    float x[64 * 6], scratch[6];
    for (int r = 0; r < 64; r++)
        memcpy(x + 6 * r, orig, sizeof orig);
    cv_rng_t rng;
    cv_rng_seed(&rng, 8);
    cv_augment_batch(x, 64, 2, 3, 1, 0, 0.0f, scratch, &rng);
    int same = 0, flipped = 0;
    for (int r = 0; r < 64; r++) {
        if (memcmp(x + 6 * r, orig, sizeof orig) == 0)
            same++;
        else if (memcmp(x + 6 * r, mirrored, sizeof mirrored) == 0)
            flipped++;
    }
    ck_assert_int_eq(same + flipped, 64);
    /* Each side has probability 2^-64 of never showing. */
    ck_assert_int_gt(same, 0);
    ck_assert_int_gt(flipped, 0);
}
END_TEST

START_TEST(no_flip_and_no_translation_leaves_the_batch_alone) {
    float x[4 * 12], scratch[12], want[4 * 12];
    fill_images(x, 4);
    memcpy(want, x, sizeof want);
    cv_rng_t rng;
    cv_rng_seed(&rng, 9);
    cv_augment_batch(x, 4, 3, 4, 0, 0, -1.0f, scratch, &rng);
    ck_assert_int_eq(memcmp(x, want, sizeof x), 0);
}
END_TEST

START_TEST(translation_is_a_shifted_copy_with_fill_in_the_vacated_border) {
    enum { ROWS = 300 };
    float *x = malloc(ROWS * 12 * sizeof *x), orig[12], want[12], scratch[12];
    ck_assert_ptr_nonnull(x);
    fill_images(x, ROWS);
    memcpy(orig, x, sizeof orig);
    cv_rng_t rng;
    cv_rng_seed(&rng, 10);
    cv_augment_batch(x, ROWS, 3, 4, 0, 1, -1.0f, scratch, &rng);
    int shifts_seen[3][3] = {{0}};
    for (int r = 0; r < ROWS; r++) {
        int matched = 0;
        for (int dy = -1; dy <= 1 && !matched; dy++) {
            for (int dx = -1; dx <= 1 && !matched; dx++) {
                expected_shift(want, orig, 3, 4, 0, dx, dy, -1.0f);
                if (memcmp(x + 12 * r, want, sizeof want) == 0) {
                    matched = 1;
                    shifts_seen[dy + 1][dx + 1]++;
                }
            }
        }
        ck_assert_msg(matched, "row %d is not a one-pixel shift of the image", r);
    }
    /* All nine shifts in [−1, 1]² occur (each is missed with probability (8/9)^300). */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            ck_assert_int_gt(shifts_seen[i][j], 0);
    free(x);
}
END_TEST

START_TEST(shift_right_by_one_fills_the_first_column) {
    /* Hand-derived anchor for expected_shift: [1..4; 5..8; 9..12] moved one column right. */
    const float orig[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const float want[12] = {0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11};
    float out[12];
    expected_shift(out, orig, 3, 4, 0, 1, 0, 0.0f);
    ck_assert_int_eq(memcmp(out, want, sizeof want), 0);
}
END_TEST

START_TEST(flip_and_translation_together_give_a_shifted_original_or_mirror) {
    enum { ROWS = 400 };
    float *x = malloc(ROWS * 12 * sizeof *x), orig[12], want[12], scratch[12];
    ck_assert_ptr_nonnull(x);
    fill_images(x, ROWS);
    memcpy(orig, x, sizeof orig);
    cv_rng_t rng;
    cv_rng_seed(&rng, 11);
    cv_augment_batch(x, ROWS, 3, 4, 1, 2, 0.5f, scratch, &rng);
    int mirrored_seen = 0;
    for (int r = 0; r < ROWS; r++) {
        int matched = 0;
        for (int mirror = 0; mirror <= 1 && !matched; mirror++) {
            for (int dy = -2; dy <= 2 && !matched; dy++) {
                for (int dx = -2; dx <= 2 && !matched; dx++) {
                    expected_shift(want, orig, 3, 4, mirror, dx, dy, 0.5f);
                    if (memcmp(x + 12 * r, want, sizeof want) == 0) {
                        matched = 1;
                        mirrored_seen += mirror;
                    }
                }
            }
        }
        ck_assert_msg(matched, "row %d is neither a shifted original nor a shifted mirror", r);
    }
    ck_assert_int_gt(mirrored_seen, 0);
    free(x);
}
END_TEST

START_TEST(augmentation_is_reproducible_by_seed) {
    float a[50 * 12], b[50 * 12], scratch[12];
    fill_images(a, 50);
    fill_images(b, 50);
    cv_rng_t ra, rb;
    cv_rng_seed(&ra, 12);
    cv_rng_seed(&rb, 12);
    cv_augment_batch(a, 50, 3, 4, 1, 1, 0.0f, scratch, &ra);
    cv_augment_batch(b, 50, 3, 4, 1, 1, 0.0f, scratch, &rb);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("dataset");
    TCase *split = tcase_create("split");
    tcase_add_test(split, auto_split_below_a_million_is_60_20_20);
    tcase_add_test(split, auto_split_from_a_million_is_98_1_1);
    tcase_add_test(split, split_sizes_round_train_and_dev_and_give_test_the_rest);
    tcase_add_test(split, split_views_borrow_consecutive_ranges_of_one_buffer);
    tcase_add_test(split, split_partitions_the_rows_each_exactly_once);
    tcase_add_test(split, same_seed_gives_the_same_split);
    tcase_add_test(split, split_that_leaves_dev_empty_is_refused_without_shuffling);
    tcase_add_test(split, split_fractions_not_summing_to_one_are_refused);
    tcase_add_test(split, shuffle_moves_rows_whole_and_is_reproducible);
    tcase_add_test(split, view_points_into_the_rows_it_names);
    tcase_add_test(split, check_labels_names_the_first_label_out_of_range);
    suite_add_tcase(s, split);

    TCase *norm = tcase_create("normalizer");
    tcase_add_test(norm, normalized_train_features_have_mean_0_and_variance_1);
    tcase_add_test(norm, dev_is_normalized_with_the_train_statistics);
    tcase_add_test(norm, constant_feature_maps_to_zero_without_nan);
    tcase_add_test(norm, apply_rows_matches_apply);
    tcase_add_test(norm, normalizer_refuses_an_empty_training_set);
    suite_add_tcase(s, norm);

    TCase *aug = tcase_create("augment");
    tcase_add_test(aug, flip_without_translation_mirrors_each_row_or_leaves_it);
    tcase_add_test(aug, no_flip_and_no_translation_leaves_the_batch_alone);
    tcase_add_test(aug, shift_right_by_one_fills_the_first_column);
    tcase_add_test(aug, translation_is_a_shifted_copy_with_fill_in_the_vacated_border);
    tcase_add_test(aug, flip_and_translation_together_give_a_shifted_original_or_mirror);
    tcase_add_test(aug, augmentation_is_reproducible_by_seed);
    suite_add_tcase(s, aug);
    return s;
}

CV_TEST_MAIN(make_suite)
