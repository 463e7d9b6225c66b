/* shardkit sharded-file: one location of a set.  GPL-3.0-or-later.
 * See set-location.h.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nbdkit-plugin.h>

#include "file-volume.h"
#include "missing-file.h"
#include "set-location.h"
#include "volume-set.h"
#include "volume-name.h"

static struct file_volume *
volume (void *opaque)
{
  struct set_location *l = opaque;
  struct file_volume *v = __atomic_load_n (&l->v, __ATOMIC_ACQUIRE);

  if (v == NULL)
    errno = EIO;
  return v;
}

/* Open PATH's directory and the volume NAME in it.  QUIET: say nothing
 * when the volume is not there (a probe, again and again).
 */
static struct file_volume *
open_volume (const char *path, const char *name, bool readonly,
             unsigned flags, size_t max_open_files, bool quiet, int *fdp,
             char *why, size_t len)
{
  char fname[VOLUME_NAME_MAX + 16];
  struct file_volume *v;
  int fd;

  *fdp = -1;
  fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd == -1) {
    snprintf (why, len, "%s: %s", path, strerror (errno));
    return NULL;
  }
  snprintf (fname, sizeof fname, "%s.meta", name);
  if (quiet && faccessat (fd, fname, F_OK, AT_SYMLINK_NOFOLLOW) == -1) {
    snprintf (why, len, "%s/%s: %s", path, fname, strerror (errno));
    close (fd);
    return NULL;
  }
  v = file_volume_open_location (fd, path, name, readonly, flags, NULL,
                                 max_open_files);
  if (v == NULL) {
    int err = errno;
    snprintf (why, len, "%s: volume '%s' there cannot be opened", path, name);
    close (fd);
    errno = err;
    return NULL;
  }
  *fdp = fd;
  return v;
}

int
set_location_read_meta (const char *path, const char *name,
                        struct volume_meta *m)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r;

  if (fd == -1)
    return -1;
  r = file_volume_read_meta (fd, path, name, m);
  close (fd);
  return r;
}

int
set_location_create_meta (const char *path, const char *name,
                          const struct volume_meta *m)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r;

  if (fd == -1) {
    nbdkit_error ("%s: %m", path);
    return -1;
  }
  r = file_volume_create_meta (fd, path, name, m);
  close (fd);
  return r;
}

char *
set_location_path (const char *value)
{
  char *path = realpath (value, NULL);

  if (path == NULL && errno == ENOENT) {
    char *cwd = value[0] == '/' ? NULL : get_current_dir_name ();
    if (value[0] != '/' && cwd == NULL)
      return NULL;
    if (asprintf (&path, "%s%s%s", cwd ? cwd : "", cwd ? "/" : "",
                  value) == -1)
      path = NULL;
    free (cwd);
  }
  return path;
}

static void
note_identity (struct set_location *l)
{
  struct stat st;

  if (fstat (l->dirfd, &st) == 0) {
    l->dev = st.st_dev;
    l->ino = st.st_ino;
  }
}

int
set_location_open (struct set_location *l, const char *path,
                   const char *name, bool readonly, unsigned flags,
                   size_t max_open_files)
{
  memset (l, 0, sizeof *l);
  l->path = path;
  l->v = open_volume (path, name, readonly, flags, max_open_files, false,
                      &l->dirfd, l->why, sizeof l->why);
  if (l->v == NULL) {
    /* Somebody else holds it: that is no failure of the location. */
    if (errno == EWOULDBLOCK)
      return -1;
    return 1;
  }
  note_identity (l);
  return 0;
}

bool
set_location_moved (const struct set_location *l)
{
  struct stat st;

  if (l->dirfd == -1 || stat (l->path, &st) == -1)
    return true;
  return st.st_dev != l->dev || st.st_ino != l->ino;
}

struct file_volume *
set_location_reopen (const struct set_location *l, const char *name,
                     size_t max_open_files, int *fd)
{
  char why[256];

  return open_volume (l->path, name, false, VOLUME_OPEN_SERVE,
                      max_open_files, true, fd, why, sizeof why);
}

