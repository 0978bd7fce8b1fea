/* Unit tests of model files and ensembles (worker/model_file.c): a save/load round trip is
 * bit-exact for softmax and sigmoid networks with batch norm; the byte layout is the documented
 * one (checked here by decoding it independently); each way a file can be wrong is refused with
 * the file's name and the problem; an ensemble averages its models' probabilities exactly and
 * refuses models that disagree; evaluate reports the accuracy and cost worked out by hand.
 * Defective files are made by editing a good file's bytes and, unless the checksum is the point,
 * resealing it with a fresh CRC so that only the intended defect remains. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "common/err.h"
#include "common/rng.h"
#include "testutil.h"
#include "worker/model_file.h"

/* ---- helpers -------------------------------------------------------------------------------- */

/* A path under the test's temporary directory (not created). */
static void temp_path(char *out, const char *name) {
    const char *dir = getenv("TMPDIR");
    snprintf(out, CV_TEST_PATH, "%s/caviar-test-%ld-%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             name);
}

/* Three layers, 5 → 7 (relu, batch norm) → 4 (tanh, dropout) → 3 softmax. */
static cv_arch_t softmax_arch(void) {
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = 3;
    a.units[0] = 5, a.units[1] = 7, a.units[2] = 4, a.units[3] = 3;
    a.act[1] = CV_ACT_RELU, a.act[2] = CV_ACT_TANH;
    a.batch_norm[1] = 1;
    a.keep_prob[0] = 0.9f, a.keep_prob[1] = 1.0f, a.keep_prob[2] = 0.5f;
    a.output = CV_OUT_SOFTMAX;
    a.classes = 3;
    a.leaky_slope = 0.01f;
    a.bn_momentum = 0.9f;
    a.bn_epsilon = 1e-5f;
    return a;
}

/* Two layers, n_x → 6 (leaky relu, batch norm) → 1 sigmoid. */
static cv_arch_t sigmoid_arch(int n_x) {
    cv_arch_t a;
    memset(&a, 0, sizeof a);
    a.layers = 2;
    a.units[0] = n_x, a.units[1] = 6, a.units[2] = 1;
    a.act[1] = CV_ACT_LEAKY_RELU;
    a.batch_norm[1] = 1;
    a.keep_prob[0] = 1.0f, a.keep_prob[1] = 0.8f;
    a.output = CV_OUT_SIGMOID;
    a.classes = 2;
    a.leaky_slope = 0.2f;
    a.bn_momentum = 0.99f;
    a.bn_epsilon = 1e-3f;
    return a;
}

/* A network of arch with every parameter drawn here (not by nn_init), running means N(0, 1)
 * and running variances in [0.5, 1.5). The caller destroys it. */
static cv_nnf_net_t *random_net(const cv_arch_t *arch, size_t batch_cap, uint64_t seed) {
    cv_nnf_net_t *net = NULL;
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_nnf_create(&net, arch, batch_cap, err) == 0, "%s", err);
    cv_rng_t rng;
    cv_rng_seed(&rng, seed);
    for (size_t i = 0; i < net->n_params; i++)
        net->params[i] = (float)cv_rng_normal(&rng);
    for (int l = 1; l < arch->layers; l++) {
        if (!net->run_mean[l]) continue;
        for (int j = 0; j < arch->units[l]; j++) {
            net->run_mean[l][j] = (float)cv_rng_normal(&rng);
            net->run_var[l][j] = 0.5f + (float)cv_rng_uniform(&rng);
        }
    }
    return net;
}

/* A normalizer of n features with random means and positive inverse deviations. */
static void random_norm(cv_normalizer_t *norm, size_t n, uint64_t seed) {
    cv_rng_t rng;
    cv_rng_seed(&rng, seed);
    norm->n = n;
    norm->mean = malloc(n * sizeof *norm->mean);
    norm->inv_std = malloc(n * sizeof *norm->inv_std);
    ck_assert_ptr_nonnull(norm->mean);
    ck_assert_ptr_nonnull(norm->inv_std);
    for (size_t j = 0; j < n; j++) {
        norm->mean[j] = (float)(3 * cv_rng_normal(&rng));
        norm->inv_std[j] = 0.1f + (float)cv_rng_uniform(&rng);
    }
}

/* m × n raw inputs drawn from N(0, 4). The caller frees them. */
static float *random_rows(size_t m, size_t n, uint64_t seed) {
    cv_rng_t rng;
    cv_rng_seed(&rng, seed);
    float *x = malloc(m * n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < m * n; i++)
        x[i] = (float)(2 * cv_rng_normal(&rng));
    return x;
}

