/* Tests of dataset path confinement and refused output fields (server/paths.c) on a real tree of
 * temporary directories, files and symbolic links:
 *
 *   <tmp>/root/a.csv                 a dataset inside the first root
 *   <tmp>/root/sub/b.csv             one level down
 *   <tmp>/root/dir/                  a directory, not a dataset
 *   <tmp>/root/link_in  -> sub/b.csv           a link that stays inside
 *   <tmp>/root/link_out -> ../outside/secret.csv  a link that escapes
 *   <tmp>/root/dir_out  -> ../outside          a directory link that escapes
 *   <tmp>/root/dangling -> ../outside/nope.csv a dangling link that escapes
 *   <tmp>/root/fifo                  a named pipe nobody writes to
 *   <tmp>/rootx/c.csv                a sibling whose name extends the root's
 *   <tmp>/second/d.csv               inside the second root
 *   <tmp>/outside/secret.csv         outside every root
 *   <tmp>/rootlink -> root           the first root reached through a link
 *
 * The tree is built once per test case in the parent process and removed after it. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "server/paths.h"
#include "testutil.h"

#define BASE_MAX 1024             /* bytes of the tree's paths, which keeps format bounds known */
#define MSG_MAX  (PATH_MAX + 128) /* bytes of an expected reason */

static char tmp[BASE_MAX];      /* canonical path of the temporary tree */
static char root[BASE_MAX];     /* <tmp>/root */
static char second[BASE_MAX];   /* <tmp>/second */
static char rootlink[BASE_MAX]; /* <tmp>/rootlink */

static void make_file(const char *rel) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    FILE *f = fopen(path, "w");
    if (!f || fputs("x,label\n1,0\n", f) < 0 || fclose(f)) {
        perror(path);
        abort();
    }
}

static void make_dir(const char *rel) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    if (mkdir(path, 0755)) {
        perror(path);
        abort();
    }
}

static void make_link(const char *target, const char *rel) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    if (symlink(target, path)) {
        perror(path);
        abort();
    }
}

