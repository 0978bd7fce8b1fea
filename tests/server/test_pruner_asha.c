/* Unit tests of server/pruner_asha.c: the rung epochs, the top-1/η rule on hand-worked sequences
 * (ranks and ceilings written beside each decision), ties, repeated decisions, replay after a
 * restart at every point of a long asynchronous run, the description and its bounds, 100,000
 * trials at one rung, and the settings' error messages. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "pruner_testutil.h"
#include "server/search.h"
#include "testutil.h"

static const cv_pruner_ops_t *const asha = &cv_pruner_asha;

/* Asserts the decision epochs of a trial of `epochs` epochs under settings. */
static void rungs_are(const char *settings, int epochs, const int *want, size_t n_want) {
    void *state = pruner_make(asha, settings);
    int out[CV_SEARCH_MAX_RUNGS];
    size_t n = asha->decision_epochs(state, epochs, out, CV_SEARCH_MAX_RUNGS);
    ck_assert_uint_eq(n, n_want);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(out[i], want[i]);
    asha->destroy(state);
}

START_TEST(rungs_are_min_epochs_times_powers_of_eta_below_the_last_epoch) {
    /* 1·3^k for k = 0..3 is 1, 3, 9, 27; 81 is not below 40. */
    rungs_are("{\"min_epochs\": 1, \"eta\": 3}", 40, (const int[]){1, 3, 9, 27}, 4);
    /* 27 is the last epoch itself, never a decision point. */
    rungs_are("{\"min_epochs\": 1, \"eta\": 3}", 27, (const int[]){1, 3, 9}, 3);
    rungs_are("{\"min_epochs\": 1, \"eta\": 3}", 28, (const int[]){1, 3, 9, 27}, 4);
    /* 2·2^k: 2, 4, 8, 16 below 20. */
    rungs_are("{\"min_epochs\": 2, \"eta\": 2}", 20, (const int[]){2, 4, 8, 16}, 4);
    /* A trial no longer than the first rung is never judged. */
    rungs_are("{\"min_epochs\": 5}", 5, NULL, 0);
    rungs_are("{\"min_epochs\": 5}", 6, (const int[]){5}, 1);
    rungs_are(NULL, 1, NULL, 0);
    /* The most rungs a trial can have: 2^0 .. 2^16 below 100,000 epochs, 17 of them. */
    int powers[17];
    for (int k = 0; k < 17; k++)
        powers[k] = 1 << k;
    rungs_are("{\"eta\": 2}", 100000, powers, 17);
}
END_TEST

START_TEST(decision_epochs_stop_at_cap) {
    void *state = pruner_make(asha, NULL);
    int out[2];
    ck_assert_uint_eq(asha->decision_epochs(state, 40, out, 2), 2);
    ck_assert_int_eq(out[0], 1);
    ck_assert_int_eq(out[1], 3);
    asha->destroy(state);
}
END_TEST

/* The hand-worked sequence at rung 1 with η = 3. k counts the results with this one, the trial
 * goes on iff its rank ≤ ceil(k/3):
 *   trial 0: 0.5   k=1, ceil 1, rank 1                     → on
 *   trial 1: 0.4   k=2, ceil 1, rank 1 (none ≤ 0.4)         → on
 *   trial 2: 0.6   k=3, ceil 1, rank 3 (0.5, 0.4 ahead)     → stop
 *   trial 3: 0.3   k=4, ceil 2, rank 1                      → on
 *   trial 4: 0.45  k=5, ceil 2, rank 3 (0.4, 0.3 ahead)     → stop
 *   trial 5: 0.35  k=6, ceil 2, rank 2 (0.3 ahead)          → on
 *   trial 6: 0.7   k=7, ceil 3, rank 7                      → stop
 *   trial 7: 0.38  k=8, ceil 3, rank 3 (0.3, 0.35 ahead)    → on
 *   trial 8: 0.39  k=9, ceil 3, rank 4 (0.3, 0.35, 0.38)    → stop
 *   trial 9: 0.2   k=10, ceil 4, rank 1                     → on */
static const double rung1_values[] = {0.5, 0.4, 0.6, 0.3, 0.45, 0.35, 0.7, 0.38, 0.39, 0.2};
static const int rung1_stopped[] = {0, 0, 1, 0, 1, 0, 1, 0, 1, 0};

