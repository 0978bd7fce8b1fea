/* Fuzz target: cv_model_load on an arbitrary file (model files come back from workers and from
 * disk). The first byte's bit 0 asks for the trailing CRC-32 to be recomputed, so that mutated
 * files get past the checksum to the size and value checks; the rest is written to an in-memory
 * file and loaded with a small batch capacity. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/dataset.h"
#include "common/err.h"
#include "fuzz/fuzz_util.h"
#include "worker/model_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int fix_crc = data[0] & 1;
    data++;
    size--;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) abort();
    memcpy(copy, data, size);
    if (fix_crc && size >= 4) {
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), copy, (uInt)(size - 4));
        for (int i = 0; i < 4; i++)
            copy[size - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i)); /* little-endian */
    }
    const char *path = fuzz_file(0, copy, size);
    free(copy);
    cv_nnf_net_t *net = NULL;
    cv_normalizer_t norm;
    char err[CV_ERRLEN];
    err[0] = '\0';
    int rc = cv_model_load(path, 4, &net, &norm, err);
    if (rc != 0 && (net != NULL || err[0] == '\0')) abort();
    cv_nnf_destroy(net);
    cv_normalizer_finish(&norm);
    return 0;
}
