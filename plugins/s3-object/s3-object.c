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
#include "s3-set.h"
#include "s3-volume.h"
#include "s3-xml.h"
#include "volume-layer.h"
#include "volume-meta.h"
#include "volume-name.h"
#include "volume-set.h"
#include "set-location.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#define DEFAULT_CONNECTIONS 16
#define DEFAULT_TIMEOUT 60
#define DEFAULT_RETRIES 5
#define DEFAULT_MAX_OPEN_FILES 256   /* per directory location */

/* A location: a bucket (with what was given for it), or with several,
 * a local directory (s3-set.h).
 */
struct location {
  enum s3_location_kind kind;
  struct s3_client_config cfg;  /* endpoint, bucket, region, url_style */
  char *prefix;                 /* NULL: not given for it */
  const char *access_key, *profile;
  char *secret_key;             /* read with nbdkit_read_password */
  struct s3_credentials creds;  /* found in config_complete */
  struct s3_client *client;     /* made in after_fork */
  char *path;                   /* a directory location */
  char *label;                  /* for messages */
};

/* The keys given before the first bucket= or dir=: every bucket's,
 * unless it has its own.
 */
static struct location defaults = { .cfg.url_style = -1 };
static struct location locs[VOLUME_SET_MAX_LOCATIONS];
static unsigned nloc;

/* Keys of every location. */
static unsigned connections = DEFAULT_CONNECTIONS;
static unsigned timeout = DEFAULT_TIMEOUT;
static unsigned http_retries = DEFAULT_RETRIES;
static bool tls_verify = true;
static const char *cainfo, *capath;

static const char *raw_key;             /* key= */
static struct s3_lease_config lease_cfg = {   /* lease-time=, lease-wait= */
  .lease_secs = S3_LEASE_TIME_DEFAULT,
};
static struct volume_set_params set_params;   /* redundancy= and the rest */
static struct s3_set_config set_cfg;          /* several locations */

static const struct volume_ops bucket_ops, raw_ops, set_ops;

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
  volume_set_params_init (&set_params);
  volume_layer_init (&bucket_ops);
}

static void
free_location (struct location *l)
{
  s3_client_free (l->client);
  s3_credentials_free (&l->creds);
  if (l->secret_key) {
    memset (l->secret_key, 0, strlen (l->secret_key));
    free (l->secret_key);
  }
  free (l->prefix);
  free (l->path);
  free (l->label);
}

static void
s3_object_unload (void)
{
  unsigned i;

  volume_layer_unload ();
  for (i = 0; i < nloc; ++i)
    free_location (&locs[i]);
  free_location (&defaults);
  s3_http_global_cleanup ();
}

/* The location the keys given now are for: the last bucket= or dir=,
 * or before any, the defaults.
 */
static struct location *
current (const char *key)
{
  struct location *l = nloc ? &locs[nloc - 1] : &defaults;

  if (l->kind == S3_LOCATION_DIR) {
    nbdkit_error ("%s= after dir=%s: the keys of a bucket go after its "
                  "bucket= (or before the first location, for every "
                  "bucket)", key, l->path);
    return NULL;
  }
  return l;
}

static struct location *
new_location (const char *key, const char *value)
{
  if (nloc == VOLUME_SET_MAX_LOCATIONS) {
    nbdkit_error ("%s=%s: at most %d locations (bucket= and dir=)", key,
                  value, VOLUME_SET_MAX_LOCATIONS);
    return NULL;
  }
  locs[nloc] = (struct location) { .cfg.url_style = -1 };
  return &locs[nloc++];
}

