/* Training-speed benchmark of the worker engine: examples per second training the
 * 784-256-128-10 ReLU network with Adam (lr 1e-3) on Fashion-MNIST, strictly one thread, at the
 * mini-batch sizes given (64 and 256 by default).
 *
 * For each batch size it runs a real trial through cv_train_run (files-mode split, dev 1/6:
 * 50,000 training examples) and reports the trainer's own training-step throughput (gathering,
 * forward, loss, backward, Adam; scoring excluded), per epoch and overall. Beside it, a copy of
 * the trainer's epoch loop built from the same public calls times each phase, and the same
 * GEMM calls the network makes are timed alone, so the time left to elementwise work is known.
 *
 * References printed in the same run: the exact GEMM FLOPs per example of the architecture,
 * cblas_sgemm's best GFLOP/s at the network's shapes and at large square shapes (the peak the
 * achieved rate is a fraction of), the allocation calls made during the epochs (must not grow
 * with the number of mini-batches), and peak RSS against the dataset's in-memory size + 64 MiB.
 * The PyTorch reference is bench/torch_reference.py; bench/train_speed.sh runs both.
 *
 * Every figure is one "key=value" record per line, its first word naming the record:
 * env, flops, sgemm, epoch, train, allocs, hotpath, memory, result.
 *
 * Usage: train_bench [--data DIR] [--epochs N] [--keep-prob P] [--only PART] [BATCH ...]
 * PART is sgemm, trainer or hotpath (for profiling one part); the default runs them all.
 * OPENBLAS_NUM_THREADS must be 1; when it is not, the program sets it and re-executes itself so
 * OpenBLAS never starts its thread pool. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/alloc_count.h"
#include "common/err.h"
#include "common/rng.h"
#include "common/trial_spec.h"
#include "worker/arch.h"
#include "worker/nn.h"
#include "worker/optim.h"
#include "worker/trainer.h"
#include "worker/trial_data.h"

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define MAX_BATCHES 8          /* batch sizes per run */
#define MAX_EPOCHS 20          /* epochs per trial */
#define SGEMM_TRIALS 30        /* best of this many timed trials per shape */
#define SGEMM_TRIAL_SECONDS 0.002 /* short trials: on a shared machine some escape preemption */
#define SGEMM_BUDGET 0.4       /* seconds per shape, after the first 3 trials */
#define HOTPATH_WARMUP_STEPS 100
#define HOTPATH_PASSES 3       /* timed epochs of the hot path; the fastest is reported */
#define SLACK_BYTES (64.0 * 1024 * 1024) /* RSS allowed above the dataset's size */

static const int UNITS[] = {784, 256, 128, 10}; /* the benchmarked architecture */
#define LAYERS 3

typedef struct {
    const char *data_dir;       /* directory of the four Fashion-MNIST IDX files */
    int epochs;                 /* epochs per trial, 2..MAX_EPOCHS */
    double keep_prob;           /* dropout keep probability of the hidden layers, 1 = off */
    const char *only;           /* "sgemm", "trainer" or "hotpath" to run one part; NULL: all */
    size_t batches[MAX_BATCHES];
    int n_batches;
} options_t;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the calling thread: unlike wall time, it does not grow while another process
 * holds the core, so it is the steadier figure on a shared machine. */
static double thread_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (double)ru.ru_maxrss * 1024.0; /* ru_maxrss is in KiB on Linux */
}

/* Makes sure OpenBLAS runs on exactly one thread. OpenBLAS reads OPENBLAS_NUM_THREADS when it
 * is loaded, before main, so when the variable is not "1" the program sets it and replaces
 * itself with a fresh copy; openblas_set_num_threads(1) is then applied on top. Returns 0, or
 * -1 when the variable could not be made "1". */
static int require_one_thread(char **argv) {
    const char *v = getenv("OPENBLAS_NUM_THREADS");
    if (!v || strcmp(v, "1") != 0) {
        if (setenv("OPENBLAS_NUM_THREADS", "1", 1) != 0) return -1;
        if (!getenv("CV_BENCH_REEXEC")) {
            setenv("CV_BENCH_REEXEC", "1", 1);
            execv("/proc/self/exe", argv);
            perror("train_bench: re-executing with OPENBLAS_NUM_THREADS=1");
        }
        return -1;
    }
    openblas_set_num_threads(1);
    return openblas_get_num_threads() == 1 ? 0 : -1;
}

