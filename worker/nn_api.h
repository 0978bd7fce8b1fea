/* The network's numeric core, declared once for a real type. Do not include directly: nn.h
 * includes it twice, for float (cv_nnf_*, training) and double (cv_nnd_*, gradient checking),
 * and nn.c is compiled once per type. NN_REAL is the element type, NN_(x) the prefixed name.
 *
 * Layout follows llm.c: every learnable parameter lives in one block (params), its gradient in a
 * second block of the same layout (grads), the batch-norm running statistics in a third (stats),
 * and all per-batch activations in one workspace sized once for batch_cap rows. Layer l of L
 * holds W[l] (units[l] × units[l−1], row-major) and either b[l] (units[l]) or, with batch norm,
 * gamma[l] and beta[l] (units[l] each). Activations are row-major, one example per row.
 * Nothing here allocates after nn_create, so the training loop allocates nothing. */

typedef struct NN_(net) {
    cv_arch_t arch;
    size_t n_params;                 /* learnable values in params (and grads) */
    NN_REAL *params;                 /* W1 b1|γ1 β1 W2 ... in layer order */
    NN_REAL *grads;                  /* dJ/dparams, same layout */
    size_t n_stats;                  /* values in stats */
    NN_REAL *stats;                  /* running mean and variance of every batch-norm layer */
    NN_REAL *W[CV_MAX_LAYERS + 1], *b[CV_MAX_LAYERS + 1];         /* into params; b NULL w/ bn */
    NN_REAL *gamma[CV_MAX_LAYERS + 1], *beta[CV_MAX_LAYERS + 1];  /* into params; NULL w/o bn */
    NN_REAL *dW[CV_MAX_LAYERS + 1], *db[CV_MAX_LAYERS + 1];
    NN_REAL *dgamma[CV_MAX_LAYERS + 1], *dbeta[CV_MAX_LAYERS + 1];
    NN_REAL *run_mean[CV_MAX_LAYERS + 1], *run_var[CV_MAX_LAYERS + 1]; /* into stats */

    size_t batch_cap;                /* most rows one forward pass takes */
    NN_REAL *work;                   /* the workspace block */
    NN_REAL *A[CV_MAX_LAYERS + 1];   /* B × units[l]: activation after dropout; A[L] logits;
                                        A[0] is the dropped-out input copy (only with dropout) */
    NN_REAL *mask[CV_MAX_LAYERS + 1];/* B × units[l]: 0 or 1/keep_prob, NULL without dropout */
    NN_REAL *xhat[CV_MAX_LAYERS + 1];/* B × units[l]: normalized Z of a batch-norm layer */
    NN_REAL *bn_mean[CV_MAX_LAYERS + 1]; /* units[l]: mean of Z over the last batch */
    NN_REAL *bn_istd[CV_MAX_LAYERS + 1]; /* units[l]: 1/√(σ²+ε) used by the last pass */
    NN_REAL *probs;                  /* B × units[L]: output probabilities */
    NN_REAL *dz[2];                  /* B × max units: ping-pong gradients w.r.t. Z */
    const NN_REAL *input;            /* layer 1's input in the last pass: X or A[0] */
    size_t rows;                     /* B of the last forward pass */
    int mode;                        /* NN_FORWARD_* flags of the last forward pass */
    int test_break_backward;         /* test-only: honoured only when nn.c is compiled with
                                        CV_TEST_HOOKS; 1 uses the sigmoid derivative for every
                                        activation in the backward pass */
} NN_(net_t);

/* Creates a network of the given architecture with a workspace for batch_cap rows. Parameters
 * are zero; call nn_init. The caller owns the result and frees it with nn_destroy. */
int NN_(create)(NN_(net_t) **out, const cv_arch_t *arch, size_t batch_cap, char *err);
/* Frees a network; accepts NULL. */
void NN_(destroy)(NN_(net_t) *net);

/* Initializes weights from N(0, σ²) with σ = scale·√(1/n[l−1]) (xavier), scale·√(2/(n[l−1]+n[l]))
 * (glorot), scale·√(2/n[l−1]) (he), 0.01·scale (random) or 0 (zeros); biases and β zero, γ one,
 * running means 0 and variances 1. */
void NN_(init)(NN_(net_t) *net, cv_init_t init, double scale, cv_rng_t *rng);

/* Forward pass of B ≤ batch_cap rows of X (B × units[0]); X is borrowed until the next call.
 * Leaves logits in A[L] and probabilities in probs. rng is used only with DROPOUT. */
void NN_(forward)(NN_(net_t) *net, const NN_REAL *X, size_t B, int mode, cv_rng_t *rng);

/* Mean cross-entropy of the last forward pass against labels y, computed from the logits so it
 * never takes log(0); *errors (may be NULL) receives the number of wrong argmax predictions. */
double NN_(loss)(const NN_(net_t) *net, const int32_t *y, double *errors);

/* Mean cross-entropy of the last forward pass against the smoothed targets (1−ε)·y + ε/C of
 * arch.label_smoothing (C = 2 for a sigmoid output): the cost the backward pass differentiates.
 * Equal to NN_(loss) when ε is 0. Reports use NN_(loss), so that costs compare across trials. */
double NN_(smoothed_loss)(const NN_(net_t) *net, const int32_t *y);

/* Regularization cost λ2/(2m)·Σ‖W‖² + λ1/m·Σ|W| over the weight matrices. */
double NN_(reg_cost)(const NN_(net_t) *net, double l2, double l1, size_t m);

/* Backward pass of the last forward pass: overwrites grads with the gradient of the mean
 * cross-entropy against the smoothed targets, NN_(smoothed_loss) (no regularization).
 * Overwriting rather than accumulating saves a pass over the gradients on every step; nothing
 * in caviar accumulates across batches. */
void NN_(backward)(NN_(net_t) *net, const int32_t *y);

/* Adds the regularization gradient λ2/m·W + λ1/m·sign(W) to dW. */
void NN_(add_reg_grad)(NN_(net_t) *net, double l2, double l1, size_t m);

/* Writes the predicted class of each row of the last forward pass into pred. */
void NN_(predict_classes)(const NN_(net_t) *net, int32_t *pred);
