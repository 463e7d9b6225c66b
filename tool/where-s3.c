/* shardkit volume tool: volumes in a bucket, s3://BUCKET[/PREFIX],
 * through the S3 store of plugins/s3-object (libs3object: the same
 * keys, metadata, digests, lease and credentials chain).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "s3-credentials.h"
#include "s3-digest.h"
#include "s3-http.h"
#include "s3-lease.h"
#include "s3-store.h"
#include "s3-volume.h"
#include "s3-xml.h"
#include "tool.h"
#include "volume-name.h"
#include "where.h"

#define TOOL_S3_TIMEOUT 60      /* seconds per attempt, as s3-object */
#define TOOL_S3_RETRIES 5
#define TOOL_S3_CONNECTIONS_MIN 4

struct s3_priv {
  char *bucket;
  char *prefix;                 /* "" or ending in '/' */
  struct s3_client *client;
};

static struct s3_priv *
priv (struct where *w)
{
  return w->priv;
}

struct scan_ctx {
  struct s3_priv *p;
  size_t prefixlen;
  const char *only;
  where_scan_fn fn;
  void *opaque;
  int r;                        /* what fn returned, if not 0 */
};

/* Parse a key under the prefix: KIND and volume NAME, false if no
 * volume owns it.
 */
static bool
parse_key (const char *rest, char *name, enum entry_kind *kind, uint64_t *gen,
           uint64_t *n)
{
  size_t len = strlen (rest);

  if (volume_name_from_meta_file (rest, name)) {
    *kind = ENTRY_META;
    return true;
  }
  if (volume_chunk_name_parse_gen (rest, name, gen, n)) {
    *kind = ENTRY_CHUNK;
    return true;
  }
  if (len > 6 && strcmp (rest + len - 6, ".lease") == 0 &&
      len - 6 <= VOLUME_NAME_MAX) {
    memcpy (name, rest, len - 6);
    name[len - 6] = '\0';
    *kind = ENTRY_LEASE;
    return volume_name_is_valid (name, NULL);
  }
  return false;
}

static enum s3_key_class
scan_classify (void *opaque, const char *key, uint64_t size, const char **why)
{
  struct scan_ctx *ctx = opaque;

  if (strncmp (key, ctx->p->prefix, ctx->prefixlen) != 0) {
    *why = "a key outside the prefix asked for";
    return S3_KEY_SUSPECT;
  }
  return volume_name_owns_file (key + ctx->prefixlen) ?
    S3_KEY_OURS : S3_KEY_OTHER;
}

static int
scan_found (void *opaque, const char *key, uint64_t size)
{
  struct scan_ctx *ctx = opaque;
  char name[VOLUME_NAME_MAX + 1];
  struct where_entry e = { .volume = name };

  if (!parse_key (key + ctx->prefixlen, name, &e.kind, &e.gen, &e.n))
    return 0;
  if (ctx->only && strcmp (ctx->only, name) != 0)
    return 0;
  e.size = e.stored = size == UINT64_MAX ? 0 : size;
  ctx->r = ctx->fn (ctx->opaque, &e);
  return ctx->r ? -1 : 0;
}

static int
s3w_scan (struct where *w, const char *only, where_scan_fn fn, void *opaque)
{
  struct s3_priv *p = priv (w);
  struct scan_ctx ctx = {
    .p = p, .prefixlen = strlen (p->prefix), .only = only, .fn = fn,
    .opaque = opaque,
  };
  /* As the plugin's listing of exports: 100000 pages is endless. */
  struct s3_lister l = {
    .classify = scan_classify, .found = scan_found, .opaque = &ctx,
    .max_pages = 100000,
  };
  /* One volume: only the keys that start "PREFIX/NAME." and, for its
   * chunks of later generations, "PREFIX/NAME@".
   */
  const char *const seps[] = { ".", "@" };
  size_t i;

  for (i = 0; i < (only ? 2 : 1); ++i) {
    CLEANUP_FREE char *base = NULL;

    if (asprintf (&base, "%s%s%s", p->prefix, only ? only : "",
                  only ? seps[i] : "") == -1) {
      base = NULL;
      tool_error ("asprintf: %m");
      return -1;
    }
    if (s3_list_keys (p->client, base, &l) == -1)
      return ctx.r ? ctx.r : -1;
  }
  return 0;
}