START_TEST(top_third_of_a_rung_goes_on) {
    void *state = pruner_make(asha, "{\"min_epochs\": 1, \"eta\": 3}");
    for (int t = 0; t < 10; t++)
        ck_assert_msg(asha->decide(state, t, 1, rung1_values[t]) == rung1_stopped[t], "trial %d",
                      t);
    pruner_describe_is(asha, state,
                       "{\"min_epochs\":1,\"eta\":3,\"rung_count\":1,\"rungs\":[{\"epoch\":1,"
                       "\"results\":10,\"promoted_count\":6,\"promoted\":[0,1,3,5,7,9],"
                       "\"stopped_count\":4,\"stopped\":[2,4,6,8]}]}");
    asha->destroy(state);
}
END_TEST

START_TEST(each_rung_is_judged_on_its_own_results) {
    void *state = pruner_make(asha, "{\"min_epochs\": 1, \"eta\": 3}");
    for (int t = 0; t < 10; t++)
        asha->decide(state, t, 1, rung1_values[t]);
    /* At rung 3, η = 3:
     *   trial 3: 0.25  k=1, ceil 1, rank 1 → on
     *   trial 1: 0.35  k=2, ceil 1, rank 2 → stop (trial 1 ranked first at rung 1)
     *   trial 0: 0.2   k=3, ceil 1, rank 1 → on */
    ck_assert_int_eq(asha->decide(state, 3, 3, 0.25), 0);
    ck_assert_int_eq(asha->decide(state, 1, 3, 0.35), 1);
    ck_assert_int_eq(asha->decide(state, 0, 3, 0.2), 0);
    pruner_describe_is(asha, state,
                       "{\"min_epochs\":1,\"eta\":3,\"rung_count\":2,\"rungs\":[{\"epoch\":1,"
                       "\"results\":10,\"promoted_count\":6,\"promoted\":[0,1,3,5,7,9],"
                       "\"stopped_count\":4,\"stopped\":[2,4,6,8]},{\"epoch\":3,\"results\":3,"
                       "\"promoted_count\":2,\"promoted\":[3,0],\"stopped_count\":1,"
                       "\"stopped\":[1]}]}");
    asha->destroy(state);
}
END_TEST

START_TEST(ties_go_to_the_earlier_result) {
    /* η = 2, rung 1:
     *   trial 0: 0.5  k=1, ceil 1, rank 1                          → on
     *   trial 1: 0.5  k=2, ceil 1, rank 2 (trial 0's equal 0.5 first) → stop
     *   trial 2: 0.5  k=3, ceil 2, rank 3                          → stop
     *   trial 3: 0.4  k=4, ceil 2, rank 1                          → on
     *   trial 4: 0.4  k=5, ceil 3, rank 2 (trial 3's 0.4 first)     → on
     *   trial 5: 0.4  k=6, ceil 3, rank 3                          → on
     *   trial 6: 0.4  k=7, ceil 4, rank 4                          → on
     *   trial 7: 0.4  k=8, ceil 4, rank 5                          → stop */
    void *state = pruner_make(asha, "{\"eta\": 2}");
    const double values[] = {0.5, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4};
    const int stopped[] = {0, 1, 1, 0, 0, 0, 0, 1};
    for (int t = 0; t < 8; t++)
        ck_assert_msg(asha->decide(state, t, 1, values[t]) == stopped[t], "trial %d", t);
    asha->destroy(state);
}
END_TEST

START_TEST(a_nan_ranks_below_every_number) {
    /* η = 2: trial 0's NaN goes on as the first; trial 1's 1e300 (k=2, ceil 1) ranks first
     * because the NaN counts as +inf; trial 2's +inf (k=3, ceil 2) ranks third, behind the
     * earlier NaN-as-inf. */
    void *state = pruner_make(asha, "{\"eta\": 2}");
    ck_assert_int_eq(asha->decide(state, 0, 1, NAN), 0);
    ck_assert_int_eq(asha->decide(state, 1, 1, 1e300), 0);
    ck_assert_int_eq(asha->decide(state, 2, 1, HUGE_VAL), 1);
    asha->destroy(state);
}
END_TEST

