/* A job's search written as an Optuna study: a SQLite file in the storage schema of Optuna 3.1
 * (schema version 12), which optuna.load_study(storage="sqlite:///FILE") opens, so a caviar search
 * can be looked at with optuna-dashboard or Optuna's plots and importance evaluators.
 *
 * How caviar's terms become Optuna's:
 *   - the job is one study named after the job (or the name given), direction MINIMIZE (both
 *     objectives, dev_error and dev_cost, are minimized); the job's id, objective and spec are
 *     study user attributes;
 *   - each trial is a trial with the same number; completed → COMPLETE (value: the trial's
 *     objective, from its best epoch), pruned → PRUNED (value: the objective at its last epoch,
 *     as Optuna records a pruned trial), failed, diverged, lost and cancelled → FAIL (the reason in
 *     the system attribute fail_reason), queued → WAITING, running → RUNNING;
 *   - each epoch of a trial's curve is an intermediate value at step = epoch;
 *   - each searched parameter gets the distribution of the job's space: log → FloatDistribution or
 *     IntDistribution with log, linear → the same without, power_of_two → IntDistribution with
 *     log (every power of two in the bounds is in it), one_minus_log → FloatDistribution on β
 *     itself (Optuna has no 1 − 10^r scale), categorical → CategoricalDistribution with the
 *     stored value being the choice's index;
 *   - caviar's status, metrics and diagnosis are trial user attributes. */
#ifndef CV_CLIENT_OPTUNA_EXPORT_H
#define CV_CLIENT_OPTUNA_EXPORT_H

#include <cjson/cJSON.h>

/* Writes a new Optuna storage at path. job is GET /v1/jobs/{id}'s answer with "spec" parsed (an
 * object); trials are the job's trial rows in number order with "params" parsed, each with the
 * "curve" array of GET /v1/trials/{id} added (a trial without one has no intermediate values).
 * study_name NULL means the job's name. Everything is borrowed. The file is written in one
 * transaction; an existing file is refused (CV_EINVAL) and never changed, and a file left
 * half-written by a failure is removed. Returns 0, or a negative
 * code with the reason in err (CV_EFORMAT names the field of the job that cannot be expressed,
 * CV_EIO the SQLite error). */
int cv_optuna_export(const char *path, const char *study_name, const cJSON *job,
                     const cJSON *trials, char *err);

#endif
