/* The network numeric core: creation, initialization, forward pass, loss, backward pass and
 * regularization of a fully-connected network. Compiled twice, as float (cv_nnf_*) and double
 * (cv_nnd_*, with -DCV_NN_DOUBLE), from this one source; see nn_api.h for the layout. */
#include "worker/nn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "worker/vector_clones.h"

/* The elementwise loops of the forward and backward passes (bias, activation, dropout, batch
 * norm, softmax, column sums) are also compiled for AVX2 and AVX-512 on x86-64, picked when the
 * program loads, as the optimizer step is (see optim.c): the baseline target only has 4-wide
 * SSE2. No clone enables FMA and GCC never reorders a floating-point reduction without
 * -ffast-math, so every path computes bit-identical values. */

#ifdef CV_NN_DOUBLE
#define NN_REAL double
#define NN_(name) cv_nnd_##name
#define GEMM cblas_dgemm
#define R_EXP exp
#define R_TANH tanh
#define R_SQRT sqrt
#else
#define NN_REAL float
#define NN_(name) cv_nnf_##name
#define GEMM cblas_sgemm
#define R_EXP expf
#define R_TANH tanhf
#define R_SQRT sqrtf
#endif

typedef NN_REAL real;
typedef NN_(net_t) net_t;

/* ---- activations: {function, derivative} pairs ----------------------------------------- */

static inline real act_forward(cv_activation_t act, real z, real slope) {
    switch (act) {
    case CV_ACT_RELU: return z > 0 ? z : 0;
    case CV_ACT_LEAKY_RELU: return z > 0 ? z : slope * z;
    case CV_ACT_TANH: return R_TANH(z);
    case CV_ACT_SIGMOID: return 1 / (1 + R_EXP(-z));
    }
    return z;
}

/* g'(z) expressed through a = g(z), so the backward pass needs no copy of Z. For relu and
 * leaky_relu, a > 0 exactly when z > 0 (the slope is positive or zero). */
static inline real act_derivative(cv_activation_t act, real a, real slope) {
    switch (act) {
    case CV_ACT_RELU: return a > 0 ? 1 : 0;
    case CV_ACT_LEAKY_RELU: return a > 0 ? 1 : slope;
    case CV_ACT_TANH: return 1 - a * a;
    case CV_ACT_SIGMOID: return a * (1 - a);
    }
    return 1;
}

/* ---- creation ------------------------------------------------------------------------- */

/* Multiplies sizes, failing instead of wrapping. */
static int size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / sizeof(real) / a) return -1;
    *out = a * b;
    return 0;
}