START_TEST(epochs_off_the_rungs_are_not_judged_or_recorded) {
    void *state = pruner_make(asha, "{\"min_epochs\": 2, \"eta\": 3}");
    /* The rungs are 2, 6, 18, ...: 1, 3, 4 and 0 are none of them. A value that would rank
     * last anywhere is let go on and leaves no trace. */
    const int off[] = {0, -1, 1, 3, 4, 5, 7, 12, 17, 19, 54 + 1};
    ck_assert_int_eq(asha->decide(state, 0, 2, 0.1), 0);
    for (size_t i = 0; i < sizeof off / sizeof *off; i++) {
        ck_assert_int_eq(asha->decide(state, 1, off[i], 9.0), 0);
        ck_assert_int_eq(asha->replay(state, 1, off[i], 9.0, 1), 0);
    }
    pruner_describe_is(asha, state,
                       "{\"min_epochs\":2,\"eta\":3,\"rung_count\":1,\"rungs\":[{\"epoch\":2,"
                       "\"results\":1,\"promoted_count\":1,\"promoted\":[0],"
                       "\"stopped_count\":0,\"stopped\":[]}]}");
    /* Trial 1 at rung 2 is then judged as the second result there: k=2, ceil 1, rank 2. */
    ck_assert_int_eq(asha->decide(state, 1, 2, 9.0), 1);
    asha->destroy(state);
}
END_TEST

START_TEST(a_repeated_decision_returns_the_first_outcome_and_records_nothing) {
    void *state = pruner_make(asha, "{\"eta\": 3}");
    ck_assert_int_eq(asha->decide(state, 0, 1, 0.5), 0);
    ck_assert_int_eq(asha->decide(state, 1, 1, 0.6), 1); /* k=2, ceil 1, rank 2 */
    /* Asked again, with values that would now judge otherwise: the first outcomes stand. */
    ck_assert_int_eq(asha->decide(state, 1, 1, 0.1), 1);
    ck_assert_int_eq(asha->decide(state, 0, 1, 0.9), 0);
    /* Trial 2 is the third result, not the fifth: k=3, ceil 1, rank 1 with 0.4 below both. */
    ck_assert_int_eq(asha->decide(state, 2, 1, 0.4), 0);
    pruner_describe_is(asha, state,
                       "{\"min_epochs\":1,\"eta\":3,\"rung_count\":1,\"rungs\":[{\"epoch\":1,"
                       "\"results\":3,\"promoted_count\":2,\"promoted\":[0,2],"
                       "\"stopped_count\":1,\"stopped\":[1]}]}");
    asha->destroy(state);
}
END_TEST

START_TEST(replay_records_the_outcome_given_without_judging) {
    void *state = pruner_make(asha, "{\"eta\": 3}");
    /* Live, the first result at a rung goes on; a replayed stop is kept as a stop. */
    ck_assert_int_eq(asha->replay(state, 0, 1, 0.5, 1), 0);
    ck_assert_int_eq(asha->decide(state, 0, 1, 0.5), 1);
    /* The replayed value counts in later ranks: 0.6 is k=2, ceil 1, rank 2. */
    ck_assert_int_eq(asha->decide(state, 1, 1, 0.6), 1);
    /* A second replay of the same trial and epoch keeps the first. */
    ck_assert_int_eq(asha->replay(state, 0, 1, 0.1, 0), 0);
    ck_assert_int_eq(asha->decide(state, 0, 1, 0.5), 1);
    asha->destroy(state);
}
END_TEST

START_TEST(hand_sequence_replayed_up_to_any_point_decides_as_live) {
    /* The ten results of top_third_of_a_rung_goes_on: replaying the first few with their
     * outcomes (the first five, say) and deciding the rest gives the live outcomes (for the last
     * five: on, stop, on, stop, on), whatever the split. */
    pruner_event_t ev[10];
    for (int t = 0; t < 10; t++)
        ev[t] = (pruner_event_t){t, 1, rung1_values[t], rung1_stopped[t]};
    pruner_check_restarts(asha, "{\"eta\": 3}", ev, 10,
                          "{\"min_epochs\":1,\"eta\":3,\"rung_count\":1,\"rungs\":[{\"epoch\":1,"
                          "\"results\":10,\"promoted_count\":6,\"promoted\":[0,1,3,5,7,9],"
                          "\"stopped_count\":4,\"stopped\":[2,4,6,8]}]}");
}
END_TEST

