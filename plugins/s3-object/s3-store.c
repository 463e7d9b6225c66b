/* shardkit s3-object: the chunk store over objects in a bucket.
 * GPL-3.0-or-later.
 *
 * Chunk n of volume NAME is the object PREFIX/NAME.<n>.chunk.  Objects
 * are written whole (the engine does read-modify-write), signed with the
 * real payload SHA-256 so that the server verifies the body, and with the
 * CRC32Cs of s3-digest.h in user metadata so that every read, whole or
 * ranged, is verified here.  An object may be shorter than the
 * chunk: the rest reads as zeros (so trailing zero sub-blocks are not
 * stored).  A longer object, a short body or a digest mismatch is EIO,
 * never data.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "s3-digest.h"
#include "s3-lease.h"
#include "s3-missing.h"
#include "s3-store.h"
#include "s3-volume.h"
#include "s3-xml.h"
#include "sigv4.h"
#include "thread-buffer.h"
#include "volume-name.h"

/* The bytes of the volume that chunk n covers. */
static uint32_t
chunk_span (const struct s3_volume *v, uint64_t n)
{
  return chunk_span_of (v->meta.size, v->meta.chunk_size, n);
}

/* Why the last read attempt of this thread failed its check. */
static __thread char check_failure[160];

/* A body that fails a check: returns -2 with errno EIO and the reason
 * in check_failure.  The read is tried again (the damage may have been
 * in flight) and reported only if it persists.
 */
static int
corrupt (const struct s3_volume *v, const char *key, const char *what)
{
  snprintf (check_failure, sizeof check_failure, "%s", what);
  errno = EIO;
  return -2;
}

/* Verify object bytes [FIRST, FIRST+GOT) of an object of TOTAL bytes.
 * WHOLE: the body is the whole object.
 */
static int
verify (const struct s3_volume *v, const char *key,
        const struct s3_response *r, const unsigned char *data,
        uint64_t first, uint64_t got, uint64_t total, bool whole)
{
  struct s3_digest d;
  uint32_t bad;
  char msg[128];

  if (r->meta_crc32c == NULL) {
    /* Not written by us (synced from a directory, say).  A plain MD5
     * ETag can check a whole GET; nothing can check a ranged one.
     */
    const char *why;

    if (whole && s3_etag_check (data, got, r->etag, &why) == -1)
      return corrupt (v, key, why);
    return 0;
  }
  if (s3_digest_parse (r->meta_crc32c, &d) == -1)
    return corrupt (v, key, "malformed x-amz-meta-shardkit-crc32c");
  if (d.len != total) {
    snprintf (msg, sizeof msg, "object is %" PRIu64 " bytes, its digest "
              "says %" PRIu64, total, d.len);
    return corrupt (v, key, msg);
  }
  /* The CRCs cover every byte, whole GET or ranged, at about 0.01 CPU s
   * per GiB; a SHA-256 of each whole GET would cost 0.75 s per GiB, the
   * whole read budget (bench/digests), so none is stored or checked.
   */
  if (d.block != v->sub_block && !whole)
    return corrupt (v, key, "unexpected sub-block size in metadata");
  if (s3_digest_verify (&d, data, first, first + got, &bad) == -1) {
    if (bad == UINT32_MAX)
      snprintf (msg, sizeof msg, "range %" PRIu64 "+%" PRIu64
                " does not fit the digest", first, got);
    else
      snprintf (msg, sizeof msg, "CRC32C mismatch in sub-block %" PRIu32,
                bad);
    return corrupt (v, key, msg);
  }
  return 0;
}

/* A ranged GET hit 416: the object is shorter than the range's start.
 * Fine if the object is that short (the range reads as zeros), but
 * if its own digest says it is longer, it was cut short at rest.
 * Returns 0, 1 if the object is gone, -1 or -2 as read_once.
 */
