/* Tests of the ask/tell request bodies (server/ask_body.c): what each parser accepts, the values
 * it reads, and the reason naming the field for each refusal. */
#include <math.h>
#include <string.h>

#include "server/ask_body.h"
#include "testutil.h"

#define LEASE "0123456789abcdef0123456789abcdef"

/* Asserts that parse refuses text with a reason containing want. */
#define REFUSED(parse, out, text, want)                                                            \
    do {                                                                                           \
        char err_[CV_ERRLEN] = "";                                                                 \
        ck_assert_int_ne(parse(text, strlen(text), out, err_), 0);                                 \
        ck_assert_msg(strstr(err_, want) != NULL, "%s: \"%s\" does not say \"%s\"", text, err_,    \
                      want);                                                                       \
    } while (0)

START_TEST(an_ask_names_its_client_or_nobody) {
    cv_ask_request_t a;
    char err[CV_ERRLEN];
    ck_assert_int_eq(cv_ask_parse_ask("", 0, &a, err), 0);
    ck_assert_str_eq(a.client, "");
    ck_assert_int_eq(cv_ask_parse_ask("{}", 2, &a, err), 0);
    ck_assert_str_eq(a.client, "");
    const char *named = "{\"client\": \"laptop 1\"}";
    ck_assert_int_eq(cv_ask_parse_ask(named, strlen(named), &a, err), 0);
    ck_assert_str_eq(a.client, "laptop 1");
    char longest[128];
    snprintf(longest, sizeof longest, "{\"client\": \"%064d\"}", 0);
    ck_assert_int_eq(cv_ask_parse_ask(longest, strlen(longest), &a, err), 0);
    ck_assert_int_eq((int)strlen(a.client), 64);
}
END_TEST

START_TEST(a_bad_ask_is_refused_by_field) {
    cv_ask_request_t a;
    char too_long[128];
    snprintf(too_long, sizeof too_long, "{\"client\": \"%065d\"}", 0);
    REFUSED(cv_ask_parse_ask, &a, too_long, "client: must be 1 to 64 printable");
    REFUSED(cv_ask_parse_ask, &a, "{\"client\": \"\"}", "client: must be 1 to 64 printable");
    REFUSED(cv_ask_parse_ask, &a, "{\"client\": \"a\\nb\"}", "client: must be");
    REFUSED(cv_ask_parse_ask, &a, "{\"client\": 7}", "client: must be");
    REFUSED(cv_ask_parse_ask, &a, "{\"clinet\": \"x\"}", "did you mean \"client\"");
    REFUSED(cv_ask_parse_ask, &a, "[]", "must be a JSON object");
    REFUSED(cv_ask_parse_ask, &a, "{\"client\": ", "");
}
END_TEST

START_TEST(a_report_reads_one_epoch) {
    cv_ask_report_t r;
    char err[CV_ERRLEN];
    const char *text =
        "{\"lease\": \"" LEASE "\", \"epoch\": 3, \"dev_error\": 0.12, \"dev_cost\": "
        "0.31, \"learning_rate\": 0.01}";
    ck_assert_int_eq(cv_ask_parse_report(text, strlen(text), &r, err), 0);
    ck_assert_str_eq(r.lease, LEASE);
    ck_assert_int_eq((int)r.epoch.epoch, 3);
    ck_assert_double_eq(r.epoch.dev_error, 0.12);
    ck_assert_double_eq(r.epoch.dev_cost, 0.31);
    ck_assert_double_eq(r.epoch.learning_rate, 0.01);
    ck_assert(isnan(r.epoch.train_error) && isnan(r.epoch.train_cost));
    ck_assert(isnan(r.epoch.seconds) && isnan(r.epoch.train_cost_reg));
}
END_TEST

START_TEST(a_bad_report_is_refused_by_field) {
    cv_ask_report_t r;
    REFUSED(cv_ask_parse_report, &r, "", "the body must be a JSON object");
    REFUSED(cv_ask_parse_report, &r, "{\"epoch\": 1, \"dev_error\": 0, \"dev_cost\": 0}",
            "lease: is required");
    REFUSED(cv_ask_parse_report, &r, "{\"lease\": \"0123\", \"epoch\": 1}",
            "lease: must be the 32");
    REFUSED(cv_ask_parse_report, &r,
            "{\"lease\": \"" LEASE "\", \"epoch\": 0, \"dev_error\": 0, \"dev_cost\": 0}",
            "epoch: must be an integer in [1, 100000], got 0");
    REFUSED(cv_ask_parse_report, &r, "{\"lease\": \"" LEASE "\", \"dev_error\": 0}",
            "epoch: is required");
    REFUSED(cv_ask_parse_report, &r, "{\"lease\": \"" LEASE "\", \"epoch\": 1, \"dev_cost\": 0}",
            "dev_error: is required");
    REFUSED(cv_ask_parse_report, &r,
            "{\"lease\": \"" LEASE "\", \"epoch\": 1, \"dev_error\": \"x\", \"dev_cost\": 0}",
            "dev_error: must be a number, got string");
    REFUSED(cv_ask_parse_report, &r,
            "{\"lease\": \"" LEASE "\", \"epoch\": 1, \"dev_error\": 0, \"dev_cost\": 0, "
            "\"learning_rate\": 0}",
            "learning_rate: must be");
    REFUSED(cv_ask_parse_report, &r,
            "{\"lease\": \"" LEASE "\", \"epoch\": 1, \"dev_error\": 0, \"dev_cost\": 0, "
            "\"dev_cost\": 1}",
            "dev_cost");
}
END_TEST