int NN_(create)(net_t **out, const cv_arch_t *arch, size_t batch_cap, char *err) {
    *out = NULL;
    int L = arch->layers;
    if (L < 1 || L > CV_MAX_LAYERS) return cv_errf(err, CV_EINVAL, "bad layer count %d", L);
    if (batch_cap == 0) return cv_errf(err, CV_EINVAL, "batch capacity must be at least 1");
    for (int l = 0; l <= L; l++)
        if (arch->units[l] < 1) return cv_errf(err, CV_EINVAL, "layer %d has no units", l);

    net_t *net = calloc(1, sizeof *net);
    if (!net) return cv_errf(err, CV_ENOMEM, "out of memory for the network");
    net->arch = *arch;
    net->batch_cap = batch_cap;

    size_t np = 0, ns = 0, nw = 0, maxn = 0, sz;
    for (int l = 1; l <= L; l++) {
        size_t n = (size_t)arch->units[l], k = (size_t)arch->units[l - 1];
        int bn = l < L && arch->batch_norm[l];
        np += n * k + (bn ? 2 * n : n);
        ns += bn ? 2 * n : 0;
    }
    for (int l = 0; l <= L; l++) {
        size_t n = (size_t)arch->units[l];
        if (n > maxn) maxn = n;
        if (size_mul(batch_cap, n, &sz)) goto too_big;
        int dropout = l < L && arch->keep_prob[l] < 1.0f;
        if (l > 0 || dropout) nw += sz;             /* A[l] */
        if (dropout) nw += sz;                      /* mask[l] */
        if (l > 0 && l < L && arch->batch_norm[l]) nw += sz + 2 * n; /* xhat, mean, istd */
        if (l == L) nw += sz;                       /* probs */
    }
    if (size_mul(batch_cap, maxn, &sz)) goto too_big;
    nw += 2 * sz; /* dz ping-pong */
    if (nw > SIZE_MAX / sizeof(real)) goto too_big;

    net->n_params = np;
    net->n_stats = ns;
    net->params = calloc(np, sizeof(real));
    net->grads = calloc(np, sizeof(real));
    net->stats = calloc(ns ? ns : 1, sizeof(real));
    net->work = calloc(nw, sizeof(real));
    if (!net->params || !net->grads || !net->stats || !net->work) {
        NN_(destroy)(net);
        return cv_errf(err, CV_ENOMEM, "out of memory: the network needs %zu parameters and a "
                       "workspace of %zu values for batches of %zu", np, nw, batch_cap);
    }

    real *p = net->params, *g = net->grads, *s = net->stats, *w = net->work;
    for (int l = 1; l <= L; l++) {
        size_t n = (size_t)arch->units[l], k = (size_t)arch->units[l - 1];
        net->W[l] = p, net->dW[l] = g, p += n * k, g += n * k;
        if (l < L && arch->batch_norm[l]) {
            net->gamma[l] = p, net->dgamma[l] = g, p += n, g += n;
            net->beta[l] = p, net->dbeta[l] = g, p += n, g += n;
            net->run_mean[l] = s, s += n;
            net->run_var[l] = s, s += n;
        } else {
            net->b[l] = p, net->db[l] = g, p += n, g += n;
        }
    }
    for (int l = 0; l <= L; l++) {
        size_t n = (size_t)arch->units[l], rows = batch_cap * n;
        int dropout = l < L && arch->keep_prob[l] < 1.0f;
        if (l > 0 || dropout) net->A[l] = w, w += rows;
        if (dropout) net->mask[l] = w, w += rows;
        if (l > 0 && l < L && arch->batch_norm[l]) {
            net->xhat[l] = w, w += rows;
            net->bn_mean[l] = w, w += n;
            net->bn_istd[l] = w, w += n;
        }
        if (l == L) net->probs = w, w += rows;
    }
    net->dz[0] = w, w += batch_cap * maxn;
    net->dz[1] = w;
    for (int l = 1; l < L; l++)
        if (arch->batch_norm[l])
            for (int j = 0; j < arch->units[l]; j++) net->run_var[l][j] = 1;
    *out = net;
    return 0;

too_big:
    free(net);
    return cv_errf(err, CV_ERANGE, "the network is too large for batches of %zu", batch_cap);
}

void NN_(destroy)(net_t *net) {
    if (!net) return;
    free(net->params);
    free(net->grads);
    free(net->stats);
    free(net->work);
    free(net);
}

void NN_(init)(net_t *net, cv_init_t init, double scale, cv_rng_t *rng) {
    const cv_arch_t *a = &net->arch;
    for (int l = 1; l <= a->layers; l++) {
        double n = a->units[l], k = a->units[l - 1], sd = 0;
        switch (init) {
        case CV_INIT_ZEROS: sd = 0; break;
        case CV_INIT_RANDOM: sd = 0.01 * scale; break;
        case CV_INIT_XAVIER: sd = scale * sqrt(1.0 / k); break;
        case CV_INIT_GLOROT: sd = scale * sqrt(2.0 / (k + n)); break;
        case CV_INIT_HE: sd = scale * sqrt(2.0 / k); break;
        }
        size_t count = (size_t)n * (size_t)k;
        for (size_t i = 0; i < count; i++) net->W[l][i] = (real)(sd * cv_rng_normal(rng));
        for (int j = 0; j < (int)n; j++) {
            if (net->b[l]) net->b[l][j] = 0;
            if (net->gamma[l]) net->gamma[l][j] = 1, net->beta[l][j] = 0;
            if (net->run_mean[l]) net->run_mean[l][j] = 0, net->run_var[l][j] = 1;
        }
    }
}

/* ---- forward -------------------------------------------------------------------------- */

