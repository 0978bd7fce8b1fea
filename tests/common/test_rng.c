/* Tests of the explicit random number generator (common/rng.c): the exact xoshiro256** stream
 * that splitmix64 seeding gives, checked against values computed independently from the
 * published algorithms (splitmix64's own reference vector for seed 1234567 confirms that
 * computation), and the distributions every random choice in caviar relies on. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/rng.h"
#include "testutil.h"

START_TEST(seed_zero_gives_the_reference_xoshiro_stream) {
    cv_rng_t r;
    cv_rng_seed(&r, 0);
    ck_assert_uint_eq(cv_rng_next(&r), 0x99ec5f36cb75f2b4ULL);
    ck_assert_uint_eq(cv_rng_next(&r), 0xbf6e1f784956452aULL);
    ck_assert_uint_eq(cv_rng_next(&r), 0x1a5f849d4933e6e0ULL);
    ck_assert_uint_eq(cv_rng_next(&r), 0x6aa594f1262d2d2cULL);
}
END_TEST

START_TEST(seed_1234567_gives_its_stream_and_reseeding_repeats_it) {
    cv_rng_t a, b;
    cv_rng_seed(&a, 1234567);
    ck_assert_uint_eq(cv_rng_next(&a), 0x30a3a1c363600467ULL);
    ck_assert_uint_eq(cv_rng_next(&a), 0x19405f0f579929caULL);
    ck_assert_uint_eq(cv_rng_next(&a), 0x115beaac046ddbd9ULL);
    ck_assert_uint_eq(cv_rng_next(&a), 0xeb17caf48f27d7f6ULL);
    cv_rng_seed(&a, 99);
    cv_rng_seed(&b, 99);
    for (int i = 0; i < 1000; i++) ck_assert_uint_eq(cv_rng_next(&a), cv_rng_next(&b));
}
END_TEST

START_TEST(derived_seeds_are_deterministic_and_distinct_per_stream) {
    ck_assert_uint_eq(cv_rng_derive(7, 3), cv_rng_derive(7, 3));
    uint64_t seen[64];
    for (uint64_t s = 0; s < 64; s++) {
        seen[s] = cv_rng_derive(7, s);
        for (uint64_t t = 0; t < s; t++) ck_assert_uint_ne(seen[s], seen[t]);
        ck_assert_uint_ne(seen[s], cv_rng_derive(8, s));
    }
}
END_TEST

/* Chi-square of counts against equal expectations. */
static double chi_square(const long *counts, int bins, long n) {
    double expect = (double)n / bins, x2 = 0;
    for (int i = 0; i < bins; i++) x2 += (counts[i] - expect) * (counts[i] - expect) / expect;
    return x2;
}

START_TEST(uniform_draws_fill_ten_bins_evenly) {
    cv_rng_t r;
    cv_rng_seed(&r, 5);
    long counts[10] = {0}, countsf[10] = {0};
    const long n = 1000000;
    double sum = 0;
    for (long i = 0; i < n; i++) {
        double u = cv_rng_uniform(&r);
        float f = cv_rng_uniformf(&r);
        ck_assert(u >= 0 && u < 1);
        ck_assert(f >= 0 && f < 1);
        counts[(int)(u * 10)]++;
        countsf[(int)(f * 10)]++;
        sum += u;
    }
    /* 9 degrees of freedom: P(chi2 > 27.9) = 0.001. */
    ck_assert_double_lt(chi_square(counts, 10, n), 27.9);
    ck_assert_double_lt(chi_square(countsf, 10, n), 27.9);
    ck_assert_double_lt(fabs(sum / n - 0.5), 5 * sqrt(1.0 / 12 / n));
}
END_TEST

START_TEST(below_n_is_unbiased_and_never_reaches_n) {
    cv_rng_t r;
    cv_rng_seed(&r, 11);
    long counts[7] = {0};
    const long n = 700000;
    for (long i = 0; i < n; i++) {
        uint32_t k = cv_rng_below(&r, 7);
        ck_assert_uint_lt(k, 7);
        counts[k]++;
    }
    ck_assert_double_lt(chi_square(counts, 7, n), 22.5); /* 6 d.o.f., p = 0.001 */
    for (int i = 0; i < 100; i++) ck_assert_uint_eq(cv_rng_below(&r, 1), 0);
    /* The largest bound still splits evenly: the top bit is set half the time. */
    long top = 0;
    for (long i = 0; i < 100000; i++) top += cv_rng_below(&r, UINT32_MAX) >> 31;
    ck_assert_double_lt(fabs(top / 100000.0 - 0.5), 0.01);
}
END_TEST

START_TEST(normal_draws_have_mean_zero_and_variance_one) {
    cv_rng_t r;
    cv_rng_seed(&r, 3);
    const long n = 400000;
    double sum = 0, sq = 0;
    long within_one = 0;
    for (long i = 0; i < n; i++) {
        double z = cv_rng_normal(&r);
        sum += z;
        sq += z * z;
        within_one += fabs(z) < 1;
    }
    ck_assert_double_lt(fabs(sum / n), 5 / sqrt((double)n));
    ck_assert_double_lt(fabs(sq / n - 1), 5 * sqrt(2.0 / n));
    ck_assert_double_lt(fabs((double)within_one / n - 0.682689), 0.005); /* P(|Z| < 1) */
}
END_TEST

START_TEST(shuffle_is_a_permutation_repeatable_from_its_seed) {
    uint32_t a[100], b[100];
    for (uint32_t i = 0; i < 100; i++) a[i] = b[i] = i;
    cv_rng_t r, s;
    cv_rng_seed(&r, 21);
    cv_rng_seed(&s, 21);
    cv_rng_shuffle_u32(&r, a, 100);
    cv_rng_shuffle_u32(&s, b, 100);
    ck_assert_mem_eq(a, b, sizeof a);
    int seen[100] = {0}, moved = 0;
    for (uint32_t i = 0; i < 100; i++) {
        ck_assert_uint_lt(a[i], 100);
        ck_assert_int_eq(seen[a[i]]++, 0);
        moved += a[i] != i;
    }
    ck_assert_int_gt(moved, 80);
    /* Every one of the 6 orders of 3 items comes up about equally often. */
    long counts[6] = {0};
    for (long t = 0; t < 60000; t++) {
        uint32_t p[3] = {0, 1, 2};
        cv_rng_shuffle_u32(&r, p, 3);
        counts[p[0] * 2 + (p[1] > p[2])]++;
    }
    ck_assert_double_lt(chi_square(counts, 6, 60000), 20.5); /* 5 d.o.f., p = 0.001 */
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, seed_zero_gives_the_reference_xoshiro_stream);
    tcase_add_test(tc, seed_1234567_gives_its_stream_and_reseeding_repeats_it);
    tcase_add_test(tc, derived_seeds_are_deterministic_and_distinct_per_stream);
    tcase_add_test(tc, uniform_draws_fill_ten_bins_evenly);
    tcase_add_test(tc, below_n_is_unbiased_and_never_reaches_n);
    tcase_add_test(tc, normal_draws_have_mean_zero_and_variance_one);
    tcase_add_test(tc, shuffle_is_a_permutation_repeatable_from_its_seed);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(make_suite)
