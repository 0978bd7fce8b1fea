/* Unit tests of server/pruner_median.c: the decision epochs and their thinning, the median rule on
 * hand-worked sequences (values on a grid of 1/8 or 1/16, so every median is exact in binary),
 * min_trials, the exact threshold, stopped trials kept in later medians, repeated decisions,
 * replay after a restart at every point of a long asynchronous run, the description's bounds and
 * the settings' error messages. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "pruner_testutil.h"
#include "server/search.h"
#include "testutil.h"

static const cv_pruner_ops_t *const median = &cv_pruner_median;

/* Asserts the decision epochs of a trial of `epochs` epochs under settings: n_want of them,
 * first, first + step, ... */
static void epochs_are(const char *settings, int epochs, size_t n_want, int first, int step) {
    void *state = pruner_make(median, settings);
    int out[CV_SEARCH_MAX_RUNGS];
    size_t n = median->decision_epochs(state, epochs, out, CV_SEARCH_MAX_RUNGS);
    ck_assert_uint_eq(n, n_want);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(out[i], first + (int)i * step);
    median->destroy(state);
}

START_TEST(decision_epochs_run_from_warmup_every_interval_below_the_last_epoch) {
    epochs_are(NULL, 10, 9, 1, 1); /* 1..9 */
    epochs_are(NULL, 1, 0, 0, 0);
    epochs_are("{\"warmup_epochs\": 5, \"interval\": 5}", 30, 5, 5, 5); /* 5, 10, 15, 20, 25 */
    epochs_are("{\"warmup_epochs\": 5, \"interval\": 5}", 25, 4, 5, 5); /* 25 is the last */
    epochs_are("{\"warmup_epochs\": 5}", 5, 0, 0, 0);
    epochs_are("{\"warmup_epochs\": 5}", 6, 1, 5, 1);
}
END_TEST

START_TEST(more_than_the_cap_are_thinned_by_doubling_the_stride) {
    /* 33 epochs: 1..32 is exactly CV_SEARCH_MAX_RUNGS (32) decision epochs. */
    epochs_are(NULL, 33, 32, 1, 1);
    /* 34 epochs: 1..33 would be 33; stride 2 gives 1, 3, ..., 33, 17 of them. */
    epochs_are(NULL, 34, 17, 1, 2);
    /* 100 epochs: stride 1 gives 99, 2 gives 50, 4 gives 1, 5, ..., 97, 25 of them. */
    epochs_are(NULL, 100, 25, 1, 4);
    /* From 3 every 2 below 200: 3..199 is 99; stride 4 gives 50, 8 gives 3, 11, ..., 195: 25. */
    epochs_are("{\"warmup_epochs\": 3, \"interval\": 2}", 200, 25, 3, 8);
    /* 100,000 epochs: 99,999 decision epochs; stride 2048 gives 49, 4096 gives 25 (1..98305). */
    epochs_are(NULL, 100000, 25, 1, 4096);
}
END_TEST

START_TEST(decision_epochs_stop_at_cap) {
    void *state = pruner_make(median, NULL);
    int out[3];
    ck_assert_uint_eq(median->decision_epochs(state, 10, out, 3), 3);
    ck_assert_int_eq(out[0], 1);
    ck_assert_int_eq(out[2], 3);
    median->destroy(state);
}
END_TEST

START_TEST(fewer_than_min_trials_others_let_a_trial_go_on) {
    void *state = pruner_make(median, "{\"min_trials\": 3}");
    /* Trials 0, 1, 2 see 0, 1 and 2 others at epoch 1: too few to judge, even 0.875. */
    ck_assert_int_eq(median->decide(state, 0, 1, 0.125), 0);
    ck_assert_int_eq(median->decide(state, 1, 1, 0.25), 0);
    ck_assert_int_eq(median->decide(state, 2, 1, 0.875), 0);
    /* Trial 3 sees three, {0.125, 0.25, 0.875}, median 0.25: 0.875 is worse. */
    ck_assert_int_eq(median->decide(state, 3, 1, 0.875), 1);
    /* Epoch 2 has nobody yet: trial 0 goes on there whatever its value. */
    ck_assert_int_eq(median->decide(state, 0, 2, 100.0), 0);
    median->destroy(state);
}
END_TEST