/* Draws an inverted-dropout mask (0 with probability 1 − keep, else 1/keep) and applies it. */
static void dropout_forward(real *a, real *mask, size_t count, float keep, cv_rng_t *rng) {
    real inv = (real)(1.0 / keep);
    /* Two 24-bit uniforms from each 64-bit draw: the generator is the loop's main cost. */
    uint32_t threshold = (uint32_t)((double)keep * 16777216.0);
    size_t i = 0;
    for (; i + 1 < count; i += 2) {
        uint64_t r = cv_rng_next(rng);
        mask[i] = (uint32_t)(r >> 40) < threshold ? inv : 0;
        mask[i + 1] = (uint32_t)(r & 0xffffff) < threshold ? inv : 0;
    }
    if (i < count) mask[i] = (uint32_t)(cv_rng_next(rng) >> 40) < threshold ? inv : 0;
    for (i = 0; i < count; i++) a[i] *= mask[i];
}

/* Normalizes Z (B × n) in place into γ·x̂ + β, keeping x̂ for the backward pass. With batch
 * statistics the batch's mean and (biased) variance are used and optionally folded into the
 * running averages; otherwise the running averages are. */
static void batchnorm_forward(net_t *net, int l, real *Z, size_t B, int mode) {
    size_t n = (size_t)net->arch.units[l];
    real *mean = net->bn_mean[l], *istd = net->bn_istd[l], *xhat = net->xhat[l];
    const real *gamma = net->gamma[l], *beta = net->beta[l];
    real eps = (real)net->arch.bn_epsilon;
    if (mode & NN_FORWARD_BATCH_STATS) {
        memset(mean, 0, n * sizeof(real));
        memset(istd, 0, n * sizeof(real)); /* holds the variance until the last step */
        for (size_t i = 0; i < B; i++)
            for (size_t j = 0; j < n; j++) mean[j] += Z[i * n + j];
        for (size_t j = 0; j < n; j++) mean[j] /= (real)B;
        for (size_t i = 0; i < B; i++)
            for (size_t j = 0; j < n; j++) {
                real d = Z[i * n + j] - mean[j];
                istd[j] += d * d;
            }
        real mom = (real)net->arch.bn_momentum;
        for (size_t j = 0; j < n; j++) {
            real var = istd[j] / (real)B;
            if (mode & NN_FORWARD_UPDATE_STATS) {
                net->run_mean[l][j] = mom * net->run_mean[l][j] + (1 - mom) * mean[j];
                net->run_var[l][j] = mom * net->run_var[l][j] + (1 - mom) * var;
            }
            istd[j] = 1 / R_SQRT(var + eps);
        }
    } else {
        for (size_t j = 0; j < n; j++) {
            mean[j] = net->run_mean[l][j];
            istd[j] = 1 / R_SQRT(net->run_var[l][j] + eps);
        }
    }
    for (size_t i = 0; i < B; i++)
        for (size_t j = 0; j < n; j++) {
            real x = (Z[i * n + j] - mean[j]) * istd[j];
            xhat[i * n + j] = x;
            Z[i * n + j] = gamma[j] * x + beta[j];
        }
}

/* Output probabilities from logits: row-wise softmax, or the sigmoid of the single logit. */
static void output_forward(net_t *net, size_t B) {
    size_t C = (size_t)net->arch.units[net->arch.layers];
    const real *z = net->A[net->arch.layers];
    real *p = net->probs;
    if (net->arch.output == CV_OUT_SIGMOID) {
        for (size_t i = 0; i < B; i++) p[i] = 1 / (1 + R_EXP(-z[i]));
        return;
    }
    for (size_t i = 0; i < B; i++) {
        const real *zi = z + i * C;
        real *pi = p + i * C, max = zi[0], sum = 0;
        for (size_t c = 1; c < C; c++) max = zi[c] > max ? zi[c] : max;
        for (size_t c = 0; c < C; c++) sum += (pi[c] = R_EXP(zi[c] - max));
        for (size_t c = 0; c < C; c++) pi[c] /= sum;
    }
}

