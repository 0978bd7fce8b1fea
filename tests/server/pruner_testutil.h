/* Helpers shared by the pruner unit tests: making a pruner from JSON settings text, reading its
 * describe() as text, and the restart check: a sequence of decisions made live, then made again
 * by a fresh pruner that replays a prefix of them and decides the rest, which must give the
 * same outcomes and the same description. */
#ifndef CV_PRUNER_TESTUTIL_H
#define CV_PRUNER_TESTUTIL_H

#include <math.h>
#include <string.h>

#include "common/err.h"
#include "server/search.h"
#include "testutil.h"

#define PRUNER_MAX_EVENTS 2048

/* One decision: trial number judged at epoch with value, and its outcome. */
typedef struct {
    int number, epoch;
    double value;
    int stopped;
} pruner_event_t;

/* Makes a pruner from settings text (NULL: no settings), failing the test with the reason if it
 * is refused. The caller frees the state with ops->destroy. */
static inline void *pruner_make(const cv_pruner_ops_t *ops, const char *settings) {
    char err[CV_ERRLEN] = "";
    cJSON *obj = NULL;
    if (settings) {
        obj = cJSON_Parse(settings);
        ck_assert_ptr_nonnull(obj);
    }
    void *state = NULL;
    int rc = ops->create(&state, obj, err);
    cJSON_Delete(obj);
    ck_assert_msg(rc == 0, "refused %s: %s", settings ? settings : "no settings", err);
    return state;
}

/* Creates a pruner from settings text expecting refusal; returns the code, the reason in err
 * (CV_ERRLEN bytes). */
static inline int pruner_refuses(const cv_pruner_ops_t *ops, const char *settings, char *err) {
    cJSON *obj = cJSON_Parse(settings);
    ck_assert_ptr_nonnull(obj);
    void *state = (void *)1;
    int rc = ops->create(&state, obj, err);
    cJSON_Delete(obj);
    ck_assert_ptr_null(state);
    return rc;
}

/* The pruner's describe() as unformatted JSON text, which the caller frees. */
static inline char *pruner_describe(const cv_pruner_ops_t *ops, const void *state) {
    cJSON *out = cJSON_CreateObject();
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(ops->describe(state, out), 0);
    char *text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* Asserts that the pruner's description is exactly want. */
static inline void pruner_describe_is(const cv_pruner_ops_t *ops, const void *state,
                                      const char *want) {
    char *got = pruner_describe(ops, state);
    ck_assert_str_eq(got, want);
    cJSON_free(got);
}

/* A value in [0, 1) on a grid of 1/32 (so equal values occur), spread over the trials in an
 * order unrelated to their numbers (the golden ratio's multiples modulo 1). */
static inline double pruner_test_value(int number) {
    double x = fmod(number * 0.6180339887498949, 1.0);
    return floor(x * 32.0) / 32.0;
}

/* Decides, live, a job's trials at the given decision epochs, asynchronously: in step s the
 * trial s is judged at the first epoch, the trial s − lag at the second, s − 2·lag at the third,
 * and so on, each only if it went on at the epoch before. A trial's value at its j-th epoch is
 * pruner_test_value(number) − j/64 (it improves as it trains). Writes the decisions in the order
 * made to ev (PRUNER_MAX_EVENTS at most) and returns how many. */
static inline size_t pruner_run_live(const cv_pruner_ops_t *ops, void *state, int n_trials,
                                     const int *epochs, size_t n_epochs, int lag,
                                     pruner_event_t *ev) {
    int alive_at[1024]; /* per trial: how many epochs it went on at */
    ck_assert_int_le(n_trials, 1024);
    for (int t = 0; t < n_trials; t++)
        alive_at[t] = 0;
    size_t n = 0;
    for (int s = 0; s < n_trials + lag * (int)n_epochs; s++) {
        for (size_t j = 0; j < n_epochs; j++) {
            int t = s - lag * (int)j;
            if (t < 0 || t >= n_trials || alive_at[t] != (int)j) continue;
            ck_assert_uint_lt(n, PRUNER_MAX_EVENTS);
            pruner_event_t e = {t, epochs[j], pruner_test_value(t) - (double)j / 64.0, 0};
            e.stopped = ops->decide(state, e.number, e.epoch, e.value);
            ck_assert_int_ge(e.stopped, 0);
            if (!e.stopped) alive_at[t]++;
            ev[n++] = e;
        }
    }
    return n;
}

/* The restart check: for every split point, a fresh pruner replays ev[0..split) with their
 * outcomes and decides ev[split..n): each outcome and the final description must be those of the
 * live run (live_describe). */
static inline void pruner_check_restarts(const cv_pruner_ops_t *ops, const char *settings,
                                         const pruner_event_t *ev, size_t n,
                                         const char *live_describe) {
    for (size_t split = 0; split <= n; split++) {
        void *state = pruner_make(ops, settings);
        for (size_t i = 0; i < split; i++)
            ck_assert_int_eq(
                ops->replay(state, ev[i].number, ev[i].epoch, ev[i].value, ev[i].stopped), 0);
        for (size_t i = split; i < n; i++)
            ck_assert_msg(ops->decide(state, ev[i].number, ev[i].epoch, ev[i].value) ==
                              ev[i].stopped,
                          "restart after %zu decisions: trial %d at epoch %d decided otherwise",
                          split, ev[i].number, ev[i].epoch);
        pruner_describe_is(ops, state, live_describe);
        ops->destroy(state);
    }
}

#endif
