/* shardkit: nbdkit sharded-file plugin.
 * GPL-3.0-or-later.
 *
 * Serves volumes stored as chunk files in a directory: DIR/NAME.meta and
 * DIR/NAME.<n>.chunk (see nbdkit-sharded-file-plugin(1)).  Every volume in
 * DIR is an export.  All connections to one volume share one open volume
 * (one chunk engine, one descriptor cache), so they see one consistent
 * state and multi-conn is safe.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "file-volume.h"
#include "volume-meta.h"
#include "volume-name.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#define DEFAULT_MAX_OPEN_FILES 256

static char *dir;                   /* dir= */
static int dir_fd = -1;
static const char *default_volume;  /* export= */
static struct file_volume_create create; /* size=, chunk-size= */
static unsigned max_open_files = DEFAULT_MAX_OPEN_FILES;

/* Volumes opened by connections, shared and kept open until unload. */
struct open_volume {
  struct file_volume *v;
  unsigned conns;
  struct open_volume *next;
};
static pthread_mutex_t volumes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_volume *volumes;

static void
sharded_file_unload (void)
{
  struct open_volume *ov, *next;

  for (ov = volumes; ov; ov = next) {
    next = ov->next;
    file_volume_close (ov->v);
    free (ov);
  }
  volumes = NULL;
  if (dir_fd >= 0)
    close (dir_fd);
  free (dir);
}