START_TEST(a_tell_is_completed_with_metrics_or_failed_with_a_reason) {
    cv_ask_tell_t t;
    char err[CV_ERRLEN];
    const char *done = "{\"lease\": \"" LEASE "\", \"status\": \"completed\", \"dev_error\": 0.1, "
                       "\"dev_cost\": 0.2, \"epoch\": 7}";
    ck_assert_int_eq(cv_ask_parse_tell(done, strlen(done), &t, err), 0);
    ck_assert_int_eq(t.failed, 0);
    ck_assert_double_eq(t.best.dev_error, 0.1);
    ck_assert_int_eq((int)t.best.epoch, 7);
    const char *failed = "{\"lease\": \"" LEASE "\", \"status\": \"failed\", \"error\": \"boom\"}";
    ck_assert_int_eq(cv_ask_parse_tell(failed, strlen(failed), &t, err), 0);
    ck_assert_int_eq(t.failed, 1);
    ck_assert_str_eq(t.error, "boom");
    ck_assert(isnan(t.best.dev_error));
    ck_assert_int_eq((int)t.best.epoch, 0);
}
END_TEST

START_TEST(a_bad_tell_is_refused_by_field) {
    cv_ask_tell_t t;
    REFUSED(cv_ask_parse_tell, &t, "{\"lease\": \"" LEASE "\"}", "status: is required");
    REFUSED(cv_ask_parse_tell, &t, "{\"lease\": \"" LEASE "\", \"status\": \"pruned\"}",
            "status: must be one of \"completed\", \"failed\"");
    REFUSED(cv_ask_parse_tell, &t, "{\"lease\": \"" LEASE "\", \"status\": \"failed\"}",
            "error: is required with status \"failed\"");
    REFUSED(cv_ask_parse_tell, &t,
            "{\"lease\": \"" LEASE "\", \"status\": \"failed\", \"error\": \"\"}",
            "error: must be a non-empty string");
    REFUSED(cv_ask_parse_tell, &t,
            "{\"lease\": \"" LEASE
            "\", \"status\": \"failed\", \"error\": \"x\", \"dev_error\": 1}",
            "dev_error: not taken with status \"failed\"");
    REFUSED(cv_ask_parse_tell, &t,
            "{\"lease\": \"" LEASE "\", \"status\": \"completed\", \"error\": \"x\"}",
            "error: taken only with status \"failed\"");
    REFUSED(cv_ask_parse_tell, &t,
            "{\"lease\": \"" LEASE "\", \"status\": \"completed\", \"dev_error\": 1}",
            "dev_cost: is required");
    REFUSED(cv_ask_parse_tell, &t,
            "{\"lease\": \"" LEASE "\", \"status\": \"completed\", \"dev_error\": 1, "
            "\"dev_cost\": 1, \"epoch\": 1.5}",
            "epoch: must be an integer");
}
END_TEST

static Suite *ask_body_suite(void) {
    Suite *s = suite_create("ask_body");
    TCase *ask = tcase_create("ask");
    tcase_add_test(ask, an_ask_names_its_client_or_nobody);
    tcase_add_test(ask, a_bad_ask_is_refused_by_field);
    suite_add_tcase(s, ask);
    TCase *report = tcase_create("report");
    tcase_add_test(report, a_report_reads_one_epoch);
    tcase_add_test(report, a_bad_report_is_refused_by_field);
    suite_add_tcase(s, report);
    TCase *tell = tcase_create("tell");
    tcase_add_test(tell, a_tell_is_completed_with_metrics_or_failed_with_a_reason);
    tcase_add_test(tell, a_bad_tell_is_refused_by_field);
    suite_add_tcase(s, tell);
    return s;
}

CV_TEST_MAIN(ask_body_suite)
