/* Fuzz target: cv_dataset_load_idx. The first byte chooses where the rest splits into the image
 * file and the label file (byte * rest / 255); both are written to in-memory files and loaded,
 * so plain and gzip-compressed IDX are both reached. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/dataset.h"
#include "common/err.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    size_t rest = size - 1;
    size_t split = (size_t)data[0] * rest / 255;
    const char *images = fuzz_file(0, data + 1, split);
    const char *labels = fuzz_file(1, data + 1 + split, rest - split);
    cv_dataset_t ds;
    char err[CV_ERRLEN];
    err[0] = '\0';
    int rc = cv_dataset_load_idx(&ds, images, labels, err);
    fuzz_check_dataset(rc, &ds, err);
    return 0;
}