CV_VECTOR_CLONES
void NN_(forward)(net_t *net, const real *X, size_t B, int mode, cv_rng_t *rng) {
    const cv_arch_t *a = &net->arch;
    int L = a->layers;
    int dropout = (mode & NN_FORWARD_DROPOUT) != 0;
    const real *in = X;
    if (dropout && a->keep_prob[0] < 1.0f) {
        size_t count = B * (size_t)a->units[0];
        memcpy(net->A[0], X, count * sizeof(real));
        dropout_forward(net->A[0], net->mask[0], count, a->keep_prob[0], rng);
        in = net->A[0];
    }
    net->input = in;
    net->rows = B;
    net->mode = mode;
    for (int l = 1; l <= L; l++) {
        int n = a->units[l], k = a->units[l - 1];
        real *Z = net->A[l];
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, n, k, 1, in, k, net->W[l], k, 0, Z,
             n);
        cv_activation_t act = l < L ? a->act[l] : CV_ACT_RELU;
        /* The common case, bias then relu, runs as one pass over Z (the same two operations
         * per value as the separate loops), branch-free so it vectorizes. */
        int bias_relu = l < L && !net->gamma[l] && act == CV_ACT_RELU;
        if (net->gamma[l]) {
            batchnorm_forward(net, l, Z, B, mode);
        } else if (bias_relu) {
            const real *b = net->b[l];
            for (size_t i = 0; i < B; i++) {
                real *zi = Z + i * (size_t)n;
                for (int j = 0; j < n; j++) {
                    real z = zi[j] + b[j];
                    zi[j] = z > 0 ? z : 0;
                }
            }
        } else {
            const real *b = net->b[l];
            for (size_t i = 0; i < B; i++)
                for (int j = 0; j < n; j++) Z[i * (size_t)n + j] += b[j];
        }
        if (l == L) break;
        real slope = (real)a->leaky_slope;
        size_t count = B * (size_t)n;
        if (bias_relu) {
            /* already activated */
        } else if (act == CV_ACT_RELU) { /* after batch norm, kept branch-free too */
            for (size_t i = 0; i < count; i++) Z[i] = Z[i] > 0 ? Z[i] : 0;
        } else {
            for (size_t i = 0; i < count; i++) Z[i] = act_forward(act, Z[i], slope);
        }
        if (dropout && a->keep_prob[l] < 1.0f)
            dropout_forward(Z, net->mask[l], count, a->keep_prob[l], rng);
        in = Z;
    }
    output_forward(net, B);
}

/* ---- loss ----------------------------------------------------------------------------- */

double NN_(loss)(const net_t *net, const int32_t *y, double *errors) {
    size_t B = net->rows, C = (size_t)net->arch.units[net->arch.layers];
    const real *z = net->A[net->arch.layers];
    double sum = 0, wrong = 0;
    if (net->arch.output == CV_OUT_SIGMOID) {
        for (size_t i = 0; i < B; i++) {
            double zi = z[i], yi = y[i];
            /* −[y·log σ(z) + (1−y)·log(1−σ(z))] without forming σ(z). */
            sum += (zi > 0 ? zi : 0) - zi * yi + log1p(exp(-fabs(zi)));
            wrong += (zi > 0) != (y[i] == 1);
        }
    } else {
        for (size_t i = 0; i < B; i++) {
            const real *zi = z + i * C;
            size_t arg = 0;
            for (size_t c = 1; c < C; c++) arg = zi[c] > zi[arg] ? c : arg;
            double max = zi[arg], s = 0;
            for (size_t c = 0; c < C; c++) s += exp((double)zi[c] - max);
            sum += max + log(s) - (double)zi[y[i]];
            wrong += arg != (size_t)y[i];
        }
    }
    if (errors) *errors = wrong;
    return B ? sum / (double)B : 0;
}

double NN_(smoothed_loss)(const net_t *net, const int32_t *y) {
    size_t B = net->rows, C = (size_t)net->arch.units[net->arch.layers];
    const real *z = net->A[net->arch.layers];
    double eps = net->arch.label_smoothing, sum = 0;
    if (net->arch.output == CV_OUT_SIGMOID) {
        for (size_t i = 0; i < B; i++) {
            /* −[t·log σ(z) + (1−t)·log(1−σ(z))] with t = (1−ε)·y + ε/2. */
            double zi = z[i], t = (1 - eps) * y[i] + eps / 2;
            sum += (zi > 0 ? zi : 0) - zi * t + log1p(exp(-fabs(zi)));
        }
    } else {
        /* −Σ_c t_c·log p_c = (1−ε)·(lse − z_y) + ε·(lse − mean_c z_c), lse = log Σ_c e^z_c. */
        for (size_t i = 0; i < B; i++) {
            const real *zi = z + i * C;
            double max = zi[0], s = 0, zsum = 0;
            for (size_t c = 1; c < C; c++) max = zi[c] > max ? zi[c] : max;
            for (size_t c = 0; c < C; c++) {
                s += exp((double)zi[c] - max);
                zsum += zi[c];
            }
            double lse = max + log(s);
            sum += (1 - eps) * (lse - (double)zi[y[i]]) + eps * (lse - zsum / (double)C);
        }
    }
    return B ? sum / (double)B : 0;
}