/* Saves a random model of arch to a temporary file called name (path written into path). */
static void save_random_model(char *path, const char *name, const cv_arch_t *arch, uint64_t seed) {
    cv_nnf_net_t *net = random_net(arch, 4, seed);
    cv_normalizer_t norm;
    random_norm(&norm, (size_t)arch->units[0], seed + 1);
    char err[CV_ERRLEN] = "";
    temp_path(path, name);
    ck_assert_msg(cv_model_save(path, net, &norm, err) == 0, "%s", err);
    cv_normalizer_finish(&norm);
    cv_nnf_destroy(net);
}

/* Reads a whole file; the caller frees the result. */
static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    unsigned char *buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    ck_assert_int_eq(fclose(f), 0);
    *len = (size_t)size;
    return buf;
}

static void write_all(const char *path, const unsigned char *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p) {
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void set_le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void set_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrites the trailing CRC-32 so that it matches the bytes before it. */
static void reseal(unsigned char *buf, size_t len) {
    set_le32(buf + len - 4, (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(len - 4)));
}

/* Byte offset of the three u64 counts in a version-1 file: prefix plus architecture record. */
static size_t counts_offset(const unsigned char *buf) {
    return 16 + le32(buf + 12);
}

/* Expects path to be refused with code and a message naming the file and holding want; the
 * outputs must be left empty. */
static void expect_refused(const char *path, int code, const char *want) {
    static cv_nnf_net_t dummy;
    cv_nnf_net_t *net = &dummy; /* any non-NULL value: the loader must clear it */
    cv_normalizer_t norm = {.n = 99};
    char err[CV_ERRLEN] = "";
    ck_assert_int_eq(cv_model_load(path, 4, &net, &norm, err), code);
    ck_assert_ptr_null(net);
    ck_assert_ptr_null(norm.mean);
    ck_assert_ptr_null(norm.inv_std);
    ck_assert_uint_eq(norm.n, 0);
    ck_assert_msg(strstr(err, path) != NULL, "no path in: %s", err);
    ck_assert_msg(strstr(err, want) != NULL, "no \"%s\" in: %s", want, err);
}

/* Class probabilities of one loaded model for m raw rows (all in one pass), two columns for a
 * sigmoid model, computed the way the header specifies, independently of the ensemble code. */
static void single_probs(const char *path, const float *x, size_t m, float *out) {
    cv_nnf_net_t *net = NULL;
    cv_normalizer_t norm;
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_model_load(path, m, &net, &norm, err) == 0, "%s", err);
    size_t n = norm.n;
    float *z = malloc(m * n * sizeof *z);
    ck_assert_ptr_nonnull(z);
    memcpy(z, x, m * n * sizeof *z);
    cv_normalizer_apply_rows(&norm, z, m);
    cv_nnf_forward(net, z, m, NN_FORWARD_INFER, NULL);
    if (net->arch.output == CV_OUT_SIGMOID) {
        for (size_t i = 0; i < m; i++) {
            out[2 * i] = 1.0f - net->probs[i];
            out[2 * i + 1] = net->probs[i];
        }
    } else {
        memcpy(out, net->probs, m * (size_t)net->arch.classes * sizeof *out);
    }
    free(z);
    cv_normalizer_finish(&norm);
    cv_nnf_destroy(net);
}

/* ---- round trip ----------------------------------------------------------------------------- */

/* Saves a random network of arch with a random normalizer, loads it back and requires the
 * architecture, every parameter, statistic and normalizer value to be bit-identical and the
 * predictions on the same rows to be identical. */