static int
check_short_object (struct s3_volume *v, const char *key, uint64_t first)
{
  struct s3_request req = {
    .method = "HEAD", .key = key, .answers = S3_ANSWER_NOT_FOUND,
  };
  struct s3_response r;
  struct s3_digest d;
  int ret = 0;

  if (s3_http_request (v->client, &req, &r) == -1) {
    s3_response_free (&r);
    return -1;
  }
  if (r.status == 404)
    ret = 1;                    /* gone: the engine decides what that means */
  else if (r.meta_crc32c) {
    /* (corrupt returns -2: a check failure, tried again by the caller) */
    if (s3_digest_parse (r.meta_crc32c, &d) == -1)
      ret = corrupt (v, key, "malformed x-amz-meta-shardkit-crc32c");
    else if (d.len > first || (r.content_length >= 0 &&
                               (uint64_t) r.content_length != d.len))
      ret = corrupt (v, key, "object is shorter than its digest says");
  }
  s3_response_free (&r);
  return ret;
}

/* The body of a read that is not a whole chunk (the sub-blocks that
 * cover it): one per thread, kept between requests (see thread-buffer.h).
 */
static struct thread_buffer read_buffer = THREAD_BUFFER_INIT;

static void
put_read_buffer (unsigned char **p)
{
  thread_buffer_put (&read_buffer, *p);
}

/* One attempt of s3_store_read: 0, 1 (no such object), -1 after
 * nbdkit_error, -2 if the answer failed a check (see corrupt).
 */
static int
read_once (void *store, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct s3_volume *v = store;
  const uint32_t span = chunk_span (v, n);
  const uint32_t B = v->sub_block;
  CLEANUP_FREE char *key = s3_volume_chunk_key (v, n);
  __attribute__ ((cleanup (put_read_buffer))) unsigned char *tmp = NULL;
  uint64_t first = (off / B) * B;
  uint64_t end = ((uint64_t) off + len + B - 1) / B * B;
  bool whole;
  struct s3_request req = {
    .method = "GET", .answers = S3_ANSWER_NOT_FOUND | S3_ANSWER_BAD_RANGE,
  };
  struct s3_response r;
  unsigned char *data;
  uint64_t got, total;

  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  if (end > span)
    end = span;
  whole = first == 0 && end == span;
  req.key = key;
  if (whole && off == 0 && len == span) {
    data = buf;                 /* straight into the caller's buffer */
  }
  else {
    tmp = thread_buffer_get (&read_buffer, end - first);
    if (tmp == NULL) {
      nbdkit_error ("malloc: %m");
      return -1;
    }
    data = tmp;
  }
  req.buf = data;
  req.cap = end - first;
  if (!whole) {
    req.ranged = true;
    req.range_first = first;
    req.range_last = end - 1;
  }

  if (s3_http_request (v->client, &req, &r) == -1) {
    s3_response_free (&r);
    return -1;
  }
  if (r.status == 404) {
    s3_response_free (&r);
    return 1;
  }
  if (r.status == 416) {
    s3_response_free (&r);
    int c = check_short_object (v, key, first);
    if (c != 0)
      return c;
    memset (buf, 0, len);
    return 0;
  }

  got = r.len;
  if (whole) {
    total = got;
    if (r.content_length >= 0 && (uint64_t) r.content_length != got) {
      s3_response_free (&r);
      return corrupt (v, key, "short body");
    }
  }
  else {
    if (r.status != 206 || !r.have_range || r.range_first != first) {
      s3_response_free (&r);
      return corrupt (v, key, "the server did not honour the range");
    }
    total = r.range_total;
    if (r.range_last - r.range_first + 1 != got ||
        got != (total < end ? total : end) - first) {
      s3_response_free (&r);
      return corrupt (v, key, "short body");
    }
  }
  if (total > span) {
    s3_response_free (&r);
    return corrupt (v, key, "object is longer than the chunk");
  }
  {
    int c = verify (v, key, &r, data, first, got, total, whole);
    if (c < 0) {
      s3_response_free (&r);
      return c;
    }
  }
  s3_response_free (&r);

  /* Bytes past the object's end read as zeros. */
  if (data == buf) {
    if (got < len)
      memset ((unsigned char *) buf + got, 0, len - got);
  }
  else {
    uint64_t have_end = first + got;       /* object bytes we hold */
    uint64_t copy = 0;
    if (have_end > off)
      copy = have_end - off < len ? have_end - off : len;
    memcpy (buf, data + (off - first), copy);
    memset ((unsigned char *) buf + copy, 0, len - copy);
  }
  return 0;
}