static int parse_options(options_t *o, int argc, char **argv) {
    *o = (options_t){.data_dir = DEFAULT_DATA, .epochs = 3, .keep_prob = 1.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--data") == 0 && i + 1 < argc) {
            o->data_dir = argv[++i];
        } else if (strcmp(a, "--epochs") == 0 && i + 1 < argc) {
            o->epochs = atoi(argv[++i]);
            if (o->epochs < 2 || o->epochs > MAX_EPOCHS) {
                fprintf(stderr, "train_bench: --epochs must be in 2..%d\n", MAX_EPOCHS);
                return -1;
            }
        } else if (strcmp(a, "--keep-prob") == 0 && i + 1 < argc) {
            o->keep_prob = atof(argv[++i]);
            if (!(o->keep_prob > 0 && o->keep_prob <= 1)) {
                fprintf(stderr, "train_bench: --keep-prob must be in (0, 1]\n");
                return -1;
            }
        } else if (strcmp(a, "--only") == 0 && i + 1 < argc) {
            o->only = argv[++i];
            if (strcmp(o->only, "sgemm") && strcmp(o->only, "trainer") &&
                strcmp(o->only, "hotpath")) {
                fprintf(stderr, "train_bench: --only takes sgemm, trainer or hotpath\n");
                return -1;
            }
        } else if (a[0] >= '1' && a[0] <= '9' && o->n_batches < MAX_BATCHES) {
            o->batches[o->n_batches++] = (size_t)strtoul(a, NULL, 10);
        } else {
            fprintf(stderr, "usage: train_bench [--data DIR] [--epochs N] [--keep-prob P] "
                            "[--only sgemm|trainer|hotpath] [BATCH ...]  (at most %d batch "
                            "sizes)\n", MAX_BATCHES);
            return -1;
        }
    }
    if (o->n_batches == 0) o->batches[o->n_batches++] = 64, o->batches[o->n_batches++] = 256;
    return 0;
}

/* The trial spec of the benchmark, built from JSON text so it reads like a spec file. */
static int make_spec(cv_trial_spec_t *spec, const options_t *o, size_t batch, char *err) {
    char json[4 * CV_PATH_MAX + 1024];
    int len = snprintf(json, sizeof json,
        "{\"dataset\": {\"format\": \"idx\","
        " \"images\": \"%s/train-images-idx3-ubyte.gz\","
        " \"labels\": \"%s/train-labels-idx1-ubyte.gz\","
        " \"test_images\": \"%s/t10k-images-idx3-ubyte.gz\","
        " \"test_labels\": \"%s/t10k-labels-idx1-ubyte.gz\", \"classes\": 10},"
        " \"split\": {\"dev\": 0.16666666666666666},"
        " \"hidden_units\": [%d, %d], \"activation\": \"relu\", \"keep_prob\": %.17g,"
        " \"init\": \"he\", \"optimizer\": \"adam\", \"learning_rate\": 0.001,"
        " \"batch_size\": %zu, \"epochs\": %d, \"train_eval_examples\": 1000, \"seed\": 1}",
        o->data_dir, o->data_dir, o->data_dir, o->data_dir, UNITS[1], UNITS[2], o->keep_prob,
        batch, o->epochs);
    if (len < 0 || (size_t)len >= sizeof json)
        return cv_errf(err, CV_ERANGE, "the data directory path is too long");
    return cv_trial_spec_parse(spec, json, (size_t)len, err);
}

/* ---- FLOPs and the SGEMM reference ---------------------------------------------------- */

/* GEMM FLOPs of one training example: the forward products X·W[l]ᵀ, the weight gradients
 * dZ[l]ᵀ·A[l−1], and the input gradients dZ[l]·W[l] of every layer but the first (nobody needs
 * dJ/dX). Each product of an m×k and a k×n matrix is 2·m·k·n FLOPs, so per example (m = 1)
 * every layer costs 2·n[l]·n[l−1] per product. Elementwise work (bias, ReLU, softmax, Adam) is
 * not counted: GFLOP/s here means useful GEMM work per second. */
static double flops_per_example(void) {
    double fwd = 0, dx = 0;
    for (int l = 1; l <= LAYERS; l++) {
        fwd += 2.0 * UNITS[l] * UNITS[l - 1];
        if (l > 1) dx += 2.0 * UNITS[l] * UNITS[l - 1];
    }
    return fwd + fwd + dx;
}

