/* Bias/variance diagnosis; see diagnosis.h. */
#include "worker/diagnosis.h"

cv_diagnosis_t cv_diagnose(double train_error, double dev_error, double human_error) {
    cv_diagnosis_t d;
    double human = human_error < 0 ? 0 : human_error;
    d.avoidable_bias = train_error - human;
    d.variance = dev_error - train_error;
    int bias = d.avoidable_bias > CV_DIAG_TOLERANCE;
    int variance = d.variance > CV_DIAG_TOLERANCE;
    if (bias && variance) {
        d.kind = CV_DIAG_HIGH_BOTH;
        d.name = "high_bias_and_variance";
        d.remedy = "reduce bias first (bigger network, train longer, better optimizer), then "
                   "variance (more data, regularization)";
    } else if (bias) {
        d.kind = CV_DIAG_HIGH_BIAS;
        d.name = "high_bias";
        d.remedy = "bigger network, train longer, or a better optimizer or architecture";
    } else if (variance) {
        d.kind = CV_DIAG_HIGH_VARIANCE;
        d.name = "high_variance";
        d.remedy = "more data, regularization (L2, dropout, augmentation), or early stopping";
    } else {
        d.kind = CV_DIAG_FINE;
        d.name = "fine";
        d.remedy = "training and dev errors are both close to the target";
    }
    return d;
}