static int
sharded_file_config (const char *key, const char *value)
{
  int64_t r;

  if (strcmp (key, "dir") == 0) {
    free (dir);
    dir = realpath (value, NULL);
    if (dir == NULL) {
      nbdkit_error ("dir=%s: %m", value);
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
  else if (strcmp (key, "max-open-files") == 0) {
    if (nbdkit_parse_unsigned ("max-open-files", value, &max_open_files) == -1)
      return -1;
    if (max_open_files < 1) {
      nbdkit_error ("max-open-files must be at least 1");
      return -1;
    }
  }
  else {
    nbdkit_error ("unknown parameter '%s' (see nbdkit-sharded-file-plugin(1))",
                  key);
    return -1;
  }
  return 0;
}

static int
sharded_file_config_complete (void)
{
  if (dir == NULL) {
    nbdkit_error ("dir=<DIRECTORY> is required");
    return -1;
  }
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
  dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd == -1) {
    nbdkit_error ("dir=%s: %m", dir);
    return -1;
  }
  return 0;
}

#define sharded_file_config_help \
  "dir=<DIRECTORY>     (required) Directory holding the volumes.\n" \
  "export=<NAME>       Volume served to clients asking for the default export.\n" \
  "size=<SIZE>         Create export=NAME with this size if it does not exist.\n" \
  "chunk-size=<SIZE>   Chunk size of a new volume (power of two, 64K-1G, default 4M).\n" \
  "max-open-files=<N>  Open chunk files kept per volume (default 256)."

static int
sharded_file_get_ready (void)
{
  /* Create the default volume now, and fail now on a bad volume or one
   * served read-write by another process, rather than at the first client.
   */
  if (default_volume)
    return file_volume_prepare (dir_fd, dir, default_volume, &create);
  return 0;
}

static void
sharded_file_dump_plugin (void)
{
  printf ("sharded_file_chunk_size_default=%" PRIu32 "\n", CHUNK_SIZE_DEFAULT);
  printf ("sharded_file_volume_format_version=%d\n", VOLUME_META_VERSION);
}

static int
sharded_file_list_exports (int readonly, int is_tls,
                           struct nbdkit_exports *exports)
{
  struct dirent *d;
  DIR *dp;
  int fd, r = 0;

  fd = openat (dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd == -1 || (dp = fdopendir (fd)) == NULL) {
    nbdkit_error ("%s: %m", dir);
    if (fd >= 0)
      close (fd);
    return -1;
  }
  while (r == 0 && (d = readdir (dp)) != NULL) {
    char name[VOLUME_NAME_MAX + 1], desc[128];
    struct volume_meta m;
    char why[128];
    ssize_t len;
    char buf[VOLUME_META_MAX_BYTES + 1];
    int mfd;

    if (!volume_name_from_meta_file (d->d_name, name))
      continue;
    /* Describe it; a volume with unreadable metadata is still listed, so
     * that it is visible, and says what is wrong.
     */
    mfd = openat (dir_fd, d->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    len = mfd >= 0 ? read (mfd, buf, sizeof buf) : -1;
    if (mfd >= 0)
      close (mfd);
    if (len >= 0 &&
        volume_meta_parse (buf, (size_t) len, &m, why, sizeof why) == 0)
      snprintf (desc, sizeof desc,
                "sharded-file volume, %" PRIu64 " bytes, %" PRIu32
                "-byte chunks", m.size, m.chunk_size);
    else
      snprintf (desc, sizeof desc, "sharded-file volume (unreadable metadata)");
    r = nbdkit_add_export (exports, name, desc);
  }
  closedir (dp);
  return r;
}

static const char *
sharded_file_default_export (int readonly, int is_tls)
{
  return default_volume ? default_volume : "";
}

struct handle {
  struct open_volume *ov;
  struct chunk_engine *engine;
  bool readonly;
};

static void *
sharded_file_open (int readonly)
{
  const char *name = nbdkit_export_name ();
  struct open_volume *ov;
  struct handle *h;
  const char *why;

  /* nbdkit 1.32 tells a plugin only the export name of the client
   * connection it runs in.  A context that a filter opens outside any
   * connection (background work started in .after_fork) gets NULL and
   * cannot say which export it wants: it gets the default export, and
   * filters must open such contexts for the default export only (see the
   * man page).
   */
  if (name == NULL) {
    if (default_volume == NULL) {
      nbdkit_error ("opened outside a client connection, and there is no "
                    "default export (export=) to serve");
      errno = ENOENT;
      return NULL;
    }
    nbdkit_debug ("opened outside a client connection: serving the default "
                  "export %s", default_volume);
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
  /* Checked here too, before anything touches the file system. */
  if (!volume_name_is_valid (name, &why)) {
    nbdkit_error ("export name refused: %s", why);
    errno = EINVAL;
    return NULL;
  }

  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  h->readonly = readonly;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&volumes_lock);
  for (ov = volumes; ov; ov = ov->next)
    if (strcmp (ov->v->name, name) == 0)
      break;
  if (ov && ov->v->readonly && !readonly) {
    nbdkit_error ("volume '%s' is open read-only in this server", name);
    free (h);
    errno = EROFS;
    return NULL;
  }
  if (ov == NULL) {
    struct file_volume *v;
    bool is_default = default_volume && strcmp (name, default_volume) == 0;

    v = file_volume_open (dir_fd, dir, name, readonly,
                          is_default ? &create : NULL, max_open_files);
    if (v == NULL) {
      free (h);
      return NULL;
    }
    ov = calloc (1, sizeof *ov);
    if (ov == NULL) {
      nbdkit_error ("calloc: %m");
      file_volume_close (v);
      free (h);
      return NULL;
    }
    ov->v = v;
    ov->next = volumes;
    volumes = ov;
  }
  ov->conns++;
  h->ov = ov;
  h->engine = ov->v->engine;
  return h;
}

static void
sharded_file_close (void *handle)
{
  struct handle *h = handle;

  /* The volume stays open (and locked) for later connections: the lock
   * then keeps guarding it for as long as this server runs.
   */
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&volumes_lock);
  h->ov->conns--;
  free (h);
}

static const char *
sharded_file_export_description (void *handle)
{
  struct handle *h = handle;

  return nbdkit_printf_intern ("sharded-file volume %s, %" PRIu64
                               " bytes, %" PRIu32 "-byte chunks",
                               h->ov->v->name, h->ov->v->meta.size,
                               h->ov->v->meta.chunk_size);
}

static int64_t
sharded_file_get_size (void *handle)
{
  struct handle *h = handle;
  return (int64_t) chunk_engine_size (h->engine);
}

static int
sharded_file_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                         uint32_t *maximum)
{
  /* Any byte range works (partial chunk writes go straight to the file);
   * page-sized I/O avoids read-modify-write in the page cache.
   */
  *minimum = 1;
  *preferred = 4096;
  *maximum = 0xffffffff;
  return 0;
}

