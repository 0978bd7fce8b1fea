/* One trial from spec to best model; see trainer.h. All memory is sized before the first epoch:
 * the epoch loop only gathers rows into the batch buffer, runs the network and steps the
 * optimizer. */
#include "worker/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/rng.h"
#include "worker/model_file.h"
#include "worker/optim.h"

#define SCORE_CHUNK 1024 /* rows per inference pass when scoring */

void cv_train_score(cv_nnf_net_t *net, const cv_dataset_t *ds, size_t chunk,
                    const cv_normalizer_t *norm, float *scratch, double *cost, double *error) {
    double loss_sum = 0, wrong = 0;
    for (size_t i = 0; i < ds->m; i += chunk) {
        size_t rows = ds->m - i < chunk ? ds->m - i : chunk;
        const float *x = ds->x + i * ds->n;
        if (norm) {
            memcpy(scratch, x, rows * ds->n * sizeof(float));
            cv_normalizer_apply_rows(norm, scratch, rows);
            x = scratch;
        }
        double errs;
        cv_nnf_forward(net, x, rows, NN_FORWARD_INFER, NULL);
        loss_sum += cv_nnf_loss(net, ds->y + i, &errs) * (double)rows;
        wrong += errs;
    }
    *cost = ds->m ? loss_sum / (double)ds->m : 0;
    *error = ds->m ? wrong / (double)ds->m : 0;
}

/* Everything a running trial holds; released by trial_finish. */
typedef struct {
    cv_trial_data_t data;
    cv_nnf_net_t *net;
    cv_optim_t opt;
    uint32_t *order;      /* m_train row indices, reshuffled every epoch */
    float *xb;            /* batch × n gathered (and, when raw, normalized) rows */
    int32_t *yb;          /* batch labels */
    float *scratch;       /* SCORE_CHUNK × n, or one image for augmentation */
    float *best_params;   /* snapshot of the best epoch's params and stats */
} trial_t;

static void trial_finish(trial_t *t) {
    cv_trial_data_finish(&t->data);
    cv_nnf_destroy(t->net);
    cv_optim_finish(&t->opt);
    free(t->order);
    free(t->xb);
    free(t->yb);
    free(t->scratch);
    free(t->best_params);
}

static void snapshot(const cv_nnf_net_t *net, float *dst) {
    memcpy(dst, net->params, net->n_params * sizeof(float));
    memcpy(dst + net->n_params, net->stats, net->n_stats * sizeof(float));
}

static void restore(cv_nnf_net_t *net, const float *src) {
    memcpy(net->params, src, net->n_params * sizeof(float));
    memcpy(net->stats, src + net->n_params, net->n_stats * sizeof(float));
}

static int trial_setup(trial_t *t, const cv_trial_spec_t *spec, size_t *batch, char *err) {
    int rc = cv_trial_data_load(&t->data, spec, err);
    if (rc) return rc;
    const cv_dataset_t *tr = &t->data.train;
    if (t->data.train_raw && (tr->height <= 0 || tr->width <= 0))
        return cv_errf(err, CV_EINVAL,
                       "augment_flip/augment_translate: the dataset has no image shape");
    cv_arch_t arch;
    rc = cv_arch_from_spec(&arch, spec, (int)tr->n, t->data.classes, err);
    if (rc) return rc;
    *batch = spec->batch_size < tr->m ? spec->batch_size : tr->m;
    size_t cap = *batch > SCORE_CHUNK ? *batch : SCORE_CHUNK;
    if ((rc = cv_nnf_create(&t->net, &arch, cap, err))) return rc;
    if ((rc = cv_optim_init(&t->opt, spec, t->net->n_params, err))) return rc;
    size_t scratch_rows = t->data.train_raw ? SCORE_CHUNK : 1;
    t->order = malloc(tr->m * sizeof *t->order);
    t->xb = malloc(*batch * tr->n * sizeof *t->xb);
    t->yb = malloc(*batch * sizeof *t->yb);
    t->scratch = malloc(scratch_rows * tr->n * sizeof *t->scratch);
    t->best_params = malloc((t->net->n_params + t->net->n_stats) * sizeof(float));
    if (!t->order || !t->xb || !t->yb || !t->scratch || !t->best_params)
        return cv_errf(err, CV_ENOMEM, "out of memory for the training buffers");
    for (size_t i = 0; i < tr->m; i++) t->order[i] = (uint32_t)i;
    return 0;
}

