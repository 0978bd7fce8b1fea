/* Fuzz target: cv_token_parse on arbitrary bytes (the contents of a token file or a token
 * environment variable). Every input must be accepted as one word without surrounding
 * whitespace, or refused with a reason, never crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char out[512], err[CV_ERRLEN];
    err[0] = '\0';
    int rc = cv_token_parse((const char *)data, size, 511, "fuzz", out, sizeof out, err);
    if (rc != 0 && err[0] == '\0') abort(); /* every refusal names its reason */
    if (rc == 0) {
        size_t n = strlen(out);
        if (n == 0 || n > 511) abort();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)out[i] <= ' ' || out[i] == 0x7f) abort();
    }
    return 0;
}
