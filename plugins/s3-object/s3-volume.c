/* shardkit s3-object: open and create one volume in a bucket.
 * GPL-3.0-or-later.
 *
 * S3 has no locks: a read-write open holds the lease of s3-lease.h
 * (PREFIX/NAME.lease) so that one server at a time writes the volume.
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
#include "s3-store.h"
#include "s3-volume.h"
#include "s3-xml.h"
#include "volume-name.h"

uint32_t
s3_sub_block_size (uint32_t chunk_size)
{
  uint32_t b = 64 * 1024;

  while (chunk_size / b > 128)
    b *= 2;
  return b;
}

char *
s3_volume_meta_key (const char *prefix, const char *name)
{
  char *k;
  return asprintf (&k, "%s%s.meta", prefix, name) == -1 ? NULL : k;
}

char *
s3_volume_chunk_key (const struct s3_volume *v, uint64_t n)
{
  char *k;
  return asprintf (&k, "%s%s.%" PRIu64 ".chunk", v->prefix, v->name, n) == -1
    ? NULL : k;
}

int
s3_get_small (struct s3_client *c, const char *key, size_t max,
              char **body, size_t *len)
{
  struct s3_response resp;
  struct s3_request req = {
    .method = "GET", .key = key, .answers = S3_ANSWER_NOT_FOUND,
    .cap = max,
  };

  *body = NULL;
  *len = 0;
  if (s3_http_request (c, &req, &resp) == -1) {
    s3_response_free (&resp);
    return -1;
  }
  if (resp.status == 404) {
    s3_response_free (&resp);
    return 0;
  }
  if (resp.len > max) {
    nbdkit_error ("s3: %s/%s: object is larger than %zu bytes",
                  s3_client_bucket (c), key, max);
    s3_response_free (&resp);
    errno = EIO;
    return -1;
  }
  *body = resp.body ? resp.body : strdup ("");
  *len = resp.len;
  resp.body = NULL;
  s3_response_free (&resp);
  if (*body == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  return 1;
}

int
s3_list_keys (struct s3_client *c, const char *prefix,
              int (*found) (void *opaque, const char *key), void *opaque)
{
  CLEANUP_FREE char *token = NULL;
  unsigned pages = 0;

  do {
    struct sigv4_pair params[3] = {
      { "list-type", "2" }, { "prefix", prefix },
      { "continuation-token", token },
    };
    struct s3_request req = {
      .method = "GET", .params = params, .nparams = token ? 3 : 2,
    };
    struct s3_response resp;
    struct s3_list_page page;
    const char *why;
    size_t i;

    if (s3_http_request (c, &req, &resp) == -1) {
      s3_response_free (&resp);
      return -1;
    }
    if (resp.status == 404) {
      nbdkit_error ("s3: listing %s/%s: not found", s3_client_bucket (c),
                    prefix);
      s3_response_free (&resp);
      errno = ENOENT;
      return -1;
    }
    if (s3_xml_parse_list (resp.body, resp.len, &page, &why) == -1) {
      nbdkit_error ("s3: listing %s/%s: bad ListObjectsV2 response: %s",
                    s3_client_bucket (c), prefix, why);
      s3_response_free (&resp);
      errno = EIO;
      return -1;
    }
    s3_response_free (&resp);
    for (i = 0; i < page.nkeys; ++i) {
      if (found (opaque, page.keys[i]) == -1) {
        s3_list_page_free (&page);
        return -1;
      }
    }
    free (token);
    token = NULL;
    if (page.truncated) {
      token = page.next_token;
      page.next_token = NULL;
    }
    s3_list_page_free (&page);
    pages++;
  } while (token);
  nbdkit_debug ("s3: listed %s/%s in %u page(s)", s3_client_bucket (c),
                prefix, pages);
  return 0;
}

static int
parse_meta (struct s3_client *c, const char *key, const char *body,
            size_t len, struct volume_meta *m)
{
  char why[256];

  if (volume_meta_parse (body, len, m, why, sizeof why) == -1) {
    nbdkit_error ("s3: %s/%s: corrupt volume metadata: %s",
                  s3_client_bucket (c), key, why);
    errno = EIO;
    return -1;
  }
  return 0;
}

static int
put_meta (struct s3_client *c, const char *key, const char *text)
{
  char md5b64[32];
  struct sigv4_pair h[1] = { { "content-md5", md5b64 } };
  size_t len = strlen (text);
  struct s3_request req = {
    .method = "PUT", .key = key, .body = text, .body_len = len,
    .headers = h, .nheaders = 1,
  };
  struct s3_response resp;
  int r;

  if (s3_content_md5 (text, len, md5b64) == -1) {
    nbdkit_error ("s3: %s: MD5: %m", key);
    return -1;
  }
  r = s3_http_request (c, &req, &resp);
  s3_response_free (&resp);
  return r;
}

static int
check_against_create (struct s3_client *c, const char *name,
                      const struct volume_meta *m,
                      const struct s3_volume_create *create)
{
  char why[256];

  if (create == NULL ||
      volume_meta_check_create (m, create->size, create->chunk_size,
                                why, sizeof why) == 0)
    return 0;
  nbdkit_error ("volume '%s' in bucket %s: %s", name, s3_client_bucket (c),
                why);
  errno = EINVAL;
  return -1;
}

int
s3_volume_prepare (struct s3_client *c, const char *prefix, const char *name,
                   const struct s3_volume_create *create,
                   struct volume_meta *m)
{
  CLEANUP_FREE char *key = s3_volume_meta_key (prefix, name);
  CLEANUP_FREE char *body = NULL;
  size_t len;
  int r;

  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  r = s3_get_small (c, key, VOLUME_META_MAX_BYTES, &body, &len);
  if (r == -1)
    return -1;
  if (r == 0 && create && create->size) {
    CLEANUP_FREE char *text = NULL;
    struct volume_meta nm;
    uint32_t cs = create->chunk_size ? create->chunk_size : CHUNK_SIZE_DEFAULT;

    if (volume_meta_init (&nm, create->size, cs) == -1 ||
        (text = volume_meta_format (&nm)) == NULL) {
      nbdkit_error ("cannot make metadata for volume '%s': %m", name);
      return -1;
    }
    /* One PUT makes the volume exist atomically.  Two servers creating
     * the same volume at once both succeed; the later PUT wins, and
     * reading it back below means both then use the same metadata.
     */
    if (put_meta (c, key, text) == -1)
      return -1;
    nbdkit_debug ("created volume %s in bucket %s: %" PRIu64 " bytes, "
                  "chunk size %" PRIu32 ", uuid %s", name,
                  s3_client_bucket (c), nm.size, nm.chunk_size, nm.uuid);
    r = s3_get_small (c, key, VOLUME_META_MAX_BYTES, &body, &len);
    if (r == -1)
      return -1;
  }
  if (r == 0) {
    nbdkit_error ("volume '%s' does not exist in bucket %s%s%s", name,
                  s3_client_bucket (c), *prefix ? " under prefix " : "",
                  prefix);
    errno = ENOENT;
    return -1;
  }
  if (parse_meta (c, key, body, len, m) == -1 ||
      check_against_create (c, name, m, create) == -1)
    return -1;
  return 0;
}

