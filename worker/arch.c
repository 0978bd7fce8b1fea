/* Architecture from a trial spec; see arch.h. */
#include "worker/arch.h"

#include <string.h>

#include "common/err.h"

int cv_arch_from_spec(cv_arch_t *arch, const cv_trial_spec_t *spec, int n_x, int classes,
                      char *err) {
    memset(arch, 0, sizeof *arch);
    if (n_x < 1) return cv_errf(err, CV_EINVAL, "the data have no features");
    if (classes < 2) return cv_errf(err, CV_EINVAL, "the data need at least 2 classes, got %d",
                                    classes);
    if (spec->output == CV_OUT_SIGMOID && classes != 2)
        return cv_errf(err, CV_EINVAL,
                       "output: sigmoid needs exactly 2 classes, the data have %d", classes);
    int L = spec->hidden_layers + 1;
    arch->layers = L;
    arch->units[0] = n_x;
    arch->keep_prob[0] = spec->input_keep_prob;
    for (int l = 1; l < L; l++) {
        arch->units[l] = spec->hidden_units[l - 1];
        arch->act[l] = spec->activation[l - 1];
        arch->batch_norm[l] = spec->batch_norm[l - 1];
        arch->keep_prob[l] = spec->keep_prob[l - 1];
    }
    arch->output = spec->output;
    arch->classes = classes;
    arch->units[L] = spec->output == CV_OUT_SIGMOID ? 1 : classes;
    arch->leaky_slope = (float)spec->leaky_slope;
    arch->bn_momentum = (float)spec->bn_momentum;
    arch->bn_epsilon = (float)spec->bn_epsilon;
    arch->label_smoothing = (float)spec->label_smoothing;
    return 0;
}

int cv_arch_has_dropout(const cv_arch_t *arch) {
    for (int l = 0; l < arch->layers; l++)
        if (arch->keep_prob[l] < 1.0f) return 1;
    return 0;
}