/* A restart at any point of an asynchronous run of 200 trials of 40 epochs changes no decision
 * and leaves the same rungs. */
static void check_restarts_of(const char *settings, int epochs, int lag) {
    void *state = pruner_make(asha, settings);
    int rungs[CV_SEARCH_MAX_RUNGS];
    size_t n_rungs = asha->decision_epochs(state, epochs, rungs, CV_SEARCH_MAX_RUNGS);
    pruner_event_t ev[PRUNER_MAX_EVENTS];
    size_t n = pruner_run_live(asha, state, 200, rungs, n_rungs, lag, ev);
    size_t n_stopped = 0, at_last = 0;
    for (size_t i = 0; i < n; i++) {
        n_stopped += (size_t)ev[i].stopped;
        at_last += ev[i].epoch == rungs[n_rungs - 1];
    }
    /* The run exercises both outcomes and reaches the last rung. */
    ck_assert_uint_gt(n_stopped, 0);
    ck_assert_uint_gt(n - n_stopped, 0);
    ck_assert_uint_gt(at_last, 0);
    char *live = pruner_describe(asha, state);
    asha->destroy(state);
    pruner_check_restarts(asha, settings, ev, n, live);
    cJSON_free(live);
}

START_TEST(restart_at_any_point_decides_as_live) {
    check_restarts_of("{\"min_epochs\": 1, \"eta\": 3}", 40, 7);
    check_restarts_of("{\"min_epochs\": 2, \"eta\": 2}", 20, 3);
}
END_TEST

START_TEST(a_hundred_thousand_trials_at_one_rung) {
    /* Ever worse values: trial t has rank t+1 among k = t+1 results, above ceil((t+1)/3) for
     * every t ≥ 1, so only trial 0 goes on. The lists stop at 100 numbers, the first judged. */
    void *state = pruner_make(asha, NULL);
    for (int t = 0; t < 100000; t++)
        ck_assert_int_eq(asha->decide(state, t, 1, (double)t), t == 0 ? 0 : 1);
    cJSON *out = cJSON_CreateObject();
    ck_assert_int_eq(asha->describe(state, out), 0);
    const cJSON *rung = cJSON_GetArrayItem(cJSON_GetObjectItem(out, "rungs"), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(rung, "results")->valueint, 100000);
    ck_assert_int_eq(cJSON_GetObjectItem(rung, "promoted_count")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(rung, "stopped_count")->valueint, 99999);
    const cJSON *stopped = cJSON_GetObjectItem(rung, "stopped");
    ck_assert_int_eq(cJSON_GetArraySize(stopped), 100);
    ck_assert_int_eq(cJSON_GetArrayItem(stopped, 0)->valueint, 1);
    ck_assert_int_eq(cJSON_GetArrayItem(stopped, 99)->valueint, 100);
    cJSON_Delete(out);
    /* Trial 100,000 with the best value yet: rank 1 of 100,001. */
    ck_assert_int_eq(asha->decide(state, 100000, 1, -1.0), 0);
    /* A repeat of a trial in the middle is found among them. */
    ck_assert_int_eq(asha->decide(state, 50000, 1, -2.0), 1);
    asha->destroy(state);
}
END_TEST

START_TEST(describe_reports_every_failed_allocation) {
    /* Each cJSON allocation that describe makes fails in turn: it returns CV_ENOMEM (and leaks
     * nothing, under the sanitizer build) until enough succeed for the whole description. */
    void *state = pruner_make(asha, NULL);
    for (int t = 0; t < 10; t++)
        asha->decide(state, t, 1, rung1_values[t]);
    int rc = CV_ENOMEM;
    long k = 0;
    for (; rc != 0; k++) {
        cJSON *out = cJSON_CreateObject();
        ck_assert_ptr_nonnull(out);
        cv_test_cjson_fail_after(k);
        rc = asha->describe(state, out);
        cv_test_cjson_restore();
        cJSON_Delete(out);
        ck_assert_msg(rc == 0 || rc == CV_ENOMEM, "allocation %ld: code %d", k, rc);
    }
    /* The two settings, rung_count, the rungs array, one rung object with six members and ten
     * trial numbers in its lists: at least 22 allocations, each of which was made to fail. */
    ck_assert_int_gt(k, 20);
    asha->destroy(state);
}
END_TEST

