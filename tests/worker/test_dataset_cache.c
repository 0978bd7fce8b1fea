/* Tests of the worker's dataset cache (worker/dataset_cache.c) with real files in a temporary
 * directory: a local file is used only when its size and SHA-256 are the ones asked for, a
 * received file enters the cache under its hash only when its bytes have that hash, and the
 * next lookup finds it there. The expected digest of "abc" is the FIPS 180-2 test vector. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hash.h"
#include "testutil.h"
#include "worker/dataset_cache.h"

#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* A fresh directory for one test, removed (with everything in it) by rm_tree. */
static void make_tmp_dir(char *dir, size_t cap) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, cap, "%s/caviar-dcache-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm_tree(const char *dir) {
    char cmd[CV_DCACHE_PATH + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    ck_assert_int_eq(fclose(f), 0);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void read_text(const char *path, char *out, size_t cap) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

START_TEST(a_local_file_with_the_right_hash_is_used_where_it_is) {
    char dir[512], spec[600], path[CV_DCACHE_PATH];
    make_tmp_dir(dir, sizeof dir);
    snprintf(spec, sizeof spec, "%s/train.csv", dir);
    write_file(spec, "abc");
    cv_dcache_t c;
    cv_dcache_init(&c, NULL, NULL); /* no cache directory: nothing could be fetched */
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 3, spec, path), 1);
    ck_assert_str_eq(path, spec);
    rm_tree(dir);
}
END_TEST

START_TEST(a_local_file_with_another_hash_or_size_is_not_used) {
    char dir[512], spec[600], cache[600], path[CV_DCACHE_PATH], want[CV_DCACHE_PATH];
    make_tmp_dir(dir, sizeof dir);
    snprintf(spec, sizeof spec, "%s/train.csv", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    write_file(spec, "abd"); /* the right size, other bytes */
    cv_dcache_t c;
    cv_dcache_init(&c, cache, NULL);
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 3, spec, path), 0);
    snprintf(want, sizeof want, "%s/%s", cache, ABC_SHA256);
    ck_assert_str_eq(path, want); /* where it would be cached, not the spec's path */
    write_file(spec, "abcd");     /* another size: refused before hashing */
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 3, spec, path), 0);
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 3, "/nonexistent/train.csv", path), 0);
    ck_assert(!exists(cache)); /* looking creates nothing */
    rm_tree(dir);
}
END_TEST

START_TEST(a_fetched_file_is_stored_under_its_hash_and_found_next_time) {
    char dir[512], cache[600], path[CV_DCACHE_PATH], want[CV_DCACHE_PATH], text[16];
    make_tmp_dir(dir, sizeof dir);
    snprintf(cache, sizeof cache, "%s/deep/cache", dir); /* parents are created too */
    cv_dcache_t c;
    cv_dcache_init(&c, cache, NULL);
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 3, "/nonexistent/train.csv", path), 0);

    cv_dcache_fill_t fill;
    cv_dcache_fill_begin(&c, &fill, ABC_SHA256);
    ck_assert_str_eq(fill.failed, "");
    ck_assert(exists(fill.tmp));
    cv_dcache_fill_write(&fill, "a", 1);
    cv_dcache_fill_write(&fill, "bc", 2);
    ck_assert_int_eq(fill.have, 3);
    cv_dcache_fill_end(&c, &fill);
    ck_assert_str_eq(fill.failed, "");
    ck_assert(!exists(fill.tmp));
    snprintf(want, sizeof want, "%s/%s", cache, ABC_SHA256);
    read_text(want, text, sizeof text);
    ck_assert_str_eq(text, "abc");

    /* the next trial naming the same file finds it in the cache, wherever its spec says */
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 3, "/nonexistent/train.csv", path), 1);
    ck_assert_str_eq(path, want);
    /* but not when the trial says another size */
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 4, "/nonexistent/train.csv", path), 0);
    rm_tree(dir);
}
END_TEST

START_TEST(received_bytes_with_another_hash_are_not_cached) {
    char dir[512], want[CV_DCACHE_PATH], path[CV_DCACHE_PATH];
    make_tmp_dir(dir, sizeof dir);
    cv_dcache_t c;
    cv_dcache_init(&c, dir, NULL);
    cv_dcache_fill_t fill;
    cv_dcache_fill_begin(&c, &fill, ABC_SHA256);
    cv_dcache_fill_write(&fill, "abd", 3);
    cv_dcache_fill_end(&c, &fill);
    ck_assert_ptr_nonnull(strstr(fill.failed, "the 3 bytes received have SHA-256"));
    ck_assert_ptr_nonnull(strstr(fill.failed, "the file changed after the job was submitted"));
    ck_assert_int_eq(fill.failed_job, 1);
    snprintf(want, sizeof want, "%s/%s", dir, ABC_SHA256);
    ck_assert(!exists(want));
    ck_assert(!exists(fill.tmp));
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 3, "/nonexistent/train.csv", path), 0);
    rm_tree(dir);
}
END_TEST