static void assert_round_trip(const cv_arch_t *arch, const char *name) {
    enum { ROWS = 9 };
    char path[CV_TEST_PATH], err[CV_ERRLEN] = "";
    temp_path(path, name);
    cv_nnf_net_t *net = random_net(arch, ROWS, 11), *back = NULL;
    cv_normalizer_t norm, norm_back;
    random_norm(&norm, (size_t)arch->units[0], 12);
    ck_assert_msg(cv_model_save(path, net, &norm, err) == 0, "%s", err);
    ck_assert_msg(cv_model_load(path, ROWS, &back, &norm_back, err) == 0, "%s", err);

    const cv_arch_t *a = &back->arch;
    ck_assert_int_eq(a->layers, arch->layers);
    for (int l = 0; l <= arch->layers; l++)
        ck_assert_int_eq(a->units[l], arch->units[l]);
    for (int l = 1; l < arch->layers; l++) {
        ck_assert_int_eq(a->act[l], arch->act[l]);
        ck_assert_int_eq(a->batch_norm[l], arch->batch_norm[l]);
    }
    ck_assert_mem_eq(a->keep_prob, arch->keep_prob, (size_t)arch->layers * sizeof(float));
    ck_assert_int_eq(a->output, arch->output);
    ck_assert_int_eq(a->classes, arch->classes);
    ck_assert_mem_eq(&a->leaky_slope, &arch->leaky_slope, sizeof(float));
    ck_assert_mem_eq(&a->bn_momentum, &arch->bn_momentum, sizeof(float));
    ck_assert_mem_eq(&a->bn_epsilon, &arch->bn_epsilon, sizeof(float));

    ck_assert_uint_eq(back->n_params, net->n_params);
    ck_assert_uint_eq(back->n_stats, net->n_stats);
    ck_assert_uint_gt(net->n_stats, 0);
    ck_assert_mem_eq(back->params, net->params, net->n_params * sizeof(float));
    ck_assert_mem_eq(back->stats, net->stats, net->n_stats * sizeof(float));
    ck_assert_uint_eq(norm_back.n, norm.n);
    ck_assert_mem_eq(norm_back.mean, norm.mean, norm.n * sizeof(float));
    ck_assert_mem_eq(norm_back.inv_std, norm.inv_std, norm.n * sizeof(float));

    float *x = random_rows(ROWS, norm.n, 13);
    cv_normalizer_apply_rows(&norm, x, ROWS);
    cv_nnf_forward(net, x, ROWS, NN_FORWARD_INFER, NULL);
    cv_nnf_forward(back, x, ROWS, NN_FORWARD_INFER, NULL);
    size_t outs = (size_t)arch->units[arch->layers];
    ck_assert_mem_eq(back->probs, net->probs, ROWS * outs * sizeof(float));
    ck_assert_mem_eq(back->A[arch->layers], net->A[arch->layers], ROWS * outs * sizeof(float));

    free(x);
    cv_normalizer_finish(&norm_back);
    cv_normalizer_finish(&norm);
    cv_nnf_destroy(back);
    cv_nnf_destroy(net);
    unlink(path);
}

START_TEST(softmax_model_round_trips_bit_exactly) {
    cv_arch_t arch = softmax_arch();
    assert_round_trip(&arch, "softmax.cvm");
}
END_TEST

START_TEST(sigmoid_model_round_trips_bit_exactly) {
    cv_arch_t arch = sigmoid_arch(4);
    assert_round_trip(&arch, "sigmoid.cvm");
}
END_TEST

/* The bytes follow the documented layout: decoded here field by field, with the CRC recomputed
 * over every preceding byte and the file exactly as long as the counts imply. */
