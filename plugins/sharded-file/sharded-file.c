/* shardkit: nbdkit sharded-file plugin.
 * GPL-3.0-or-later.
 *
 * Serves volumes stored as chunk files in a directory: DIR/NAME.meta and
 * DIR/NAME.<n>.chunk (see nbdkit-sharded-file-plugin(1)).  Every volume in
 * DIR is an export.  This file is the plugin's parameters and its
 * namespace of volumes; the volume layer (common/volume-layer.h) does
 * the rest: all connections to one volume share one open volume (one
 * chunk engine, one descriptor cache, one lock), so multi-conn is safe.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "file-volume.h"
#include "volume-layer.h"
#include "volume-meta.h"
#include "volume-name.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#define DEFAULT_MAX_OPEN_FILES 256

static char *dir;                   /* dir= */
static int dir_fd = -1;
static unsigned max_open_files = DEFAULT_MAX_OPEN_FILES;

static const struct volume_ops file_volume_ops;

static void
sharded_file_load (void)
{
  volume_layer_init (&file_volume_ops);
}

static void
sharded_file_unload (void)
{
  volume_layer_unload ();
  if (dir_fd >= 0)
    close (dir_fd);
  free (dir);
}

static int
sharded_file_config (const char *key, const char *value)
{
  int r = volume_layer_config (key, value);

  if (r != 0)
    return r == 1 ? 0 : -1;
  if (strcmp (key, "dir") == 0) {
    free (dir);
    dir = realpath (value, NULL);
    if (dir == NULL) {
      nbdkit_error ("dir=%s: %m", value);
      return -1;
    }
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
  if (volume_layer_config_complete () == -1)
    return -1;
  dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd == -1) {
    nbdkit_error ("dir=%s: %m", dir);
    return -1;
  }
  return 0;
}

#define sharded_file_config_help \
  "dir=<DIRECTORY>     (required) Directory holding the volumes.\n" \
  VOLUME_LAYER_CONFIG_HELP "\n" \
  "max-open-files=<N>  Open chunk files kept per volume (default 256)."

static void
sharded_file_dump_plugin (void)
{
  printf ("sharded_file_chunk_size_default=%" PRIu32 "\n", CHUNK_SIZE_DEFAULT);
  printf ("sharded_file_volume_format_version=%d\n", VOLUME_META_VERSION);
}

static int
file_list_exports (struct nbdkit_exports *exports)
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

/* The namespace: volumes in dir=. */
static int
file_prepare (const char *name, const struct volume_create *create)
{
  return file_volume_prepare (dir_fd, dir, name, create);
}

static void *
file_open (const char *name, bool readonly,
           const struct volume_create *create)
{
  return file_volume_open (dir_fd, dir, name, readonly, VOLUME_OPEN_SERVE, create,
                           max_open_files);
}

static bool
file_read_only (void *vol)
{
  struct file_volume *v = vol;
  return v->meta.read_only;
}

static struct chunk_engine *
file_engine (void *vol)
{
  struct file_volume *v = vol;
  return v->engine;
}

static void
file_close (void *vol)
{
  file_volume_close (vol);
}

static const struct volume_ops file_volume_ops = {
  .kind = "sharded-file volume",
  .prefer_whole_chunks = false,
  .prepare = file_prepare,
  .open = file_open,
  .engine = file_engine,
  .read_only = file_read_only,
  .close = file_close,
  .list_exports = file_list_exports,
};

static struct nbdkit_plugin plugin = {
  .name               = "sharded-file",
  .longname           = "shardkit sharded-file plugin",
  .version            = PACKAGE_VERSION,
  .load               = sharded_file_load,
  .unload             = sharded_file_unload,
  .config             = sharded_file_config,
  .config_complete    = sharded_file_config_complete,
  .config_help        = sharded_file_config_help,
  .magic_config_key   = "dir",
  .get_ready          = volume_layer_get_ready,
  .dump_plugin        = sharded_file_dump_plugin,
  VOLUME_LAYER_CALLBACKS,
};

NBDKIT_REGISTER_PLUGIN (plugin)
