/* shardkit: the volume layer shared by the plugins.
 * GPL-3.0-or-later.  See volume-layer.h.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "volume-layer.h"
#include "volume-meta.h"
#include "volume-name.h"

static const struct volume_ops *ops;
static const char *default_volume;      /* export= */
static struct volume_create create;     /* size=, chunk-size= */

/* The open volumes, kept open until unload.  An entry whose VOL is
 * NULL is being opened by one connection, without the lock held;
 * others asking for it wait on volumes_cond.
 */
struct open_volume {
  char *name;
  void *vol;
  struct chunk_engine *engine;
  bool readonly;                /* opened read-only (no lock, no lease) */
  bool never_writable;          /* the volume cannot be written at all */
  struct open_volume *next;
};
static pthread_mutex_t volumes_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t volumes_cond = PTHREAD_COND_INITIALIZER;
static struct open_volume *volumes;

struct handle {
  struct open_volume *ov;
};

void
volume_layer_init (const struct volume_ops *o)
{
  ops = o;
}

const char *
volume_layer_default_volume (void)
{
  return default_volume;
}

int
volume_layer_config (const char *key, const char *value)
{
  int64_t r;

  if (strcmp (key, "export") == 0) {
    const char *why;
    if (!volume_name_is_valid (value, &why)) {
      nbdkit_error ("export='%s': %s", value, why);
      return -1;
    }
    default_volume = value;
  }
  else if (strcmp (key, "size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1) {
      /* nbdkit's own message does not say which parameter. */
      nbdkit_error ("size='%s': not a size", value);
      return -1;
    }
    if (r == 0) {
      nbdkit_error ("size='%s': a volume cannot be empty", value);
      return -1;
    }
    create.size = (uint64_t) r;
  }
  else if (strcmp (key, "chunk-size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1) {
      nbdkit_error ("chunk-size='%s': not a size", value);
      return -1;
    }
    if (!chunk_size_is_valid ((uint64_t) r)) {
      nbdkit_error ("chunk-size='%s': must be a power of two from 64K to 1G",
                    value);
      return -1;
    }
    create.chunk_size = (uint32_t) r;
  }
  else
    return 0;
  return 1;
}

int
volume_layer_config_complete (void)
{
  if ((create.size || create.chunk_size) && default_volume == NULL) {
    nbdkit_error ("size= and chunk-size= need export=<NAME>: they describe "
                  "the volume to create");
    return -1;
  }
  if (create.size) {
    uint64_t cs = create.chunk_size ? create.chunk_size : CHUNK_SIZE_DEFAULT;
    if ((create.size + cs - 1) / cs > CHUNK_ENGINE_MAX_CHUNKS) {
      nbdkit_error ("size=%" PRIu64 " needs more than %" PRIu64 " chunks of "
                    "%" PRIu64 " bytes: use a larger chunk-size=",
                    create.size, CHUNK_ENGINE_MAX_CHUNKS, cs);
      return -1;
    }
  }
  return 0;
}

int
volume_layer_get_ready (void)
{
  /* Create the default volume now, and fail now on a bad volume, rather
   * than at the first client.
   */
  if (default_volume)
    return ops->prepare (default_volume, &create);
  return 0;
}

void
volume_layer_unload (void)
{
  struct open_volume *ov, *next;

  for (ov = volumes; ov; ov = next) {
    next = ov->next;
    if (ov->vol)
      ops->close (ov->vol);
    free (ov->name);
    free (ov);
  }
  volumes = NULL;
}

int
volume_layer_list_exports (int readonly, int is_tls,
                           struct nbdkit_exports *exports)
{
  return ops->list_exports (exports);
}

const char *
volume_layer_default_export (int readonly, int is_tls)
{
  return default_volume ? default_volume : "";
}

/* Remove OV from the table; called with volumes_lock held. */
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
find_or_open (const char *name, bool readonly)
{
  struct open_volume *ov;
  void *vol;
  bool is_default = default_volume && strcmp (name, default_volume) == 0;

  pthread_mutex_lock (&volumes_lock);
  for (;;) {
    for (ov = volumes; ov; ov = ov->next)
      if (strcmp (ov->name, name) == 0)
        break;
    if (ov == NULL || ov->vol != NULL)
      break;
    /* Another connection is opening it: wait for its outcome (if it
     * fails, the entry goes, and this connection tries itself).
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
  ov->readonly = readonly;
  ov->next = volumes;
  volumes = ov;
  pthread_mutex_unlock (&volumes_lock);

  vol = ops->open (name, readonly, is_default ? &create : NULL);

  pthread_mutex_lock (&volumes_lock);
  if (vol) {
    ov->engine = ops->engine (vol);
    ov->never_writable = ops->read_only && ops->read_only (vol);
    ov->vol = vol;
  }
  else {
    int err = errno;
    remove_entry (ov);
    ov = NULL;
    errno = err;
  }
  pthread_cond_broadcast (&volumes_cond);
  pthread_mutex_unlock (&volumes_lock);
  return ov;
}

void *
volume_layer_open (int readonly)
{
  const char *name = nbdkit_export_name ();
  struct open_volume *ov;
  struct handle *h;
  const char *why;

  if (ops->one_volume)
    name = "";
  else {
    /* nbdkit 1.32 tells a plugin only the export name of the client
     * connection it runs in.  A context that a filter opens outside any
     * connection (background work started in .after_fork) gets NULL
     * and cannot say which export it wants: it gets the default export.
     */
    if (name == NULL) {
      if (default_volume == NULL) {
        nbdkit_error ("opened outside a client connection, and there is "
                      "no default export (export=) to serve");
        errno = ENOENT;
        return NULL;
      }
      nbdkit_debug ("opened outside a client connection: serving the "
                    "default export %s", default_volume);
    }
    if (name == NULL || name[0] == '\0') {
      if (default_volume == NULL) {
        nbdkit_error ("no default export: the client must name a volume "
                      "(or start the server with export=<NAME>)");
        errno = ENOENT;
        return NULL;
      }
      name = default_volume;
    }
    /* Checked here too, before the name reaches a file system or a URL. */
    if (!volume_name_is_valid (name, &why)) {
      nbdkit_error ("export name refused: %s", why);
      errno = EINVAL;
      return NULL;
    }
  }

  ov = find_or_open (name, readonly);
  if (ov == NULL)
    return NULL;
  if (!readonly && ov->readonly && !ov->never_writable) {
    /* Opened read-only by an earlier connection: without its lock (or
     * lease) for writing, and any map of it was made without one.
     */
    nbdkit_error ("volume '%s' is open read-only in this server (an "
                  "earlier connection opened it so): restart the server "
                  "to write it", name);
    errno = EROFS;
    return NULL;
  }
  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  h->ov = ov;
  return h;
}