/* Read, verifying what comes back.  A body that fails its check may
 * have been damaged on the way (plain HTTP has no integrity of its
 * own), so it is fetched again, up to S3_LIST_FETCHES times, with a
 * debug line each; only damage that persists is reported, as EIO.
 */
static int
s3_store_read (void *store, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct s3_volume *v = store;
  unsigned attempt;
  int r;

  for (attempt = 1; ; ++attempt) {
    r = read_once (store, n, buf, len, off);
    if (r != -2)
      return r;
    if (attempt >= S3_LIST_FETCHES)
      break;
    nbdkit_debug ("s3: %s/%s%s.%" PRIu64 ".chunk: %s: fetching it again",
                  s3_client_bucket (v->client), v->prefix, v->stem, n,
                  check_failure);
  }
  nbdkit_error ("s3: %s/%s%s.%" PRIu64 ".chunk: integrity check failed: %s "
                "(in %u answers in a row; not served)",
                s3_client_bucket (v->client), v->prefix, v->stem, n,
                check_failure, attempt);
  errno = EIO;
  return -1;
}

/* Nothing changes the volume unless it is open read-write (a snapshot
 * or a base never is) and its lease is certainly ours.
 */
static int
may_change (struct s3_volume *v)
{
  if (v->readonly) {
    nbdkit_error ("s3: volume %s is read-only", v->name);
    errno = EROFS;
    return -1;
  }
  return v->lease ? s3_lease_check (v->lease) : 0;
}

static int
s3_store_write (void *store, uint64_t n, const void *buf, uint32_t len,
                uint32_t off, bool fua)
{
  struct s3_volume *v = store;
  const uint32_t B = v->sub_block;
  CLEANUP_FREE char *key = s3_volume_chunk_key (v, n);
  CLEANUP_FREE char *crcs = NULL;
  const unsigned char *p = buf;
  char md5b64[32], sha[65];
  struct s3_digest d;
  struct s3_response r;
  uint64_t objlen;
  int ret;
  /* A signed PUT carries the body's SHA-256 in its signature, and the
   * server refuses a body that does not match it: that is the check in
   * flight, and MD5 would only cost CPU (1.5 s per GiB here, twice
   * SHA-256's).  An anonymous PUT is not signed, so there Content-MD5
   * is what the server checks.
   */
  const bool want_md5 = !s3_client_signs (v->client);

  if (may_change (v) == -1)
    return -1;
  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  /* Whole chunks only: the object is these LEN bytes and reads as
   * zeros after them (as trailing zeros, below).  Shorter than the
   * chunk: an erasure-coded location's fragment (ec-store.h), or a
   * whiteout (a layered volume's zero-length chunk that hides its
   * base's: see overlay-store.h).
   */
  if (off != 0 || len > chunk_span (v, n)) {
    nbdkit_error ("s3: internal error: partial chunk write");
    errno = EINVAL;
    return -1;
  }
  /* Trailing all-zero sub-blocks are not stored: they read as zeros. */
  objlen = len;
  while (objlen > 0) {
    uint64_t start = (objlen - 1) / B * B;
    if (!buffer_is_zero (p + start, objlen - start))
      break;
    objlen = start;
  }

  if (s3_digest_compute_all (p, objlen, B, &d, sha,
                             want_md5 ? md5b64 : NULL) == -1 ||
      (crcs = s3_digest_format (&d)) == NULL) {
    nbdkit_error ("s3: cannot compute the digests of chunk %" PRIu64 ": %m",
                  n);
    errno = EIO;
    return -1;
  }
  {
    struct sigv4_pair h[] = {
      { "x-amz-meta-shardkit-crc32c", crcs },
      { "content-md5", md5b64 },
    };
    struct s3_request req = {
      .method = "PUT", .key = key, .body = p, .body_len = objlen,
      .body_sha256 = sha, .headers = h, .nheaders = want_md5 ? 2 : 1,
    };
    ret = s3_http_request (v->client, &req, &r);
  }
  s3_response_free (&r);
  return ret;
}

