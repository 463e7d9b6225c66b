/* shardkit s3-object: signed HTTP requests to one bucket, over a pool of
 * kept-alive curl handles, with retries of transient failures.
 * GPL-3.0-or-later.
 */
#ifndef SHARDKIT_S3_HTTP_H
#define SHARDKIT_S3_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3-credentials.h"
#include "sigv4.h"

struct s3_client_config {
  const char *endpoint;         /* "https://host[:port]"; NULL: AWS */
  const char *bucket;
  const char *region;
  int url_style;                /* -1 auto, 0 path, 1 virtual */
  unsigned connections;         /* handles in the pool */
  unsigned timeout;             /* seconds per request attempt */
  bool tls_verify;
  const char *cainfo, *capath;
  unsigned retries;             /* extra attempts for transient failures */
};

struct s3_client;

/* Takes ownership of *CREDS.  Returns NULL after nbdkit_error. */
extern struct s3_client *s3_client_new (const struct s3_client_config *cfg,
                                        struct s3_credentials *creds);
extern void s3_client_free (struct s3_client *c);
extern const char *s3_client_bucket (const struct s3_client *c);

struct s3_request {
  const char *method;           /* GET HEAD PUT POST DELETE */
  const char *key;              /* object key (not encoded); NULL: bucket */
  const struct sigv4_pair *params;      /* query, not encoded */
  size_t nparams;
  const struct sigv4_pair *headers;     /* extra headers, all signed */
  size_t nheaders;
  const void *body;             /* PUT/POST body */
  size_t body_len;
  const char *body_sha256;      /* its hex SHA-256 if known, else NULL */
  /* Ranged GET of bytes [range_first, range_last]. */
  bool ranged;
  uint64_t range_first, range_last;
  /* Where a 2xx body goes: BUF of CAP bytes (a longer body is an
   * error), or, when BUF is NULL, a malloc'd buffer in the response.
   */
  void *buf;
  size_t cap;
};

struct s3_response {
  long status;                  /* 2xx, or 404 / 416 (see s3_http_request) */
  char *body;                   /* malloc'd body when request.buf == NULL */
  size_t len;                   /* bytes of body received */
  char etag[80];                /* without quotes, "" if none */
  int64_t content_length;       /* -1 if none */
  bool have_range;              /* Content-Range: bytes F-L/T */
  uint64_t range_first, range_last, range_total;
  char *meta_sha256;            /* x-amz-meta-shardkit-sha256 */
  char *meta_crc32c;            /* x-amz-meta-shardkit-crc32c */
};

/* Send the request, retrying transient failures (connection errors,
 * timeouts, HTTP 500/502/503/504) with exponential backoff and jitter.
 *
 * Returns 0 for a 2xx response, and also for "404 NoSuchKey" (or a 404
 * to HEAD) and "416 InvalidRange", which callers treat as answers, with
 * RESP->status set.  Anything else returns -1 with errno set, after one
 * nbdkit_error naming the method, bucket, key and S3 error code:
 * EACCES (403), ENOENT (NoSuchBucket), EIO (other 4xx and bad bodies),
 * ETIMEDOUT / ESHUTDOWN / EAGAIN (transient trouble that persisted).
 * Free RESP with s3_response_free in every case.
 */
extern int s3_http_request (struct s3_client *c, const struct s3_request *req,
                            struct s3_response *resp);
extern void s3_response_free (struct s3_response *resp);

/* Global init/cleanup of libcurl (from .load/.unload). */
extern void s3_http_global_init (void);
extern void s3_http_global_cleanup (void);

#endif
