/* Fuzz target: the submission-time CSV scan (server/csv_scan.h). The first byte chooses the
 * options (bit 0 header, bits 1-2 the label column: last, first, by index 1 or by the name
 * "label", bits 3-4 classes: inferred, 2, 3 or 10), the second how the rest is split into feeds
 * (chunks of 1 + byte % 64 bytes, so every split is exercised); the rest is the file. Whatever
 * the input, the scan must end with 0 or a negative code and a reason, and never hold more than
 * its bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/csv_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint8_t o = data[0];
    static const int label_index[4] = {-1, 0, 1, -1};
    static const int classes[4] = {0, 2, 3, 10};
    cv_csv_scan_options_t opt = {.field = "trial.dataset.csv", .path = "fuzz.csv",
                                 .header = o & 1, .label_index = label_index[(o >> 1) & 3],
                                 .label_name = ((o >> 1) & 3) == 3 ? "label" : NULL,
                                 .classes = classes[(o >> 3) & 3]};
    size_t chunk = 1 + data[1] % 64;
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    char err[CV_ERRLEN];
    cv_csv_scan_t *scan = malloc(sizeof *scan);
    if (!scan) return 0;
    cv_csv_scan_init(scan, &opt);
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < len; at += chunk) {
        err[0] = '\0';
        rc = cv_csv_scan_feed(scan, text + at, len - at < chunk ? len - at : chunk, err);
    }
    if (rc == 0) {
        err[0] = '\0';
        rc = cv_csv_scan_end(scan, err);
    }
    if (rc > 0 || (rc < 0 && err[0] == '\0')) abort(); /* a refusal always says why */
    if (rc == 0 && (scan->rows == 0 || scan->max_label < 0 ||
                    scan->max_label >= CV_DATASET_MAX_CLASSES ||
                    (opt.classes && scan->max_label >= opt.classes)))
        abort(); /* a passed scan saw rows whose labels fit */
    cv_csv_scan_finish(scan);
    free(scan);
    return 0;
}