START_TEST(default_settings_are_min_epochs_1_and_eta_3) {
    void *state = pruner_make(asha, NULL);
    pruner_describe_is(asha, state, "{\"min_epochs\":1,\"eta\":3,\"rung_count\":0,\"rungs\":[]}");
    asha->destroy(state);
    state = pruner_make(asha, "{}");
    pruner_describe_is(asha, state, "{\"min_epochs\":1,\"eta\":3,\"rung_count\":0,\"rungs\":[]}");
    asha->destroy(state);
    ck_assert_ptr_eq(cv_search_pruner("asha"), &cv_pruner_asha);
}
END_TEST

/* Asserts that settings are refused with code and exactly the message want. */
static void refused(const char *settings, int code, const char *want) {
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(pruner_refuses(asha, settings, err), code);
    ck_assert_str_eq(err, want);
}

START_TEST(bad_settings_are_refused_naming_the_field) {
    refused("{\"eta\": 1}", CV_ERANGE, "search.asha.eta: must be an integer in [2, 10], got 1");
    refused("{\"eta\": 11}", CV_ERANGE, "search.asha.eta: must be an integer in [2, 10], got 11");
    refused("{\"eta\": 2.5}", CV_EINVAL, "search.asha.eta: must be an integer, got 2.5");
    refused("{\"eta\": \"3\"}", CV_EINVAL, "search.asha.eta: must be an integer, got string");
    refused("{\"min_epochs\": 0}", CV_ERANGE,
            "search.asha.min_epochs: must be an integer in [1, 100000], got 0");
    refused("{\"min_epochs\": 100001}", CV_ERANGE,
            "search.asha.min_epochs: must be an integer in [1, 100000], got 100001");
    refused("{\"etta\": 3}", CV_EINVAL,
            "search.asha: unknown field \"etta\" (did you mean \"eta\"?)");
    refused("{\"max_rungs\": 3}", CV_EINVAL, "search.asha: unknown field \"max_rungs\"");
    refused("{\"eta\": 3, \"eta\": 4}", CV_EINVAL, "search.asha: field \"eta\" given twice");
    refused("[1]", CV_EINVAL, "search.asha: must be an object, got array");
    refused("3", CV_EINVAL, "search.asha: must be an object, got number");
}
END_TEST

static Suite *pruner_asha_suite(void) {
    Suite *s = suite_create("pruner_asha");
    TCase *rungs = tcase_create("rungs");
    tcase_add_test(rungs, rungs_are_min_epochs_times_powers_of_eta_below_the_last_epoch);
    tcase_add_test(rungs, decision_epochs_stop_at_cap);
    suite_add_tcase(s, rungs);

    TCase *decide = tcase_create("decide");
    tcase_add_test(decide, top_third_of_a_rung_goes_on);
    tcase_add_test(decide, each_rung_is_judged_on_its_own_results);
    tcase_add_test(decide, ties_go_to_the_earlier_result);
    tcase_add_test(decide, a_nan_ranks_below_every_number);
    tcase_add_test(decide, epochs_off_the_rungs_are_not_judged_or_recorded);
    tcase_add_test(decide, a_repeated_decision_returns_the_first_outcome_and_records_nothing);
    tcase_add_test(decide, a_hundred_thousand_trials_at_one_rung);
    suite_add_tcase(s, decide);

    TCase *replay = tcase_create("replay");
    tcase_add_test(replay, replay_records_the_outcome_given_without_judging);
    tcase_add_test(replay, hand_sequence_replayed_up_to_any_point_decides_as_live);
    tcase_add_test(replay, restart_at_any_point_decides_as_live);
    tcase_set_timeout(replay, 30);
    suite_add_tcase(s, replay);

    TCase *settings = tcase_create("settings");
    tcase_add_test(settings, default_settings_are_min_epochs_1_and_eta_3);
    tcase_add_test(settings, describe_reports_every_failed_allocation);
    tcase_add_test(settings, bad_settings_are_refused_naming_the_field);
    suite_add_tcase(s, settings);
    return s;
}

CV_TEST_MAIN(pruner_asha_suite)
