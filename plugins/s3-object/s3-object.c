/* shardkit: nbdkit s3-object plugin.
 * GPL-3.0-or-later.
 *
 * Serves volumes stored as chunk objects in a bucket of any S3-compatible
 * store: PREFIX/NAME.meta and PREFIX/NAME.<n>.chunk (the volume format of
 * sharded-file, so a volume copied object-for-file serves identically
 * from either plugin), or, with key=, one existing object read-only.
 * All connections to one volume share one open volume (one chunk engine)
 * in this process, so they see one consistent state and multi-conn is
 * safe.  See nbdkit-s3-object-plugin(1).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "s3-credentials.h"
#include "s3-http.h"
#include "s3-lease.h"
#include "s3-raw.h"
#include "s3-volume.h"
#include "s3-xml.h"
#include "volume-meta.h"
#include "volume-name.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#define DEFAULT_CONNECTIONS 16
#define DEFAULT_TIMEOUT 60
#define DEFAULT_RETRIES 5

static struct s3_client_config cfg = {
  .region = "us-east-1", .url_style = -1, .connections = DEFAULT_CONNECTIONS,
  .timeout = DEFAULT_TIMEOUT, .tls_verify = true, .retries = DEFAULT_RETRIES,
};
static char *prefix;                    /* "" or ending in '/' */
static const char *default_volume;      /* export= */
static const char *raw_key;             /* key= */
static struct s3_volume_create create;  /* size=, chunk-size= */
static const char *access_key, *profile;
static char *secret_key;                /* read with nbdkit_read_password */
static struct s3_credentials creds;     /* found in config_complete */
static struct s3_lease_config lease_cfg = {   /* lease-time=, lease-wait= */
  .lease_secs = S3_LEASE_TIME_DEFAULT,
};

static struct s3_client *client;        /* made in after_fork */
static uint64_t raw_size;

/* Volumes opened by connections, shared and kept open until unload.
 * Opening one costs network round trips (metadata, a listing that may
 * be long or slow), so the table's lock is not held across them: an
 * entry is added in state "opening", and only connections asking for
 * the same volume wait for it (volumes_cond).
 */
struct open_volume {
  char *name;
  struct s3_volume *v;          /* NULL while opening */
  struct open_volume *next;
};
static pthread_mutex_t volumes_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t volumes_cond = PTHREAD_COND_INITIALIZER;
static struct open_volume *volumes;

static void
s3_object_load (void)
{
  s3_http_global_init ();
  s3_xml_init ();
}

static void
s3_object_unload (void)
{
  struct open_volume *ov, *next;

  for (ov = volumes; ov; ov = next) {
    next = ov->next;
    s3_volume_close (ov->v);
    free (ov->name);
    free (ov);
  }
  volumes = NULL;
  s3_client_free (client);
  s3_credentials_free (&creds);
  if (secret_key) {
    memset (secret_key, 0, strlen (secret_key));
    free (secret_key);
  }
  free (prefix);
  s3_http_global_cleanup ();
}

static int
parse_bool (const char *key, const char *value, bool *out)
{
  int r = nbdkit_parse_bool (value);
  if (r == -1)
    return -1;
  *out = r;
  return 0;
}

