/* The request bodies of ask/tell over HTTP (schemas/ask.schema.json, report.schema.json,
 * tell.schema.json): POST /v1/jobs/{id}/ask, POST /v1/trials/{id}/report and
 * POST /v1/trials/{id}/tell. Pure parsers: text in, a struct or a reason naming the field out;
 * fuzz/ask_body.c drives them. */
#ifndef CV_ASK_BODY_H
#define CV_ASK_BODY_H

#include <stddef.h>

#include "common/epoch.h"
#include "common/err.h"

#define CV_ASK_CLIENT_MAX 64     /* bytes of a client's name, without the NUL */
#define CV_ASK_LEASE_HEX  32     /* hex digits of a lease token */
#define CV_ASK_EPOCH_MAX  100000 /* the largest epoch a report may name (the job spec's bound) */

/* {"client": "name"}: who asks, 1 to 64 printable ASCII characters; optional (the empty body,
 * {} and a missing client give ""). */
typedef struct {
    char client[CV_ASK_CLIENT_MAX + 1];
} cv_ask_request_t;

/* {"lease", "epoch", "dev_error", "dev_cost", "train_error"?, "train_cost"?,
 * "learning_rate"?}: one epoch's metrics. Fields not given are NAN. */
typedef struct {
    char lease[CV_ASK_LEASE_HEX + 1];
    cv_epoch_t epoch;
} cv_ask_report_t;

/* {"lease", "status": "completed", "dev_error", "dev_cost", "train_error"?, "train_cost"?,
 * "learning_rate"?, "epoch"?} or {"lease", "status": "failed", "error": "..."}. */
typedef struct {
    char lease[CV_ASK_LEASE_HEX + 1];
    int failed;            /* 1: status "failed" */
    cv_epoch_t best;       /* completed: the final metrics; best.epoch is the epoch they are of,
                              0 when not given */
    char error[CV_ERRLEN]; /* failed: the reason (a longer one is cut to CV_ERRLEN - 1 bytes) */
} cv_ask_tell_t;

/* Each parses a body of len bytes (borrowed; need not be NUL-terminated) into *out. Returns 0, or
 * CV_EINVAL (CV_EFORMAT for text that is not JSON) with the field and the rule in err ("lease: is
 * required", "epoch: must be an integer in [1, 100000], got 0", "unknown field \"dev_eror\" (did
 * you mean \"dev_error\"?)"). */
int cv_ask_parse_ask(const char *text, size_t len, cv_ask_request_t *out, char *err);
int cv_ask_parse_report(const char *text, size_t len, cv_ask_report_t *out, char *err);
int cv_ask_parse_tell(const char *text, size_t len, cv_ask_tell_t *out, char *err);

#endif