void
volume_layer_close (void *handle)
{
  /* The volume stays open (locked, leased) for later connections. */
  free (handle);
}

const char *
volume_layer_export_description (void *handle)
{
  struct handle *h = handle;

  return nbdkit_printf_intern ("%s %s, %" PRIu64 " bytes, %" PRIu32
                               "-byte chunks", ops->kind,
                               h->ov->name[0] ? h->ov->name : "(default)",
                               chunk_engine_size (h->ov->engine),
                               chunk_engine_chunk_size (h->ov->engine));
}

int64_t
volume_layer_get_size (void *handle)
{
  struct handle *h = handle;
  return (int64_t) chunk_engine_size (h->ov->engine);
}

int
volume_layer_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                         uint32_t *maximum)
{
  struct handle *h = handle;
  uint32_t cs = chunk_engine_chunk_size (h->ov->engine);

  /* Any byte range works.  A store that rewrites whole chunks does a
   * read-modify-write for anything smaller; a file store writes in
   * place, where page-sized I/O is what avoids it in the page cache.
   */
  *minimum = 1;
  *preferred = ops->prefer_whole_chunks ?
    (cs < 32 * 1024 * 1024 ? cs : 32 * 1024 * 1024) : 4096;
  *maximum = 0xffffffff;
  return 0;
}

int
volume_layer_can_write (void *handle)
{
  struct handle *h = handle;
  return !h->ov->never_writable;
}

int
volume_layer_can_multi_conn (void *handle)
{
  return 1;                     /* one engine per volume per process */
}

int
volume_layer_can_flush (void *handle)
{
  return 1;
}

int
volume_layer_can_trim (void *handle)
{
  return volume_layer_can_write (handle);
}

int
volume_layer_can_zero (void *handle)
{
  return volume_layer_can_write (handle);
}

int
volume_layer_can_fast_zero (void *handle)
{
  return volume_layer_can_write (handle);
}

int
volume_layer_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

int
volume_layer_can_cache (void *handle)
{
  /* Stores without a way to load ahead accept it and do nothing. */
  return NBDKIT_CACHE_NATIVE;
}

int
volume_layer_can_extents (void *handle)
{
  return 1;
}

int
volume_layer_is_rotational (void *handle)
{
  return 0;
}

/* nbdkit 1.32 sends an errno that the NBD protocol has no code for as
 * EINVAL, which tells a client that its request was malformed.  Hand on
 * transient remote trouble (ETIMEDOUT, EAGAIN, connection errors) as
 * EIO, which clients report as an I/O error and retry-backoff retries
 * by default, and access denied as EPERM.  R is the request's result.
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

int
volume_layer_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                    uint32_t flags)
{
  struct handle *h = handle;
  return client_errno (chunk_engine_pread (h->ov->engine, buf, count,
                                           offset));
}

int
volume_layer_pwrite (void *handle, const void *buf, uint32_t count,
                     uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;
  return client_errno (chunk_engine_pwrite (h->ov->engine, buf, count,
                                            offset, flags & NBDKIT_FLAG_FUA));
}

int
volume_layer_flush (void *handle, uint32_t flags)
{
  struct handle *h = handle;
  return client_errno (chunk_engine_flush (h->ov->engine));
}

int
volume_layer_trim (void *handle, uint32_t count, uint64_t offset,
                   uint32_t flags)
{
  struct handle *h = handle;
  return client_errno (chunk_engine_trim (h->ov->engine, count, offset,
                                          flags & NBDKIT_FLAG_FUA));
}

int
volume_layer_zero (void *handle, uint32_t count, uint64_t offset,
                   uint32_t flags)
{
  struct handle *h = handle;
  return client_errno (chunk_engine_zero (h->ov->engine, count, offset,
                                          flags & NBDKIT_FLAG_FAST_ZERO,
                                          flags & NBDKIT_FLAG_FUA));
}

int
volume_layer_extents (void *handle, uint32_t count, uint64_t offset,
                      uint32_t flags, struct nbdkit_extents *extents)
{
  struct handle *h = handle;
  return client_errno (chunk_engine_extents (h->ov->engine, count, offset,
                                             flags & NBDKIT_FLAG_REQ_ONE,
                                             extents));
}

int
volume_layer_cache (void *handle, uint32_t count, uint64_t offset,
                    uint32_t flags)
{
  struct handle *h = handle;
  return client_errno (chunk_engine_cache (h->ov->engine, count, offset));
}