/* Trains one epoch. Returns 0, or CV_EDIVERGE when a mini-batch cost is not finite. */
static int train_epoch(trial_t *t, const cv_trial_spec_t *spec, size_t batch, float lr,
                       cv_rng_t *rng, size_t m_reg) {
    const cv_dataset_t *tr = &t->data.train;
    cv_rng_shuffle_u32(rng, t->order, tr->m);
    for (size_t start = 0; start < tr->m; start += batch) {
        size_t rows = tr->m - start < batch ? tr->m - start : batch; /* last partial batch */
        cv_dataset_gather(tr, t->order + start, rows, tr->m - start, t->xb, t->yb);
        if (t->data.train_raw) {
            cv_augment_batch(t->xb, rows, tr->height, tr->width, spec->augment_flip,
                             spec->augment_translate, 0.0f, t->scratch, rng);
            cv_normalizer_apply_rows(&t->data.norm, t->xb, rows);
        }
        cv_nnf_forward(t->net, t->xb, rows, NN_FORWARD_TRAIN, rng);
        double loss = cv_nnf_loss(t->net, t->yb, NULL);
        if (!isfinite(loss)) return CV_EDIVERGE;
        cv_nnf_backward(t->net, t->yb);
        cv_nnf_add_reg_grad(t->net, spec->l2, spec->l1, m_reg);
        cv_optim_step(&t->opt, t->net->params, t->net->grads, lr);
    }
    return 0;
}

/* Rebuilds the network when the live spec's dropout differs from the network's: the new one has
 * the same parameter layout, so the parameters and statistics are copied over. */
static int carry_dropout(trial_t *t, const cv_trial_spec_t *spec, size_t batch, char *err) {
    cv_arch_t arch;
    int rc = cv_arch_from_spec(&arch, spec, (int)t->data.train.n, t->data.classes, err);
    if (rc) return rc;
    if (memcmp(arch.keep_prob, t->net->arch.keep_prob, sizeof arch.keep_prob) == 0) return 0;
    cv_nnf_net_t *next = NULL;
    if ((rc = cv_nnf_create(&next, &arch, batch > SCORE_CHUNK ? batch : SCORE_CHUNK, err)))
        return rc;
    memcpy(next->params, t->net->params, t->net->n_params * sizeof(float));
    memcpy(next->stats, t->net->stats, t->net->n_stats * sizeof(float));
    cv_nnf_destroy(t->net);
    t->net = next;
    return 0;
}

/* Asks the caller for nudges before epoch (0-based) and carries them into the running trial
 * (see cv_before_epoch_fn). live is the trial's working copy of its spec. */
static int take_nudges(trial_t *t, cv_trial_spec_t *live, const cv_train_options_t *opts, int epoch,
                       size_t batch, char *err) {
    double lr = live->learning_rate;
    if (!opts->before_epoch || !opts->before_epoch(live, epoch + 1, opts->userdata)) return 0;
    if (live->learning_rate != lr) { /* rebase α₀ so that this epoch runs at the new rate */
        double wanted = live->learning_rate;
        live->learning_rate = 1.0;
        double shape = cv_learning_rate_at(live, epoch);
        live->learning_rate = shape > 0 && isfinite(shape) ? wanted / shape : wanted;
    }
    t->opt.beta = (float)live->beta;
    t->opt.beta1 = (float)live->beta1;
    t->opt.beta2 = (float)live->beta2;
    return carry_dropout(t, live, batch, err);
}