START_TEST(a_value_equal_to_the_median_goes_on) {
    void *state = pruner_make(median, "{\"min_trials\": 3}");
    ck_assert_int_eq(median->decide(state, 0, 1, 0.125), 0);
    ck_assert_int_eq(median->decide(state, 1, 1, 0.375), 0);
    ck_assert_int_eq(median->decide(state, 2, 1, 0.625), 0);
    /* Others {0.125, 0.375, 0.625}: median 0.375, equal, not strictly worse. */
    ck_assert_int_eq(median->decide(state, 3, 1, 0.375), 0);
    /* Others {0.125, 0.375, 0.375, 0.625}: median (0.375 + 0.375)/2; the next double up stops. */
    ck_assert_int_eq(median->decide(state, 4, 1, nextafter(0.375, 1.0)), 1);
    median->destroy(state);
}
END_TEST

START_TEST(an_even_count_takes_the_mean_of_the_middle_two) {
    void *state = pruner_make(median, "{\"min_trials\": 4}");
    const double values[] = {0.25, 0.5, 0.75, 1.0};
    for (int t = 0; t < 4; t++)
        ck_assert_int_eq(median->decide(state, t, 1, values[t]), 0);
    /* Others {0.25, 0.5, 0.75, 1.0}: median (0.5 + 0.75)/2 = 0.625, equal: goes on. */
    ck_assert_int_eq(median->decide(state, 4, 1, 0.625), 0);
    /* Others {0.25, 0.5, 0.625, 0.75, 1.0}: median 0.625; 0.6875 is worse. */
    ck_assert_int_eq(median->decide(state, 5, 1, 0.6875), 1);
    median->destroy(state);
}
END_TEST

START_TEST(stopped_trials_stay_in_the_median) {
    void *state = pruner_make(median, "{\"min_trials\": 3}");
    ck_assert_int_eq(median->decide(state, 0, 1, 0.125), 0);
    ck_assert_int_eq(median->decide(state, 1, 1, 0.25), 0);
    ck_assert_int_eq(median->decide(state, 2, 1, 0.375), 0);
    /* Others {0.125, 0.25, 0.375}, median 0.25: 0.875 stops. */
    ck_assert_int_eq(median->decide(state, 3, 1, 0.875), 1);
    /* Others {0.125, 0.25, 0.375, 0.875}, median 0.3125: equal, goes on. Without the stopped
     * trial 3 the median would be 0.25 and it would stop. */
    ck_assert_int_eq(median->decide(state, 4, 1, 0.3125), 0);
    pruner_describe_is(median, state,
                       "{\"warmup_epochs\":1,\"min_trials\":3,\"interval\":1,\"rung_count\":1,"
                       "\"rungs\":[{\"epoch\":1,\"results\":5,\"promoted_count\":4,"
                       "\"promoted\":[0,1,2,4],\"stopped_count\":1,\"stopped\":[3]}]}");
    median->destroy(state);
}
END_TEST

START_TEST(epochs_off_the_schedule_are_not_judged_or_recorded) {
    void *state = pruner_make(median, "{\"warmup_epochs\": 2, \"interval\": 2, \"min_trials\": 1}");
    ck_assert_int_eq(median->decide(state, 0, 2, 0.125), 0); /* nobody else yet */
    /* Before warmup, or between decision epochs (2, 4, 6, ...): never judged, never recorded. */
    const int off[] = {-2, 0, 1, 3, 5, 7, 101};
    for (size_t i = 0; i < sizeof off / sizeof *off; i++) {
        ck_assert_int_eq(median->decide(state, 1, off[i], 9.0), 0);
        ck_assert_int_eq(median->replay(state, 1, off[i], 9.0, 1), 0);
    }
    pruner_describe_is(median, state,
                       "{\"warmup_epochs\":2,\"min_trials\":1,\"interval\":2,\"rung_count\":1,"
                       "\"rungs\":[{\"epoch\":2,\"results\":1,\"promoted_count\":1,"
                       "\"promoted\":[0],\"stopped_count\":0,\"stopped\":[]}]}");
    /* At epoch 2 trial 1 has one other, 0.125: 9 is worse. */
    ck_assert_int_eq(median->decide(state, 1, 2, 9.0), 1);
    median->destroy(state);
}
END_TEST

