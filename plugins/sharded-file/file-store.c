/* shardkit sharded-file: the chunk store over files in a directory.
 * GPL-3.0-or-later.
 *
 * Chunk n of volume NAME is the file NAME.<n>.chunk, or NAME@<g>.<n>.chunk
 * in generation g > 0 (v->stem: see volume-name.h).  A file may be
 * shorter than the chunk (the rest reads as zeros) and may have holes; it
 * may never be longer: that is corruption, refused with EIO.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_LINUX_FALLOC_H
#include <linux/falloc.h>
#endif

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "fd-cache.h"
#include "file-store.h"
#include "file-volume.h"

static void
chunk_file_name (const struct file_volume *v, uint64_t n, char *buf, size_t len)
{
  snprintf (buf, len, "%s.%" PRIu64 ".chunk", v->stem, n);
}

#define CHUNK_NAME_MAX (VOLUME_CHUNK_STEM_MAX + 32)

int
file_store_open_chunk (void *volume, uint64_t n, bool create, bool *created)
{
  struct file_volume *v = volume;
  char fname[CHUNK_NAME_MAX];
  struct stat st;
  int fd;

  if (created)
    *created = false;
  chunk_file_name (v, n, fname, sizeof fname);
  /* O_NONBLOCK: a FIFO in place of a chunk must not hang the server (it
   * is refused below); regular files ignore the flag.
   */
  fd = openat (v->dirfd, fname, (v->readonly ? O_RDONLY : O_RDWR) |
               O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd == -1 && errno == ENOENT && create && !v->readonly) {
    fd = openat (v->dirfd, fname,
                 O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0) {
      if (created)
        *created = true;
      __atomic_store_n (&v->dir_dirty, true, __ATOMIC_RELEASE);
    }
    else if (errno == EEXIST)   /* a concurrent writer created it */
      fd = openat (v->dirfd, fname, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd == -1) {
    if (errno == EMFILE || errno == ENFILE) {
      nbdkit_error ("%s/%s: open: %m (lower max-open-files or raise "
                    "ulimit -n)", v->dirname, fname);
      errno = EIO;              /* EMFILE has no NBD error code */
    }
    else if (errno != ENOENT) {
      nbdkit_error ("%s/%s: open: %m", v->dirname, fname);
      /* Something that is not a chunk file in its place (a directory, a
       * symlink refused by O_NOFOLLOW): the volume is damaged, EIO.
       */
      if (errno == EISDIR || errno == ELOOP || errno == ENOTDIR)
        errno = EIO;
    }
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    nbdkit_error ("%s/%s: fstat: %m", v->dirname, fname);
    close (fd);
    return -1;
  }
  if (!S_ISREG (st.st_mode)) {
    nbdkit_error ("%s/%s: not a regular file: refusing to serve it",
                  v->dirname, fname);
    close (fd);
    errno = EIO;
    return -1;
  }
  if ((uint64_t) st.st_size > v->meta.chunk_size) {
    nbdkit_error ("%s/%s: %" PRIu64 " bytes is longer than the chunk size "
                  "%" PRIu32 ": the volume is corrupt, refusing to serve "
                  "this chunk", v->dirname, fname, (uint64_t) st.st_size,
                  v->meta.chunk_size);
    close (fd);
    errno = EIO;
    return -1;
  }
  return fd;
}

static int
store_read (void *store, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct file_volume *v = store;
  unsigned char *p = buf;
  int fd;

  fd = fd_cache_get (v->fds, n, false, NULL);
  if (fd == -1)
    return errno == ENOENT ? 1 : -1;
  while (len > 0) {
    ssize_t r = pread (fd, p, len, off);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      int saved = errno;
      nbdkit_error ("%s: chunk %" PRIu64 ": pread: %m", v->name, n);
      fd_cache_put (v->fds, n, false);
      errno = saved;
      return -1;
    }
    if (r == 0) {
      memset (p, 0, len);       /* past the end of a short chunk file */
      break;
    }
    p += r;
    len -= (uint32_t) r;
    off += (uint32_t) r;
  }
  fd_cache_put (v->fds, n, false);
  return 0;
}