static int
delete_one (struct s3_volume *v, uint64_t n)
{
  CLEANUP_FREE char *key = s3_volume_chunk_key (v, n);
  struct s3_request req = { .method = "DELETE", .key = key };
  struct s3_response r;
  int ret;

  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  ret = s3_http_request (v->client, &req, &r);
  s3_response_free (&r);
  return ret;
}

static int
s3_store_remove (void *store, const uint64_t *ns, size_t count, bool fua)
{
  struct s3_volume *v = store;
  char **keys;
  CLEANUP_FREE char *body = NULL;
  CLEANUP_FREE char *code = NULL, *bad_key = NULL;
  size_t len, i, nerrors = 0;
  char md5b64[32];
  struct s3_response r;
  const char *why;
  int ret = -1;

  if (may_change (v) == -1)
    return -1;
  if (count == 0)
    return 0;
  if (count == 1)
    return delete_one (v, ns[0]);

  keys = calloc (count, sizeof *keys);
  if (keys == NULL) {
    nbdkit_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < count; ++i)
    if ((keys[i] = s3_volume_chunk_key (v, ns[i])) == NULL) {
      nbdkit_error ("asprintf: %m");
      goto out;
    }
  body = s3_xml_delete_request ((const char *const *) keys, count, &len);
  if (body == NULL) {
    nbdkit_error ("s3: DeleteObjects body: %m");
    goto out;
  }
  /* S3 requires Content-MD5 on DeleteObjects. */
  if (s3_content_md5 (body, len, md5b64) == -1) {
    nbdkit_error ("s3: DeleteObjects body: MD5: %m");
    goto out;
  }
  {
    struct sigv4_pair params[] = { { "delete", NULL } };
    struct sigv4_pair h[] = { { "content-md5", md5b64 } };
    struct s3_request req = {
      .method = "POST", .params = params, .nparams = 1,
      .headers = h, .nheaders = 1, .body = body, .body_len = len,
    };
    if (s3_http_request (v->client, &req, &r) == -1) {
      s3_response_free (&r);
      goto out;
    }
  }
  if (s3_xml_parse_delete_result (r.body, r.len, &nerrors, &code, &bad_key,
                                  &why) == -1) {
    nbdkit_error ("s3: DeleteObjects in %s: bad response: %s",
                  s3_client_bucket (v->client), why);
    s3_response_free (&r);
    errno = EIO;
    goto out;
  }
  s3_response_free (&r);
  if (nerrors > 0) {
    nbdkit_error ("s3: DeleteObjects in %s: %zu of %zu keys failed, "
                  "first %s: %s", s3_client_bucket (v->client), nerrors,
                  count, bad_key ? bad_key : "?", code ? code : "error");
    errno = code && strcmp (code, "AccessDenied") == 0 ? EACCES : EIO;
    goto out;
  }
  nbdkit_debug ("s3: deleted %zu chunks of %s in one request", count,
                v->name);
  ret = 0;
 out:
  for (i = 0; i < count; ++i)
    free (keys[i]);
  free (keys);
  return ret;
}