static int
s3w_read_meta (struct where *w, const char *name, struct volume_meta *m)
{
  return s3_volume_read_meta (priv (w)->client, priv (w)->prefix, name, m);
}

static int
s3w_create (struct where *w, const char *name, uint64_t size,
            uint32_t chunk_size)
{
  return s3_volume_create (priv (w)->client, priv (w)->prefix, name, size,
                           chunk_size);
}

static int
s3w_create_meta (struct where *w, const char *name,
                 const struct volume_meta *m)
{
  return s3_volume_create_meta (priv (w)->client, priv (w)->prefix, name, m);
}

static int
s3w_holder (struct where *w, const char *name, char *buf, size_t len)
{
  return s3_lease_holder (priv (w)->client, priv (w)->prefix, name, buf, len);
}

static int
s3w_open (struct where *w, const char *name, unsigned how, unsigned parallel,
          struct tool_volume *tv)
{
  const bool write = how & TOOL_OPEN_WRITE;
  struct s3_priv *p = priv (w);
  /* lease-wait=0: the tool refuses a volume in use, it does not wait. */
  const struct s3_lease_config lease = { S3_LEASE_TIME_DEFAULT, 0 };
  struct s3_volume *v;
  char holder[512];

  /* Asked first, so that a store that ignores If-None-Match (which
   * the lease's creation relies on) still refuses a volume in use.
   */
  if (write) {
    int r = s3_lease_holder (p->client, p->prefix, name, holder,
                             sizeof holder);
    if (r == -1)
      return -1;
    if (r == 1) {
      tool_error ("volume '%s' in %s is in use: %s", name, w->display,
                  holder);
      errno = EBUSY;
      return -1;
    }
  }
  v = s3_volume_open (p->client, p->prefix, name, !write,
                      volume_open_flags (how),
                      NULL, parallel, &lease);
  if (v == NULL)
    return -1;
  tv->w = w;
  tv->name = v->name;
  tv->write = write;
  tv->meta = v->meta;
  tv->engine = v->engine;
  tv->ops = &s3_store_ops;
  tv->store = v;
  tv->view = v->store;
  return 0;
}

/* One request on KEY with no body to keep: DELETE, or a PUT of TEXT. */
static int
simple_request (struct s3_client *c, const char *method, const char *key,
                const char *text)
{
  char md5b64[32];
  struct sigv4_pair h[] = { { "content-md5", md5b64 } };
  struct s3_request req = { .method = method, .key = key };
  struct s3_response resp;
  int r;

  if (text) {
    req.body = text;
    req.body_len = strlen (text);
    req.headers = h;
    req.nheaders = 1;
    if (s3_content_md5 (text, req.body_len, md5b64) == -1) {
      tool_error ("s3: %s: MD5: %m", key);
      return -1;
    }
  }
  r = s3_http_request (c, &req, &resp);
  s3_response_free (&resp);
  return r;
}

/* The lease is ours (the volume is open read-write), and only the
 * creator of a volume writes its metadata otherwise (If-None-Match: *),
 * so a plain PUT replaces it.
 */
static int
s3w_rewrite_meta (struct tool_volume *tv, const struct volume_meta *m)
{
  struct s3_volume *v = tv->store;
  CLEANUP_FREE char *key = s3_volume_meta_key (v->prefix, v->name);
  CLEANUP_FREE char *text = volume_meta_format (m);

  if (key == NULL || text == NULL) {
    tool_error ("malloc: %m");
    return -1;
  }
  return simple_request (v->client, "PUT", key, text);
}

static void
s3w_set_size (struct tool_volume *tv, uint64_t size)
{
  struct s3_volume *v = tv->store;
  v->meta.size = size;
}

static int
s3w_remove_meta (struct tool_volume *tv)
{
  struct s3_volume *v = tv->store;
  CLEANUP_FREE char *key = s3_volume_meta_key (v->prefix, v->name);

  if (key == NULL) {
    tool_error ("malloc: %m");
    return -1;
  }
  if (simple_request (v->client, "DELETE", key, NULL) == -1)
    return -1;
  tv->removed = true;
  return 0;
}

