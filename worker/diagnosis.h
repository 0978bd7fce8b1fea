/* Bias/variance diagnosis from training error, dev error and an optional human-level error,
 * with the remedies the course recommends for each case. */
#ifndef CV_DIAGNOSIS_H
#define CV_DIAGNOSIS_H

typedef enum {
    CV_DIAG_FINE,          /* neither gap is large */
    CV_DIAG_HIGH_BIAS,     /* training error far above human level */
    CV_DIAG_HIGH_VARIANCE, /* dev error far above training error */
    CV_DIAG_HIGH_BOTH,
} cv_diagnosis_kind_t;

typedef struct {
    cv_diagnosis_kind_t kind;
    double avoidable_bias; /* train_error − human_error (human 0 when not given) */
    double variance;       /* dev_error − train_error */
    const char *name;      /* "fine", "high_bias", "high_variance", "high_bias_and_variance" */
    const char *remedy;    /* the course's remedies, one sentence */
} cv_diagnosis_t;

/* A gap counts as large above this many absolute error points (0.02 = 2%). */
#define CV_DIAG_TOLERANCE 0.02

/* Diagnoses errors in [0, 1]; human_error < 0 means not given (taken as 0). */
cv_diagnosis_t cv_diagnose(double train_error, double dev_error, double human_error);

#endif
