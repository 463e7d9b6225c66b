/* shardkit s3-object: key=KEY, one existing object served read-only
 * through ranged GETs (an ISO or disk image uploaded with any S3 tool).
 * GPL-3.0-or-later.
 *
 * Such objects carry no digests of ours, so the reads are checked for
 * length only: the range and the object's total length must be what was
 * asked for and what HEAD said.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "s3-raw.h"

int
s3_raw_size (struct s3_client *c, const char *key, uint64_t *size)
{
  struct s3_request req = {
    .method = "HEAD", .key = key, .answers = S3_ANSWER_NOT_FOUND,
  };
  struct s3_response r;

  if (s3_http_request (c, &req, &r) == -1) {
    s3_response_free (&r);
    return -1;
  }
  if (r.status == 404) {
    nbdkit_error ("key=%s: not found in bucket %s (HTTP 404)", key,
                  s3_client_bucket (c));
    s3_response_free (&r);
    errno = ENOENT;
    return -1;
  }
  if (r.content_length < 0) {
    nbdkit_error ("key=%s: HEAD gave no Content-Length", key);
    s3_response_free (&r);
    errno = EIO;
    return -1;
  }
  *size = (uint64_t) r.content_length;
  s3_response_free (&r);
  return 0;
}

int
s3_raw_read (struct s3_client *c, const char *key, uint64_t size,
             void *buf, uint32_t count, uint64_t offset)
{
  struct s3_request req = {
    .method = "GET", .key = key, .ranged = true,
    .range_first = offset, .range_last = offset + count - 1,
    .buf = buf, .cap = count,
  };
  struct s3_response r;
  int ret = 0;

  if (count == 0)
    return 0;
  if (s3_http_request (c, &req, &r) == -1) {
    s3_response_free (&r);
    return -1;
  }
  if (r.status != 206 ||
      !r.have_range || r.range_first != offset ||
      r.range_last != offset + count - 1 || r.range_total != size ||
      r.len != count) {
    nbdkit_error ("s3: %s/%s: range %" PRIu64 "+%" PRIu32 " came back "
                  "wrong (HTTP %ld, %zu bytes): the object changed or was "
                  "removed", s3_client_bucket (c), key, offset, count,
                  r.status, r.len);
    errno = EIO;
    ret = -1;
  }
  s3_response_free (&r);
  return ret;
}