START_TEST(file_has_the_documented_layout) {
    cv_arch_t arch = softmax_arch();
    cv_nnf_net_t *net = random_net(&arch, 2, 21);
    cv_normalizer_t norm;
    random_norm(&norm, 5, 22);
    char path[CV_TEST_PATH], err[CV_ERRLEN] = "";
    temp_path(path, "layout.cvm");
    ck_assert_msg(cv_model_save(path, net, &norm, err) == 0, "%s", err);
    size_t len;
    unsigned char *buf = read_all(path, &len);

    ck_assert_mem_eq(buf, "CVMODEL", 8); /* the seven letters and the NUL */
    ck_assert_uint_eq(le32(buf + 8), 1);
    uint32_t hb = le32(buf + 12);
    ck_assert_uint_eq(hb, 24 + 4 * 4 + 12 * 2 + 4); /* 3 layers */
    const unsigned char *r = buf + 16;
    ck_assert_uint_eq(le32(r), 3);
    ck_assert_uint_eq(le32(r + 4), 3);
    ck_assert_uint_eq(le32(r + 8), CV_OUT_SOFTMAX);
    float f;
    uint32_t bits = le32(r + 20);
    memcpy(&f, &bits, 4);
    ck_assert_float_eq(f, 1e-5f);
    for (int l = 0; l <= 3; l++)
        ck_assert_uint_eq(le32(r + 24 + 4 * l), arch.units[l]);
    ck_assert_uint_eq(le32(r + 40), CV_ACT_RELU); /* layer 1: activation, batch_norm, keep */
    ck_assert_uint_eq(le32(r + 44), 1);
    ck_assert_uint_eq(le32(r + 52), CV_ACT_TANH); /* layer 2 */
    ck_assert_uint_eq(le32(r + 56), 0);
    bits = le32(r + 60);
    memcpy(&f, &bits, 4);
    ck_assert_float_eq(f, 0.5f);
    bits = le32(r + 64); /* keep_prob[0] closes the record */
    memcpy(&f, &bits, 4);
    ck_assert_float_eq(f, 0.9f);

    const unsigned char *c = buf + 16 + hb;
    /* W1 35 + γβ 14, W2 28 + b 4, W3 12 + b 3 */
    ck_assert_uint_eq(le64(c), 35 + 14 + 28 + 4 + 12 + 3);
    ck_assert_uint_eq(le64(c + 8), 14);
    ck_assert_uint_eq(le64(c + 16), 5);
    ck_assert_uint_eq(len, 16 + hb + 24 + 4 * (96 + 14 + 10) + 4);
    const unsigned char *payload = c + 24;
    for (size_t i = 0; i < net->n_params; i++) {
        memcpy(&bits, &net->params[i], 4);
        ck_assert_uint_eq(le32(payload + 4 * i), bits);
    }
    memcpy(&bits, &norm.inv_std[4], 4);
    ck_assert_uint_eq(le32(buf + len - 8), bits); /* the last value before the CRC */
    ck_assert_uint_eq(le32(buf + len - 4), crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(len - 4)));

    free(buf);
    cv_normalizer_finish(&norm);
    cv_nnf_destroy(net);
    unlink(path);
}
END_TEST

/* Saving over an existing model replaces it whole and leaves no temporary file behind. */
START_TEST(save_replaces_atomically) {
    cv_arch_t big = softmax_arch(), small = sigmoid_arch(2);
    char path[CV_TEST_PATH], tmp[CV_TEST_PATH + 32];
    save_random_model(path, "replace.cvm", &big, 31);
    save_random_model(path, "replace.cvm", &small, 32);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    struct stat st;
    ck_assert_int_ne(stat(tmp, &st), 0);

    cv_nnf_net_t *net = NULL;
    cv_normalizer_t norm;
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_model_load(path, 1, &net, &norm, err) == 0, "%s", err);
    ck_assert_int_eq(net->arch.output, CV_OUT_SIGMOID);
    ck_assert_uint_eq(norm.n, 2);
    cv_normalizer_finish(&norm);
    cv_nnf_destroy(net);
    unlink(path);
}
END_TEST

