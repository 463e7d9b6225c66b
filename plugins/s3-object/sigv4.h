/* shardkit s3-object: AWS Signature Version 4.
 * GPL-3.0-or-later.
 *
 * A pure function of its inputs: no clock, no network, no global state,
 * so that it can be tested against AWS's published vectors and against
 * an independent signer.
 */
#ifndef SHARDKIT_SIGV4_H
#define SHARDKIT_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

struct sigv4_pair {
  const char *name;
  const char *value;
};

struct sigv4_input {
  const char *method;              /* "GET", "PUT", ... */
  /* The request path as the server will see it after one round of
   * percent-decoding: "/" or "/bucket/key with spaces".  The signer
   * percent-encodes it the S3 way (every byte but unreserved and '/').
   */
  const char *path;
  /* Query parameters, not encoded; the signer encodes and sorts them. */
  const struct sigv4_pair *params;
  size_t nparams;
  /* Headers to sign, including host and x-amz-date; names in any case,
   * values as sent (the signer trims them and collapses spaces).
   * A header repeated on the wire is given once, its values joined by ','.
   */
  const struct sigv4_pair *headers;
  size_t nheaders;
  const char *payload_sha256;       /* 64 lowercase hex digits */
  const char *amz_date;             /* "20150830T123600Z" */
  const char *region;
  const char *service;
  const char *access_key;
  const char *secret_key;
};

struct sigv4_output {
  char *canonical_request;
  char *string_to_sign;
  char *authorization;              /* value of the Authorization header */
  char signature[65];
};

/* Sign.  Returns 0, or -1 with errno set (ENOMEM, EINVAL). */
extern int sigv4_sign (const struct sigv4_input *in, struct sigv4_output *out);
extern void sigv4_output_free (struct sigv4_output *out);

/* Percent-encode S as SigV4 wants: unreserved bytes (A-Z a-z 0-9 - . _ ~)
 * stay, '/' stays if KEEP_SLASH, every other byte becomes %XX (upper
 * case).  Returns malloc'd string or NULL.
 */
extern char *sigv4_uri_encode (const char *s, bool keep_slash);

/* Hex SHA-256 of LEN bytes at DATA into OUT (65 bytes).  Returns 0/-1. */
extern int sigv4_sha256_hex (const void *data, size_t len, char out[65]);

/* The SHA-256 of the empty string, in hex. */
#define SIGV4_EMPTY_SHA256 \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#endif /* SHARDKIT_SIGV4_H */
