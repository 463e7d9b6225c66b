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
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "s3-raw.h"

/* The object's bytes in chunks of this size: big enough that a GET is
 * worth its round trip, small enough that a large read runs as several
 * GETs in parallel.
 */
#define RAW_CHUNK_SIZE (UINT32_C (4) * 1024 * 1024)

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

/* COUNT bytes at OFFSET with one ranged GET.  The object must still be
 * SIZE bytes long (a changed object is EIO, not a mix of two versions'
 * lengths).
 */
static int
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

static int
raw_store_read (void *store, uint64_t n, void *buf, uint32_t len,
                uint32_t off)
{
  struct s3_raw_volume *r = store;
  return s3_raw_read (r->client, r->key, r->size, buf, len,
                      n * RAW_CHUNK_SIZE + off);
}

static int
raw_store_refuse (void)
{
  nbdkit_error ("key= serves an object read-only");
  errno = EROFS;
  return -1;
}

static int
raw_store_write (void *store, uint64_t n, const void *buf, uint32_t len,
                 uint32_t off, bool fua)
{
  return raw_store_refuse ();
}

static int
raw_store_remove (void *store, const uint64_t *ns, size_t count, bool fua)
{
  return raw_store_refuse ();
}

static int
raw_store_sync (void *store)
{
  return 0;
}

/* Every byte of the object is data. */
static int
raw_store_list (void *store, void (*found) (void *opaque, uint64_t n),
                void *opaque)
{
  struct s3_raw_volume *r = store;
  uint64_t n;

  for (n = 0; n < (r->size + RAW_CHUNK_SIZE - 1) / RAW_CHUNK_SIZE; ++n)
    found (opaque, n);
  return 0;
}

static const struct chunk_store_ops raw_store_ops = {
  .partial_write = false,
  .read = raw_store_read,
  .write = raw_store_write,
  .remove = raw_store_remove,
  .sync = raw_store_sync,
  .list = raw_store_list,
};

struct s3_raw_volume *
s3_raw_open (struct s3_client *c, const char *key, unsigned parallel)
{
  struct s3_raw_volume *r = calloc (1, sizeof *r);

  if (r == NULL || (r->key = strdup (key)) == NULL) {
    nbdkit_error ("calloc: %m");
    free (r);
    return NULL;
  }
  r->client = c;
  if (s3_raw_size (c, key, &r->size) == -1)
    goto err;
  if (r->size == 0) {
    nbdkit_error ("key=%s: the object is empty: nothing to serve", key);
    errno = EINVAL;
    goto err;
  }
  r->engine = chunk_engine_new (key, &raw_store_ops, r, r->size,
                                RAW_CHUNK_SIZE);
  if (r->engine == NULL ||
      chunk_engine_set_parallelism (r->engine, parallel) == -1)
    goto err;
  return r;

 err:
  s3_raw_close (r);
  return NULL;
}

void
s3_raw_close (struct s3_raw_volume *r)
{
  if (r == NULL)
    return;
  chunk_engine_free (r->engine);
  free (r->key);
  free (r);
}