/* A normalizer of the wrong width is refused before anything is written. */
START_TEST(save_refuses_a_normalizer_of_the_wrong_width) {
    cv_arch_t arch = sigmoid_arch(4);
    cv_nnf_net_t *net = random_net(&arch, 1, 41);
    cv_normalizer_t norm;
    random_norm(&norm, 3, 42);
    char path[CV_TEST_PATH], err[CV_ERRLEN] = "";
    temp_path(path, "never.cvm");
    ck_assert_int_eq(cv_model_save(path, net, &norm, err), CV_EINVAL);
    ck_assert_msg(strstr(err, "3 normalized features") != NULL, "%s", err);
    struct stat st;
    ck_assert_int_ne(stat(path, &st), 0);
    cv_normalizer_finish(&norm);
    cv_nnf_destroy(net);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------------- */

/* Cutting the file anywhere (in the magic, the prefix, the architecture, the counts, the
 * parameters, the normalizer, the CRC) is refused as truncated at exactly that byte. */
START_TEST(truncated_file_is_refused) {
    cv_arch_t arch = softmax_arch();
    char path[CV_TEST_PATH];
    save_random_model(path, "cut.cvm", &arch, 51);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    size_t co = counts_offset(buf);
    size_t cuts[] = {0, 5, 12, 16 + 10, co + 8, co + 24 + 100, len - 12, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all(path, buf, cuts[i]);
        char want[64];
        snprintf(want, sizeof want, "truncated at byte %zu", cuts[i]);
        expect_refused(path, CV_EFORMAT, want);
    }
    free(buf);
    unlink(path);
}
END_TEST

/* Bytes after the checksum are refused too: the length must be exact. */
START_TEST(trailing_bytes_are_refused) {
    cv_arch_t arch = sigmoid_arch(3);
    char path[CV_TEST_PATH];
    save_random_model(path, "long.cvm", &arch, 52);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    unsigned char *longer = calloc(len + 3, 1);
    ck_assert_ptr_nonnull(longer);
    memcpy(longer, buf, len);
    write_all(path, longer, len + 3);
    expect_refused(path, CV_EFORMAT, "3 bytes after");
    free(longer);
    free(buf);
    unlink(path);
}
END_TEST

/* One flipped bit in a parameter is caught by the CRC. */
START_TEST(flipped_payload_byte_fails_the_checksum) {
    cv_arch_t arch = softmax_arch();
    char path[CV_TEST_PATH];
    save_random_model(path, "flip.cvm", &arch, 61);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    buf[counts_offset(buf) + 24 + 4 * 40 + 1] ^= 0x10;
    write_all(path, buf, len);
    expect_refused(path, CV_EFORMAT, "checksum mismatch");
    free(buf);
    unlink(path);
}
END_TEST

START_TEST(wrong_magic_is_refused) {
    cv_arch_t arch = sigmoid_arch(3);
    char path[CV_TEST_PATH];
    save_random_model(path, "magic.cvm", &arch, 71);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    buf[6] = 'X';
    reseal(buf, len);
    write_all(path, buf, len);
    expect_refused(path, CV_EFORMAT, "bad magic");
    free(buf);
    unlink(path);
}
END_TEST

START_TEST(newer_version_is_refused) {
    cv_arch_t arch = sigmoid_arch(3);
    char path[CV_TEST_PATH];
    save_random_model(path, "version.cvm", &arch, 72);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    set_le32(buf + 8, 2);
    reseal(buf, len);
    write_all(path, buf, len);
    expect_refused(path, CV_EFORMAT, "model file version 2 is newer than this build's 1");
    free(buf);
    unlink(path);
}
END_TEST

/* A header claiming 2^40 parameters is refused from the header alone: were it believed, the
 * 4 TiB allocation would abort the sanitizer build. */
START_TEST(absurd_parameter_count_is_refused_before_allocating) {
    cv_arch_t arch = sigmoid_arch(3);
    char path[CV_TEST_PATH];
    save_random_model(path, "huge.cvm", &arch, 73);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    set_le64(buf + counts_offset(buf), (uint64_t)1 << 40);
    reseal(buf, len);
    write_all(path, buf, len);
    expect_refused(path, CV_EFORMAT, "n_params is 1099511627776");
    free(buf);
    unlink(path);
}
END_TEST

/* Architecture values outside what the format allows, each patched into a good sigmoid file
 * (3 → 6 → 1, record at byte 16): the loop index picks the defect. */
static const struct {
    size_t offset;  /* into the architecture record */
    uint32_t value; /* little-endian u32 (or f32 bits) written there */
    const char *want;
} ARCH_DEFECTS[] = {
    {0, 40, "40 layers"}, /* would also need a longer record: refused first */
    {28, 0, "layer 1 has 0 units"},
    {28, 65537, "layer 1 has 65537 units"},
    {8, 7, "unknown output type 7"},
    {36, 9, "unknown activation 9"},
    {40, 2, "batch_norm of layer 1 is 2"},
    {44, 0, "keep_prob of layer 1 is 0"}, /* 0.0f */
    {4, 3, "sigmoid output needs 1 unit and 2 classes"},
    {48, 0x3f800001, "keep_prob of layer 0"}, /* just above 1.0f */
};

START_TEST(bad_architecture_value_is_refused) {
    cv_arch_t arch = sigmoid_arch(3);
    char path[CV_TEST_PATH];
    save_random_model(path, "arch.cvm", &arch, 74);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    ck_assert_uint_eq(le32(buf + 12), 52);
    set_le32(buf + 16 + ARCH_DEFECTS[_i].offset, ARCH_DEFECTS[_i].value);
    reseal(buf, len);
    write_all(path, buf, len);
    expect_refused(path, CV_EFORMAT, ARCH_DEFECTS[_i].want);
    free(buf);
    unlink(path);
}
END_TEST

START_TEST(missing_file_is_refused) {
    char path[CV_TEST_PATH];
    temp_path(path, "absent.cvm");
    expect_refused(path, CV_EIO, "cannot open");
}
END_TEST

/* ---- ensembles ------------------------------------------------------------------------------ */

/* Two softmax models of different shapes: the ensemble's probabilities are exactly the mean of
 * the two models' own predictions. */
START_TEST(ensemble_averages_probabilities_exactly) {
    enum { M = 10, C = 3 };
    cv_arch_t a = softmax_arch(), b = softmax_arch();
    b.units[1] = 3, b.batch_norm[1] = 0, b.units[2] = 8;
    char pa[CV_TEST_PATH], pb[CV_TEST_PATH], err[CV_ERRLEN] = "";
    save_random_model(pa, "ens-a.cvm", &a, 81);
    save_random_model(pb, "ens-b.cvm", &b, 82);
    float *x = random_rows(M, 5, 83);
    float p1[M * C], p2[M * C], got[M * C];
    single_probs(pa, x, M, p1);
    single_probs(pb, x, M, p2);

    cv_ensemble_t ens;
    const char *paths[] = {pa, pb};
    ck_assert_msg(cv_ensemble_load(&ens, paths, 2, err) == 0, "%s", err);
    ck_assert_int_eq(ens.count, 2);
    ck_assert_int_eq(ens.classes, C);
    ck_assert_uint_eq(ens.n_features, 5);
    cv_ensemble_predict(&ens, x, M, got);
    for (int i = 0; i < M * C; i++) {
        float mean = (p1[i] + p2[i]) / 2.0f;
        ck_assert_msg(got[i] == mean, "probability %d: %.9g, expected %.9g", i, got[i], mean);
        ck_assert_msg(p1[i] != p2[i], "the two models should disagree at %d", i);
    }
    cv_ensemble_finish(&ens);
    ck_assert_ptr_null(ens.nets);
    free(x);
    unlink(pa);
    unlink(pb);
}
END_TEST

/* A sigmoid model predicts two columns, 1 − σ(z) and σ(z); two of them average exactly. */
START_TEST(sigmoid_ensemble_gives_two_columns) {
    enum { M = 7 };
    cv_arch_t a = sigmoid_arch(4), b = sigmoid_arch(4);
    b.batch_norm[1] = 0, b.act[1] = CV_ACT_SIGMOID;
    char pa[CV_TEST_PATH], pb[CV_TEST_PATH], err[CV_ERRLEN] = "";
    save_random_model(pa, "sig-a.cvm", &a, 91);
    save_random_model(pb, "sig-b.cvm", &b, 92);
    float *x = random_rows(M, 4, 93);
    float p1[M * 2], p2[M * 2], got[M * 2];
    single_probs(pa, x, M, p1);
    single_probs(pb, x, M, p2);

    /* One model alone: column 1 is its sigmoid output, column 0 the complement. */
    cv_nnf_net_t *net = NULL;
    cv_normalizer_t norm;
    ck_assert_msg(cv_model_load(pa, M, &net, &norm, err) == 0, "%s", err);
    float *z = random_rows(M, 4, 93);
    cv_normalizer_apply_rows(&norm, z, M);
    cv_nnf_forward(net, z, M, NN_FORWARD_INFER, NULL);
    cv_ensemble_t ens;
    const char *one[] = {pa}, *two[] = {pa, pb};
    ck_assert_msg(cv_ensemble_load(&ens, one, 1, err) == 0, "%s", err);
    ck_assert_int_eq(ens.classes, 2);
    cv_ensemble_predict(&ens, x, M, got);
    for (int i = 0; i < M; i++) {
        ck_assert_float_eq(got[2 * i + 1], net->probs[i]);
        ck_assert_float_eq(got[2 * i], 1.0f - net->probs[i]);
    }
    cv_ensemble_finish(&ens);

    ck_assert_msg(cv_ensemble_load(&ens, two, 2, err) == 0, "%s", err);
    cv_ensemble_predict(&ens, x, M, got);
    for (int i = 0; i < M * 2; i++)
        ck_assert_float_eq(got[i], (p1[i] + p2[i]) / 2.0f);
    cv_ensemble_finish(&ens);

    free(z);
    free(x);
    cv_normalizer_finish(&norm);
    cv_nnf_destroy(net);
    unlink(pa);
    unlink(pb);
}
END_TEST

/* More rows than one ensemble pass holds: every chunk is predicted, matching row-by-row
 * predictions (to rounding, since a different batch size may change the BLAS summation). */
START_TEST(ensemble_predicts_more_rows_than_one_pass) {
    cv_arch_t a = softmax_arch();
    char pa[CV_TEST_PATH], err[CV_ERRLEN] = "";
    save_random_model(pa, "many.cvm", &a, 101);
    cv_ensemble_t ens;
    const char *paths[] = {pa};
    ck_assert_msg(cv_ensemble_load(&ens, paths, 1, err) == 0, "%s", err);
    size_t m = 2 * ens.batch_cap + 3;
    float *x = random_rows(m, 5, 102), *got = malloc(m * 3 * sizeof *got);
    float one[3];
    ck_assert_ptr_nonnull(got);
    cv_ensemble_predict(&ens, x, m, got);
    for (size_t i = 0; i < m; i++) {
        single_probs(pa, x + 5 * i, 1, one);
        for (int c = 0; c < 3; c++)
            ck_assert_float_eq_tol(got[3 * i + c], one[c], 1e-6f);
    }
    cv_ensemble_finish(&ens);
    free(got);
    free(x);
    unlink(pa);
}
END_TEST

START_TEST(ensemble_with_different_feature_counts_is_refused) {
    cv_arch_t a = sigmoid_arch(4), b = sigmoid_arch(5);
    char pa[CV_TEST_PATH], pb[CV_TEST_PATH], err[CV_ERRLEN] = "";
    save_random_model(pa, "feat-a.cvm", &a, 111);
    save_random_model(pb, "feat-b.cvm", &b, 112);
    cv_ensemble_t ens;
    const char *paths[] = {pa, pb};
    ck_assert_int_eq(cv_ensemble_load(&ens, paths, 2, err), CV_EINVAL);
    ck_assert_msg(strstr(err, pb) != NULL, "the odd model is not named: %s", err);
    ck_assert_msg(strstr(err, "5 features") != NULL, "%s", err);
    ck_assert_int_eq(ens.count, 0);
    ck_assert_ptr_null(ens.nets);
    ck_assert_ptr_null(ens.norms);
    ck_assert_ptr_null(ens.scratch);
    cv_ensemble_finish(&ens); /* harmless after a failed load */
    unlink(pa);
    unlink(pb);
}
END_TEST

START_TEST(ensemble_with_different_class_counts_is_refused) {
    cv_arch_t a = softmax_arch(), b = softmax_arch();
    b.units[3] = 4, b.classes = 4;
    char pa[CV_TEST_PATH], pb[CV_TEST_PATH], err[CV_ERRLEN] = "";
    save_random_model(pa, "cls-a.cvm", &a, 121);
    save_random_model(pb, "cls-b.cvm", &b, 122);
    cv_ensemble_t ens;
    const char *paths[] = {pa, pb};
    ck_assert_int_eq(cv_ensemble_load(&ens, paths, 2, err), CV_EINVAL);
    ck_assert_msg(strstr(err, pb) != NULL && strstr(err, "4 classes") != NULL, "%s", err);
    ck_assert_ptr_null(ens.nets);
    unlink(pa);
    unlink(pb);
}
END_TEST

/* A single-layer softmax model whose logits are known by hand: the normalizer maps x to
 * x' = ((x₀ − 1)/2, (x₁ + 1)·2), W = [[1, 0], [0, 1], [0, 0]] and b = (0, 0, 0.5). */
static void save_hand_model(char *path) {
    cv_arch_t arch;
    memset(&arch, 0, sizeof arch);
    arch.layers = 1;
    arch.units[0] = 2, arch.units[1] = 3;
    arch.keep_prob[0] = 1.0f;
    arch.output = CV_OUT_SOFTMAX;
    arch.classes = 3;
    cv_nnf_net_t *net = NULL;
    char err[CV_ERRLEN] = "";
    ck_assert_msg(cv_nnf_create(&net, &arch, 1, err) == 0, "%s", err);
    const float W[6] = {1, 0, 0, 1, 0, 0}, b[3] = {0, 0, 0.5f};
    memcpy(net->W[1], W, sizeof W);
    memcpy(net->b[1], b, sizeof b);
    float mean[2] = {1, -1}, inv_std[2] = {0.5f, 2};
    cv_normalizer_t norm = {.n = 2, .mean = mean, .inv_std = inv_std};
    temp_path(path, "hand.cvm");
    ck_assert_msg(cv_model_save(path, net, &norm, err) == 0, "%s", err);
    cv_nnf_destroy(net);
}

/* −log softmax(z)[y] in double. */
static double xent(const double z[3], int y) {
    double s = 0;
    for (int c = 0; c < 3; c++)
        s += exp(z[c]);
    return log(s) - z[y];
}

START_TEST(evaluate_reports_the_hand_computed_accuracy_and_cost) {
    char path[CV_TEST_PATH], err[CV_ERRLEN] = "";
    save_hand_model(path);
    /* Rows normalize to (5, 0), (0, 5), (0, 0), (−5, −5), (5, 0): logits below, predicted
     * classes 0, 1, 2, 2, 0 against labels 0, 1, 0, 2, 1: three of five right. */
    float x[10] = {11, -1, 1, 1.5f, 1, -1, -9, -3.5f, 11, -1};
    int32_t y[5] = {0, 1, 0, 2, 1};
    const double z[5][3] = {{5, 0, 0.5}, {0, 5, 0.5}, {0, 0, 0.5}, {-5, -5, 0.5}, {5, 0, 0.5}};
    double want_cost = 0;
    for (int i = 0; i < 5; i++)
        want_cost += xent(z[i], y[i]) / 5;
    cv_dataset_t ds = {.x = x, .y = y, .m = 5, .n = 2, .classes = 3};

    cv_ensemble_t ens;
    const char *paths[] = {path};
    ck_assert_msg(cv_ensemble_load(&ens, paths, 1, err) == 0, "%s", err);
    double accuracy = -1, cost = -1;
    ck_assert_msg(cv_ensemble_evaluate(&ens, &ds, &accuracy, &cost, err) == 0, "%s", err);
    ck_assert_double_eq(accuracy, 3.0 / 5.0);
    ck_assert_double_eq_tol(cost, want_cost, 1e-6);
    cv_ensemble_finish(&ens);
    unlink(path);
}
END_TEST

START_TEST(evaluate_refuses_mismatched_data) {
    char path[CV_TEST_PATH], err[CV_ERRLEN] = "";
    save_hand_model(path);
    float x[6] = {0};
    int32_t y[3] = {0, 3, 1};
    cv_ensemble_t ens;
    const char *paths[] = {path};
    ck_assert_msg(cv_ensemble_load(&ens, paths, 1, err) == 0, "%s", err);
    double accuracy, cost;
    cv_dataset_t ds = {.x = x, .y = y, .m = 3, .n = 2, .classes = 4};
    ck_assert_int_eq(cv_ensemble_evaluate(&ens, &ds, &accuracy, &cost, err), CV_EINVAL);
    ck_assert_msg(strstr(err, "example 1 has label 3") != NULL, "%s", err);
    ds = (cv_dataset_t){.x = x, .y = y, .m = 2, .n = 3, .classes = 2};
    ck_assert_int_eq(cv_ensemble_evaluate(&ens, &ds, &accuracy, &cost, err), CV_EINVAL);
    ck_assert_msg(strstr(err, "3 features") != NULL, "%s", err);
    cv_ensemble_finish(&ens);
    unlink(path);
}
END_TEST

static Suite *model_file_suite(void) {
    Suite *s = suite_create("model_file");
    TCase *tc = tcase_create("model_file");
    tcase_add_test(tc, softmax_model_round_trips_bit_exactly);
    tcase_add_test(tc, sigmoid_model_round_trips_bit_exactly);
    tcase_add_test(tc, file_has_the_documented_layout);
    tcase_add_test(tc, save_replaces_atomically);
    tcase_add_test(tc, save_refuses_a_normalizer_of_the_wrong_width);
    tcase_add_test(tc, truncated_file_is_refused);
    tcase_add_test(tc, trailing_bytes_are_refused);
    tcase_add_test(tc, flipped_payload_byte_fails_the_checksum);
    tcase_add_test(tc, wrong_magic_is_refused);
    tcase_add_test(tc, newer_version_is_refused);
    tcase_add_test(tc, absurd_parameter_count_is_refused_before_allocating);
    tcase_add_loop_test(tc, bad_architecture_value_is_refused, 0,
                        (int)(sizeof ARCH_DEFECTS / sizeof ARCH_DEFECTS[0]));
    tcase_add_test(tc, missing_file_is_refused);
    tcase_add_test(tc, ensemble_averages_probabilities_exactly);
    tcase_add_test(tc, sigmoid_ensemble_gives_two_columns);
    tcase_add_test(tc, ensemble_predicts_more_rows_than_one_pass);
    tcase_add_test(tc, ensemble_with_different_feature_counts_is_refused);
    tcase_add_test(tc, ensemble_with_different_class_counts_is_refused);
    tcase_add_test(tc, evaluate_reports_the_hand_computed_accuracy_and_cost);
    tcase_add_test(tc, evaluate_refuses_mismatched_data);
    suite_add_tcase(s, tc);
    return s;
}

CV_TEST_MAIN(model_file_suite)