static int
s3_object_config (const char *key, const char *value)
{
  int64_t r;

  if (strcmp (key, "endpoint") == 0)
    cfg.endpoint = value;
  else if (strcmp (key, "bucket") == 0) {
    if (value[0] == '\0' || strchr (value, '/')) {
      nbdkit_error ("bucket='%s': must be a bucket name (no '/')", value);
      return -1;
    }
    cfg.bucket = value;
  }
  else if (strcmp (key, "prefix") == 0) {
    const char *p = value;
    size_t len;
    while (*p == '/')
      p++;
    len = strlen (p);
    free (prefix);
    if (asprintf (&prefix, "%s%s", p,
                  len && p[len-1] != '/' ? "/" : "") == -1) {
      prefix = NULL;
      nbdkit_error ("asprintf: %m");
      return -1;
    }
  }
  else if (strcmp (key, "region") == 0) {
    if (value[0] == '\0') {
      nbdkit_error ("region= must not be empty");
      return -1;
    }
    cfg.region = value;
  }
  else if (strcmp (key, "url-style") == 0) {
    if (strcmp (value, "path") == 0)
      cfg.url_style = 0;
    else if (strcmp (value, "virtual") == 0)
      cfg.url_style = 1;
    else {
      nbdkit_error ("url-style='%s': must be 'path' or 'virtual'", value);
      return -1;
    }
  }
  else if (strcmp (key, "export") == 0) {
    const char *why;
    if (!volume_name_is_valid (value, &why)) {
      nbdkit_error ("export='%s': %s", value, why);
      return -1;
    }
    default_volume = value;
  }
  else if (strcmp (key, "key") == 0) {
    if (value[0] == '\0') {
      nbdkit_error ("key= must not be empty");
      return -1;
    }
    raw_key = value;
  }
  else if (strcmp (key, "size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    if (r == 0) {
      nbdkit_error ("size='%s': a volume cannot be empty", value);
      return -1;
    }
    create.size = (uint64_t) r;
  }
  else if (strcmp (key, "chunk-size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    if (!chunk_size_is_valid ((uint64_t) r)) {
      nbdkit_error ("chunk-size='%s': must be a power of two from 64K to 1G",
                    value);
      return -1;
    }
    create.chunk_size = (uint32_t) r;
  }
  else if (strcmp (key, "connections") == 0) {
    if (nbdkit_parse_unsigned ("connections", value, &cfg.connections) == -1)
      return -1;
    if (cfg.connections < 1 || cfg.connections > 1024) {
      nbdkit_error ("connections='%s': must be from 1 to 1024", value);
      return -1;
    }
  }
  else if (strcmp (key, "timeout") == 0) {
    if (nbdkit_parse_unsigned ("timeout", value, &cfg.timeout) == -1)
      return -1;
    if (cfg.timeout < 1) {
      nbdkit_error ("timeout='%s': must be at least 1 (seconds)", value);
      return -1;
    }
  }
  else if (strcmp (key, "http-retries") == 0) {
    if (nbdkit_parse_unsigned ("http-retries", value, &cfg.retries) == -1)
      return -1;
    if (cfg.retries > 20) {
      nbdkit_error ("http-retries='%s': at most 20", value);
      return -1;
    }
  }
  else if (strcmp (key, "lease-time") == 0) {
    if (nbdkit_parse_unsigned ("lease-time", value, &lease_cfg.lease_secs) == -1)
      return -1;
    if (lease_cfg.lease_secs < S3_LEASE_TIME_MIN ||
        lease_cfg.lease_secs > S3_LEASE_TIME_MAX) {
      nbdkit_error ("lease-time='%s': must be from %d to %d (seconds)",
                    value, S3_LEASE_TIME_MIN, S3_LEASE_TIME_MAX);
      return -1;
    }
  }
  else if (strcmp (key, "lease-wait") == 0) {
    if (nbdkit_parse_unsigned ("lease-wait", value, &lease_cfg.wait_secs) == -1)
      return -1;
    if (lease_cfg.wait_secs > S3_LEASE_WAIT_MAX) {
      nbdkit_error ("lease-wait='%s': at most %d (seconds)", value,
                    S3_LEASE_WAIT_MAX);
      return -1;
    }
  }
  else if (strcmp (key, "tls-verify") == 0)
    return parse_bool (key, value, &cfg.tls_verify);
  else if (strcmp (key, "cainfo") == 0)
    cfg.cainfo = value;
  else if (strcmp (key, "capath") == 0)
    cfg.capath = value;
  else if (strcmp (key, "access-key") == 0)
    access_key = value;
  else if (strcmp (key, "secret-key") == 0) {
    /* "-", "-FD", "+FILE" or the secret itself, as for any nbdkit
     * password.  Never echoed in messages.
     */
    if (secret_key) {
      memset (secret_key, 0, strlen (secret_key));
      free (secret_key);
      secret_key = NULL;
    }
    if (nbdkit_read_password (value, &secret_key) == -1)
      return -1;
  }
  else if (strcmp (key, "profile") == 0)
    profile = value;
  else {
    nbdkit_error ("unknown parameter '%s' (see nbdkit-s3-object-plugin(1))",
                  key);
    return -1;
  }
  return 0;
}

