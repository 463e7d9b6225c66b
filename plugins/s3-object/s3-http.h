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
/* Are requests SigV4-signed (false: anonymous)? */
extern bool s3_client_signs (const struct s3_client *c);

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
  /* Where a 2xx body goes: BUF of CAP bytes, or, when BUF is NULL, a
   * malloc'd buffer in the response of at most CAP bytes (0: at most
   * S3_BODY_MAX).  A longer body is an error, found while it arrives
   * (the transfer is aborted), so that an endless or huge answer costs
   * bounded memory.
   */
  void *buf;
  size_t cap;
  /* Answers other than success that the caller takes as answers
   * (S3_ANSWER_*): s3_http_request returns 0 with RESP->status set and
   * logs nothing.  Everything else that is not success is an error.
   */
  unsigned answers;
};

/* 404: NoSuchKey to a GET, or any 404 to a HEAD (which has no body). */
#define S3_ANSWER_NOT_FOUND     1u
/* 416 InvalidRange to a ranged GET. */
#define S3_ANSWER_BAD_RANGE     2u
/* 412 PreconditionFailed to a conditional request (If-Match,
 * If-None-Match).
 */
#define S3_ANSWER_PRECONDITION  4u

/* Default cap of a body read into a malloc'd buffer. */
#define S3_BODY_MAX (16 * 1024 * 1024)

struct s3_response {
  long status;                  /* success, or an accepted answer */
  char *body;                   /* malloc'd body when request.buf == NULL */
  size_t len;                   /* bytes of body received */
  char etag[80];                /* without quotes, "" if none */
  char code[64];                /* S3 error code of an accepted answer */
  int64_t content_length;       /* -1 if none */
  bool have_range;              /* Content-Range: bytes F-L/T */
  uint64_t range_first, range_last, range_total;
  char *meta_sha256;            /* x-amz-meta-shardkit-sha256 */
  char *meta_crc32c;            /* x-amz-meta-shardkit-crc32c */
};

/* Send the request, retrying transient failures (connection errors,
 * timeouts, HTTP 408/429/500/502/503/504) with exponential backoff and
 * jitter.  Sleeps between attempts end at nbdkit shutdown (the request
 * then fails with ESHUTDOWN).
 *
 * Success is taken by the letter of the operation: 200 to GET (206 to a
 * ranged GET, or 200 if the server sent the whole object), HEAD, PUT and
 * POST; 204 or 200 to DELETE.  Any other status, 2xx included, is an
 * error, except the answers REQ->answers accepts (see S3_ANSWER_*).
 * Returns 0 with RESP->status set for success or an accepted answer.
 * Anything else returns -1 with errno set, after one nbdkit_error naming
 * the method, bucket, key and S3 error code: EACCES (403), ENOENT (404),
 * EIO (other statuses and bad bodies), ETIMEDOUT / ESHUTDOWN / EAGAIN
 * (transient trouble that persisted).  Free RESP with s3_response_free in
 * every case.
 */
extern int s3_http_request (struct s3_client *c, const struct s3_request *req,
                            struct s3_response *resp);
extern void s3_response_free (struct s3_response *resp);

/* Global init/cleanup of libcurl (from .load/.unload). */
extern void s3_http_global_init (void);
/* nbdkit serves now (.after_fork): retries may sleep with
 * nbdkit_nanosleep, which ends at shutdown.
 */
extern void s3_http_serving (void);
extern void s3_http_global_cleanup (void);

#endif
