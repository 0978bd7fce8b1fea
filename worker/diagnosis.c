/* The diagnosis of a finished trial: learning rate first, then bias and variance; see
 * diagnosis.h for the rules. */
#include "worker/diagnosis.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char k_remedy_bias[] =
    "bigger network (more hidden units or layers), train longer, or a better optimizer "
    "(momentum, RMSprop, Adam) or architecture";
static const char k_remedy_variance[] =
    "more data, regularization (L2, dropout, augmentation), or early stopping";
static const char k_remedy_bias_first[] =
    "avoidable bias is the larger gap: first a bigger network, longer training or a better "
    "optimizer; then more data or regularization for the variance";
static const char k_remedy_variance_first[] =
    "variance is the larger gap: first more data or regularization (L2, dropout, augmentation); "
    "then a bigger network or longer training for the bias";
static const char k_remedy_fine[] =
    "training and dev errors are both close to the target; score the test set once to confirm";
static const char k_remedy_lr[] =
    "lower the learning rate: try it 3 to 10 times smaller (search it on a log scale), or add "
    "learning-rate decay";
static const char k_remedy_collapsed[] =
    "lower the learning rate: try it 3 to 10 times smaller (search it on a log scale); if the "
    "network still predicts at chance, check the input normalization and the initialization "
    "(He for relu, Xavier for tanh)";

/* The human-level error and the two gaps, with no verdict yet. */
static cv_diagnosis_t gaps(double train_error, double dev_error, double human_error) {
    cv_diagnosis_t d;
    memset(&d, 0, sizeof d);
    d.human_error_given = human_error >= 0;
    d.human_error = d.human_error_given ? human_error : 0;
    d.avoidable_bias = train_error - d.human_error;
    d.variance = dev_error - train_error;
    return d;
}

cv_diagnosis_t cv_diagnose(double train_error, double dev_error, double human_error) {
    cv_diagnosis_t d = gaps(train_error, dev_error, human_error);
    int bias =
        d.avoidable_bias > CV_DIAG_TOLERANCE && dev_error - d.human_error > CV_DIAG_TOLERANCE;
    int variance = d.variance > CV_DIAG_TOLERANCE;
    int n = snprintf(d.explanation, sizeof d.explanation,
                     "avoidable bias %.1f%% (training error %.1f%% - human-level error %.1f%%, %s) "
                     "and variance %.1f%% (dev error %.1f%% - training error %.1f%%)",
                     100 * d.avoidable_bias, 100 * train_error, 100 * d.human_error,
                     d.human_error_given ? "from human_error" : "assumed: human_error not given",
                     100 * d.variance, 100 * dev_error, 100 * train_error);
    const char *note = NULL;
    if (!bias && d.avoidable_bias > CV_DIAG_TOLERANCE)
        note = "; the dev error is within 2 points of human level, so the network has the "
               "capacity the task needs";
    else if (d.variance < -CV_DIAG_TOLERANCE)
        note = "; the dev error is below the training error: a small dev set or strong "
               "regularization";
    if (note && n > 0 && (size_t)n < sizeof d.explanation)
        snprintf(d.explanation + n, sizeof d.explanation - (size_t)n, "%s", note);
    if (bias && variance) {
        d.kind = CV_DIAG_HIGH_BOTH;
        d.name = cv_diagnosis_name(d.kind);
        d.remedy = d.avoidable_bias >= d.variance ? k_remedy_bias_first : k_remedy_variance_first;
    } else if (bias) {
        d.kind = CV_DIAG_HIGH_BIAS;
        d.name = cv_diagnosis_name(d.kind);
        d.remedy = k_remedy_bias;
    } else if (variance) {
        d.kind = CV_DIAG_HIGH_VARIANCE;
        d.name = cv_diagnosis_name(d.kind);
        d.remedy = k_remedy_variance;
    } else {
        d.kind = CV_DIAG_FINE;
        d.name = cv_diagnosis_name(d.kind);
        d.remedy = k_remedy_fine;
    }
    return d;
}

/* Writes the learning-rate evidence of the cost curve into out (cap bytes) and returns 1, or
 * returns 0 when the curve shows none: a training cost that ended well above its lowest value,
 * or that blew up far above the chance cost. */
static int cost_evidence(const cv_diagnosis_input_t *in, double chance_cost, char *out,
                         size_t cap) {
    double rise = in->last_train_cost - in->min_train_cost;
    if (in->last_epoch > in->min_epoch && isfinite(rise) && rise > CV_DIAG_RISE * chance_cost &&
        rise > 0.25 * in->min_train_cost) {
        snprintf(out, cap,
                 "the training cost rose from %.3f (epoch %d) to %.3f (epoch %d) with "
                 "learning rate %g",
                 in->min_train_cost, in->min_epoch, in->last_train_cost, in->last_epoch,
                 in->learning_rate);
        return 1;
    }
    if (in->max_epoch > 0 && in->max_train_cost > CV_DIAG_BLOWUP * chance_cost) {
        snprintf(out, cap,
                 "the training cost reached %.4g in epoch %d, over %g times the chance "
                 "cost ln %d = %.3f, with learning rate %g",
                 in->max_train_cost, in->max_epoch, CV_DIAG_BLOWUP,
                 in->classes >= 2 ? in->classes : 2, chance_cost, in->learning_rate);
        return 1;
    }
    return 0;
}

cv_diagnosis_t cv_diagnose_trial(const cv_diagnosis_input_t *in) {
    cv_diagnosis_t d = cv_diagnose(in->train_error, in->dev_error, in->human_error);
    int classes = in->classes >= 2 ? in->classes : 2;
    double chance_cost = log((double)classes), chance_error = 1.0 - 1.0 / classes;
    char evidence[CV_DIAG_TEXT / 2];
    if (in->diverged_epoch > 0) {
        d.kind = CV_DIAG_LR_TOO_HIGH;
        d.name = cv_diagnosis_name(d.kind);
        d.remedy = k_remedy_lr;
        snprintf(d.explanation, sizeof d.explanation,
                 "the cost became NaN or infinite in epoch %d with learning rate %g",
                 in->diverged_epoch, in->learning_rate);
    } else if (in->train_cost >= CV_DIAG_CHANCE_COST * chance_cost &&
               in->train_error >= CV_DIAG_CHANCE_ERROR * chance_error) {
        d.kind = CV_DIAG_COLLAPSED;
        d.name = cv_diagnosis_name(d.kind);
        d.remedy = k_remedy_collapsed;
        snprintf(d.explanation, sizeof d.explanation,
                 "at its best epoch the training cost is %.3f (chance: ln %d = %.3f) and the "
                 "training error %.1f%% (chance: %.1f%%): the network predicts no better than "
                 "chance with learning rate %g",
                 in->train_cost, classes, chance_cost, 100 * in->train_error, 100 * chance_error,
                 in->learning_rate);
    } else if (cost_evidence(in, chance_cost, evidence, sizeof evidence)) {
        if (d.kind == CV_DIAG_FINE) {
            size_t n = strlen(d.explanation);
            if (snprintf(d.explanation + n, sizeof d.explanation - n,
                         "; %s: a lower one may train more steadily", evidence) < 0)
                d.explanation[n] = '\0';
        } else {
            d.kind = CV_DIAG_LR_TOO_HIGH;
            d.name = cv_diagnosis_name(d.kind);
            d.remedy = k_remedy_lr;
            snprintf(d.explanation, sizeof d.explanation, "%s", evidence);
        }
    }
    return d;
}
