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
#include "overlay-store.h"
#include "s3-digest.h"
#include "s3-lease.h"
#include "s3-store.h"
#include "s3-volume.h"
#include "s3-xml.h"
#include "volume-chain.h"
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
  return asprintf (&k, "%s%s.%" PRIu64 ".chunk", v->prefix, v->stem, n) == -1
    ? NULL : k;
}

int
s3_get_small_etag (struct s3_client *c, const char *key, size_t max,
                   char **body, size_t *len, char etag[80])
{
  struct s3_response resp;
  struct s3_request req = {
    .method = "GET", .key = key, .answers = S3_ANSWER_NOT_FOUND,
    .cap = max,
  };

  *body = NULL;
  *len = 0;
  if (etag)
    etag[0] = '\0';
  if (s3_http_request (c, &req, &resp) == -1) {
    s3_response_free (&resp);
    return -1;
  }
  if (resp.status == 404) {
    s3_response_free (&resp);
    return 0;
  }
  if (resp.content_length >= 0 && (uint64_t) resp.content_length != resp.len) {
    nbdkit_error ("s3: %s/%s: short body (%zu of %" PRId64 " bytes)",
                  s3_client_bucket (c), key, resp.len, resp.content_length);
    s3_response_free (&resp);
    errno = EIO;
    return -1;
  }
  if (etag)
    memcpy (etag, resp.etag, sizeof resp.etag);
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
s3_get_small (struct s3_client *c, const char *key, size_t max,
              char **body, size_t *len)
{
  return s3_get_small_etag (c, key, max, body, len, NULL);
}

/* Fetch one page of the listing: the keys after START_AFTER (NULL for
 * the first page).  Pages are asked for by the last key already taken,
 * never by the answer's continuation token: a token is opaque and comes
 * back unsigned, so one damaged in flight (or by the server) could send
 * the next request anywhere, and a listing that silently skipped keys
 * would have chunks read as zeros.  The start-after key is ours, checked
 * and signed.  Returns 0, 1 if the answer could not be parsed (*WHY says
 * why), or -1 after nbdkit_error.
 */
static int
fetch_page (struct s3_client *c, const char *prefix, const char *start_after,
            struct s3_list_page *page, const char **why)
{
  struct sigv4_pair params[4] = {
    { "list-type", "2" }, { "max-keys", "1000" }, { "prefix", prefix },
    { "start-after", start_after },
  };
  struct s3_request req = {
    .method = "GET", .params = params, .nparams = start_after ? 4 : 3,
    .cap = S3_LIST_PAGE_MAX,
  };
  struct s3_response resp;
  int r = 0;

  if (s3_http_request (c, &req, &resp) == -1) {
    s3_response_free (&resp);
    return -1;
  }
  if (s3_xml_parse_list (resp.body, resp.len, page, why) == -1)
    r = 1;
  s3_response_free (&resp);
  return r;
}

static bool
page_has_key (const struct s3_list_page *p, const char *key)
{
  size_t i;

  for (i = 0; p->keys && i < p->nkeys; ++i)
    if (strcmp (p->keys[i], key) == 0)
      return true;
  return false;
}

/* Check a fetched page.  Returns NULL if it can be taken, else the
 * first key (or token) that makes it suspect, with *WHY.  PREV is the
 * last fetch of the same page (for FOREIGN keys, which must be seen
 * twice), LAST_KEY the greatest key of the pages taken so far.
 */
static const char *
check_page (const struct s3_lister *l, const struct s3_list_page *page,
            const struct s3_list_page *prev, const char *last_key,
            const char **why)
{
  size_t i;

  /* More to come, but nothing here to start the next page after. */
  if (page->truncated && page->nkeys == 0) {
    *why = "a page with no keys that says more follow (an endless listing)";
    return "(empty page)";
  }
  for (i = 0; i < page->nkeys; ++i) {
    const char *key = page->keys[i];

    if (last_key && strcmp (key, last_key) <= 0) {
      *why = "the listing went backwards (a key at or before the last "
        "page's end)";
      return key;
    }
    switch (l->classify (l->opaque, key, page->sizes[i], why)) {
    case S3_KEY_OURS:
    case S3_KEY_OTHER:
      break;
    case S3_KEY_FOREIGN:
      if (!page_has_key (prev, key)) {
        *why = "another volume's key, not yet seen twice";
        return key;
      }
      break;
    case S3_KEY_SUSPECT:
      return key;
    }
  }
  return NULL;
}

int
s3_list_keys (struct s3_client *c, const char *prefix,
              const struct s3_lister *l)
{
  CLEANUP_FREE char *last_key = NULL;
  struct s3_list_page prev = { 0 };
  uint64_t pages = 0;
  unsigned fetches = 0;
  int ret = -1;

  for (;;) {
    struct s3_list_page page = { 0 };
    const char *why = NULL, *bad;
    bool more;
    size_t i;
    int r;

    r = fetch_page (c, prefix, last_key, &page, &why);
    if (r == -1)
      goto out;
    fetches++;
    bad = r == 1 ? "(unparseable page)" :
      check_page (l, &page, &prev, last_key, &why);
    if (bad) {
      if (fetches < S3_LIST_FETCHES) {
        nbdkit_debug ("s3: listing %s/%s: suspect answer (%s: %s): "
                      "fetching the page again", s3_client_bucket (c),
                      prefix, bad, why);
        s3_list_page_free (&prev);
        prev = page;
        continue;
      }
      nbdkit_error ("s3: listing %s/%s: %s: %s (in %u answers in a row): "
                    "refused", s3_client_bucket (c), prefix, bad, why,
                    fetches);
      s3_list_page_free (&page);
      errno = EIO;
      goto out;
    }
    if (fetches > 1)
      nbdkit_debug ("s3: listing %s/%s: page %" PRIu64 " passed at fetch %u",
                    s3_client_bucket (c), prefix, pages + 1, fetches);

    for (i = 0; i < page.nkeys; ++i) {
      const char *key = page.keys[i];
      enum s3_key_class k = l->classify (l->opaque, key, page.sizes[i], &why);

      if (k == S3_KEY_OURS && l->found (l->opaque, key, page.sizes[i]) == -1) {
        s3_list_page_free (&page);
        goto out;
      }
      if (k == S3_KEY_FOREIGN)
        nbdkit_debug ("s3: listing %s/%s: ignoring %s (another volume's)",
                      s3_client_bucket (c), prefix, key);
      if (last_key == NULL || strcmp (key, last_key) > 0) {
        free (last_key);
        if ((last_key = strdup (key)) == NULL) {
          nbdkit_error ("strdup: %m");
          s3_list_page_free (&page);
          goto out;
        }
      }
    }
    pages++;
    more = page.truncated;
    s3_list_page_free (&page);
    s3_list_page_free (&prev);
    fetches = 0;
    if (!more)
      break;
    if (pages >= l->max_pages) {
      nbdkit_error ("s3: listing %s/%s: more than %" PRIu64 " pages, more "
                    "than it can hold: refused as an endless listing",
                    s3_client_bucket (c), prefix, l->max_pages);
      errno = EIO;
      goto out;
    }
  }
  nbdkit_debug ("s3: listed %s/%s in %" PRIu64 " page(s)",
                s3_client_bucket (c), prefix, pages);
  ret = 0;
 out:
  s3_list_page_free (&prev);
  return ret;
}

/* Read and check NAME.meta.  A body that fails a check (its ETag, its
 * own checksum, the parser) may have been damaged in flight, so it is
 * fetched again, up to S3_LIST_FETCHES times, before it is called
 * corrupt.  Returns 1 (found, *M filled), 0 (no such object) or -1
 * after nbdkit_error.
 */
static int
read_meta (struct s3_client *c, const char *key, struct volume_meta *m)
{
  char why[256];
  unsigned attempt;

  for (attempt = 1; ; ++attempt) {
    CLEANUP_FREE char *body = NULL;
    char etag[80];
    const char *bad = NULL;
    size_t len;
    int r;

    r = s3_get_small_etag (c, key, VOLUME_META_MAX_BYTES, &body, &len, etag);
    if (r <= 0)
      return r;
    if (s3_etag_check (body, len, etag, &bad) == 0) {
      if (volume_meta_parse (body, len, m, why, sizeof why) == 0)
        return 1;
      /* A format this shardkit does not know is not damage. */
      if (strncmp (why, "version ", 8) == 0 &&
          strstr (why, "a newer shardkit") != NULL) {
        nbdkit_error ("s3: %s/%s: volume metadata of a newer format: %s",
                      s3_client_bucket (c), key, why);
        errno = EIO;
        return -1;
      }
    }
    else
      snprintf (why, sizeof why, "%s", bad);
    if (attempt >= S3_LIST_FETCHES) {
      nbdkit_error ("s3: %s/%s: corrupt volume metadata: %s (in %u answers "
                    "in a row)", s3_client_bucket (c), key, why, attempt);
      errno = EIO;
      return -1;
    }
    nbdkit_debug ("s3: %s/%s: volume metadata failed its check (%s): "
                  "fetching it again", s3_client_bucket (c), key, why);
  }
}

/* Create NAME.meta only if no object of that name exists
 * (If-None-Match: *), so that two servers creating one volume end with
 * one, and a .meta that a lying 404 hid is never overwritten.  Returns
 * 1 if created, 0 if it existed already, -1 after nbdkit_error.
 */
static int
put_meta (struct s3_client *c, const char *key, const char *text)
{
  char md5b64[32];
  struct sigv4_pair h[] = {
    { "content-md5", md5b64 }, { "if-none-match", "*" },
  };
  size_t len = strlen (text);
  struct s3_request req = {
    .method = "PUT", .key = key, .body = text, .body_len = len,
    .headers = h, .nheaders = 2, .answers = S3_ANSWER_PRECONDITION,
  };
  struct s3_response resp;
  int r;

  if (s3_content_md5 (text, len, md5b64) == -1) {
    nbdkit_error ("s3: %s: MD5: %m", key);
    return -1;
  }
  r = s3_http_request (c, &req, &resp);
  if (r == 0)
    r = resp.status == 412 ? 0 : 1;
  s3_response_free (&resp);
  return r;
}

struct chunk_probe {
  size_t baselen;
  char *first;                  /* the first chunk key seen */
};

static enum s3_key_class
probe_classify (void *opaque, const char *key, uint64_t size,
                const char **why)
{
  struct chunk_probe *p = opaque;
  uint64_t n;

  /* Lenient: this only looks for evidence that the volume exists. */
  return volume_chunk_suffix_parse (key + p->baselen, &n) ?
    S3_KEY_OURS : S3_KEY_OTHER;
}

static int
probe_found (void *opaque, const char *key, uint64_t size)
{
  struct chunk_probe *p = opaque;

  if (p->first == NULL && (p->first = strdup (key)) == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  return 0;
}

/* Before creating NAME with metadata *M: are there chunk objects that
 * it would read as its own (those of its generation) while its .meta
 * is missing (lost, or hidden by a lying 404)?  Creating a new volume
 * over them would serve their bytes as the new volume's.  NAME's other
 * generations are not its own: snapshots read them (data=NAME@g), as
 * when shardkit copy brings a volume into a bucket after a snapshot of
 * it; and a snapshot's own chunks are its data='s, which exist by
 * design.  Returns 0 if none, -1 after nbdkit_error if there are or on
 * error.
 */
static int
refuse_orphan_chunks (struct s3_client *c, const char *prefix,
                      const char *name, const struct volume_meta *m)
{
  CLEANUP_FREE char *base = NULL;
  struct chunk_probe p = { 0 };
  struct s3_lister l = {
    .classify = probe_classify, .found = probe_found, .opaque = &p,
    .max_pages = 100000,
  };
  char stem[VOLUME_CHUNK_STEM_MAX];
  int r;

  if (m->data[0])
    return 0;
  volume_chunk_stem (name, m->generation, stem, sizeof stem);
  if (asprintf (&base, "%s%s.", prefix, stem) == -1) {
    base = NULL;
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  p.baselen = strlen (base);
  r = s3_list_keys (c, base, &l);
  if (r == 0 && p.first) {
    nbdkit_error ("volume '%s' in bucket %s: %s.meta is missing but chunk "
                  "objects of the volume exist (%s): refusing to create a "
                  "new volume over them (restore the .meta, or remove the "
                  "chunks)", name, s3_client_bucket (c), name, p.first);
    errno = EEXIST;
    r = -1;
  }
  free (p.first);
  return r;
}

int
s3_volume_read_meta (struct s3_client *c, const char *prefix,
                     const char *name, struct volume_meta *m)
{
  CLEANUP_FREE char *key = s3_volume_meta_key (prefix, name);

  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  return read_meta (c, key, m);
}

int
s3_volume_create_meta (struct s3_client *c, const char *prefix,
                       const char *name, const struct volume_meta *nm)
{
  CLEANUP_FREE char *key = s3_volume_meta_key (prefix, name);
  CLEANUP_FREE char *text = NULL;
  struct volume_meta m;
  const char *why;
  int r;

  if (!volume_name_is_valid (name, &why)) {
    nbdkit_error ("%s", why);
    errno = EINVAL;
    return -1;
  }
  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  /* Asked first, so that the answer is the same on stores that ignore
   * If-None-Match; the conditional PUT still settles a race.
   */
  r = read_meta (c, key, &m);
  if (r == -1)
    return -1;
  if (r == 0) {
    if (refuse_orphan_chunks (c, prefix, name, nm) == -1)
      return -1;
    if ((text = volume_meta_format (nm)) == NULL) {
      nbdkit_error ("cannot make metadata for volume '%s': %m", name);
      return -1;
    }
    r = put_meta (c, key, text);
    if (r == -1)
      return -1;
    if (r == 1) {
      nbdkit_debug ("created volume %s in bucket %s: %" PRIu64 " bytes, "
                    "chunk size %" PRIu32 ", uuid %s", name,
                    s3_client_bucket (c), nm->size, nm->chunk_size, nm->uuid);
      return 0;
    }
  }
  nbdkit_error ("volume '%s' already exists in bucket %s%s%s", name,
                s3_client_bucket (c), *prefix ? " under prefix " : "",
                prefix);
  errno = EEXIST;
  return -1;
}

int
s3_volume_create (struct s3_client *c, const char *prefix, const char *name,
                  uint64_t size, uint32_t chunk_size)
{
  struct volume_meta m;

  if (volume_meta_init (&m, size, chunk_size) == -1) {
    nbdkit_error ("cannot make metadata for volume '%s': %m", name);
    return -1;
  }
  return s3_volume_create_meta (c, prefix, name, &m);
}

int
s3_volume_prepare (struct s3_client *c, const char *prefix, const char *name,
                   const struct volume_create *create,
                   struct volume_meta *m)
{
  CLEANUP_FREE char *key = s3_volume_meta_key (prefix, name);
  int r;

  if (key == NULL) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  r = read_meta (c, key, m);
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
    if (refuse_orphan_chunks (c, prefix, name, &nm) == -1)
      return -1;
    r = put_meta (c, key, text);
    if (r == -1)
      return -1;
    if (r == 1)
      nbdkit_debug ("created volume %s in bucket %s: %" PRIu64 " bytes, "
                    "chunk size %" PRIu32 ", uuid %s", name,
                    s3_client_bucket (c), nm.size, nm.chunk_size, nm.uuid);
    else
      nbdkit_debug ("volume %s in bucket %s was created by another server "
                    "first: using its metadata", name, s3_client_bucket (c));
    /* Both ways, use what the bucket holds. */
    r = read_meta (c, key, m);
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
  {
    char where[300];
    snprintf (where, sizeof where, "bucket %s", s3_client_bucket (c));
    return volume_check_create (name, where, m, create);
  }
}

/* "bucket B" or "bucket B under prefix P", for messages. */
static void
describe (struct s3_client *c, const char *prefix, char *buf, size_t len)
{
  snprintf (buf, len, "bucket %s%s%s", s3_client_bucket (c),
            *prefix ? " under prefix " : "", prefix);
}

static struct s3_volume *open_layer (struct s3_client *c, const char *prefix,
                                     const char *name, bool readonly,
                                     unsigned flags,
                                     const struct volume_create *create,
                                     const struct s3_lease_config *lease,
                                     struct volume_chain *chain);

/* Open V's base (v->meta.base=), and the overlay of V over it. */
static int
open_base (struct s3_volume *v, unsigned flags, struct volume_chain *chain)
{
  const struct volume_meta *m = &v->meta;
  char where[400];

  describe (v->client, v->prefix, where, sizeof where);
  if (volume_chain_push (chain, where, v->name, m->base) == -1)
    return -1;
  v->base = open_layer (v->client, v->prefix, m->base, true,
                        VOLUME_OPEN_SERVE | (flags & VOLUME_OPEN_META_ONLY),
                        NULL, NULL, chain);
  return volume_chain_attach (chain, where, v->name, m,
                              v->base ? &v->base->meta : NULL,
                              v->base ? &v->base->store : NULL,
                              flags, &v->store, &v->overlay);
}

static struct s3_volume *
open_layer (struct s3_client *c, const char *prefix, const char *name,
            bool readonly, unsigned flags,
            const struct volume_create *create,
            const struct s3_lease_config *lease, struct volume_chain *chain)
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
  v->name = strdup (name);
  v->prefix = strdup (prefix);
  if (v->name == NULL || v->prefix == NULL) {
    nbdkit_error ("strdup: %m");
    goto err;
  }
  if (volume_chain_in_base (chain)) {
    /* A base: name the volume that needs it when it is missing. */
    char where[400];
    int r = s3_volume_read_meta (c, prefix, name, &v->meta);
    if (r == 0) {
      describe (c, prefix, where, sizeof where);
      volume_chain_missing (chain, where, name);
    }
    if (r != 1)
      goto err;
  }
  else if (s3_volume_prepare (c, prefix, name, readonly ? NULL : create,
                              &v->meta) == -1)
    goto err;
  /* One location of a mirror (sharded-file's set of dir=, synced into
   * a bucket): served alone, its writes would never reach the others.
   */
  if (v->meta.set_size && !readonly && !(flags & VOLUME_OPEN_LOCATION) &&
      !(v->meta.ec_k && (flags & VOLUME_OPEN_SERVE))) {
    nbdkit_error ("volume '%s' is location %" PRIu32 " of a set of %"
                  PRIu32 " (redundancy=%s): serve it with every location "
                  "of its set, or read-only (-r) alone", name,
                  v->meta.set_index, v->meta.set_size, v->meta.redundancy);
    errno = EROFS;
    goto err;
  }
  /* A fragment store is no disk, even read-only. */
  if (v->meta.ec_k && (flags & VOLUME_OPEN_SERVE) &&
      !(flags & VOLUME_OPEN_LOCATION)) {
    nbdkit_error ("volume '%s' is location %" PRIu32 " of an erasure-coded "
                  "set (redundancy=ec:%" PRIu32 "+%" PRIu32 "): it holds "
                  "fragments, not the volume; serve it with every location "
                  "of the set and that redundancy=", name,
                  v->meta.set_index, v->meta.ec_k, v->meta.ec_m);
    errno = EINVAL;
    goto err;
  }
  /* A server serves a snapshot read-only, however it is asked to. */
  if (v->meta.read_only && (flags & VOLUME_OPEN_SERVE))
    readonly = true;
  v->readonly = readonly;
  /* One writer per volume: hold the lease before the chunks are listed,
   * so that no other server changes them under the map we build.
   */
  if (!readonly) {
    if ((v->lease = s3_lease_acquire_volume (c, prefix, name, lease)) == NULL)
      goto err;
    /* The volume tool rewrites NAME.meta (snapshot, rollback, resize)
     * only while it holds the lease: what was read before the lease was
     * ours may be the generation a snapshot has frozen meanwhile.  Read
     * it again now that it cannot change.
     */
    if (s3_volume_prepare (c, prefix, name, create, &v->meta) == -1)
      goto err;
  }
  if (v->meta.data[0])
    volume_chunk_stem (v->meta.data, v->meta.data_generation,
                       v->stem, sizeof v->stem);
  else
    volume_chunk_stem (name, v->meta.generation, v->stem, sizeof v->stem);
  v->sub_block = s3_sub_block_size (v->meta.chunk_size);
  v->store = (struct chunk_store) { .ops = &s3_store_ops, .opaque = v };
  if (v->meta.base[0] && !(flags & VOLUME_OPEN_OWN_CHUNKS) &&
      open_base (v, flags, chain) == -1)
    goto err;
  return v;

 err:
  s3_volume_close (v);
  return NULL;
}

struct s3_volume *
s3_volume_open (struct s3_client *c, const char *prefix, const char *name,
                bool readonly, unsigned flags,
                const struct volume_create *create,
                unsigned parallel, const struct s3_lease_config *lease)
{
  struct volume_chain chain;
  struct s3_volume *v;

  volume_chain_start (&chain, name);
  v = open_layer (c, prefix, name, readonly, flags, create, lease, &chain);
  if (v == NULL)
    return NULL;
  if (flags & (VOLUME_OPEN_META_ONLY | VOLUME_OPEN_LOCATION))
    return v;
  v->engine = chunk_engine_new (name, v->store.ops, v->store.opaque,
                                v->meta.size, v->meta.chunk_size);
  if (v->engine == NULL ||
      chunk_engine_set_parallelism (v->engine, parallel) == -1) {
    s3_volume_close (v);
    return NULL;
  }
  return v;
}

void
s3_volume_close (struct s3_volume *v)
{
  if (v == NULL)
    return;
  chunk_engine_free (v->engine);
  overlay_store_free (v->overlay);
  s3_volume_close (v->base);
  /* Only now that nothing can write any more. */
  s3_lease_release (v->lease);
  free (v->name);
  free (v->prefix);
  free (v);
}