static int
s3_object_config_complete (void)
{
  if (cfg.bucket == NULL) {
    nbdkit_error ("bucket=<BUCKET> is required");
    return -1;
  }
  if (prefix == NULL && (prefix = strdup ("")) == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  if ((create.size || create.chunk_size) && default_volume == NULL) {
    nbdkit_error ("size= and chunk-size= need export=<NAME>: they describe "
                  "the volume to create");
    return -1;
  }
  if (raw_key && (default_volume || create.size || create.chunk_size)) {
    nbdkit_error ("key= serves one existing object: it cannot be combined "
                  "with export=, size= or chunk-size=");
    return -1;
  }
  if (cfg.url_style == 1 && strchr (cfg.bucket, '.') &&
      cfg.endpoint && strncmp (cfg.endpoint, "https", 5) == 0)
    nbdkit_debug ("s3: bucket name with dots and virtual-hosted style: "
                  "TLS certificates rarely match such names");
  if (s3_credentials_find (access_key, secret_key, profile, &creds) == -1)
    return -1;
  return 0;
}

#define s3_object_config_help \
  "bucket=<BUCKET>       (required) The bucket holding the volumes.\n" \
  "endpoint=<URL>        S3 server (default: AWS in region=).\n" \
  "prefix=<PREFIX>       Key prefix of the volumes (a \"directory\").\n" \
  "region=<REGION>       Signing region (default us-east-1).\n" \
  "url-style=path|virtual  Addressing (default: virtual for AWS, else path).\n" \
  "export=<NAME>         Volume served to clients asking for the default export.\n" \
  "size=<SIZE>           Create export=NAME with this size if it does not exist.\n" \
  "chunk-size=<SIZE>     Chunk size of a new volume (power of two, 64K-1G, default 4M).\n" \
  "key=<KEY>             Serve this one existing object read-only instead.\n" \
  "access-key=<ID>       Access key id (with secret-key=).\n" \
  "secret-key=<SECRET>   Secret key, or -, -FD, +FILE as for nbdkit passwords.\n" \
  "profile=<PROFILE>     Profile in the shared credentials file.\n" \
  "connections=<N>       HTTP connections, and parallel chunk requests (default 16).\n" \
  "timeout=<SECONDS>     Per-request timeout (default 60).\n" \
  "http-retries=<N>      Extra attempts for transient failures (default 5).\n" \
  "lease-time=<SECONDS>  Lease of a volume served read-write (default 30).\n" \
  "lease-wait=<SECONDS>  Wait this long for another server's lease (default 0).\n" \
  "tls-verify=false      Do not verify the server's certificate.\n" \
  "cainfo=<FILE>, capath=<DIR>  CA certificates for TLS."

static struct s3_client *
make_client (void)
{
  struct s3_credentials copy = { .source = creds.source };

  if ((creds.access_key && (copy.access_key = strdup (creds.access_key)) == NULL) ||
      (creds.secret_key && (copy.secret_key = strdup (creds.secret_key)) == NULL) ||
      (creds.session_token &&
       (copy.session_token = strdup (creds.session_token)) == NULL)) {
    nbdkit_error ("strdup: %m");
    s3_credentials_free (&copy);
    return NULL;
  }
  return s3_client_new (&cfg, &copy);
}

static int
s3_object_get_ready (void)
{
  struct s3_client *c;
  struct volume_meta m;
  int r = 0;

  /* Check now, and create the default volume now, so that mistakes fail
   * at start-up rather than at the first client.  A throw-away client:
   * the serving one is made after nbdkit forks into the background, so
   * that no connection crosses the fork.
   */
  c = make_client ();
  if (c == NULL)
    return -1;
  if (raw_key)
    r = s3_raw_size (c, raw_key, &raw_size);
  else if (default_volume)
    r = s3_volume_prepare (c, prefix, default_volume, &create, &m);
  s3_client_free (c);
  return r;
}

static int
s3_object_after_fork (void)
{
  client = make_client ();
  return client ? 0 : -1;
}

static void
s3_object_dump_plugin (void)
{
  printf ("s3_object_chunk_size_default=%" PRIu32 "\n", CHUNK_SIZE_DEFAULT);
  printf ("s3_object_volume_format_version=%d\n", VOLUME_META_VERSION);
  printf ("s3_object_libcurl=%s\n", curl_version ());
}

struct list_ctx {
  struct nbdkit_exports *exports;
  size_t prefixlen;
};

/* A volume is a NAME.meta under the prefix; every other key there is a
 * chunk or a file of some volume, or a stray, and is not listed.  A key
 * outside the prefix is a broken answer.
 */
static enum s3_key_class
classify_export (void *opaque, const char *key, uint64_t size,
                 const char **why)
{
  struct list_ctx *ctx = opaque;
  char name[VOLUME_NAME_MAX + 1];

  if (strncmp (key, prefix, ctx->prefixlen) != 0) {
    *why = "a key outside the prefix asked for";
    return S3_KEY_SUSPECT;
  }
  if (volume_name_from_meta_file (key + ctx->prefixlen, name))
    return S3_KEY_OURS;
  return S3_KEY_OTHER;
}

static int
add_volume (void *opaque, const char *key, uint64_t size)
{
  struct list_ctx *ctx = opaque;
  char name[VOLUME_NAME_MAX + 1];

  if (!volume_name_from_meta_file (key + ctx->prefixlen, name))
    return 0;
  return nbdkit_add_export (ctx->exports, name, "s3-object volume");
}

static int
s3_object_list_exports (int readonly, int is_tls,
                        struct nbdkit_exports *exports)
{
  struct list_ctx ctx = { exports, strlen (prefix) };
  /* nbdkit refuses more than 10000 exports; a bucket may hold more
   * objects, but a listing of 100000 pages (100 million keys) is an
   * endless one.
   */
  struct s3_lister l = {
    .classify = classify_export, .found = add_volume, .opaque = &ctx,
    .max_pages = 100000,
  };

  if (raw_key)
    return nbdkit_add_export (exports, "", "s3-object raw object");
  return s3_list_keys (client, prefix, &l);
}

static const char *
s3_object_default_export (int readonly, int is_tls)
{
  return default_volume ? default_volume : "";
}

struct handle {
  struct s3_volume *v;          /* NULL in raw mode */
  struct chunk_engine *engine;
};

static void
remove_entry (struct open_volume *ov)
{
  struct open_volume **pp;

  for (pp = &volumes; *pp; pp = &(*pp)->next)
    if (*pp == ov) {
      *pp = ov->next;
      break;
    }
  free (ov->name);
  free (ov);
}

/* The open volume NAME, opening it if no connection has; NULL after
 * nbdkit_error.
 */
static struct open_volume *
find_or_open_volume (const char *name, int readonly)
{
  struct open_volume *ov;
  struct s3_volume *v;
  bool is_default = default_volume && strcmp (name, default_volume) == 0;

  pthread_mutex_lock (&volumes_lock);
  for (;;) {
    for (ov = volumes; ov; ov = ov->next)
      if (strcmp (ov->name, name) == 0)
        break;
    if (ov == NULL || ov->v != NULL)
      break;
    /* Another connection is opening it: wait for its outcome (if it
     * fails, the entry goes and this connection tries itself).
     */
    pthread_cond_wait (&volumes_cond, &volumes_lock);
  }
  if (ov) {
    pthread_mutex_unlock (&volumes_lock);
    return ov;
  }
  ov = calloc (1, sizeof *ov);
  if (ov == NULL || (ov->name = strdup (name)) == NULL) {
    nbdkit_error ("calloc: %m");
    free (ov);
    pthread_mutex_unlock (&volumes_lock);
    return NULL;
  }
  ov->next = volumes;
  volumes = ov;
  pthread_mutex_unlock (&volumes_lock);

  v = s3_volume_open (client, prefix, name, readonly,
                      is_default ? &create : NULL, cfg.connections,
                      &lease_cfg);

  pthread_mutex_lock (&volumes_lock);
  if (v)
    ov->v = v;
  else {
    remove_entry (ov);
    ov = NULL;
  }
  pthread_cond_broadcast (&volumes_cond);
  pthread_mutex_unlock (&volumes_lock);
  return ov;
}

static void *
s3_object_open (int readonly)
{
  const char *name = nbdkit_export_name ();
  struct open_volume *ov;
  struct handle *h;
  const char *why;

  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  if (raw_key)
    return h;                   /* the export name does not matter */

  if (name == NULL || name[0] == '\0') {
    if (default_volume == NULL) {
      nbdkit_error ("no default export: the client must name a volume "
                    "(or start the server with export=<NAME>)");
      free (h);
      errno = ENOENT;
      return NULL;
    }
    name = default_volume;
  }
  /* Checked here too, before the name becomes part of a key. */
  if (!volume_name_is_valid (name, &why)) {
    nbdkit_error ("export name refused: %s", why);
    free (h);
    errno = EINVAL;
    return NULL;
  }

  ov = find_or_open_volume (name, readonly);
  if (ov == NULL) {
    free (h);
    return NULL;
  }
  else if (!readonly && ov->v->readonly) {
    /* Opened without its lease, and the chunks were listed without it:
     * taking the lease now would leave that map stale.
     */
    nbdkit_error ("volume '%s' is open read-only in this server (an "
                  "earlier connection opened it so): restart the server "
                  "to write it", name);
    free (h);
    errno = EROFS;
    return NULL;
  }
  h->v = ov->v;
  h->engine = ov->v->engine;
  return h;
}

static void
s3_object_close (void *handle)
{
  /* The volume stays open for later connections. */
  free (handle);
}

static const char *
s3_object_export_description (void *handle)
{
  struct handle *h = handle;

  if (h->v == NULL)
    return nbdkit_printf_intern ("s3-object raw object %s/%s",
                                 cfg.bucket, raw_key);
  return nbdkit_printf_intern ("s3-object volume %s, %" PRIu64
                               " bytes, %" PRIu32 "-byte chunks",
                               h->v->name, h->v->meta.size,
                               h->v->meta.chunk_size);
}

static int64_t
s3_object_get_size (void *handle)
{
  struct handle *h = handle;

  if (h->v == NULL)
    return (int64_t) raw_size;
  return (int64_t) chunk_engine_size (h->engine);
}

static int
s3_object_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                      uint32_t *maximum)
{
  struct handle *h = handle;

  /* Any range works; writing whole chunks avoids read-modify-write. */
  *minimum = 1;
  *preferred = h->v ? (h->v->meta.chunk_size < 32 * 1024 * 1024 ?
                       h->v->meta.chunk_size : 32 * 1024 * 1024) : 4096;
  *maximum = 0xffffffff;
  return 0;
}