static void print_flops(void) {
    double fwd = 0, dx = 0;
    for (int l = 1; l <= LAYERS; l++) {
        fwd += 2.0 * UNITS[l] * UNITS[l - 1];
        if (l > 1) dx += 2.0 * UNITS[l] * UNITS[l - 1];
    }
    printf("flops per_example=%.0f forward=%.0f weight_grads=%.0f input_grads=%.0f "
           "formula=\"2*(784*256+256*128+128*10) + 2*(784*256+256*128+128*10) + "
           "2*(256*128+128*10)\"\n", flops_per_example(), fwd, fwd, dx);
}

/* Best GFLOP/s of C = op(A)·op(B) (row-major, C is M×N, inner dimension K) over up to
 * SGEMM_TRIALS timed trials (at least 3, fewer when a shape's budget runs out). Taking the best
 * is right for a peak: another process can only slow a trial down. a, b and c hold at least
 * M·K, K·N and M·N floats. */
static double time_sgemm(int trans_a, int trans_b, int M, int N, int K, const float *a,
                         const float *b, float *c) {
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    int lda = trans_a ? M : K, ldb = trans_b ? K : N;
    double flops = 2.0 * M * N * K, best = 0, start = now_seconds();
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1, a, lda, b, ldb, 0, c, N); /* warm-up */
    for (int t = 0; t < SGEMM_TRIALS && (t < 3 || now_seconds() - start < SGEMM_BUDGET); t++) {
        long calls = 0;
        double t0 = now_seconds(), dt;
        do {
            cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1, a, lda, b, ldb, 0, c, N);
            calls++;
            dt = now_seconds() - t0;
        } while (dt < SGEMM_TRIAL_SECONDS);
        double gflops = flops * (double)calls / dt * 1e-9;
        if (gflops > best) best = gflops;
    }
    return best;
}

/* Times cblas_sgemm at every product the network computes for each batch size, and at two
 * large square shapes; prints each and returns the highest rate seen (the peak). */
