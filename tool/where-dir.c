/* shardkit volume tool: volumes in a directory, through the file store
 * of plugins/sharded-file (the same files, names, metadata and lock).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "file-store.h"
#include "file-volume.h"
#include "tool.h"
#include "volume-name.h"
#include "where.h"

/* Chunk descriptors the file store keeps open per volume. */
#define TOOL_MAX_OPEN_FILES 64

struct dir_priv {
  char *path;                   /* realpath */
  int fd;
};

static struct dir_priv *
priv (struct where *w)
{
  return w->priv;
}

static int
dir_scan (struct where *w, const char *only, where_scan_fn fn, void *opaque)
{
  struct dir_priv *p = priv (w);
  struct dirent *d;
  DIR *dp;
  int fd, r = 0;

  fd = openat (p->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd == -1 || (dp = fdopendir (fd)) == NULL) {
    tool_error ("%s: %m", p->path);
    if (fd >= 0)
      close (fd);
    return -1;
  }
  errno = 0;
  while (r == 0 && (d = readdir (dp)) != NULL) {
    char name[VOLUME_NAME_MAX + 1];
    struct where_entry e = { .volume = name };
    struct stat st;

    if (volume_name_from_meta_file (d->d_name, name))
      e.kind = ENTRY_META;
    else if (volume_chunk_name_parse_gen (d->d_name, name, &e.gen, &e.n))
      e.kind = ENTRY_CHUNK;
    else
      goto next;
    if (only && strcmp (only, name) != 0)
      goto next;
    if (fstatat (p->fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
      if (errno == ENOENT)
        goto next;              /* removed meanwhile */
      tool_error ("%s/%s: %m", p->path, d->d_name);
      r = -1;
      break;
    }
    e.size = (uint64_t) st.st_size;
    e.stored = (uint64_t) st.st_blocks * 512;
    r = fn (opaque, &e);
  next:
    errno = 0;
  }
  if (r == 0 && errno != 0) {
    tool_error ("%s: readdir: %m", p->path);
    r = -1;
  }
  closedir (dp);
  return r;
}

static int
dir_read_meta (struct where *w, const char *name, struct volume_meta *m)
{
  return file_volume_read_meta (priv (w)->fd, priv (w)->path, name, m);
}

static int
dir_create (struct where *w, const char *name, uint64_t size,
            uint32_t chunk_size)
{
  return file_volume_create (priv (w)->fd, priv (w)->path, name, size,
                             chunk_size);
}

static int
dir_create_meta (struct where *w, const char *name,
                 const struct volume_meta *m)
{
  return file_volume_create_meta (priv (w)->fd, priv (w)->path, name, m);
}

/* The processes that hold a flock on the file of device DEV, inode INO,
 * from /proc/locks, as "pid 123 (nbdkit)" into BUF.
 */
static void
lock_holders (dev_t dev, ino_t ino, char *buf, size_t len)
{
  FILE *fp = fopen ("/proc/locks", "re");
  char line[256];
  size_t used = 0;

  buf[0] = '\0';
  if (fp == NULL)
    return;
  while (fgets (line, sizeof line, fp)) {
    char type[16], comm[64] = "?", path[64];
    unsigned maj, min;
    unsigned long inode;
    long pid;
    FILE *cf;

    if (sscanf (line, "%*d: %15s %*s %*s %ld %x:%x:%lu",
                type, &pid, &maj, &min, &inode) != 5 ||
        strcmp (type, "FLOCK") != 0 ||
        maj != major (dev) || min != minor (dev) || inode != ino)
      continue;
    snprintf (path, sizeof path, "/proc/%ld/comm", pid);
    if ((cf = fopen (path, "re")) != NULL) {
      if (fgets (comm, sizeof comm, cf))
        comm[strcspn (comm, "\n")] = '\0';
      fclose (cf);
    }
    if (used < len)
      used += (size_t) snprintf (buf + used, len - used, "%spid %ld (%s)",
                                 used ? ", " : "", pid, comm);
  }
  fclose (fp);
}

/* The plugin holds an flock on NAME.meta: exclusive while it serves
 * the volume read-write, shared while read-only (file-volume.c).
 */
static int
dir_holder (struct where *w, const char *name, char *buf, size_t len)
{
  struct dir_priv *p = priv (w);
  char fname[VOLUME_NAME_MAX + 16], who[256];
  CLEANUP_CLOSE int fd = -1;
  struct stat st;
  bool writer;

  snprintf (fname, sizeof fname, "%s.meta", name);
  fd = openat (p->fd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd == -1 && errno == ENOENT)
    return 0;                   /* no volume: nobody holds it */
  if (fd == -1 || fstat (fd, &st) == -1) {
    tool_error ("%s/%s: %m", p->path, fname);
    return -1;
  }
  if (flock (fd, LOCK_EX | LOCK_NB) == 0)
    return 0;                   /* closing fd drops it */
  if (errno != EWOULDBLOCK) {
    tool_error ("%s/%s: flock: %m", p->path, fname);
    return -1;
  }
  writer = flock (fd, LOCK_SH | LOCK_NB) == -1;
  flock (fd, LOCK_UN);
  lock_holders (st.st_dev, st.st_ino, who, sizeof who);
  snprintf (buf, len, "locked %s%s%s",
            writer ? "read-write" : "read-only", who[0] ? " by " : "", who);
  return 1;
}

static int
dir_open (struct where *w, const char *name, unsigned how, unsigned parallel,
          struct tool_volume *tv)
{
  const bool write = how & TOOL_OPEN_WRITE;
  struct dir_priv *p = priv (w);
  struct file_volume *v;
  char holder[512];

  /* Asked first only to name the holder in the refusal: the lock that
   * counts is the one file_volume_open takes (and refuses with its
   * own line if somebody took it meanwhile).
   */
  if (write) {
    int r = dir_holder (w, name, holder, sizeof holder);
    if (r == 1) {
      tool_error ("volume '%s' in %s is in use: %s", name, p->path, holder);
      errno = EBUSY;
      return -1;
    }
  }
  /* A local store gains nothing from the engine's parallel path. */
  v = file_volume_open (p->fd, p->path, name, !write,
                        volume_open_flags (how), NULL,
                        TOOL_MAX_OPEN_FILES);
  if (v == NULL)
    return -1;
  /* One directory of a mirror: what the tool changed here, the other
   * locations would never learn.
   */
  if (write && v->meta.set_size) {
    tool_error ("volume '%s' in %s is location %" PRIu32 " of a set of %"
                PRIu32 " (redundancy=%s): the volume tool does not change "
                "sets yet", name, p->path, v->meta.set_index,
                v->meta.set_size, v->meta.redundancy);
    file_volume_close (v);
    errno = EROFS;
    return -1;
  }
  tv->w = w;
  tv->name = v->name;
  tv->write = write;
  tv->meta = v->meta;
  tv->engine = v->engine;
  tv->ops = &file_store_ops;
  tv->store = v;
  tv->view = v->store;
  return 0;
}

static int
dir_rewrite_meta (struct tool_volume *tv, const struct volume_meta *m)
{
  return file_volume_rewrite_meta (tv->store, m);
}

static void
dir_set_size (struct tool_volume *tv, uint64_t size)
{
  struct file_volume *v = tv->store;
  v->meta.size = size;
}

static int
dir_remove_meta (struct tool_volume *tv)
{
  if (file_volume_remove_meta (tv->store) == -1)
    return -1;
  tv->removed = true;
  return 0;
}

static void
dir_close (struct tool_volume *tv)
{
  file_volume_close (tv->store);
  tv->store = NULL;
}

static const struct where_ops dir_ops = {
  .kind = "directory",
  .scan = dir_scan,
  .read_meta = dir_read_meta,
  .create = dir_create,
  .create_meta = dir_create_meta,
  .holder = dir_holder,
  .open = dir_open,
  .rewrite_meta = dir_rewrite_meta,
  .store_set_size = dir_set_size,
  .remove_meta = dir_remove_meta,
  .close = dir_close,
};

int
where_dir_open (const char *path, struct where *w)
{
  struct dir_priv *p = calloc (1, sizeof *p);
  struct stat st;

  if (p == NULL) {
    tool_error ("calloc: %m");
    return -1;
  }
  p->fd = -1;
  w->priv = p;
  w->ops = &dir_ops;
  if ((w->display = strdup (path)) == NULL) {
    tool_error ("strdup: %m");
    return -1;
  }
  p->path = realpath (path, NULL);
  if (p->path == NULL) {
    tool_error ("%s: %m", path);
    return -1;
  }
  p->fd = open (p->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (p->fd == -1 || fstat (p->fd, &st) == -1) {
    tool_error ("%s: %m", path);
    return -1;
  }
  if (asprintf (&w->place, "dir:%s", p->path) == -1) {
    w->place = NULL;
    tool_error ("asprintf: %m");
    return -1;
  }
  return 0;
}

void
where_dir_close (struct where *w)
{
  struct dir_priv *p = priv (w);

  if (p == NULL)
    return;
  if (p->fd >= 0)
    close (p->fd);
  free (p->path);
  free (p);
  w->priv = NULL;
}