static int
s3_object_can_write (void *handle)
{
  struct handle *h = handle;
  return h->v != NULL;          /* raw objects are read-only */
}

static int
s3_object_can_multi_conn (void *handle)
{
  return 1;
}

static int
s3_object_can_flush (void *handle)
{
  return 1;
}

static int
s3_object_can_trim (void *handle)
{
  struct handle *h = handle;
  return h->v != NULL;
}

static int
s3_object_can_zero (void *handle)
{
  struct handle *h = handle;
  return h->v != NULL;
}

static int
s3_object_can_fast_zero (void *handle)
{
  struct handle *h = handle;
  return h->v != NULL;
}

static int
s3_object_can_fua (void *handle)
{
  /* Every write is durable once S3 acknowledges it. */
  return NBDKIT_FUA_NATIVE;
}

static int
s3_object_can_cache (void *handle)
{
  /* Advisory: this plugin keeps no data locally, so there is nothing to
   * load ahead (the engine's cache is a no-op without a prefetch op).
   * Put nbdkit-chunk-cache-filter in front for a real cache.
   */
  return NBDKIT_CACHE_NATIVE;
}

static int
s3_object_can_extents (void *handle)
{
  struct handle *h = handle;
  return h->v != NULL;
}

static int
s3_object_is_rotational (void *handle)
{
  return 0;
}

