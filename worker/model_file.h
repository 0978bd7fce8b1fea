/* Model files: a trained network (architecture, weights, batch-norm running statistics) and the
 * input normalization it expects, in a versioned little-endian binary format with a CRC-32, and
 * prediction with one model or an ensemble that averages predicted probabilities.
 *
 * Format, version 1 (all integers little-endian):
 *   "CVMODEL\0"        8 bytes magic
 *   u32 version        1
 *   u32 header_bytes   size of the architecture record that follows
 *   architecture record: u32 layers, u32 classes, u32 output, f32 leaky_slope, f32 bn_momentum,
 *       f32 bn_epsilon, then per layer l = 0..layers: u32 units; per layer l = 1..layers−1:
 *       u32 activation, u32 batch_norm, f32 keep_prob; f32 keep_prob[0]
 *   u64 n_params, u64 n_stats, u64 n_features
 *   f32 params[n_params], f32 stats[n_stats], f32 mean[n_features], f32 inv_std[n_features]
 *   u32 crc32 of every preceding byte
 * Readers check the magic, the version, every size against the architecture before allocating,
 * and the checksum; a truncated, corrupt or inconsistent file is refused with the reason. */
#ifndef CV_MODEL_FILE_H
#define CV_MODEL_FILE_H

#include "common/dataset.h"
#include "worker/nn.h"

#define CV_MODEL_VERSION 1

/* Writes net and norm to path atomically (a temporary file renamed over path after fsync). */
int cv_model_save(const char *path, const cv_nnf_net_t *net, const cv_normalizer_t *norm,
                  char *err);

/* Reads a model file into a new network with a workspace of batch_cap rows and fills norm.
 * The caller owns both: cv_nnf_destroy(*net), cv_normalizer_finish(norm). */
int cv_model_load(const char *path, size_t batch_cap, cv_nnf_net_t **net, cv_normalizer_t *norm,
                  char *err);

/* An ensemble of loaded models that predicts by averaging class probabilities. */
typedef struct {
    int count;                /* models */
    cv_nnf_net_t **nets;      /* count networks (owned) */
    cv_normalizer_t *norms;   /* count normalizers (owned) */
    int classes;              /* shared by every model */
    size_t n_features;        /* shared by every model */
    size_t batch_cap;         /* rows per pass */
    float *scratch;           /* batch_cap × n_features normalized rows */
} cv_ensemble_t;

/* Loads count model files; all must agree on features and classes (err names the one that does
 * not). ens is caller-owned; release with cv_ensemble_finish. */
int cv_ensemble_load(cv_ensemble_t *ens, const char *const *paths, int count, char *err);
void cv_ensemble_finish(cv_ensemble_t *ens);

/* Averages the models' class probabilities for m raw (unnormalized) rows of x into probs
 * (m × classes; for a sigmoid model, column 1 is σ(z) and column 0 is 1 − σ(z)). */
void cv_ensemble_predict(cv_ensemble_t *ens, const float *x, size_t m, float *probs);

/* Accuracy and mean cross-entropy of the ensemble on a raw dataset. err names a feature-count or
 * label-range mismatch. */
int cv_ensemble_evaluate(cv_ensemble_t *ens, const cv_dataset_t *ds, double *accuracy,
                         double *cost, char *err);

#endif