START_TEST(a_repeated_decision_returns_the_first_outcome_and_records_nothing) {
    void *state = pruner_make(median, "{\"min_trials\": 1}");
    ck_assert_int_eq(median->decide(state, 0, 1, 0.5), 0);
    ck_assert_int_eq(median->decide(state, 1, 1, 0.75), 1); /* others {0.5} */
    ck_assert_int_eq(median->decide(state, 1, 1, 0.125), 1);
    ck_assert_int_eq(median->decide(state, 0, 1, 0.0625), 0);
    /* Others {0.5, 0.75}, median 0.625: 0.625 goes on. Had the repeats been recorded, the
     * others {0.0625, 0.125, 0.5, 0.75} would have the median 0.3125 and it would stop. */
    ck_assert_int_eq(median->decide(state, 2, 1, 0.625), 0);
    pruner_describe_is(median, state,
                       "{\"warmup_epochs\":1,\"min_trials\":1,\"interval\":1,\"rung_count\":1,"
                       "\"rungs\":[{\"epoch\":1,\"results\":3,\"promoted_count\":2,"
                       "\"promoted\":[0,2],\"stopped_count\":1,\"stopped\":[1]}]}");
    median->destroy(state);
}
END_TEST

START_TEST(replay_records_the_outcome_given_without_judging) {
    void *state = pruner_make(median, "{\"min_trials\": 1}");
    /* Live, a first result goes on (nobody to compare with); a replayed stop stays a stop. */
    ck_assert_int_eq(median->replay(state, 0, 1, 0.5, 1), 0);
    ck_assert_int_eq(median->decide(state, 0, 1, 0.5), 1);
    /* The replayed value counts for others: 0.75 is worse than the median 0.5. */
    ck_assert_int_eq(median->decide(state, 1, 1, 0.75), 1);
    median->destroy(state);
}
END_TEST

START_TEST(restart_at_any_point_decides_as_live) {
    const char *settings = "{\"min_trials\": 3, \"interval\": 2}";
    void *state = pruner_make(median, settings);
    int epochs[CV_SEARCH_MAX_RUNGS];
    size_t n_epochs = median->decision_epochs(state, 12, epochs, CV_SEARCH_MAX_RUNGS);
    ck_assert_uint_eq(n_epochs, 6); /* 1, 3, 5, 7, 9, 11 */
    pruner_event_t ev[PRUNER_MAX_EVENTS];
    size_t n = pruner_run_live(median, state, 150, epochs, n_epochs, 5, ev);
    size_t n_stopped = 0, at_last = 0;
    for (size_t i = 0; i < n; i++) {
        n_stopped += (size_t)ev[i].stopped;
        at_last += ev[i].epoch == 11;
    }
    ck_assert_uint_gt(n_stopped, 0);
    ck_assert_uint_gt(n - n_stopped, 0);
    ck_assert_uint_gt(at_last, 0);
    char *live = pruner_describe(median, state);
    median->destroy(state);
    pruner_check_restarts(median, settings, ev, n, live);
    cJSON_free(live);
}
END_TEST

START_TEST(the_description_lists_at_most_100_epochs) {
    /* One trial at epochs 1..150: 150 decision epochs with a result, the lowest 100 listed. */
    void *state = pruner_make(median, NULL);
    for (int e = 150; e >= 1; e--)
        ck_assert_int_eq(median->decide(state, 0, e, 0.5), 0);
    cJSON *out = cJSON_CreateObject();
    ck_assert_int_eq(median->describe(state, out), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(out, "rung_count")->valueint, 150);
    const cJSON *rungs = cJSON_GetObjectItem(out, "rungs");
    ck_assert_int_eq(cJSON_GetArraySize(rungs), 100);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(rungs, 0), "epoch")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(rungs, 99), "epoch")->valueint, 100);
    cJSON_Delete(out);
    median->destroy(state);
}
END_TEST