/* nbdkit 1.32 sends an errno that the NBD protocol has no code for as
 * EINVAL, which tells a client that its request was malformed.  Hand on
 * transient remote trouble (ETIMEDOUT, EAGAIN, connection errors) as EIO,
 * which clients report as an I/O error and retry-backoff retries by
 * default, and access denied as EPERM.  R is the request's result.
 */
static int
client_errno (int r)
{
  if (r == -1) {
    switch (errno) {
    case ETIMEDOUT: case EAGAIN: case ECONNRESET: case ECONNREFUSED:
    case ENOTCONN: case EPIPE: case ENOENT: case EPROTO: case EBADMSG:
      errno = EIO;
      break;
    case EACCES:
      errno = EPERM;
      break;
    }
  }
  return r;
}

static int
s3_object_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  struct handle *h = handle;

  if (h->v == NULL)
    return client_errno (s3_raw_read (client, raw_key, raw_size,
                                      buf, count, offset));
  return client_errno (chunk_engine_pread (h->engine, buf, count, offset));
}

static int
s3_object_pwrite (void *handle, const void *buf, uint32_t count,
                  uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;

  if (h->v == NULL) {
    nbdkit_error ("key=%s is served read-only", raw_key);
    errno = EROFS;
    return -1;
  }
  return client_errno (chunk_engine_pwrite (h->engine, buf, count, offset,
                                            flags & NBDKIT_FLAG_FUA));
}