START_TEST(a_cache_that_cannot_be_created_fails_the_fill_as_the_workers_fault) {
    char dir[512], blocker[600], cache[700];
    make_tmp_dir(dir, sizeof dir);
    snprintf(blocker, sizeof blocker, "%s/file", dir);
    write_file(blocker, "x");
    snprintf(cache, sizeof cache, "%s/cache", blocker); /* a directory inside a regular file */
    cv_dcache_t c;
    cv_dcache_init(&c, cache, NULL);
    cv_dcache_fill_t fill;
    cv_dcache_fill_begin(&c, &fill, ABC_SHA256);
    ck_assert_ptr_nonnull(strstr(fill.failed, "cannot create"));
    cv_dcache_fill_write(&fill, "abc", 3); /* counted, not kept */
    ck_assert_int_eq(fill.have, 3);
    cv_dcache_fill_end(&c, &fill);
    ck_assert_ptr_nonnull(strstr(fill.failed, "cannot create"));
    ck_assert_int_eq(fill.failed_job, 0);
    rm_tree(dir);
}
END_TEST

START_TEST(an_abandoned_fill_leaves_no_file) {
    char dir[512], want[CV_DCACHE_PATH];
    make_tmp_dir(dir, sizeof dir);
    cv_dcache_t c;
    cv_dcache_init(&c, dir, NULL);
    cv_dcache_fill_t fill;
    cv_dcache_fill_begin(&c, &fill, ABC_SHA256);
    cv_dcache_fill_write(&fill, "ab", 2);
    ck_assert(exists(fill.tmp));
    cv_dcache_fill_abandon(&fill);
    ck_assert(!exists(fill.tmp));
    snprintf(want, sizeof want, "%s/%s", dir, ABC_SHA256);
    ck_assert(!exists(want));
    rm_tree(dir);
}
END_TEST

/* Sets path's modification time to t seconds. */
static void set_mtime(const char *path, time_t t) {
    struct timespec times[2] = {{.tv_sec = t}, {.tv_sec = t}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
}

START_TEST(a_hash_is_remembered_while_size_and_mtime_stay_the_same) {
    char dir[512], spec[600], path[CV_DCACHE_PATH], xyz[CV_SHA256_HEX];
    make_tmp_dir(dir, sizeof dir);
    snprintf(spec, sizeof spec, "%s/train.csv", dir);
    cv_sha256_buffer("xyz", 3, xyz);
    cv_dcache_t c;
    cv_dcache_init(&c, NULL, NULL);
    write_file(spec, "abc");
    set_mtime(spec, 1000000000);
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 3, spec, path), 1);
    /* same size, same mtime: the remembered hash stands (the file is not read again) */
    write_file(spec, "xyz");
    set_mtime(spec, 1000000000);
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 3, spec, path), 1);
    ck_assert_int_eq(cv_dcache_find(&c, xyz, 3, spec, path), 0);
    /* a new mtime: the file is hashed again */
    set_mtime(spec, 1000000001);
    ck_assert_int_eq(cv_dcache_find(&c, ABC_SHA256, 3, spec, path), 0);
    ck_assert_int_eq(cv_dcache_find(&c, xyz, 3, spec, path), 1);
    rm_tree(dir);
}
END_TEST

static Suite *dataset_cache_suite(void) {
    Suite *s = suite_create("dataset_cache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, a_local_file_with_the_right_hash_is_used_where_it_is);
    tcase_add_test(tc, a_local_file_with_another_hash_or_size_is_not_used);
    tcase_add_test(tc, a_fetched_file_is_stored_under_its_hash_and_found_next_time);
    tcase_add_test(tc, received_bytes_with_another_hash_are_not_cached);
    tcase_add_test(tc, a_cache_that_cannot_be_created_fails_the_fill_as_the_workers_fault);
    tcase_add_test(tc, an_abandoned_fill_leaves_no_file);
    tcase_add_test(tc, a_hash_is_remembered_while_size_and_mtime_stay_the_same);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(dataset_cache_suite)
