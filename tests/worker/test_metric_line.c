/* Tests of the external trainers' metric-line parser (worker/metric_line.c): both forms of a
 * report and of the final line give exact values, other lines are the program's own, and every
 * broken metric line is refused naming its key and rule. */
#include <math.h>
#include <string.h>

#include "common/err.h"
#include "testutil.h"
#include "worker/metric_line.h"

static int parse(const char *line, cv_epoch_t *m, char *err) {
    err[0] = '\0';
    return cv_metric_line_parse(line, strlen(line), m, err);
}

static void refused(const char *line, int code, const char *reason) {
    char err[CV_ERRLEN];
    cv_epoch_t m;
    int rc = parse(line, &m, err);
    ck_assert_msg(rc == code, "%s: expected %d, got %d (%s)", line, code, rc, err);
    ck_assert_msg(strstr(err, reason) != NULL, "%s: reason \"%s\" lacks \"%s\"", line, err,
                  reason);
}

START_TEST(a_key_value_report_gives_every_metric_and_nan_for_the_rest) {
    char err[CV_ERRLEN];
    cv_epoch_t m;
    ck_assert_int_eq(parse("caviar: epoch=3 dev_error=0.125 dev_cost=0.3125 train_error=0.1 "
                           "train_cost=0.25", &m, err), CV_METRIC_EPOCH);
    ck_assert_int_eq(m.epoch, 3);
    ck_assert_double_eq(m.dev_error, 0.125);
    ck_assert_double_eq(m.dev_cost, 0.3125);
    ck_assert_double_eq(m.train_error, 0.1);
    ck_assert_double_eq(m.train_cost, 0.25);
    ck_assert(isnan(m.learning_rate) && isnan(m.seconds) && isnan(m.train_cost_reg) &&
              isnan(m.examples_per_second));
    /* tabs, a carriage return and the remaining keys */
    ck_assert_int_eq(parse("caviar:\tepoch=1e0\tdev_cost=-2.5 learning_rate=0.01 seconds=0 "
                           "examples_per_second=1500 train_cost_reg=3\r", &m, err),
                     CV_METRIC_EPOCH);
    ck_assert_int_eq(m.epoch, 1);
    ck_assert_double_eq(m.dev_cost, -2.5);
    ck_assert(isnan(m.dev_error));
    ck_assert_double_eq(m.learning_rate, 0.01);
    ck_assert_double_eq(m.seconds, 0);
    ck_assert_double_eq(m.examples_per_second, 1500);
    ck_assert_double_eq(m.train_cost_reg, 3);
}
END_TEST

START_TEST(a_json_report_and_both_final_lines_parse) {
    char err[CV_ERRLEN];
    cv_epoch_t m;
    ck_assert_int_eq(parse("caviar: {\"epoch\": 7, \"dev_error\": 0.5, \"dev_cost\": 1.5}", &m,
                           err), CV_METRIC_EPOCH);
    ck_assert_int_eq(m.epoch, 7);
    ck_assert_double_eq(m.dev_error, 0.5);
    ck_assert_double_eq(m.dev_cost, 1.5);
    ck_assert_int_eq(parse("caviar: final dev_error=0.25", &m, err), CV_METRIC_FINAL);
    ck_assert_int_eq(m.epoch, 0);
    ck_assert_double_eq(m.dev_error, 0.25);
    ck_assert_int_eq(parse("caviar: {\"final\": true, \"dev_cost\": 2, \"epoch\": 4}", &m, err),
                     CV_METRIC_FINAL);
    ck_assert_int_eq(m.epoch, 4);
    ck_assert_double_eq(m.dev_cost, 2);
    ck_assert_int_eq(parse("caviar: {\"final\": false, \"dev_cost\": 2, \"epoch\": 4}", &m, err),
                     CV_METRIC_EPOCH);
}
END_TEST