int cv_train_run(const cv_trial_spec_t *spec_in, const cv_train_options_t *opts,
                 cv_trial_result_t *res, char *err) {
    static const cv_train_options_t no_opts = {0};
    if (!opts) opts = &no_opts;
    cv_trial_spec_t live = *spec_in; /* what nudges change as the trial trains */
    const cv_trial_spec_t *spec = &live;
    memset(res, 0, sizeof *res);
    double t0 = cv_clock_monotonic();
    trial_t t = {0};
    size_t batch = 0;
    int rc = trial_setup(&t, spec, &batch, res->error);
    if (rc) {
        /* Loading, checking and sizing depend on the trial alone: data, spec and size. */
        res->job_fault = 1;
        goto failed;
    }

    const cv_dataset_t *tr = &t.data.train;
    res->m_train = tr->m;
    res->m_dev = t.data.dev.m;
    res->m_test = t.data.test.m;
    res->n_features = (int)tr->n;
    res->classes = t.data.classes;
    res->n_params = t.net->n_params;

    cv_rng_t rng;
    cv_rng_seed(&rng, cv_rng_derive(spec->seed, 2)); /* stream 2: init, shuffles, dropout */
    cv_nnf_init(t.net, spec->init, spec->init_scale, &rng);
    /* Training metrics score a fixed slice of the (already shuffled) training set. */
    size_t m_eval = spec->train_eval_examples && spec->train_eval_examples < tr->m
                        ? spec->train_eval_examples : tr->m;
    cv_dataset_t eval_view = cv_dataset_view(tr, 0, m_eval);
    const cv_normalizer_t *eval_norm = t.data.train_raw ? &t.data.norm : NULL;

    double best_cost = INFINITY, train_seconds = 0;
    cv_diagnosis_input_t diag = {.human_error = spec->human_error,
                                 .learning_rate = spec->learning_rate,
                                 .classes = t.data.classes,
                                 .min_train_cost = INFINITY};
    size_t trained = 0;
    int since_best = 0;
    res->status = CV_TRIAL_COMPLETED;
    for (int epoch = 0; epoch < spec->epochs; epoch++) {
        double e0 = cv_clock_monotonic();
        cv_epoch_t m = {.epoch = epoch + 1};
        if ((rc = take_nudges(&t, &live, opts, epoch, batch, res->error))) {
            res->job_fault = 1;
            goto failed;
        }
        if (epoch >= live.epochs) break; /* nudged to fewer epochs: ends as completed */
        m.learning_rate = cv_learning_rate_at(spec, epoch);
        rc = train_epoch(&t, spec, batch, (float)m.learning_rate, &rng, tr->m);
        double e1 = cv_clock_monotonic();
        train_seconds += e1 - e0;
        trained += tr->m;
        m.examples_per_second = (double)tr->m / (e1 - e0);
        if (rc == 0) {
            cv_train_score(t.net, &eval_view, SCORE_CHUNK, eval_norm, t.scratch, &m.train_cost,
                           &m.train_error);
            cv_train_score(t.net, &t.data.dev, SCORE_CHUNK, NULL, NULL, &m.dev_cost,
                           &m.dev_error);
            m.train_cost_reg = m.train_cost + cv_nnf_reg_cost(t.net, spec->l2, spec->l1, tr->m);
            if (!isfinite(m.train_cost_reg) || !isfinite(m.dev_cost)) rc = CV_EDIVERGE;
        }
        if (rc == CV_EDIVERGE) {
            res->status = CV_TRIAL_DIVERGED;
            res->diverged_epoch = epoch + 1;
            snprintf(res->error, sizeof res->error,
                     "the cost became NaN or infinite in epoch %d (learning rate %g)", epoch + 1,
                     m.learning_rate);
            break;
        }
        m.seconds = cv_clock_monotonic() - e0;
        res->epochs_run = epoch + 1;
        diag.last_train_cost = m.train_cost;
        diag.last_epoch = epoch + 1;
        if (m.train_cost < diag.min_train_cost) {
            diag.min_train_cost = m.train_cost;
            diag.min_epoch = epoch + 1;
        }
        if (m.train_cost > diag.max_train_cost) {
            diag.max_train_cost = m.train_cost;
            diag.max_epoch = epoch + 1;
        }
        if (m.dev_cost < best_cost) {
            best_cost = m.dev_cost;
            res->best_epoch = epoch + 1;
            res->best = m;
            snapshot(t.net, t.best_params);
            since_best = 0;
        } else {
            since_best++;
        }
        int verdict = opts->on_epoch ? opts->on_epoch(&m, opts->userdata) : CV_EPOCH_GO_ON;
        if (verdict != CV_EPOCH_GO_ON) {
            res->status = verdict == CV_EPOCH_PRUNE ? CV_TRIAL_PRUNED : CV_TRIAL_STOPPED;
            break;
        }
        if (spec->patience > 0 && since_best >= spec->patience) break;
    }
    res->examples_per_second = train_seconds > 0 ? (double)trained / train_seconds : 0;
    if (res->best_epoch > 0) {
        restore(t.net, t.best_params);
        diag.train_error = res->best.train_error;
        diag.dev_error = res->best.dev_error;
        diag.train_cost = res->best.train_cost;
        diag.diverged_epoch = res->diverged_epoch;
        res->diagnosis = cv_diagnose_trial(&diag);
        if (opts->evaluate_test && t.data.test.m > 0) {
            cv_train_score(t.net, &t.data.test, SCORE_CHUNK, NULL, NULL, &res->test_cost,
                           &res->test_error);
            res->tested = 1;
        }
        const char *path = opts->save_model ? opts->save_model : spec->save_model;
        if (path && path[0]) {
            rc = cv_model_save(path, t.net, &t.data.norm, res->error);
            if (rc) goto failed;
        }
    }
    res->seconds = cv_clock_monotonic() - t0;
    trial_finish(&t);
    return 0;

failed:
    res->status = CV_TRIAL_FAILED;
    res->seconds = cv_clock_monotonic() - t0;
    trial_finish(&t);
    if (err) snprintf(err, CV_ERRLEN, "%.*s", CV_ERRLEN - 1, res->error);
    return rc;
}
