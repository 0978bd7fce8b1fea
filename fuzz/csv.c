/* Fuzz target: cv_dataset_load_csv. The first byte chooses the options (bit 0 header, bits 1-2
 * the label column: last, first, second or by the header name "label", bit 3 ';' instead of
 * ',', bits 4-5 unlabeled_width: none, 1, 2 or 3 columns); the rest is the file, written to an
 * in-memory file and loaded. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/dataset.h"
#include "common/err.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint8_t o = data[0];
    cv_csv_options_t opts = {0};
    opts.header = o & 1;
    static const int label_index[4] = {-1, 0, 1, -1};
    opts.label_index = label_index[(o >> 1) & 3];
    opts.label_name = ((o >> 1) & 3) == 3 ? "label" : NULL;
    opts.delimiter = (o & 8) ? ';' : ',';
    opts.unlabeled_width = (size_t)((o >> 4) & 3);
    const char *path = fuzz_file(0, data + 1, size - 1);
    cv_dataset_t ds;
    char err[CV_ERRLEN];
    err[0] = '\0';
    int rc = cv_dataset_load_csv(&ds, path, &opts, err);
    fuzz_check_dataset(rc, &ds, err);
    return 0;
}