START_TEST(other_lines_are_the_programs_own) {
    char err[CV_ERRLEN];
    cv_epoch_t m;
    const char *lines[] = {"", "epoch=3 dev_error=0.1", " caviar: epoch=1 dev_error=0.1",
                           "Caviar: epoch=1", "caviar", "caviar epoch=1 dev_error=0.1",
                           "loss 0.3 caviar: epoch=1"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        ck_assert_int_eq(parse(lines[i], &m, err), CV_METRIC_NONE);
    /* not NUL-terminated: only len bytes are read */
    ck_assert_int_eq(cv_metric_line_parse("caviar: epoch=2 dev_error=0.5XXXX", 29, &m, err),
                     CV_METRIC_EPOCH);
    ck_assert_double_eq(m.dev_error, 0.5);
}
END_TEST

START_TEST(broken_metric_lines_are_refused_by_key_and_rule) {
    refused("caviar: dev_error=0.1", CV_EINVAL, "epoch: required in a report");
    refused("caviar: epoch=2", CV_EINVAL, "dev_error or dev_cost: at least one is required");
    refused("caviar: final train_error=0.1", CV_EINVAL, "dev_error or dev_cost");
    refused("caviar: epoch=0 dev_error=0.1", CV_ERANGE, "epoch: must be an integer from 1");
    refused("caviar: epoch=1.5 dev_error=0.1", CV_ERANGE, "epoch: must be an integer");
    refused("caviar: epoch=1000001 dev_error=0.1", CV_ERANGE, "epoch: must be an integer");
    refused("caviar: epoch=1 dev_error=1.5", CV_ERANGE, "dev_error: must be a number in [0, 1], "
            "got 1.5");
    refused("caviar: epoch=1 dev_error=nan", CV_EINVAL, "dev_error: must be a number in [0, 1]");
    refused("caviar: epoch=1 dev_cost=inf", CV_EINVAL, "dev_cost: must be a finite number");
    refused("caviar: epoch=1 dev_cost=1e999", CV_ERANGE, "dev_cost: must be a finite number");
    refused("caviar: epoch=1 dev_cost=0x10", CV_EINVAL, "dev_cost: must be a finite number");
    refused("caviar: epoch=1 dev_cost=1 learning_rate=0", CV_ERANGE, "learning_rate: must be a "
            "number > 0");
    refused("caviar: epoch=1 dev_cost=1 seconds=-1", CV_ERANGE, "seconds: must be a number >= 0");
    refused("caviar: epoch=1 dev_cost=1 dev_cost=2", CV_EINVAL, "dev_cost: given twice");
    refused("caviar: epoch=1 accuracy=0.9", CV_EINVAL, "accuracy: unknown key");
    refused("caviar: epoch=1 dev_cost", CV_EINVAL, "'dev_cost': want key=value");
    refused("caviar: epoch=1 dev_cost=", CV_EINVAL, "dev_cost: must be a finite number, got ''");
    refused("caviar: {\"epoch\": 1, \"dev_cost\": \"1\"}", CV_EINVAL, "dev_cost: must be a finite");
    refused("caviar: {\"epoch\": 1, \"loss\": 1}", CV_EINVAL, "loss: unknown key");
    refused("caviar: {\"epoch\": 1, \"dev_cost\": 1, \"final\": 1}", CV_EINVAL,
            "final: must be true or false");
    refused("caviar: {\"epoch\": 1", CV_EINVAL, "not a JSON object");
    refused("caviar: [1, 2]", CV_EINVAL, "want key=value");
    char err[CV_ERRLEN];
    cv_epoch_t m;
    ck_assert_int_eq(cv_metric_line_parse("caviar: epoch=1\0dev_cost=1", 26, &m, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "NUL byte"));
    static char longline[CV_METRIC_LINE_MAX + 2];
    memset(longline, ' ', sizeof longline - 1);
    memcpy(longline, "caviar: epoch=1 dev_cost=1", 26);
    ck_assert_int_eq(cv_metric_line_parse(longline, CV_METRIC_LINE_MAX, &m, err), CV_METRIC_EPOCH);
    ck_assert_int_eq(cv_metric_line_parse(longline, CV_METRIC_LINE_MAX + 1, &m, err), CV_ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "at most 4096 bytes"));
}
END_TEST

static Suite *metric_line_suite(void) {
    Suite *s = suite_create("metric_line");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, a_key_value_report_gives_every_metric_and_nan_for_the_rest);
    tcase_add_test(tc, a_json_report_and_both_final_lines_parse);
    tcase_add_test(tc, other_lines_are_the_programs_own);
    tcase_add_test(tc, broken_metric_lines_are_refused_by_key_and_rule);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(metric_line_suite)