static int
s3_object_flush (void *handle, uint32_t flags)
{
  struct handle *h = handle;

  if (h->v == NULL)
    return 0;
  return client_errno (chunk_engine_flush (h->engine));
}

static int
s3_object_trim (void *handle, uint32_t count, uint64_t offset,
                uint32_t flags)
{
  struct handle *h = handle;

  if (h->v == NULL) {
    errno = EROFS;
    return -1;
  }
  return client_errno (chunk_engine_trim (h->engine, count, offset,
                                          flags & NBDKIT_FLAG_FUA));
}

static int
s3_object_zero (void *handle, uint32_t count, uint64_t offset,
                uint32_t flags)
{
  struct handle *h = handle;

  if (h->v == NULL) {
    errno = EROFS;
    return -1;
  }
  return client_errno (chunk_engine_zero (h->engine, count, offset,
                                          flags & NBDKIT_FLAG_FAST_ZERO,
                                          flags & NBDKIT_FLAG_FUA));
}

static int
s3_object_extents (void *handle, uint32_t count, uint64_t offset,
                   uint32_t flags, struct nbdkit_extents *extents)
{
  struct handle *h = handle;
  return client_errno (chunk_engine_extents (h->engine, count, offset,
                                             flags & NBDKIT_FLAG_REQ_ONE,
                                             extents));
}

static int
s3_object_cache (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  struct handle *h = handle;

  if (h->v == NULL)
    return 0;
  return client_errno (chunk_engine_cache (h->engine, count, offset));
}

static struct nbdkit_plugin plugin = {
  .name               = "s3-object",
  .longname           = "shardkit s3-object plugin",
  .version            = PACKAGE_VERSION,
  .load               = s3_object_load,
  .unload             = s3_object_unload,
  .config             = s3_object_config,
  .config_complete    = s3_object_config_complete,
  .config_help        = s3_object_config_help,
  .magic_config_key   = "bucket",
  .get_ready          = s3_object_get_ready,
  .after_fork         = s3_object_after_fork,
  .dump_plugin        = s3_object_dump_plugin,
  .list_exports       = s3_object_list_exports,
  .default_export     = s3_object_default_export,
  .open               = s3_object_open,
  .close              = s3_object_close,
  .export_description = s3_object_export_description,
  .get_size           = s3_object_get_size,
  .block_size         = s3_object_block_size,
  .can_write          = s3_object_can_write,
  .can_multi_conn     = s3_object_can_multi_conn,
  .can_flush          = s3_object_can_flush,
  .can_trim           = s3_object_can_trim,
  .can_zero           = s3_object_can_zero,
  .can_fast_zero      = s3_object_can_fast_zero,
  .can_fua            = s3_object_can_fua,
  .can_cache          = s3_object_can_cache,
  .can_extents        = s3_object_can_extents,
  .is_rotational      = s3_object_is_rotational,
  .pread              = s3_object_pread,
  .pwrite             = s3_object_pwrite,
  .flush              = s3_object_flush,
  .trim               = s3_object_trim,
  .zero               = s3_object_zero,
  .extents            = s3_object_extents,
  .cache              = s3_object_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