START_TEST(default_settings) {
    const char *want = "{\"warmup_epochs\":1,\"min_trials\":5,\"interval\":1,\"rung_count\":0,"
                       "\"rungs\":[]}";
    void *state = pruner_make(median, NULL);
    pruner_describe_is(median, state, want);
    median->destroy(state);
    state = pruner_make(median, "{}");
    pruner_describe_is(median, state, want);
    median->destroy(state);
    ck_assert_ptr_eq(cv_search_pruner("median"), &cv_pruner_median);
}
END_TEST

/* Asserts that settings are refused with code and exactly the message want. */
static void refused(const char *settings, int code, const char *want) {
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(pruner_refuses(median, settings, err), code);
    ck_assert_str_eq(err, want);
}

START_TEST(bad_settings_are_refused_naming_the_field) {
    refused("{\"interval\": 0}", CV_ERANGE,
            "search.median.interval: must be an integer in [1, 100000], got 0");
    refused("{\"warmup_epochs\": 0}", CV_ERANGE,
            "search.median.warmup_epochs: must be an integer in [1, 100000], got 0");
    refused("{\"warmup_epochs\": 1.5}", CV_EINVAL,
            "search.median.warmup_epochs: must be an integer, got 1.5");
    refused("{\"min_trials\": 0}", CV_ERANGE,
            "search.median.min_trials: must be an integer in [1, 100000], got 0");
    refused("{\"min_trials\": 100001}", CV_ERANGE,
            "search.median.min_trials: must be an integer in [1, 100000], got 100001");
    refused("{\"min_trials\": null}", CV_EINVAL,
            "search.median.min_trials: must be an integer, got null");
    refused("{\"min_trial\": 3}", CV_EINVAL,
            "search.median: unknown field \"min_trial\" (did you mean \"min_trials\"?)");
    refused("{\"eta\": 3}", CV_EINVAL, "search.median: unknown field \"eta\"");
    refused("\"fast\"", CV_EINVAL, "search.median: must be an object, got string");
}
END_TEST

static Suite *pruner_median_suite(void) {
    Suite *s = suite_create("pruner_median");
    TCase *epochs = tcase_create("epochs");
    tcase_add_test(epochs, decision_epochs_run_from_warmup_every_interval_below_the_last_epoch);
    tcase_add_test(epochs, more_than_the_cap_are_thinned_by_doubling_the_stride);
    tcase_add_test(epochs, decision_epochs_stop_at_cap);
    suite_add_tcase(s, epochs);

    TCase *decide = tcase_create("decide");
    tcase_add_test(decide, fewer_than_min_trials_others_let_a_trial_go_on);
    tcase_add_test(decide, a_value_equal_to_the_median_goes_on);
    tcase_add_test(decide, an_even_count_takes_the_mean_of_the_middle_two);
    tcase_add_test(decide, stopped_trials_stay_in_the_median);
    tcase_add_test(decide, epochs_off_the_schedule_are_not_judged_or_recorded);
    tcase_add_test(decide, a_repeated_decision_returns_the_first_outcome_and_records_nothing);
    tcase_add_test(decide, the_description_lists_at_most_100_epochs);
    suite_add_tcase(s, decide);

    TCase *replay = tcase_create("replay");
    tcase_add_test(replay, replay_records_the_outcome_given_without_judging);
    tcase_add_test(replay, restart_at_any_point_decides_as_live);
    tcase_set_timeout(replay, 30);
    suite_add_tcase(s, replay);

    TCase *settings = tcase_create("settings");
    tcase_add_test(settings, default_settings);
    tcase_add_test(settings, bad_settings_are_refused_naming_the_field);
    suite_add_tcase(s, settings);
    return s;
}

CV_TEST_MAIN(pruner_median_suite)
