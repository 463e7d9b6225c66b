/* shardkit: nbdkit s3-object plugin.
 * GPL-3.0-or-later.
 *
 * Serves volumes stored as chunk objects in a bucket of any S3-compatible
 * store: PREFIX/NAME.meta and PREFIX/NAME.<n>.chunk (the volume format of
 * sharded-file, so a volume copied object-for-file serves identically
 * from either plugin), or, with key=, one existing object read-only.
 * This file is the plugin's parameters and its namespace of volumes (a
 * bucket and prefix, or the one raw object); the volume layer
 * (common/volume-layer.h) does the rest: all connections to one volume
 * share one open volume (one chunk engine), so multi-conn is safe.  See
 * nbdkit-s3-object-plugin(1).
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
#include "malloc-tune.h"
#include "params.h"
#include "s3-credentials.h"
#include "s3-http.h"
#include "s3-lease.h"
#include "s3-raw.h"
#include "s3-volume.h"
#include "s3-xml.h"
#include "volume-layer.h"
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
static const char *raw_key;             /* key= */
static const char *access_key, *profile;
static char *secret_key;                /* read with nbdkit_read_password */
static struct s3_credentials creds;     /* found in config_complete */
static struct s3_lease_config lease_cfg = {   /* lease-time=, lease-wait= */
  .lease_secs = S3_LEASE_TIME_DEFAULT,
};

static struct s3_client *client;        /* made in after_fork */

static const struct volume_ops bucket_ops, raw_ops;

static void
s3_object_load (void)
{
  /* nbdkit's request buffers (4 MiB per thread for whole-chunk I/O)
   * are kept mapped from one connection to the next: see
   * malloc-tune.h and PERFORMANCE in the man page.
   */
  malloc_tune_for_request_buffers ();
  s3_http_global_init ();
  s3_xml_init ();
  volume_layer_init (&bucket_ops);
}

static void
s3_object_unload (void)
{

  volume_layer_unload ();
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
s3_object_config (const char *key, const char *value)
{
  int r = volume_layer_config (key, value);

  if (r != 0)
    return r == 1 ? 0 : -1;
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
  else if (strcmp (key, "key") == 0) {
    if (value[0] == '\0') {
      nbdkit_error ("key= must not be empty");
      return -1;
    }
    raw_key = value;
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
    return param_bool (key, value, &cfg.tls_verify);
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
  if (volume_layer_config_complete () == -1)
    return -1;
  if (raw_key)
    volume_layer_init (&raw_ops);
  if (raw_key && volume_layer_default_volume ()) {
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
  VOLUME_LAYER_CONFIG_HELP "\n" \
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
  uint64_t size;
  int r;

  if (raw_key == NULL)
    return volume_layer_get_ready ();
  /* Check the object now, so that mistakes fail at start-up rather than
   * at the first client.  A throw-away client: the serving one is made
   * after nbdkit forks into the background, so that no connection
   * crosses the fork.
   */
  c = make_client ();
  if (c == NULL)
    return -1;
  r = s3_raw_size (c, raw_key, &size);
  if (r == 0 && size == 0) {
    nbdkit_error ("key=%s: the object is empty: nothing to serve", raw_key);
    r = -1;
  }
  s3_client_free (c);
  return r;
}

static int
s3_object_after_fork (void)
{
  client = make_client ();
  return client ? 0 : -1;
}

/* The bucket's namespace of volumes. */
static int
bucket_prepare (const char *name, const struct volume_create *create)
{
  struct s3_client *c = make_client ();  /* see s3_object_get_ready */
  struct volume_meta m;
  int r;

  if (c == NULL)
    return -1;
  r = s3_volume_prepare (c, prefix, name, create, &m);
  /* A broken chain of bases, too: open it read-only once. */
  if (r == 0 && m.base[0]) {
    struct s3_volume *v = s3_volume_open (c, prefix, name, true,
                                          VOLUME_OPEN_SERVE |
                                          VOLUME_OPEN_META_ONLY,
                                          NULL, 1, NULL);
    if (v == NULL)
      r = -1;
    s3_volume_close (v);
  }
  s3_client_free (c);
  return r;
}

static void *
bucket_open (const char *name, bool readonly,
             const struct volume_create *create)
{
  return s3_volume_open (client, prefix, name, readonly, VOLUME_OPEN_SERVE,
                         create, cfg.connections, &lease_cfg);
}

static bool
bucket_read_only (void *vol)
{
  struct s3_volume *v = vol;
  return v->meta.read_only;
}

static struct chunk_engine *
bucket_engine (void *vol)
{
  struct s3_volume *v = vol;
  return v->engine;
}

static void
bucket_close (void *vol)
{
  s3_volume_close (vol);
}

static int bucket_list_exports (struct nbdkit_exports *exports);

static const struct volume_ops bucket_ops = {
  .kind = "s3-object volume",
  .prefer_whole_chunks = true,
  .prepare = bucket_prepare,
  .open = bucket_open,
  .engine = bucket_engine,
  .read_only = bucket_read_only,
  .close = bucket_close,
  .list_exports = bucket_list_exports,
};

/* key=: the one raw object, whatever the export name. */
static void *
raw_open (const char *name, bool readonly, const struct volume_create *create)
{
  return s3_raw_open (client, raw_key, cfg.connections);
}

static struct chunk_engine *
raw_engine (void *vol)
{
  struct s3_raw_volume *r = vol;
  return r->engine;
}

static bool
raw_read_only (void *vol)
{
  return true;
}

static void
raw_close (void *vol)
{
  s3_raw_close (vol);
}

static int
raw_list_exports (struct nbdkit_exports *exports)
{
  return nbdkit_add_export (exports, "", "s3-object raw object");
}

static const struct volume_ops raw_ops = {
  .kind = "s3-object raw object",
  .prefer_whole_chunks = false,
  .one_volume = true,
  .open = raw_open,
  .engine = raw_engine,
  .read_only = raw_read_only,
  .close = raw_close,
  .list_exports = raw_list_exports,
};

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
bucket_list_exports (struct nbdkit_exports *exports)
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

  return s3_list_keys (client, prefix, &l);
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
  VOLUME_LAYER_CALLBACKS,
};

NBDKIT_REGISTER_PLUGIN (plugin)
