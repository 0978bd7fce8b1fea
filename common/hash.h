/* SHA-256 of files and buffers, in lowercase hex: the content address of a dataset file that the
 * coordinator serves and a worker caches; and the constant-time comparison of secrets. */
#ifndef CV_HASH_H
#define CV_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CV_SHA256_HEX 65 /* bytes of a hex digest with its NUL */

/* Hashes the whole file at path, writing the digest into hex and its size into *bytes (may be
 * NULL). err names the path on failure. */
int cv_sha256_file(const char *path, char hex[CV_SHA256_HEX], uint64_t *bytes, char *err);

/* Hashes len bytes of data. */
void cv_sha256_buffer(const void *data, size_t len, char hex[CV_SHA256_HEX]);

/* 1 when the two strings are equal, 0 otherwise, in time that depends on neither where they
 * differ nor whether their lengths do: the strings' SHA-256 digests are compared with OpenSSL's
 * constant-time CRYPTO_memcmp. For checking tokens a client presents. */
int cv_secret_equal(const char *expected, const char *given);

#endif