static void
s3w_close (struct tool_volume *tv)
{
  struct s3_priv *p = priv (tv->w);
  CLEANUP_FREE char *lease = NULL;

  if (tv->removed)
    lease = s3_lease_key (p->prefix, tv->name);
  /* Releases the lease (a conditional PUT marking it released). */
  s3_volume_close (tv->store);
  tv->store = NULL;
  /* A deleted volume leaves no lease object behind.  Nobody can take
   * it meanwhile for a volume that has no metadata any more.
   */
  if (lease)
    simple_request (p->client, "DELETE", lease, NULL);
}

static const struct where_ops s3_ops = {
  .kind = "bucket",
  .scan = s3w_scan,
  .read_meta = s3w_read_meta,
  .create = s3w_create,
  .create_meta = s3w_create_meta,
  .holder = s3w_holder,
  .open = s3w_open,
  .rewrite_meta = s3w_rewrite_meta,
  .store_set_size = s3w_set_size,
  .remove_meta = s3w_remove_meta,
  .close = s3w_close,
};

int
where_s3_open (const char *url, struct where *w)
{
  struct s3_priv *p = calloc (1, sizeof *p);
  const char *rest = url + strlen ("s3://"), *slash;
  struct s3_credentials creds = { 0 };
  struct s3_client_config cfg = {
    .endpoint = opts.endpoint,
    .region = opts.region ? opts.region : "us-east-1",
    .url_style = opts.url_style,
    .connections = opts.jobs > TOOL_S3_CONNECTIONS_MIN ?
      opts.jobs : TOOL_S3_CONNECTIONS_MIN,
    .timeout = TOOL_S3_TIMEOUT,
    .tls_verify = true,
    .retries = TOOL_S3_RETRIES,
  };
  const char *pfx;
  size_t plen;

  if (p == NULL) {
    tool_error ("calloc: %m");
    return -1;
  }
  w->priv = p;
  w->ops = &s3_ops;
  if ((w->display = strdup (url)) == NULL) {
    tool_error ("strdup: %m");
    return -1;
  }
  slash = strchr (rest, '/');
  p->bucket = slash ? strndup (rest, (size_t) (slash - rest)) : strdup (rest);
  if (p->bucket == NULL) {
    tool_error ("strdup: %m");
    return -1;
  }
  if (p->bucket[0] == '\0') {
    tool_error ("%s: no bucket name (s3://BUCKET[/PREFIX])", url);
    return -1;
  }
  /* The prefix as the plugin's prefix= takes it: "disks" and "disks/"
   * both mean the keys "disks/NAME...".
   */
  pfx = slash ? slash + 1 : "";
  while (*pfx == '/')
    pfx++;
  plen = strlen (pfx);
  if (asprintf (&p->prefix, "%s%s", pfx,
                plen && pfx[plen-1] != '/' ? "/" : "") == -1) {
    p->prefix = NULL;
    tool_error ("asprintf: %m");
    return -1;
  }
  cfg.bucket = p->bucket;
  /* One namespace however the URL wrote the prefix ("vols", "vols/",
   * "/vols").
   */
  if (asprintf (&w->place, "s3:%s/%s/%s", opts.endpoint ? opts.endpoint :
                "aws", p->bucket, p->prefix) == -1) {
    w->place = NULL;
    tool_error ("asprintf: %m");
    return -1;
  }

  s3_http_global_init ();
  s3_xml_init ();
  /* The chain of s3-object: environment, then the shared credentials
   * file (--profile, AWS_PROFILE, "default"), else anonymous.
   */
  if (s3_credentials_find (NULL, NULL, opts.profile, &creds) == -1)
    return -1;
  p->client = s3_client_new (&cfg, &creds);
  return p->client ? 0 : -1;
}

void
where_s3_close (struct where *w)
{
  struct s3_priv *p = priv (w);

  if (p == NULL)
    return;
  if (p->client) {
    s3_client_free (p->client);
    s3_http_global_cleanup ();
  }
  free (p->bucket);
  free (p->prefix);
  free (p);
  w->priv = NULL;
}

struct s3_client *
where_s3_client (struct where *w, const char **prefix)
{
  *prefix = priv (w)->prefix;
  return priv (w)->client;
}