/* Called with v->sync_lock held. */
static int
check_sync_failed (struct file_volume *v)
{
  if (v->sync_failed) {
    nbdkit_error ("%s: an earlier sync failed (%s): data acknowledged "
                  "before it may be lost; restart the server after "
                  "checking the storage", v->name, strerror (v->sync_failed));
    errno = EIO;
    return -1;
  }
  return 0;
}

static void
note_sync_failed (struct file_volume *v, int err)
{
  if (v->sync_failed == 0)
    v->sync_failed = err ? err : EIO;
}

/* Called with v->sync_lock held. */
static int
sync_dir_locked (struct file_volume *v)
{
  if (__atomic_exchange_n (&v->dir_dirty, false, __ATOMIC_ACQ_REL)) {
    if (fsync (v->dirfd) == -1) {
      int saved = errno;
      __atomic_store_n (&v->dir_dirty, true, __ATOMIC_RELEASE);
      nbdkit_error ("%s: fsync of the directory: %s", v->dirname,
                    strerror (saved));
      note_sync_failed (v, saved);
      errno = saved;
      return -1;
    }
  }
  return 0;
}

/* FUA: make one chunk file (FD, or none when -1) and the directory
 * entries durable.  The file's own sync needs no lock: concurrent FUA
 * writes to different chunks proceed side by side.
 */
static int
sync_chunk (struct file_volume *v, uint64_t n, int fd)
{
  if (fd >= 0 && fdatasync (fd) == -1) {
    int saved = errno;
    nbdkit_error ("%s: chunk %" PRIu64 ": fdatasync: %s", v->name, n,
                  strerror (saved));
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&v->sync_lock);
    note_sync_failed (v, saved);
    errno = saved;
    return -1;
  }
  /* Always, not only when this write created the file: an earlier
   * write may have created it without making the entry durable.
   */
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&v->sync_lock);
  return sync_dir_locked (v);
}

static int
store_write (void *store, uint64_t n, const void *buf, uint32_t len,
             uint32_t off, bool fua)
{
  struct file_volume *v = store;
  const unsigned char *p = buf;
  bool created;
  int fd;

  fd = fd_cache_get (v->fds, n, true, &created);
  if (fd == -1)
    return -1;
  while (len > 0) {
    ssize_t r = pwrite (fd, p, len, off);
    if (r == -1) {
      int saved = errno;
      if (saved == EINTR)
        continue;
      nbdkit_error ("%s: chunk %" PRIu64 ": pwrite: %s", v->name, n,
                    strerror (saved));
      /* A failed write leaves its range undefined, as on a disk.  A file
       * we just created is kept: another writer may share it by now.
       */
      fd_cache_put (v->fds, n, true);
      errno = saved;
      return -1;
    }
    p += r;
    len -= (uint32_t) r;
    off += (uint32_t) r;
  }
  if (fua) {
    int r = sync_chunk (v, n, fd), saved = errno;
    fd_cache_put (v->fds, n, r == -1);
    errno = saved;
    return r;
  }
  fd_cache_put (v->fds, n, true);
  return 0;
}

static int
store_remove (void *store, const uint64_t *ns, size_t count, bool fua)
{
  struct file_volume *v = store;
  size_t i;

  for (i = 0; i < count; ++i) {
    char fname[CHUNK_NAME_MAX];

    chunk_file_name (v, ns[i], fname, sizeof fname);
    if (unlinkat (v->dirfd, fname, 0) == -1 && errno != ENOENT) {
      /* The file stays, and so must the record that it needs a sync. */
      nbdkit_error ("%s/%s: unlink: %m", v->dirname, fname);
      return -1;
    }
    fd_cache_forget (v->fds, ns[i]);
    __atomic_store_n (&v->dir_dirty, true, __ATOMIC_RELEASE);
  }
  return fua ? sync_chunk (v, 0, -1) : 0;
}