static double measure_sgemm_peak(const options_t *o) {
    const int squares[] = {1024, 2048};
    size_t cap = (size_t)squares[1] * (size_t)squares[1];
    for (int i = 0; i < o->n_batches; i++)
        if (o->batches[i] * 784 > cap) cap = o->batches[i] * 784;
    float *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b), *c = malloc(cap * sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        fprintf(stderr, "train_bench: out of memory for the SGEMM reference\n");
        return NAN;
    }
    cv_rng_t rng;
    cv_rng_seed(&rng, 7);
    for (size_t i = 0; i < cap; i++) {
        a[i] = cv_rng_uniformf(&rng) - 0.5f;
        b[i] = cv_rng_uniformf(&rng) - 0.5f;
        c[i] = 0;
    }
    double peak = 0;
    char peak_at[64] = "";
    for (int i = 0; i < o->n_batches; i++) {
        int B = (int)o->batches[i];
        for (int l = 1; l <= LAYERS; l++) {
            int n = UNITS[l], k = UNITS[l - 1];
            struct { const char *what; int ta, tb, M, N, K; } s[3] = {
                {"forward", 0, 1, B, n, k},    /* Z = A·Wᵀ */
                {"weight_grad", 1, 0, n, k, B}, /* dW = dZᵀ·A */
                {"input_grad", 0, 0, B, k, n},  /* dA = dZ·W */
            };
            for (int j = 0; j < (l > 1 ? 3 : 2); j++) {
                double g = time_sgemm(s[j].ta, s[j].tb, s[j].M, s[j].N, s[j].K, a, b, c);
                printf("sgemm batch=%d layer=%d product=%s M=%d N=%d K=%d gflops=%.1f\n", B, l,
                       s[j].what, s[j].M, s[j].N, s[j].K, g);
                if (g > peak) {
                    peak = g;
                    snprintf(peak_at, sizeof peak_at, "%dx%dx%d", s[j].M, s[j].N, s[j].K);
                }
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        int s = squares[i];
        double g = time_sgemm(0, 0, s, s, s, a, b, c);
        printf("sgemm square=%d M=%d N=%d K=%d gflops=%.1f\n", s, s, s, s, g);
        if (g > peak) {
            peak = g;
            snprintf(peak_at, sizeof peak_at, "%dx%dx%d", s, s, s);
        }
    }
    printf("sgemm peak_gflops=%.1f at=%s\n", peak, peak_at);
    free(a), free(b), free(c);
    return peak;
}

/* ---- the real trainer ----------------------------------------------------------------- */

typedef struct {
    int epochs;                               /* epochs reported so far */
    double rate[MAX_EPOCHS];                  /* training examples per second, per epoch */
    double dev_error[MAX_EPOCHS];
    unsigned long allocs_at_end[MAX_EPOCHS];  /* allocation calls counted when epoch ended */
} epoch_log_t;

static int on_epoch(const cv_epoch_t *m, void *userdata) {
    epoch_log_t *log = userdata;
    int e = (int)m->epoch - 1;
    if (e >= 0 && e < MAX_EPOCHS) {
        log->allocs_at_end[e] = cv_bench_alloc_count(); /* first, before anything allocates */
        log->rate[e] = m->examples_per_second;
        log->dev_error[e] = m->dev_error;
        log->epochs = (int)m->epoch;
    }
    return 0;
}

typedef struct {
    double overall;    /* the trainer's examples_per_second over all epochs */
    double best_epoch; /* the fastest epoch's examples per second */
} rates_t;

/* Runs one trial at a batch size and prints its epochs, throughput and allocation counts. */
static int run_trainer(const options_t *o, size_t batch, rates_t *out) {
    char err[CV_ERRLEN];
    cv_trial_spec_t spec;
    if (make_spec(&spec, o, batch, err)) {
        fprintf(stderr, "train_bench: spec: %s\n", err);
        return -1;
    }
    epoch_log_t log = {0};
    cv_train_options_t opts = {.on_epoch = on_epoch, .userdata = &log};
    cv_trial_result_t res;
    if (cv_train_run(&spec, &opts, &res, err) != 0 || res.status != CV_TRIAL_COMPLETED ||
        log.epochs != o->epochs) {
        fprintf(stderr, "train_bench: trial at batch %zu: %s %s\n", batch,
                cv_trial_status_name(res.status), res.error);
        return -1;
    }
    out->overall = res.examples_per_second;
    out->best_epoch = 0;
    for (int e = 0; e < log.epochs; e++) {
        printf("epoch batch=%zu epoch=%d examples_per_second=%.0f dev_accuracy=%.4f\n", batch,
               e + 1, log.rate[e], 1 - log.dev_error[e]);
        if (log.rate[e] > out->best_epoch) out->best_epoch = log.rate[e];
    }
    size_t batches_per_epoch = (res.m_train + batch - 1) / batch;
    printf("train batch=%zu m_train=%zu m_dev=%zu epochs=%d examples_per_second=%.0f "
           "best_epoch_examples_per_second=%.0f dev_accuracy_epoch2=%.4f trial_seconds=%.2f\n",
           batch, res.m_train, res.m_dev, log.epochs, res.examples_per_second, out->best_epoch,
           1 - log.dev_error[1], res.seconds);
    /* Allocation calls between the end of one epoch and the end of the next: that epoch's
     * training and its scoring. Epoch 1 also contains the setup, so it is left out. */
    if (cv_bench_alloc_counting()) {
        printf("allocs batch=%zu batches_per_epoch=%zu per_epoch_after_first=", batch,
               batches_per_epoch);
        unsigned long worst = 0;
        for (int e = 1; e < log.epochs; e++) {
            unsigned long d = log.allocs_at_end[e] - log.allocs_at_end[e - 1];
            if (d > worst) worst = d;
            printf("%s%lu", e > 1 ? "," : "", d);
        }
        printf(" per_batch_free=%s\n", worst < batches_per_epoch ? "yes" : "NO");
    } else {
        printf("allocs batch=%zu counting=unavailable (sanitizer build)\n", batch);
    }
    return 0;
}

/* ---- the hot path, phase by phase ----------------------------------------------------- */

typedef struct {
    double shuffle, gather, forward, loss, backward, optim; /* seconds over the timed epoch */
} phases_t;

/* One epoch of the trainer's loop (worker/trainer.c train_epoch, without augmentation or
 * regularization, which the benchmark spec does not use), with every phase timed. */
static void timed_epoch(const cv_dataset_t *tr, cv_nnf_net_t *net, cv_optim_t *opt,
                        uint32_t *order, float *xb, int32_t *yb, size_t batch, size_t max_steps,
                        cv_rng_t *rng, phases_t *ph) {
    size_t steps = 0;
    double t0 = now_seconds(), t1;
    cv_rng_shuffle_u32(rng, order, tr->m);
    t1 = now_seconds(), ph->shuffle += t1 - t0, t0 = t1;
    for (size_t start = 0; start < tr->m && steps < max_steps; start += batch, steps++) {
        size_t rows = tr->m - start < batch ? tr->m - start : batch;
        cv_dataset_gather(tr, order + start, rows, tr->m - start, xb, yb);
        t1 = now_seconds(), ph->gather += t1 - t0, t0 = t1;
        cv_nnf_forward(net, xb, rows, NN_FORWARD_TRAIN, rng);
        t1 = now_seconds(), ph->forward += t1 - t0, t0 = t1;
        volatile double loss = cv_nnf_loss(net, yb, NULL);
        (void)loss;
        t1 = now_seconds(), ph->loss += t1 - t0, t0 = t1;
        cv_nnf_backward(net, yb);
        t1 = now_seconds(), ph->backward += t1 - t0, t0 = t1;
        cv_optim_step(opt, net->params, net->grads, 1e-3f);
        t1 = now_seconds(), ph->optim += t1 - t0, t0 = t1;
    }
}

/* Seconds per batch of the network's GEMM calls alone, made exactly as nn.c makes them (same
 * shapes, transposes and buffers), best of five passes of `reps` batches. */
static double gemm_seconds_per_batch(cv_nnf_net_t *net, const float *xb, int B, int reps) {
    double best = INFINITY;
    for (int pass = 0; pass < 5; pass++) {
        double t0 = now_seconds();
        for (int r = 0; r < reps; r++) {
            const float *in = xb;
            for (int l = 1; l <= LAYERS; l++) {
                int n = UNITS[l], k = UNITS[l - 1];
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n, k, 1, in, k,
                            net->W[l], k, 0, net->A[l], n);
                in = net->A[l];
            }
            float *dz = net->dz[0];
            for (int l = LAYERS; l >= 1; l--) {
                int n = UNITS[l], k = UNITS[l - 1];
                const float *a_in = l == 1 ? xb : net->A[l - 1];
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, k, B, 1, dz, n, a_in, k,
                            0, net->dW[l], k);
                if (l == 1) break;
                float *dprev = net->dz[dz == net->dz[0] ? 1 : 0];
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, k, n, 1, dz, n,
                            net->W[l], k, 0, dprev, k);
                dz = dprev;
            }
        }
        double dt = (now_seconds() - t0) / reps;
        if (dt < best) best = dt;
    }
    return best;
}

