/* Shared scaffolding for the Check unit tests: a main() that runs one suite and exits non-zero
 * when any check failed, and a temporary-directory helper for tests that write files. */
#ifndef CV_TESTUTIL_H
#define CV_TESTUTIL_H

#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Defines main() running the suite built by make_suite(); the process fails on any failure. */
#define CV_TEST_MAIN(make_suite)                                                                   \
    int main(void) {                                                                               \
        SRunner *sr = srunner_create(make_suite());                                                \
        srunner_run_all(sr, CK_NORMAL);                                                            \
        int failed = srunner_ntests_failed(sr);                                                    \
        srunner_free(sr);                                                                          \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                                          \
    }

/* Writes len bytes to a fresh file under the test's temporary directory and returns its path in
 * out (size CV_TEST_PATH). Aborts the test on failure. */
#define CV_TEST_PATH 512
static inline void cv_test_write_file(char *out, const char *name, const void *data, size_t len) {
    const char *dir = getenv("TMPDIR");
    snprintf(out, CV_TEST_PATH, "%s/caviar-test-%ld-%s", dir && *dir ? dir : "/tmp",
             (long)getpid(), name);
    FILE *f = fopen(out, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", out);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Allocation-failure tests of cJSON users: after cv_test_cjson_fail_after(k), cJSON's k-th
 * next allocation and every later one fail, until cv_test_cjson_restore(). cJSON's hooks are
 * process-wide, so the counter is too (one per test binary). */
static inline long *cv_test_cjson_allocs_left(void) {
    static long left = -1; /* negative: no allocation fails */
    return &left;
}

static inline void *cv_test_cjson_failing_malloc(size_t n) {
    long *left = cv_test_cjson_allocs_left();
    if (*left == 0) return NULL;
    if (*left > 0) (*left)--;
    return malloc(n);
}

static inline void cv_test_cjson_fail_after(long k) {
    cJSON_Hooks hooks = {cv_test_cjson_failing_malloc, free};
    cJSON_InitHooks(&hooks);
    *cv_test_cjson_allocs_left() = k;
}

static inline void cv_test_cjson_restore(void) {
    *cv_test_cjson_allocs_left() = -1;
    cJSON_InitHooks(NULL);
}

#endif