/* Zero a range by writing zeros, for file systems that cannot punch. */
static int
write_zeros (int fd, uint32_t len, uint32_t off)
{
  static const unsigned char zeros[65536];

  while (len > 0) {
    uint32_t n = len < sizeof zeros ? len : (uint32_t) sizeof zeros;
    ssize_t r = pwrite (fd, zeros, n, off);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    len -= (uint32_t) r;
    off += (uint32_t) r;
  }
  return 0;
}

static int
store_punch (void *store, uint64_t n, uint32_t len, uint32_t off, bool fua)
{
  struct file_volume *v = store;
  struct stat st;
  int r = 0, fd;

  fd = fd_cache_get (v->fds, n, false, NULL);
  if (fd == -1)
    return errno == ENOENT ? 1 : -1;

  if (fstat (fd, &st) == -1) {
    nbdkit_error ("%s: chunk %" PRIu64 ": fstat: %m", v->name, n);
    r = -1;
  }
  else if ((uint64_t) off + len >= (uint64_t) st.st_size) {
    /* The range reaches the end of the file: cut the file short, which
     * frees the blocks and needs no zeroed tail.
     */
    if ((uint64_t) off < (uint64_t) st.st_size && ftruncate (fd, off) == -1) {
      nbdkit_error ("%s: chunk %" PRIu64 ": ftruncate: %m", v->name, n);
      r = -1;
    }
  }
  else {
#if defined (FALLOC_FL_PUNCH_HOLE) && defined (HAVE_FALLOCATE)
    if (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   off, len) == -1) {
      if (errno != EOPNOTSUPP && errno != ENOSYS) {
        nbdkit_error ("%s: chunk %" PRIu64 ": punch hole: %m", v->name, n);
        r = -1;
      }
      else if (write_zeros (fd, len, off) == -1) {
        nbdkit_error ("%s: chunk %" PRIu64 ": pwrite: %m", v->name, n);
        r = -1;
      }
    }
#else
    if (write_zeros (fd, len, off) == -1) {
      nbdkit_error ("%s: chunk %" PRIu64 ": pwrite: %m", v->name, n);
      r = -1;
    }
#endif
  }

  if (r == 0) {
    /* Does the chunk hold any data now?  If not, the engine removes it. */
    off_t d = lseek (fd, 0, SEEK_DATA);
    if (d == -1 && errno == ENXIO)
      r = 1;
    else if (d == -1) {
      nbdkit_error ("%s: chunk %" PRIu64 ": lseek: %m", v->name, n);
      r = -1;
    }
  }
  if (r == 0 && fua && sync_chunk (v, n, fd) == -1)
    r = -1;
  {
    int saved = errno;
    fd_cache_put (v->fds, n, r == 0 && !fua);
    errno = saved;
  }
  return r;
}

static int
store_extents (void *store, uint64_t n, uint32_t len, uint32_t off,
               uint64_t base, struct nbdkit_extents *extents)
{
  struct file_volume *v = store;
  off_t pos = off, end = (off_t) off + len;
  int r = 0, fd;

  fd = fd_cache_get (v->fds, n, false, NULL);
  if (fd == -1) {
    if (errno != ENOENT)
      return -1;
    return nbdkit_add_extent (extents, base + off, len,
                              NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO);
  }
  while (pos < end && r == 0) {
    off_t d = lseek (fd, pos, SEEK_DATA), h;

    if (d == -1) {
      if (errno != ENXIO) {
        nbdkit_error ("%s: chunk %" PRIu64 ": lseek: %m", v->name, n);
        r = -1;
        break;
      }
      d = end;                  /* no data up to the end of the file */
    }
    if (d > end)
      d = end;
    if (d > pos)
      r = nbdkit_add_extent (extents, base + (uint64_t) pos,
                             (uint64_t) (d - pos),
                             NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO);
    if (r == -1 || d >= end)
      break;
    h = lseek (fd, d, SEEK_HOLE);
    if (h == -1) {
      nbdkit_error ("%s: chunk %" PRIu64 ": lseek: %m", v->name, n);
      r = -1;
      break;
    }
    if (h > end)
      h = end;
    r = nbdkit_add_extent (extents, base + (uint64_t) d,
                           (uint64_t) (h - d), 0);
    pos = h;
  }
  {
    int saved = errno;
    fd_cache_put (v->fds, n, false);
    errno = saved;
  }
  return r;
}

