/* Tests of the dashboard's pure checks (server/web.c, server/api_history.c): which static paths
 * may be served and with which content type, and the history cursor's round trip and refusals. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "server/api_history.h"
#include "server/web.h"
#include "testutil.h"

START_TEST(plain_paths_are_served) {
    const char *ok[] = {"/", "/index.html", "/app.js", "/pages/job.js",
                        "/vendor/uplot/uPlot.iife.min.js", "/a-b_c.d.css"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ck_assert_msg(cv_web_path_ok(ok[i]), "%s refused", ok[i]);
}
END_TEST

START_TEST(paths_that_could_leave_the_root_are_refused) {
    const char *bad[] = {"",           "index.html",    "/..",        "/../caviar.db",
                         "/a/../b.js", "/./app.js",     "/.hidden.js", "/a//b.js",
                         "/a/",        "/%2e%2e/x.js",  "/a\\b.js",   "/a b.js",
                         "/a?b.js",    "/vendor/uplot/../../../caviar.db"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!cv_web_path_ok(bad[i]), "%s accepted", bad[i]);
}
END_TEST

START_TEST(content_types_follow_the_extension) {
    ck_assert_str_eq(cv_web_content_type("/"), "text/html; charset=utf-8");
    ck_assert_str_eq(cv_web_content_type("/index.html"), "text/html; charset=utf-8");
    ck_assert_str_eq(cv_web_content_type("/pages/job.js"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(cv_web_content_type("/style.css"), "text/css; charset=utf-8");
    ck_assert_str_eq(cv_web_content_type("/vendor/uplot/uPlot.min.css"),
                     "text/css; charset=utf-8");
    ck_assert_ptr_null(cv_web_content_type("/caviar.db"));
    ck_assert_ptr_null(cv_web_content_type("/metrics"));
    ck_assert_ptr_null(cv_web_content_type("/a.js/b"));
    ck_assert_ptr_null(cv_web_content_type("/v1.js/x"));
}
END_TEST

START_TEST(a_cursor_round_trips_exactly) {
    const double times[] = {1796304016.163328, 0.0, 1e-300, 1796304016.1633281};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char text[48];
        double t = NAN;
        int64_t id = -1;
        cv_history_cursor_format(times[i], (int64_t)i * 1000003, text, sizeof text);
        ck_assert_int_eq(cv_history_cursor_parse(text, &t, &id), 0);
        ck_assert(memcmp(&t, &times[i], sizeof t) == 0);
        ck_assert_int_eq(id, (int64_t)i * 1000003);
    }
    double t;
    int64_t id;
    ck_assert_int_eq(cv_history_cursor_parse("41dac45a4284cdcc.8", &t, &id), 0);
    ck_assert_int_eq(id, 8);
}
END_TEST

START_TEST(other_words_are_not_cursors) {
    const char *bad[] = {"",
                         "17",
                         "41dac45a4284cdcc",
                         "41dac45a4284cdcc.",
                         "41dac45a4284cdcc.-1",
                         "41dac45a4284cdcc.8x",
                         "41DAC45A4284CDCC.8",
                         "41dac45a4284cdc.8",
                         "7ff0000000000000.1", /* infinity */
                         "7ff8000000000000.1", /* NaN */
                         "41dac45a4284cdcc.99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double t = 0;
        int64_t id = 0;
        ck_assert_msg(cv_history_cursor_parse(bad[i], &t, &id) == -1, "%s accepted", bad[i]);
    }
}
END_TEST

static Suite *web_suite(void) {
    Suite *s = suite_create("web");
    TCase *paths = tcase_create("static paths");
    tcase_add_test(paths, plain_paths_are_served);
    tcase_add_test(paths, paths_that_could_leave_the_root_are_refused);
    tcase_add_test(paths, content_types_follow_the_extension);
    suite_add_tcase(s, paths);
    TCase *cursor = tcase_create("history cursor");
    tcase_add_test(cursor, a_cursor_round_trips_exactly);
    tcase_add_test(cursor, other_words_are_not_cursors);
    suite_add_tcase(s, cursor);
    return s;
}

CV_TEST_MAIN(web_suite)