static int
s3_object_config (const char *key, const char *value)
{
  struct location *l;
  int r = volume_layer_config (key, value);

  if (r != 0)
    return r == 1 ? 0 : -1;
  r = volume_set_config (&set_params, key, value);
  if (r != 0)
    return r == 1 ? 0 : -1;
  if (strcmp (key, "bucket") == 0) {
    if (value[0] == '\0' || strchr (value, '/')) {
      nbdkit_error ("bucket='%s': must be a bucket name (no '/')", value);
      return -1;
    }
    if ((l = new_location (key, value)) == NULL)
      return -1;
    l->kind = S3_LOCATION_BUCKET;
    l->cfg.bucket = value;
  }
  else if (strcmp (key, "dir") == 0) {
    if ((l = new_location (key, value)) == NULL)
      return -1;
    l->kind = S3_LOCATION_DIR;
    /* It may be missing at start-up: a set goes on without it. */
    if ((l->path = set_location_path (value)) == NULL) {
      nbdkit_error ("dir=%s: %m", value);
      return -1;
    }
  }
  else if (strcmp (key, "endpoint") == 0) {
    if ((l = current (key)) == NULL)
      return -1;
    l->cfg.endpoint = value;
  }
  else if (strcmp (key, "prefix") == 0) {
    const char *p = value;
    size_t len;
    if ((l = current (key)) == NULL)
      return -1;
    while (*p == '/')
      p++;
    len = strlen (p);
    free (l->prefix);
    if (asprintf (&l->prefix, "%s%s", p,
                  len && p[len-1] != '/' ? "/" : "") == -1) {
      l->prefix = NULL;
      nbdkit_error ("asprintf: %m");
      return -1;
    }
  }
  else if (strcmp (key, "region") == 0) {
    if ((l = current (key)) == NULL)
      return -1;
    if (value[0] == '\0') {
      nbdkit_error ("region= must not be empty");
      return -1;
    }
    l->cfg.region = value;
  }
  else if (strcmp (key, "url-style") == 0) {
    if ((l = current (key)) == NULL)
      return -1;
    if (strcmp (value, "path") == 0)
      l->cfg.url_style = 0;
    else if (strcmp (value, "virtual") == 0)
      l->cfg.url_style = 1;
    else {
      nbdkit_error ("url-style='%s': must be 'path' or 'virtual'", value);
      return -1;
    }
  }
  else if (strcmp (key, "access-key") == 0) {
    if ((l = current (key)) == NULL)
      return -1;
    l->access_key = value;
  }
  else if (strcmp (key, "secret-key") == 0) {
    /* "-", "-FD", "+FILE" or the secret itself, as for any nbdkit
     * password.  Never echoed in messages.
     */
    if ((l = current (key)) == NULL)
      return -1;
    if (l->secret_key) {
      memset (l->secret_key, 0, strlen (l->secret_key));
      free (l->secret_key);
      l->secret_key = NULL;
    }
    if (nbdkit_read_password (value, &l->secret_key) == -1)
      return -1;
  }
  else if (strcmp (key, "profile") == 0) {
    if ((l = current (key)) == NULL)
      return -1;
    l->profile = value;
  }
  else if (strcmp (key, "key") == 0) {
    if (value[0] == '\0') {
      nbdkit_error ("key= must not be empty");
      return -1;
    }
    raw_key = value;
  }
  else if (strcmp (key, "connections") == 0) {
    if (nbdkit_parse_unsigned ("connections", value, &connections) == -1)
      return -1;
    if (connections < 1 || connections > 1024) {
      nbdkit_error ("connections='%s': must be from 1 to 1024", value);
      return -1;
    }
  }
  else if (strcmp (key, "timeout") == 0) {
    if (nbdkit_parse_unsigned ("timeout", value, &timeout) == -1)
      return -1;
    if (timeout < 1) {
      nbdkit_error ("timeout='%s': must be at least 1 (seconds)", value);
      return -1;
    }
  }
  else if (strcmp (key, "http-retries") == 0) {
    if (nbdkit_parse_unsigned ("http-retries", value, &http_retries) == -1)
      return -1;
    if (http_retries > 20) {
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
    return param_bool (key, value, &tls_verify);
  else if (strcmp (key, "cainfo") == 0)
    cainfo = value;
  else if (strcmp (key, "capath") == 0)
    capath = value;
  else {
    nbdkit_error ("unknown parameter '%s' (see nbdkit-s3-object-plugin(1))",
                  key);
    return -1;
  }
  return 0;
}

/* Bucket location L: what it did not give comes from the defaults. */
static int
complete_bucket (struct location *l)
{
  const char *access_key = l->access_key, *profile = l->profile;
  const char *secret_key = l->secret_key;

  if (l->cfg.endpoint == NULL)
    l->cfg.endpoint = defaults.cfg.endpoint;
  if (l->cfg.region == NULL)
    l->cfg.region = defaults.cfg.region ? defaults.cfg.region : "us-east-1";
  if (l->cfg.url_style == -1)
    l->cfg.url_style = defaults.cfg.url_style;
  if (l->prefix == NULL &&
      (l->prefix = strdup (defaults.prefix ? defaults.prefix : "")) == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  l->cfg.connections = connections;
  l->cfg.timeout = timeout;
  l->cfg.tls_verify = tls_verify;
  l->cfg.cainfo = cainfo;
  l->cfg.capath = capath;
  l->cfg.retries = http_retries;
  if (l->cfg.url_style == 1 && strchr (l->cfg.bucket, '.') &&
      l->cfg.endpoint && strncmp (l->cfg.endpoint, "https", 5) == 0)
    nbdkit_debug ("s3: bucket name with dots and virtual-hosted style: "
                  "TLS certificates rarely match such names");
  /* Credentials: the bucket's own if it was given any, else the
   * defaults'.
   */
  if (!access_key && !secret_key && !profile) {
    access_key = defaults.access_key;
    secret_key = defaults.secret_key;
    profile = defaults.profile;
  }
  if (s3_credentials_find (access_key, secret_key, profile, &l->creds) == -1)
    return -1;
  if (asprintf (&l->label, "bucket=%s%s%s%s%s", l->cfg.bucket,
                *l->prefix ? " prefix=" : "", l->prefix,
                l->cfg.endpoint ? " at " : "",
                l->cfg.endpoint ? l->cfg.endpoint : "") == -1) {
    l->label = NULL;
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  return 0;
}

static int
s3_object_config_complete (void)
{
  unsigned i, j, buckets = 0;

  for (i = 0; i < nloc; ++i)
    buckets += locs[i].kind == S3_LOCATION_BUCKET;
  if (buckets == 0) {
    nbdkit_error ("bucket=<BUCKET> is required (dir= is a local location "
                  "of a set beside buckets; to serve directories alone, "
                  "use the sharded-file plugin)");
    return -1;
  }
  for (i = 0; i < nloc; ++i) {
    if (locs[i].kind == S3_LOCATION_BUCKET) {
      if (complete_bucket (&locs[i]) == -1)
        return -1;
    }
    else if (asprintf (&locs[i].label, "dir=%s", locs[i].path) == -1) {
      locs[i].label = NULL;
      nbdkit_error ("asprintf: %m");
      return -1;
    }
    for (j = 0; j < i; ++j)
      if (strcmp (locs[i].label, locs[j].label) == 0) {
        nbdkit_error ("%s: given twice: each location of a set is a "
                      "bucket (or prefix) or a directory of its own",
                      locs[i].label);
        return -1;
      }
  }
  set_params.nloc = nloc;
  for (i = 0; i < nloc; ++i)
    set_params.loc_name[i] = locs[i].label;
  if (volume_set_config_complete (&set_params, "locations (bucket=, dir=)")
      == -1)
    return -1;
  if (volume_layer_config_complete () == -1)
    return -1;
  if (raw_key && nloc > 1) {
    nbdkit_error ("key= serves one existing object from one bucket=, not "
                  "from a set of locations");
    return -1;
  }
  if (raw_key)
    volume_layer_init (&raw_ops);
  else if (nloc > 1)
    volume_layer_init (&set_ops);
  if (raw_key && volume_layer_default_volume ()) {
    nbdkit_error ("key= serves one existing object: it cannot be combined "
                  "with export=, size= or chunk-size=");
    return -1;
  }
  return 0;
}

#define s3_object_config_help \
  "bucket=<BUCKET>       (required) The bucket holding the volumes.\n" \
  "endpoint=<URL>        S3 server (default: AWS in region=).\n" \
  "prefix=<PREFIX>       Key prefix of the volumes (a \"directory\").\n" \
  "region=<REGION>       Signing region (default us-east-1).\n" \
  "url-style=path|virtual  Addressing (default: virtual for AWS, else path).\n" \
  "                      Several bucket= (and dir=): a set of locations;\n" \
  "                      the keys above given after a bucket= are its own,\n" \
  "                      before the first one, every bucket's.\n" \
  "dir=<DIRECTORY>       A local directory as one location of a set.\n" \
  VOLUME_SET_CONFIG_HELP "\n" \
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

/* A client of bucket location I (the serving one is made after nbdkit
 * forks into the background, so that no connection crosses the fork).
 */
static struct s3_client *
make_client (unsigned i)
{
  const struct s3_credentials *creds = &locs[i].creds;
  struct s3_credentials copy = { .source = creds->source };

  if ((creds->access_key &&
       (copy.access_key = strdup (creds->access_key)) == NULL) ||
      (creds->secret_key &&
       (copy.secret_key = strdup (creds->secret_key)) == NULL) ||
      (creds->session_token &&
       (copy.session_token = strdup (creds->session_token)) == NULL)) {
    nbdkit_error ("strdup: %m");
    s3_credentials_free (&copy);
    return NULL;
  }
  return s3_client_new (&locs[i].cfg, &copy);
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
   * at the first client.  A throw-away client: see make_client.
   */
  c = make_client (0);
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
  unsigned i;

  s3_http_serving ();
  for (i = 0; i < nloc; ++i) {
    if (locs[i].kind != S3_LOCATION_BUCKET)
      continue;
    if ((locs[i].client = make_client (i)) == NULL)
      return -1;
  }
  /* The set's view of its locations. */
  set_cfg.p = set_params;
  for (i = 0; i < nloc; ++i)
    set_cfg.loc[i] = (struct s3_set_location) {
      .kind = locs[i].kind, .client = locs[i].client,
      .prefix = locs[i].prefix, .path = locs[i].path,
    };
  set_cfg.parallel = connections;
  set_cfg.lease = &lease_cfg;
  set_cfg.max_open_files = DEFAULT_MAX_OPEN_FILES;
  return 0;
}

/* The bucket's namespace of volumes. */
static int
bucket_prepare (const char *name, const struct volume_create *create)
{
  struct s3_client *c = make_client (0);  /* see make_client */
  const char *prefix = locs[0].prefix;
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
  return s3_volume_open (locs[0].client, locs[0].prefix, name, readonly,
                         VOLUME_OPEN_SERVE, create, connections, &lease_cfg);
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
  return s3_raw_open (locs[0].client, raw_key, connections);
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

/* Several locations (s3-set.h). */
static int
set_prepare (const char *name, const struct volume_create *create)
{
  struct s3_client *clients[VOLUME_SET_MAX_LOCATIONS] = { NULL };
  unsigned i;
  int r = -1;

  /* Throw-away clients: see make_client. */
  for (i = 0; i < nloc; ++i)
    if (locs[i].kind == S3_LOCATION_BUCKET &&
        (clients[i] = make_client (i)) == NULL)
      goto out;
  {
    struct s3_set_config c = set_cfg;
    c.p = set_params;
    for (i = 0; i < nloc; ++i)
      c.loc[i] = (struct s3_set_location) {
        .kind = locs[i].kind, .prefix = locs[i].prefix,
        .path = locs[i].path,
      };
    r = s3_set_prepare (&c, clients, name, create);
  }
 out:
  for (i = 0; i < nloc; ++i)
    s3_client_free (clients[i]);
  return r;
}

static void *
set_open (const char *name, bool readonly, const struct volume_create *create)
{
  return s3_set_open (&set_cfg, name, readonly, create);
}

static struct chunk_engine *
set_engine (void *vol)
{
  return s3_set_engine (vol);
}

static bool
set_read_only (void *vol)
{
  return false;                 /* a set holds no snapshots */
}

static void
set_close (void *vol)
{
  s3_set_close (vol);
}

static const struct volume_ops set_ops = {
  .kind = "s3-object volume (set of locations)",
  .prefer_whole_chunks = true,
  .prepare = set_prepare,
  .open = set_open,
  .engine = set_engine,
  .read_only = set_read_only,
  .close = set_close,
  .list_exports = bucket_list_exports,
};

static void
s3_object_dump_plugin (void)
{
  printf ("s3_object_chunk_size_default=%" PRIu32 "\n", CHUNK_SIZE_DEFAULT);
  printf ("s3_object_volume_format_version=%d\n", VOLUME_META_VERSION);
  printf ("s3_object_libcurl=%s\n", curl_version ());
}

/* Every location holds every volume: the first bucket says which. */
static unsigned
first_bucket (void)
{
  unsigned i;

  for (i = 0; i < nloc && locs[i].kind != S3_LOCATION_BUCKET; ++i)
    ;
  return i;
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

  if (strncmp (key, locs[first_bucket ()].prefix, ctx->prefixlen) != 0) {
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
  unsigned i = first_bucket ();
  struct list_ctx ctx = { exports, strlen (locs[i].prefix) };
  /* nbdkit refuses more than 10000 exports; a bucket may hold more
   * objects, but a listing of 100000 pages (100 million keys) is an
   * endless one.
   */
  struct s3_lister l = {
    .classify = classify_export, .found = add_volume, .opaque = &ctx,
    .max_pages = 100000,
  };

  return s3_list_keys (locs[i].client, locs[i].prefix, &l);
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
