/* SHA-256 through OpenSSL's EVP interface; see hash.h. */
#include "common/hash.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

static void to_hex(const unsigned char *md, unsigned len, char hex[CV_SHA256_HEX]) {
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < len && i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

int cv_sha256_file(const char *path, char hex[CV_SHA256_HEX], uint64_t *bytes, char *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return cv_errf(err, CV_EIO, "%s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = 0;
    uint64_t total = 0;
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        rc = cv_errf(err, CV_ENOMEM, "%s: cannot start a SHA-256 digest", path);
        goto done;
    }
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(ctx, buf, n);
        total += n;
    }
    if (ferror(f)) {
        rc = cv_errf(err, CV_EIO, "%s: read error", path);
        goto done;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    to_hex(md, len, hex);
    if (bytes) *bytes = total;
done:
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return rc;
}

void cv_sha256_buffer(const void *data, size_t len, char hex[CV_SHA256_HEX]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    to_hex(md, mdlen, hex);
}

int cv_secret_equal(const char *expected, const char *given) {
    unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
    unsigned la = 0, lb = 0;
    if (!EVP_Digest(expected, strlen(expected), a, &la, EVP_sha256(), NULL) ||
        !EVP_Digest(given, strlen(given), b, &lb, EVP_sha256(), NULL) || la != lb)
        return 0;
    return CRYPTO_memcmp(a, b, la) == 0;
}