static int
s3_store_sync (void *store)
{
  struct s3_volume *v = store;

  /* Nothing changes the volume unless its lease is certainly ours. */
  if (v->lease && s3_lease_check (v->lease) == -1)
    return -1;
  /* A PUT or DELETE is durable when S3 acknowledges it. */
  return 0;
}

struct list_ctx {
  struct s3_volume *v;
  const char *base;             /* "PREFIX/NAME." */
  size_t baselen;
  size_t prefixlen;             /* of "PREFIX/" */
  uint64_t nr_chunks;
  void (*found) (void *opaque, uint64_t n);
  void *opaque;
};

/* What a key listed under "PREFIX/NAME." is.  A correct answer holds
 * only keys under that prefix: our chunks (below the volume's end), our
 * own NAME.meta and NAME.lease, and keys of other volumes whose names
 * start with "NAME." (volume "vm" lists "vm.2.meta" of volume "vm.2").
 * Anything else (a key outside the prefix, a chunk past the end, a
 * name no volume owns) is what a flipped byte or a broken server makes:
 * suspect.  Never silently dropped, since a dropped chunk reads as zeros.
 */
static enum s3_key_class
list_classify (void *opaque, const char *key, uint64_t size, const char **why)
{
  struct list_ctx *ctx = opaque;
  const char *rest = key + ctx->baselen;
  uint64_t n;

  if (strncmp (key, ctx->base, ctx->baselen) != 0) {
    *why = "a key outside the prefix asked for";
    return S3_KEY_SUSPECT;
  }
  if (volume_chunk_suffix_parse (rest, &n)) {
    if (n >= ctx->nr_chunks) {
      *why = "a chunk past the end of the volume";
      return S3_KEY_SUSPECT;
    }
    return S3_KEY_OURS;
  }
  if (strcmp (rest, "meta") == 0 || strcmp (rest, "lease") == 0 ||
      s3_missing_suffix (rest))
    return S3_KEY_OTHER;
  if (volume_name_owns_file (key + ctx->prefixlen))
    return S3_KEY_FOREIGN;
  *why = "not the name of a chunk of this volume";
  return S3_KEY_SUSPECT;
}

static int
list_found (void *opaque, const char *key, uint64_t size)
{
  struct list_ctx *ctx = opaque;
  uint64_t n;

  if (!volume_chunk_suffix_parse (key + ctx->baselen, &n))
    return 0;                   /* cannot happen: classified OURS */
  if (size != UINT64_MAX && size > chunk_span (ctx->v, n))
    /* Served as EIO when read (the object's own length is checked). */
    nbdkit_debug ("s3: %s is listed with %" PRIu64 " bytes, more than "
                  "its chunk holds: reads of it will fail", key, size);
  ctx->found (ctx->opaque, n);
  return 0;
}

static int
s3_store_list (void *store, void (*found) (void *opaque, uint64_t n),
               void *opaque)
{
  struct s3_volume *v = store;
  CLEANUP_FREE char *base = NULL;
  struct list_ctx ctx;
  struct s3_lister l;
  uint64_t nr_chunks = (v->meta.size + v->meta.chunk_size - 1) /
    v->meta.chunk_size;

  if (asprintf (&base, "%s%s.", v->prefix, v->stem) == -1) {
    base = NULL;
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  ctx = (struct list_ctx) {
    v, base, strlen (base), strlen (v->prefix), nr_chunks, found, opaque,
  };
  /* Pages hold up to 1000 keys; allow other volumes' keys under the
   * same prefix, and servers that send small pages, but not forever.
   */
  l = (struct s3_lister) {
    .classify = list_classify, .found = list_found, .opaque = &ctx,
    .max_pages = 1000 + nr_chunks,
  };
  return s3_list_keys (v->client, base, &l);
}

const struct chunk_store_ops s3_store_ops = {
  .partial_write = false,
  .read = s3_store_read,
  .write = s3_store_write,
  .remove = s3_store_remove,
  .sync = s3_store_sync,
  .list = s3_store_list,
};
