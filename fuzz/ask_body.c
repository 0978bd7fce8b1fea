/* Fuzz target: the three ask/tell body parsers (server/ask_body.h) on arbitrary text, the bodies
 * of POST /v1/jobs/{id}/ask, /v1/trials/{id}/report and /v1/trials/{id}/tell. Every refusal
 * names its reason; an accepted body holds what the parser promises. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/ask_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    char err[CV_ERRLEN];
    cv_ask_request_t ask;
    cv_ask_report_t report;
    cv_ask_tell_t tell;
    err[0] = '\0';
    if (cv_ask_parse_ask(text, size, &ask, err) ? err[0] == '\0'
                                                : strlen(ask.client) > CV_ASK_CLIENT_MAX)
        abort();
    err[0] = '\0';
    if (cv_ask_parse_report(text, size, &report, err)
            ? err[0] == '\0'
            : strlen(report.lease) != CV_ASK_LEASE_HEX || report.epoch.epoch < 1 ||
                  report.epoch.epoch > CV_ASK_EPOCH_MAX)
        abort();
    err[0] = '\0';
    if (cv_ask_parse_tell(text, size, &tell, err)
            ? err[0] == '\0'
            : strlen(tell.lease) != CV_ASK_LEASE_HEX || (tell.failed && !tell.error[0]))
        abort();
    return 0;
}