struct s3_volume *
s3_volume_open (struct s3_client *c, const char *prefix, const char *name,
                bool readonly, const struct s3_volume_create *create,
                unsigned parallel, const struct s3_lease_config *lease)
{
  struct s3_volume *v;
  const char *why;

  if (!volume_name_is_valid (name, &why)) {
    nbdkit_error ("export name refused: %s", why);
    errno = EINVAL;
    return NULL;
  }
  v = calloc (1, sizeof *v);
  if (v == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  v->client = c;
  v->readonly = readonly;
  v->name = strdup (name);
  v->prefix = strdup (prefix);
  if (v->name == NULL || v->prefix == NULL) {
    nbdkit_error ("strdup: %m");
    goto err;
  }
  if (s3_volume_prepare (c, prefix, name, readonly ? NULL : create,
                         &v->meta) == -1)
    goto err;
  /* One writer per volume: hold the lease before the chunks are listed,
   * so that no other server changes them under the map we build.
   */
  if (!readonly &&
      (v->lease = s3_lease_acquire_volume (c, prefix, name, lease)) == NULL)
    goto err;
  v->sub_block = s3_sub_block_size (v->meta.chunk_size);
  v->engine = chunk_engine_new (name, &s3_store_ops, v, v->meta.size,
                                v->meta.chunk_size);
  if (v->engine == NULL)
    goto err;
  if (chunk_engine_set_parallelism (v->engine, parallel) == -1)
    goto err;
  return v;

 err:
  s3_volume_close (v);
  return NULL;
}

void
s3_volume_close (struct s3_volume *v)
{
  if (v == NULL)
    return;
  chunk_engine_free (v->engine);
  /* Only now that nothing can write any more. */
  s3_lease_release (v->lease);
  free (v->name);
  free (v->prefix);
  free (v);
}