static void build_tree(void) {
    const char *dir = getenv("TMPDIR");
    char templ[PATH_MAX], abs[PATH_MAX];
    snprintf(templ, sizeof templ, "%.900s/caviar-paths-XXXXXX", dir && *dir ? dir : "/tmp");
    if (!mkdtemp(templ) || !realpath(templ, abs) || strlen(abs) >= 960) {
        perror(templ);
        abort();
    }
    memcpy(tmp, abs, strlen(abs) + 1);
    make_dir("root");
    make_dir("root/sub");
    make_dir("root/dir");
    make_dir("rootx");
    make_dir("second");
    make_dir("outside");
    make_file("root/a.csv");
    make_file("root/sub/b.csv");
    make_file("rootx/c.csv");
    make_file("second/d.csv");
    make_file("outside/secret.csv");
    make_link("sub/b.csv", "root/link_in");
    make_link("../outside/secret.csv", "root/link_out");
    make_link("../outside", "root/dir_out");
    make_link("../outside/nope.csv", "root/dangling");
    make_link("root", "rootlink");
    snprintf(root, sizeof root, "%.960s/root", tmp);
    snprintf(abs, sizeof abs, "%.960s/root/fifo", tmp);
    if (mkfifo(abs, 0600)) {
        perror(abs);
        abort();
    }
    snprintf(second, sizeof second, "%.960s/second", tmp);
    snprintf(rootlink, sizeof rootlink, "%.960s/rootlink", tmp);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(void) {
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Resolves given for "trial.dataset.csv" under roots; returns the code, fills out and err. */
static int resolve(const char *given, const char *const *roots, size_t n, char *out, char *err) {
    out[0] = err[0] = '\0';
    return cv_path_resolve_dataset("trial.dataset.csv", given, roots, n, out, PATH_MAX, err);
}

static void expect_inside(const char *given, const char *const *roots, size_t n,
                          const char *expected_rel) {
    char out[PATH_MAX], err[CV_ERRLEN], expected[PATH_MAX];
    snprintf(expected, sizeof expected, "%s/%s", tmp, expected_rel);
    ck_assert_msg(resolve(given, roots, n, out, err) == 0, "%s: %s", given, err);
    ck_assert_str_eq(out, expected);
}

static void expect_outside(const char *given, const char *const *roots, size_t n) {
    char out[PATH_MAX], err[CV_ERRLEN], expected[MSG_MAX];
    snprintf(expected, sizeof expected, "trial.dataset.csv: %s is outside the dataset roots",
             given);
    ck_assert_int_eq(resolve(given, roots, n, out, err), CV_EINVAL);
    ck_assert_str_eq(err, expected);
}

/* ---- cv_path_is_inside: a string comparison of canonical paths -------------------------- */

START_TEST(inside_compares_whole_components) {
    ck_assert_int_eq(cv_path_is_inside("/data", "/data"), 1);
    ck_assert_int_eq(cv_path_is_inside("/data/a.csv", "/data"), 1);
    ck_assert_int_eq(cv_path_is_inside("/data/x/y/z", "/data"), 1);
    ck_assert_int_eq(cv_path_is_inside("/database/a.csv", "/data"), 0);
    ck_assert_int_eq(cv_path_is_inside("/dat", "/data"), 0);
    ck_assert_int_eq(cv_path_is_inside("/etc/passwd", "/data"), 0);
    ck_assert_int_eq(cv_path_is_inside("/anything", "/"), 1);
    ck_assert_int_eq(cv_path_is_inside("relative/a.csv", "/"), 0);
    ck_assert_int_eq(cv_path_is_inside("/data/a", "data"), 0);
}
END_TEST

/* ---- without roots: unchanged behaviour ---------------------------------------------------- */

START_TEST(without_roots_any_existing_path_resolves) {
    char given[PATH_MAX];
    snprintf(given, sizeof given, "%s/root/../outside/secret.csv", tmp);
    expect_inside(given, NULL, 0, "outside/secret.csv");
    snprintf(given, sizeof given, "%s/root/link_out", tmp);
    expect_inside(given, NULL, 0, "outside/secret.csv");
    ck_assert_int_eq(chdir(root), 0); /* relative to the working directory */
    expect_inside("sub/b.csv", NULL, 0, "root/sub/b.csv");
}
END_TEST

START_TEST(without_roots_a_missing_relative_file_names_where_it_was_looked_for) {
    char out[PATH_MAX], err[CV_ERRLEN], expected[MSG_MAX], cwd[PATH_MAX];
    ck_assert_int_eq(chdir(tmp), 0);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    snprintf(expected, sizeof expected,
             "trial.dataset.csv: cannot open data/nope.csv (looked for %s/data/nope.csv): %s", cwd,
             strerror(ENOENT));
    ck_assert_int_eq(resolve("data/nope.csv", NULL, 0, out, err), CV_EINVAL);
    ck_assert_str_eq(err, expected);
}
END_TEST

START_TEST(without_roots_a_missing_file_cannot_be_opened) {
    char given[BASE_MAX + 64], out[PATH_MAX], err[CV_ERRLEN], expected[MSG_MAX];
    snprintf(given, sizeof given, "%s/nope.csv", tmp);
    snprintf(expected, sizeof expected, "trial.dataset.csv: cannot open %s: %s", given,
             strerror(ENOENT));
    ck_assert_int_eq(resolve(given, NULL, 0, out, err), CV_EINVAL);
    ck_assert_str_eq(err, expected);
}
END_TEST

/* ---- with roots ------------------------------------------------------------------------- */

START_TEST(relative_paths_resolve_against_the_first_root) {
    const char *roots[] = {root, second};
    ck_assert_int_eq(chdir(tmp), 0); /* the working directory plays no part */
    expect_inside("a.csv", roots, 2, "root/a.csv");
    expect_inside("sub/b.csv", roots, 2, "root/sub/b.csv");
    expect_inside("./sub/../a.csv", roots, 2, "root/a.csv");
    /* d.csv is in the second root, but a relative path means the first, where it is missing. */
    char out[PATH_MAX], err[CV_ERRLEN], expected[MSG_MAX], first[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(root, first));
    snprintf(expected, sizeof expected,
             "trial.dataset.csv: cannot open d.csv (looked for %s/d.csv): %s", first,
             strerror(ENOENT));
    ck_assert_int_eq(resolve("d.csv", roots, 2, out, err), CV_EINVAL);
    ck_assert_str_eq(err, expected);
}
END_TEST

START_TEST(absolute_paths_inside_any_root_are_accepted) {
    const char *roots[] = {root, second};
    char given[PATH_MAX];
    snprintf(given, sizeof given, "%s/a.csv", root);
    expect_inside(given, roots, 2, "root/a.csv");
    snprintf(given, sizeof given, "%s/d.csv", second);
    expect_inside(given, roots, 2, "second/d.csv");
}
END_TEST

START_TEST(dot_dot_escapes_are_refused) {
    const char *roots[] = {root};
    char given[PATH_MAX];
    expect_outside("../outside/secret.csv", roots, 1);
    expect_outside("sub/../../outside/secret.csv", roots, 1);
    snprintf(given, sizeof given, "%s/../outside/secret.csv", root);
    expect_outside(given, roots, 1);
}
END_TEST

START_TEST(absolute_paths_outside_are_refused) {
    const char *roots[] = {root};
    char given[PATH_MAX];
    snprintf(given, sizeof given, "%s/outside/secret.csv", tmp);
    expect_outside(given, roots, 1);
    snprintf(given, sizeof given, "%s/rootx/c.csv", tmp); /* shares the root's prefix */
    expect_outside(given, roots, 1);
    expect_outside("/etc/passwd", roots, 1);
}
END_TEST

START_TEST(symlink_escapes_are_refused) {
    const char *roots[] = {root};
    expect_outside("link_out", roots, 1);
    expect_outside("dir_out/secret.csv", roots, 1);
}
END_TEST

START_TEST(symlinks_that_stay_inside_resolve_to_their_target) {
    const char *roots[] = {root};
    expect_inside("link_in", roots, 1, "root/sub/b.csv");
}
END_TEST

START_TEST(a_root_given_through_a_symlink_is_the_directory_it_names) {
    const char *roots[] = {rootlink};
    char given[PATH_MAX];
    expect_inside("a.csv", roots, 1, "root/a.csv");
    snprintf(given, sizeof given, "%s/a.csv", root);
    expect_inside(given, roots, 1, "root/a.csv");
    snprintf(given, sizeof given, "%s/a.csv", rootlink);
    expect_inside(given, roots, 1, "root/a.csv");
}
END_TEST

START_TEST(a_directory_is_not_a_dataset) {
    const char *roots[] = {root};
    char out[PATH_MAX], err[CV_ERRLEN], given[PATH_MAX], expected[MSG_MAX];
    ck_assert_int_eq(resolve("dir", roots, 1, out, err), CV_EINVAL);
    ck_assert_str_eq(err, "trial.dataset.csv: dir is a directory, not a regular file");
    /* Without roots too: a directory is a bad field (400), not a read error. */
    snprintf(given, sizeof given, "%s/root/dir", tmp);
    snprintf(expected, sizeof expected, "trial.dataset.csv: %s is a directory, not a regular file",
             given);
    ck_assert_int_eq(resolve(given, NULL, 0, out, err), CV_EINVAL);
    ck_assert_str_eq(err, expected);
}
END_TEST

START_TEST(fifos_and_devices_are_not_datasets_and_do_not_block) {
    const char *roots[] = {root};
    char out[PATH_MAX], err[CV_ERRLEN], given[PATH_MAX], expected[MSG_MAX];
    ck_assert_int_eq(resolve("fifo", roots, 1, out, err), CV_EINVAL); /* nobody writes to it */
    ck_assert_str_eq(err, "trial.dataset.csv: fifo is a FIFO, not a regular file");
    snprintf(given, sizeof given, "%s/root/fifo", tmp);
    snprintf(expected, sizeof expected, "trial.dataset.csv: %s is a FIFO, not a regular file",
             given);
    ck_assert_int_eq(resolve(given, NULL, 0, out, err), CV_EINVAL);
    ck_assert_str_eq(err, expected);
    ck_assert_int_eq(resolve("/dev/null", NULL, 0, out, err), CV_EINVAL);
    ck_assert_str_eq(err, "trial.dataset.csv: /dev/null is a device, not a regular file");
}
END_TEST

START_TEST(links_to_directories_outside_do_not_reveal_what_exists_there) {
    /* dir_out/secret.csv exists and dir_out/nope.csv does not, dangling names a missing file
     * outside and link_out an existing one: all four get the same refusal. */
    const char *roots[] = {root};
    expect_outside("dir_out/secret.csv", roots, 1);
    expect_outside("dir_out/nope.csv", roots, 1);
    expect_outside("dir_out/nodir/nope.csv", roots, 1);
    expect_outside("dangling", roots, 1);
    expect_outside("link_out", roots, 1);
}
END_TEST

START_TEST(missing_files_say_so_only_inside_the_roots) {
    const char *roots[] = {root};
    char out[PATH_MAX], err[CV_ERRLEN], expected[MSG_MAX], given[PATH_MAX], first[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(root, first));
    snprintf(expected, sizeof expected,
             "trial.dataset.csv: cannot open nope.csv (looked for %s/nope.csv): %s", first,
             strerror(ENOENT));
    ck_assert_int_eq(resolve("nope.csv", roots, 1, out, err), CV_EINVAL);
    ck_assert_str_eq(err, expected);
    /* Outside, a missing file reads like an existing one: nobody probes the disk through us. */
    snprintf(given, sizeof given, "%s/outside/nope.csv", tmp);
    expect_outside(given, roots, 1);
    expect_outside("../outside/nope.csv", roots, 1);
}
END_TEST

START_TEST(roots_must_be_directories) {
    char out[PATH_MAX], err[CV_ERRLEN], file[PATH_MAX], missing[PATH_MAX];
    ck_assert_int_eq(cv_path_root_resolve(rootlink, out, sizeof out, err), 0);
    ck_assert_str_eq(out, root);
    snprintf(file, sizeof file, "%s/a.csv", root);
    ck_assert_int_eq(cv_path_root_resolve(file, out, sizeof out, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a directory"));
    snprintf(missing, sizeof missing, "%s/missing", tmp);
    ck_assert_int_eq(cv_path_root_resolve(missing, out, sizeof out, err), CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, strerror(ENOENT)));
}
END_TEST

/* ---- fields a job may not fix --------------------------------------------------------------- */

START_TEST(a_job_may_not_name_a_model_file) {
    char err[CV_ERRLEN];
    cJSON *trial = cJSON_Parse("{\"epochs\": 3, \"save_model\": \"/etc/cron.d/x\"}");
    ck_assert_ptr_nonnull(trial);
    ck_assert_int_eq(cv_paths_check_job_trial(trial, err), CV_EINVAL);
    ck_assert_str_eq(err, "trial.save_model: a job may not name a model file; the coordinator "
                          "keeps every trial's model under its data directory");
    cJSON_DeleteItemFromObjectCaseSensitive(trial, "save_model");
    ck_assert_int_eq(cv_paths_check_job_trial(trial, err), 0);
    ck_assert_int_eq(cv_paths_check_job_trial(NULL, err), 0);
    cJSON_Delete(trial);
}
END_TEST

static Suite *paths_suite(void) {
    Suite *s = suite_create("paths");
    TCase *pure = tcase_create("strings");
    tcase_add_test(pure, inside_compares_whole_components);
    tcase_add_test(pure, a_job_may_not_name_a_model_file);
    suite_add_tcase(s, pure);
    TCase *fs = tcase_create("filesystem");
    tcase_add_unchecked_fixture(fs, build_tree, remove_tree);
    tcase_add_test(fs, without_roots_any_existing_path_resolves);
    tcase_add_test(fs, without_roots_a_missing_file_cannot_be_opened);
    tcase_add_test(fs, without_roots_a_missing_relative_file_names_where_it_was_looked_for);
    tcase_add_test(fs, relative_paths_resolve_against_the_first_root);
    tcase_add_test(fs, absolute_paths_inside_any_root_are_accepted);
    tcase_add_test(fs, dot_dot_escapes_are_refused);
    tcase_add_test(fs, absolute_paths_outside_are_refused);
    tcase_add_test(fs, symlink_escapes_are_refused);
    tcase_add_test(fs, symlinks_that_stay_inside_resolve_to_their_target);
    tcase_add_test(fs, a_root_given_through_a_symlink_is_the_directory_it_names);
    tcase_add_test(fs, a_directory_is_not_a_dataset);
    tcase_add_test(fs, fifos_and_devices_are_not_datasets_and_do_not_block);
    tcase_add_test(fs, links_to_directories_outside_do_not_reveal_what_exists_there);
    tcase_add_test(fs, missing_files_say_so_only_inside_the_roots);
    tcase_add_test(fs, roots_must_be_directories);
    suite_add_tcase(s, fs);
    return s;
}

CV_TEST_MAIN(paths_suite)