double NN_(reg_cost)(const net_t *net, double l2, double l1, size_t m) {
    if ((l2 == 0 && l1 == 0) || m == 0) return 0;
    double sq = 0, abs_sum = 0;
    for (int l = 1; l <= net->arch.layers; l++) {
        size_t count = (size_t)net->arch.units[l] * (size_t)net->arch.units[l - 1];
        const real *W = net->W[l];
        for (size_t i = 0; i < count; i++) {
            sq += (double)W[i] * W[i];
            abs_sum += fabs((double)W[i]);
        }
    }
    return l2 / (2.0 * (double)m) * sq + l1 / (double)m * abs_sum;
}

/* ---- backward ------------------------------------------------------------------------- */

/* Sums the rows of dz (B × n) into out (n). */
static void column_sums(const real *dz, size_t B, size_t n, real *out) {
    memset(out, 0, n * sizeof(real));
    for (size_t i = 0; i < B; i++)
        for (size_t j = 0; j < n; j++) out[j] += dz[i * n + j];
}

/* Multiplies the gradient d (count values) by g'(z), recovered from the layer's output A, and
 * by the dropout mask when there is one: A holds g(Z)·m, and a dropped unit (m = 0) passes no
 * gradient. The product is formed for every unit and then selected, without a branch, so the
 * loop vectorizes (a dropped unit's 0/0 is discarded by the select); without a mask m is 1 and
 * d·1 and A/1 are exact. Called with a constant act, so the switch in act_derivative folds. */
static inline void activation_backward(cv_activation_t act, real *restrict d,
                                       const real *restrict A, const real *restrict mask,
                                       size_t count, real slope) {
    if (!mask) {
        for (size_t i = 0; i < count; i++) d[i] *= act_derivative(act, A[i], slope);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        real m = mask[i];
        real g = d[i] * m * act_derivative(act, A[i] / m, slope);
        d[i] = m == 0 ? 0 : g;
    }
}

/* Turns dJ/dZ̃ (d, B × n) of a batch-norm layer into dJ/dZ in place, filling dγ and dβ.
 * With batch statistics: dZ = γ·istd/B · (B·d − Σd − x̂·Σ(d·x̂)); with running statistics the
 * layer is affine and dZ = γ·istd·d. */
static void batchnorm_backward(net_t *net, int l, real *d, size_t B) {
    size_t n = (size_t)net->arch.units[l];
    const real *xhat = net->xhat[l], *istd = net->bn_istd[l], *gamma = net->gamma[l];
    real *dgamma = net->dgamma[l], *dbeta = net->dbeta[l];
    memset(dgamma, 0, n * sizeof(real));
    memset(dbeta, 0, n * sizeof(real));
    for (size_t i = 0; i < B; i++)
        for (size_t j = 0; j < n; j++) {
            dgamma[j] += d[i * n + j] * xhat[i * n + j];
            dbeta[j] += d[i * n + j];
        }
    int batch_stats = (net->mode & NN_FORWARD_BATCH_STATS) != 0;
    for (size_t i = 0; i < B; i++)
        for (size_t j = 0; j < n; j++) {
            real s = gamma[j] * istd[j];
            real *dij = &d[i * n + j];
            if (batch_stats)
                *dij = s / (real)B * ((real)B * *dij - dbeta[j] - xhat[i * n + j] * dgamma[j]);
            else
                *dij = s * *dij;
        }
}