static int
sharded_file_can_multi_conn (void *handle)
{
  return 1;
}

static int
sharded_file_can_trim (void *handle)
{
  return 1;
}

static int
sharded_file_can_zero (void *handle)
{
  return 1;
}

static int
sharded_file_can_fast_zero (void *handle)
{
  return 1;
}

static int
sharded_file_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
sharded_file_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static int
sharded_file_can_extents (void *handle)
{
  return 1;
}

static int
sharded_file_is_rotational (void *handle)
{
  return 0;
}

static int
sharded_file_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                    uint32_t flags)
{
  struct handle *h = handle;
  return chunk_engine_pread (h->engine, buf, count, offset);
}

static int
sharded_file_pwrite (void *handle, const void *buf, uint32_t count,
                     uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;
  return chunk_engine_pwrite (h->engine, buf, count, offset,
                              flags & NBDKIT_FLAG_FUA);
}

static int
sharded_file_flush (void *handle, uint32_t flags)
{
  struct handle *h = handle;
  return chunk_engine_flush (h->engine);
}

static int
sharded_file_trim (void *handle, uint32_t count, uint64_t offset,
                   uint32_t flags)
{
  struct handle *h = handle;
  return chunk_engine_trim (h->engine, count, offset, flags & NBDKIT_FLAG_FUA);
}

static int
sharded_file_zero (void *handle, uint32_t count, uint64_t offset,
                   uint32_t flags)
{
  struct handle *h = handle;
  return chunk_engine_zero (h->engine, count, offset,
                            flags & NBDKIT_FLAG_FAST_ZERO,
                            flags & NBDKIT_FLAG_FUA);
}

static int
sharded_file_extents (void *handle, uint32_t count, uint64_t offset,
                      uint32_t flags, struct nbdkit_extents *extents)
{
  struct handle *h = handle;
  return chunk_engine_extents (h->engine, count, offset,
                               flags & NBDKIT_FLAG_REQ_ONE, extents);
}

static int
sharded_file_cache (void *handle, uint32_t count, uint64_t offset,
                    uint32_t flags)
{
  struct handle *h = handle;
  return chunk_engine_cache (h->engine, count, offset);
}

static struct nbdkit_plugin plugin = {
  .name               = "sharded-file",
  .longname           = "shardkit sharded-file plugin",
  .version            = PACKAGE_VERSION,
  .unload             = sharded_file_unload,
  .config             = sharded_file_config,
  .config_complete    = sharded_file_config_complete,
  .config_help        = sharded_file_config_help,
  .magic_config_key   = "dir",
  .get_ready          = sharded_file_get_ready,
  .dump_plugin        = sharded_file_dump_plugin,
  .list_exports       = sharded_file_list_exports,
  .default_export     = sharded_file_default_export,
  .open               = sharded_file_open,
  .close              = sharded_file_close,
  .export_description = sharded_file_export_description,
  .get_size           = sharded_file_get_size,
  .block_size         = sharded_file_block_size,
  .can_multi_conn     = sharded_file_can_multi_conn,
  .can_trim           = sharded_file_can_trim,
  .can_zero           = sharded_file_can_zero,
  .can_fast_zero      = sharded_file_can_fast_zero,
  .can_fua            = sharded_file_can_fua,
  .can_cache          = sharded_file_can_cache,
  .can_extents        = sharded_file_can_extents,
  .is_rotational      = sharded_file_is_rotational,
  .pread              = sharded_file_pread,
  .pwrite             = sharded_file_pwrite,
  .flush              = sharded_file_flush,
  .trim               = sharded_file_trim,
  .zero               = sharded_file_zero,
  .extents            = sharded_file_extents,
  .cache              = sharded_file_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