/* Trains a warm-up stretch and HOTPATH_PASSES timed epochs through the public calls and prints
 * where the time of the fastest epoch goes, per batch, with the allocation calls made during
 * the timed epochs and the examples per second of thread CPU time. */
static int run_hotpath(const cv_trial_data_t *data, const cv_trial_spec_t *spec, size_t batch) {
    char err[CV_ERRLEN];
    const cv_dataset_t *tr = &data->train;
    cv_arch_t arch;
    cv_nnf_net_t *net = NULL;
    cv_optim_t opt = {0};
    uint32_t *order = malloc(tr->m * sizeof *order);
    float *xb = malloc(batch * tr->n * sizeof *xb);
    int32_t *yb = malloc(batch * sizeof *yb);
    int rc = -1;
    if (!order || !xb || !yb) goto done;
    if (cv_arch_from_spec(&arch, spec, (int)tr->n, data->classes, err) ||
        cv_nnf_create(&net, &arch, batch, err) ||
        cv_optim_init(&opt, spec, net->n_params, err)) {
        fprintf(stderr, "train_bench: hot path: %s\n", err);
        goto done;
    }
    for (size_t i = 0; i < tr->m; i++) order[i] = (uint32_t)i;
    cv_rng_t rng;
    cv_rng_seed(&rng, 3);
    cv_nnf_init(net, spec->init, spec->init_scale, &rng);
    phases_t warm = {0}, ph = {0};
    timed_epoch(tr, net, &opt, order, xb, yb, batch, HOTPATH_WARMUP_STEPS, &rng, &warm);
    double best = INFINITY, best_cpu = INFINITY;
    unsigned long a0 = cv_bench_alloc_count();
    for (int pass = 0; pass < HOTPATH_PASSES; pass++) {
        phases_t p = {0};
        double c0 = thread_cpu_seconds();
        timed_epoch(tr, net, &opt, order, xb, yb, batch, SIZE_MAX, &rng, &p);
        double cpu = thread_cpu_seconds() - c0;
        double total = p.shuffle + p.gather + p.forward + p.loss + p.backward + p.optim;
        if (total < best) best = total, ph = p;
        if (cpu < best_cpu) best_cpu = cpu;
    }
    unsigned long allocs = cv_bench_alloc_count() - a0;
    size_t steps = (tr->m + batch - 1) / batch;
    double gemm = gemm_seconds_per_batch(net, xb, (int)batch, (int)(steps < 200 ? steps : 200));
    double us = 1e6 / (double)steps, fb = (ph.forward + ph.loss + ph.backward) * us;
    printf("hotpath batch=%zu steps=%zu examples_per_second=%.0f "
           "examples_per_cpu_second=%.0f us_per_batch=%.1f shuffle_us=%.2f gather_us=%.2f "
           "forward_us=%.2f loss_us=%.2f backward_us=%.2f adam_us=%.2f gemm_alone_us=%.2f "
           "non_gemm_forward_backward_us=%.2f allocs_in_%d_epochs=%lu%s\n",
           batch, steps, (double)tr->m / best, (double)tr->m / best_cpu, best * us,
           ph.shuffle * us, ph.gather * us, ph.forward * us, ph.loss * us, ph.backward * us,
           ph.optim * us, gemm * 1e6, fb - gemm * 1e6, HOTPATH_PASSES, allocs,
           cv_bench_alloc_counting() ? "" : " (not counted)");
    rc = 0;
done:
    cv_optim_finish(&opt);
    cv_nnf_destroy(net);
    free(order), free(xb), free(yb);
    return rc;
}