CV_VECTOR_CLONES
void NN_(backward)(net_t *net, const int32_t *y) {
    const cv_arch_t *a = &net->arch;
    int L = a->layers;
    size_t B = net->rows, C = (size_t)a->units[L];
    real invB = (real)(1.0 / (double)B);
    real *dz = net->dz[0];
    /* dZ[L] = (Ŷ − T)/B for both softmax + cross-entropy and sigmoid + binary cross-entropy,
     * with the smoothed targets T = (1−ε)·Y + ε/C (C = 2 for the sigmoid output's one unit). */
    real eps = (real)a->label_smoothing;
    real off = a->output == CV_OUT_SIGMOID ? eps / 2 : eps / (real)C; /* ε/C, every target */
    real on = 1 - eps;                                                /* added to the true one */
    for (size_t i = 0; i < B * C; i++) dz[i] = (net->probs[i] - off) * invB;
    for (size_t i = 0; i < B; i++) {
        if (a->output == CV_OUT_SIGMOID)
            dz[i] -= (real)y[i] * on * invB;
        else
            dz[i * C + (size_t)y[i]] -= on * invB;
    }
    int dropout = (net->mode & NN_FORWARD_DROPOUT) != 0;
    for (int l = L; l >= 1; l--) {
        int n = a->units[l], k = a->units[l - 1];
        const real *in = l == 1 ? net->input : net->A[l - 1];
        GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, (int)B, 1, dz, n, in, k, 0,
             net->dW[l], k);
        if (net->db[l]) column_sums(dz, B, (size_t)n, net->db[l]);
        if (l == 1) break; /* nobody needs the gradient of the input */

        real *dprev = net->dz[dz == net->dz[0] ? 1 : 0];
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, k, n, 1, dz, n, net->W[l], k, 0,
             dprev, k);
        int lp = l - 1;
        const real *A = net->A[lp];
        const real *mask = dropout && a->keep_prob[lp] < 1.0f ? net->mask[lp] : NULL;
        cv_activation_t act = a->act[lp];
#ifdef CV_TEST_HOOKS
        if (net->test_break_backward) act = CV_ACT_SIGMOID; /* genann's old bug, on purpose */
#endif
        real slope = (real)a->leaky_slope;
        size_t count = B * (size_t)k;
        if (!mask && act == CV_ACT_RELU) {
            for (size_t i = 0; i < count; i++) dprev[i] = A[i] > 0 ? dprev[i] : 0;
        } else {
            switch (act) { /* one loop per activation, so each loop body is branch-free */
            case CV_ACT_RELU: activation_backward(CV_ACT_RELU, dprev, A, mask, count, slope); break;
            case CV_ACT_LEAKY_RELU:
                activation_backward(CV_ACT_LEAKY_RELU, dprev, A, mask, count, slope);
                break;
            case CV_ACT_TANH: activation_backward(CV_ACT_TANH, dprev, A, mask, count, slope); break;
            case CV_ACT_SIGMOID:
                activation_backward(CV_ACT_SIGMOID, dprev, A, mask, count, slope);
                break;
            }
        }
        if (net->gamma[lp]) batchnorm_backward(net, lp, dprev, B);
        dz = dprev;
    }
}

void NN_(add_reg_grad)(net_t *net, double l2, double l1, size_t m) {
    if ((l2 == 0 && l1 == 0) || m == 0) return;
    real c2 = (real)(l2 / (double)m), c1 = (real)(l1 / (double)m);
    for (int l = 1; l <= net->arch.layers; l++) {
        size_t count = (size_t)net->arch.units[l] * (size_t)net->arch.units[l - 1];
        const real *restrict W = net->W[l];
        real *restrict dW = net->dW[l];
        for (size_t i = 0; i < count; i++) dW[i] += c2 * W[i];
        if (c1 != 0)
            for (size_t i = 0; i < count; i++) dW[i] += c1 * (real)((W[i] > 0) - (W[i] < 0));
    }
}

void NN_(predict_classes)(const net_t *net, int32_t *pred) {
    size_t B = net->rows, C = (size_t)net->arch.units[net->arch.layers];
    const real *z = net->A[net->arch.layers];
    for (size_t i = 0; i < B; i++) {
        if (net->arch.output == CV_OUT_SIGMOID) {
            pred[i] = z[i] > 0;
            continue;
        }
        size_t arg = 0;
        for (size_t c = 1; c < C; c++) arg = z[i * C + c] > z[i * C + arg] ? c : arg;
        pred[i] = (int32_t)arg;
    }
}