static int
store_prefetch (void *store, uint64_t n, uint32_t len, uint32_t off)
{
  struct file_volume *v = store;
  int fd = fd_cache_get (v->fds, n, false, NULL);

  if (fd == -1)
    return errno == ENOENT ? 0 : -1;
  /* Advice only: its failure is not the client's problem. */
  posix_fadvise (fd, off, len, POSIX_FADV_WILLNEED);
  fd_cache_put (v->fds, n, false);
  return 0;
}

static int
store_sync (void *store)
{
  struct file_volume *v = store;
  bool lost;

  if (v->readonly)
    return 0;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&v->sync_lock);
  if (check_sync_failed (v) == -1)
    return -1;
  if (fd_cache_sync (v->fds, &lost) == -1) {
    /* Only a failed fdatasync poisons the volume.  A transient failure
     * (no memory, no descriptor) fails this flush alone: the cache still
     * knows every file that needs a sync, so a later flush covers them.
     */
    if (lost)
      note_sync_failed (v, errno);
    else if (errno == EMFILE || errno == ENFILE)
      errno = EIO;              /* EMFILE has no NBD error code */
    return -1;
  }
  return sync_dir_locked (v);
}

/* Parse "STEM.<n>.chunk" for this volume; strict decimal n. */
static bool
parse_chunk_name (const struct file_volume *v, const char *fname, uint64_t *n)
{
  size_t nlen = strlen (v->stem);
  const char *p, *dot;
  uint64_t val = 0;

  if (strncmp (fname, v->stem, nlen) != 0 || fname[nlen] != '.')
    return false;
  p = fname + nlen + 1;
  dot = strchr (p, '.');
  if (dot == NULL || dot == p || strcmp (dot, ".chunk") != 0)
    return false;
  if (p[0] == '0' && dot - p > 1)
    return false;
  for (; p < dot; ++p) {
    if (*p < '0' || *p > '9')
      return false;
    if (val > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
      return false;
    val = val * 10 + (uint64_t) (*p - '0');
  }
  *n = val;
  return true;
}

static int
store_list (void *store, void (*found) (void *opaque, uint64_t n), void *opaque)
{
  struct file_volume *v = store;
  struct dirent *d;
  DIR *dir;
  int fd;

  fd = openat (v->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd == -1 || (dir = fdopendir (fd)) == NULL) {
    nbdkit_error ("%s: cannot list the directory: %m", v->dirname);
    if (fd >= 0)
      close (fd);
    return -1;
  }
  errno = 0;
  while ((d = readdir (dir)) != NULL) {
    uint64_t n;
    if (parse_chunk_name (v, d->d_name, &n))
      found (opaque, n);
    errno = 0;
  }
  if (errno != 0) {
    nbdkit_error ("%s: readdir: %m", v->dirname);
    closedir (dir);
    return -1;
  }
  closedir (dir);
  return 0;
}

const struct chunk_store_ops file_store_ops = {
  .partial_write = true,
  .read = store_read,
  .write = store_write,
  .remove = store_remove,
  .punch = store_punch,
  .extents = store_extents,
  .prefetch = store_prefetch,
  .sync = store_sync,
  .list = store_list,
};