/* ---- main ----------------------------------------------------------------------------- */

static void print_env(void) {
    char load[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fgets(load, sizeof load, f)) load[strcspn(load, " ")] = '\0';
        fclose(f);
    }
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    printf("env OPENBLAS_NUM_THREADS=%s OPENBLAS_CORETYPE=%s openblas_threads=%d "
           "openblas_core=%s loadavg_1min=%s alloc_counting=%s\n",
           getenv("OPENBLAS_NUM_THREADS"), coretype ? coretype : "(unset)",
           openblas_get_num_threads(), openblas_get_corename(), load,
           cv_bench_alloc_counting() ? "on" : "off");
    printf("env openblas_config=\"%s\"\n", openblas_get_config());
}

static int wanted(const options_t *o, const char *part) {
    return !o->only || strcmp(o->only, part) == 0;
}

int main(int argc, char **argv) {
    if (require_one_thread(argv) != 0) {
        fprintf(stderr, "train_bench: could not run OpenBLAS on one thread\n");
        return 1;
    }
    options_t o;
    if (parse_options(&o, argc, argv)) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    print_env();
    print_flops();
    double peak = wanted(&o, "sgemm") ? measure_sgemm_peak(&o) : NAN;

    rates_t rates[MAX_BATCHES];
    if (wanted(&o, "trainer"))
        for (int i = 0; i < o.n_batches; i++)
            if (run_trainer(&o, o.batches[i], &rates[i])) return 1;

    size_t m_all = 0, n = 0;
    if (wanted(&o, "hotpath")) { /* one loaded copy of the data serves every batch size */
        char err[CV_ERRLEN];
        cv_trial_spec_t spec;
        cv_trial_data_t data;
        if (make_spec(&spec, &o, o.batches[0], err) || cv_trial_data_load(&data, &spec, err)) {
            fprintf(stderr, "train_bench: %s\n", err);
            return 1;
        }
        m_all = data.all.m + data.test_file.m, n = data.all.n;
        for (int i = 0; i < o.n_batches; i++)
            if (run_hotpath(&data, &spec, o.batches[i])) return 1;
        cv_trial_data_finish(&data);
    }
    if (o.only) return 0;

    double dataset = (double)m_all * ((double)n * sizeof(float) + sizeof(int32_t));
    double rss = peak_rss_bytes(), limit = dataset + SLACK_BYTES;
    printf("memory peak_rss_bytes=%.0f peak_rss_mib=%.1f dataset_bytes=%.0f dataset_mib=%.1f "
           "dataset_formula=\"%zu*(%zu*4+4)\" limit_mib=%.1f rss_under_limit=%s\n", rss,
           rss / 1048576.0, dataset, dataset / 1048576.0, m_all, n, limit / 1048576.0,
           rss < limit ? "yes" : "NO");
    double fpe = flops_per_example();
    for (int i = 0; i < o.n_batches; i++) {
        double gf = rates[i].best_epoch * fpe * 1e-9;
        printf("result batch=%zu examples_per_second=%.0f best_epoch_examples_per_second=%.0f "
               "gflops=%.1f peak_gflops=%.1f fraction_of_peak=%.3f peak_rss_mib=%.1f\n",
               o.batches[i], rates[i].overall, rates[i].best_epoch, gf, peak, gf / peak,
               rss / 1048576.0);
    }
    return 0;
}