int
set_location_install (struct set_location *l, struct file_volume *v, int fd)
{
  if (l->v) {
    if (l->nretired == SET_LOCATION_RETIRED_MAX) {
      file_volume_close (v);
      close (fd);
      return -1;
    }
    l->retired[l->nretired] = l->v;
    l->retired_fds[l->nretired++] = l->dirfd;
  }
  l->dirfd = fd;
  note_identity (l);
  __atomic_store_n (&l->v, v, __ATOMIC_RELEASE);
  return 0;
}

void
set_location_close (struct set_location *l)
{
  unsigned i;

  file_volume_close (l->v);
  l->v = NULL;
  if (l->dirfd >= 0)
    close (l->dirfd);
  l->dirfd = -1;
  for (i = 0; i < l->nretired; ++i) {
    file_volume_close (l->retired[i]);
    close (l->retired_fds[i]);
  }
  l->nretired = 0;
}

/* The store: each operation forwards to the volume's own store. */

static int
sl_read (void *o, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct file_volume *v = volume (o);
  return v ? v->store.ops->read (v->store.opaque, n, buf, len, off) : -1;
}

static int
sl_write (void *o, uint64_t n, const void *buf, uint32_t len, uint32_t off,
          bool fua)
{
  struct file_volume *v = volume (o);
  return v ? v->store.ops->write (v->store.opaque, n, buf, len, off, fua)
    : -1;
}

static int
sl_remove (void *o, const uint64_t *ns, size_t count, bool fua)
{
  struct file_volume *v = volume (o);
  return v ? v->store.ops->remove (v->store.opaque, ns, count, fua) : -1;
}

static int
sl_punch (void *o, uint64_t n, uint32_t len, uint32_t off, bool fua)
{
  struct file_volume *v = volume (o);
  return v ? v->store.ops->punch (v->store.opaque, n, len, off, fua) : -1;
}

static int
sl_extents (void *o, uint64_t n, uint32_t len, uint32_t off, uint64_t base,
            struct nbdkit_extents *extents)
{
  struct file_volume *v = volume (o);
  return v ? v->store.ops->extents (v->store.opaque, n, len, off, base,
                                    extents) : -1;
}

static int
sl_prefetch (void *o, uint64_t n, uint32_t len, uint32_t off)
{
  struct file_volume *v = volume (o);
  return v ? v->store.ops->prefetch (v->store.opaque, n, len, off) : -1;
}

static int
sl_sync (void *o)
{
  struct file_volume *v = volume (o);
  return v ? v->store.ops->sync (v->store.opaque) : -1;
}

static int
sl_list (void *o, void (*found) (void *opaque, uint64_t n), void *opaque)
{
  struct file_volume *v = volume (o);
  return v ? v->store.ops->list (v->store.opaque, found, opaque) : -1;
}

/* The same abilities as the file store, which every location's volume
 * uses (a set has no bases, so no overlay).
 */
const struct chunk_store_ops set_location_ops = {
  .partial_write = true,
  .read = sl_read,
  .write = sl_write,
  .remove = sl_remove,
  .punch = sl_punch,
  .extents = sl_extents,
  .prefetch = sl_prefetch,
  .sync = sl_sync,
  .list = sl_list,
};

int
set_location_probe (struct set_location *l, unsigned loc,
                    const struct volume_set_params *set,
                    const struct volume_meta *first, const char *name,
                    size_t max_open_files, struct missing_files *records)
{
  struct file_volume *v;
  bool was_open = l->v != NULL;
  int fd;

  if (!set_location_moved (l))
    return file_volume_probe (l->v);
  v = set_location_reopen (l, name, max_open_files, &fd);
  if (v == NULL)
    return -1;
  if (volume_set_check_location (set, name, loc, &v->meta, first) == -1) {
    file_volume_close (v);
    close (fd);
    return -1;
  }
  if (set_location_install (l, v, fd) == -1)
    return -1;                  /* closed V */
  missing_files_set_dirfd (records, loc, fd);
  nbdkit_debug ("%s: location %u (%s) opened again%s", name, loc, l->path,
                was_open ? " (another directory: caught up in full)" : "");
  return was_open ? 1 : 0;
}
