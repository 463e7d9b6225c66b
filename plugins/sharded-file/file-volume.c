/* shardkit sharded-file: open, create and lock one volume in a directory.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "fd-cache.h"
#include "file-store.h"
#include "file-volume.h"
#include "overlay-store.h"
#include "volume-chain.h"
#include "volume-name.h"

#define META_NAME_MAX (VOLUME_NAME_MAX + 16)

static void
meta_file_name (const char *name, char *buf, size_t len)
{
  snprintf (buf, len, "%s.meta", name);
}

/* Read the whole of a small file into BUF (LEN bytes at most).  Returns the
 * number of bytes, or -1.  A file larger than LEN gives LEN+1... so the
 * caller can tell "too big" from "exactly LEN".
 */
static ssize_t
read_small_file (int fd, char *buf, size_t len)
{
  size_t got = 0;

  while (got <= len) {
    ssize_t r = pread (fd, buf + got, len + 1 - got, (off_t) got);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0)
      break;
    got += (size_t) r;
  }
  return (ssize_t) got;
}

static int
parse_meta_fd (int fd, const char *dirname, const char *name,
               struct volume_meta *m)
{
  char buf[VOLUME_META_MAX_BYTES + 1];
  char why[256];
  struct stat st;
  ssize_t len;

  /* Opened with O_NONBLOCK so that a FIFO cannot hang us; refuse it and
   * anything else that is not a plain file.
   */
  if (fstat (fd, &st) == -1) {
    nbdkit_error ("%s/%s.meta: fstat: %m", dirname, name);
    return -1;
  }
  if (!S_ISREG (st.st_mode)) {
    nbdkit_error ("%s/%s.meta: not a regular file", dirname, name);
    errno = EIO;
    return -1;
  }

  len = read_small_file (fd, buf, VOLUME_META_MAX_BYTES);
  if (len == -1) {
    nbdkit_error ("%s/%s.meta: read: %m", dirname, name);
    return -1;
  }
  if (volume_meta_parse (buf, (size_t) len, m, why, sizeof why) == -1) {
    /* A format this shardkit does not know is not damage. */
    bool newer = strncmp (why, "version ", 8) == 0 &&
      strstr (why, "a newer shardkit") != NULL;
    nbdkit_error ("%s/%s.meta: %s: %s", dirname, name,
                  newer ? "volume metadata of a newer format" :
                  "corrupt volume metadata", why);
    errno = EIO;
    return -1;
  }
  return 0;
}

/* Write *M as NAME.meta atomically: a temporary file, synced, then
 * linked to its final name (which fails rather than replacing a volume
 * made meanwhile by someone else) or, with REPLACE, renamed over it;
 * then the directory synced.  Returns 1 if written, 0 if (without
 * REPLACE) a volume of that name exists already, -1 after nbdkit_error.
 */
static int
write_meta (int dirfd, const char *dirname, const char *name,
            const struct volume_meta *m, bool replace)
{
  char tmpname[META_NAME_MAX + 32], fname[META_NAME_MAX];
  CLEANUP_FREE char *text = NULL;
  size_t len, done = 0;
  int fd, r = -1;

  if ((text = volume_meta_format (m)) == NULL) {
    nbdkit_error ("%s: cannot make metadata for volume '%s': %m",
                  dirname, name);
    return -1;
  }
  len = strlen (text);
  meta_file_name (name, fname, sizeof fname);
  snprintf (tmpname, sizeof tmpname, ".%s.tmp.%ld", fname, (long) getpid ());

  fd = openat (dirfd, tmpname,
               O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd == -1) {
    nbdkit_error ("%s/%s: create: %m", dirname, tmpname);
    return -1;
  }
  while (done < len) {
    ssize_t w = write (fd, text + done, len - done);
    if (w == -1) {
      if (errno == EINTR)
        continue;
      nbdkit_error ("%s/%s: write: %m", dirname, tmpname);
      goto out;
    }
    done += (size_t) w;
  }
  if (fsync (fd) == -1) {
    nbdkit_error ("%s/%s: fsync: %m", dirname, tmpname);
    goto out;
  }
  if (replace) {
    if (renameat (dirfd, tmpname, dirfd, fname) == -1) {
      nbdkit_error ("%s/%s: rename: %m", dirname, fname);
      goto out;
    }
  }
  else if (linkat (dirfd, tmpname, dirfd, fname, 0) == -1) {
    if (errno == EEXIST)
      r = 0;                    /* created meanwhile: checked by the caller */
    else
      nbdkit_error ("%s/%s: link: %m", dirname, fname);
    goto out;
  }
  if (fsync (dirfd) == -1) {
    nbdkit_error ("%s: fsync: %m", dirname);
    goto out;
  }
  nbdkit_debug ("%s volume %s in %s: %" PRIu64 " bytes, chunk size %"
                PRIu32 ", uuid %s", replace ? "rewrote" : "created",
                name, dirname, m->size, m->chunk_size, m->uuid);
  r = 1;
 out:
  close (fd);
  unlinkat (dirfd, tmpname, 0);
  return r;
}

/* Create volume NAME: write_meta of fresh metadata. */
static int
create_meta (int dirfd, const char *dirname, const char *name,
             uint64_t size, uint32_t chunk_size)
{
  struct volume_meta m;

  if (volume_meta_init (&m, size, chunk_size) == -1) {
    nbdkit_error ("%s: cannot make metadata for volume '%s': %m",
                  dirname, name);
    return -1;
  }
  return write_meta (dirfd, dirname, name, &m, false);
}

/* Open NAME.meta, creating the volume first if asked to. */
static int
open_meta (int dirfd, const char *dirname, const char *name,
           const struct volume_create *create)
{
  char fname[META_NAME_MAX];
  int fd;

  meta_file_name (name, fname, sizeof fname);
  fd = openat (dirfd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd == -1 && errno == ENOENT && create && create->size) {
    uint32_t cs = create->chunk_size ? create->chunk_size : CHUNK_SIZE_DEFAULT;
    if (create_meta (dirfd, dirname, name, create->size, cs) == -1)
      return -1;
    fd = openat (dirfd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  }
  if (fd == -1) {
    if (errno == ENOENT)
      nbdkit_error ("volume '%s' does not exist in %s%s", name, dirname,
                    create && create->size == 0 ?
                    " (give size= to create it)" : "");
    else
      nbdkit_error ("%s/%s: open: %m", dirname, fname);
    return -1;
  }
  return fd;
}

static int
lock_meta (int fd, const char *dirname, const char *name, int how)
{
  if (flock (fd, how | LOCK_NB) == -1) {
    if (errno == EWOULDBLOCK)
      nbdkit_error ("volume '%s' in %s is in use by another process "
                    "(it holds the volume's lock%s)", name, dirname,
                    how == LOCK_EX ? "" : " for writing");
    else
      nbdkit_error ("%s/%s.meta: flock: %m", dirname, name);
    return -1;
  }
  return 0;
}

int
file_volume_create (int dirfd, const char *dirname, const char *name,
                    uint64_t size, uint32_t chunk_size)
{
  struct volume_meta m;

  if (volume_meta_init (&m, size, chunk_size) == -1) {
    nbdkit_error ("%s: cannot make metadata for volume '%s': %m",
                  dirname, name);
    return -1;
  }
  return file_volume_create_meta (dirfd, dirname, name, &m);
}

int
file_volume_read_meta (int dirfd, const char *dirname, const char *name,
                       struct volume_meta *m)
{
  char fname[META_NAME_MAX];
  CLEANUP_CLOSE int fd = -1;

  meta_file_name (name, fname, sizeof fname);
  fd = openat (dirfd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd == -1) {
    if (errno == ENOENT)
      return 0;
    nbdkit_error ("%s/%s: open: %m", dirname, fname);
    return -1;
  }
  return parse_meta_fd (fd, dirname, name, m) == -1 ? -1 : 1;
}

int
file_volume_rewrite_meta (struct file_volume *v, const struct volume_meta *m)
{
  if (v->readonly) {
    nbdkit_error ("volume '%s' is open read-only", v->name);
    errno = EROFS;
    return -1;
  }
  return write_meta (v->dirfd, v->dirname, v->name, m, true) == 1 ? 0 : -1;
}

int
file_volume_remove_meta (struct file_volume *v)
{
  char fname[META_NAME_MAX];

  meta_file_name (v->name, fname, sizeof fname);
  if (unlinkat (v->dirfd, fname, 0) == -1) {
    nbdkit_error ("%s/%s: unlink: %m", v->dirname, fname);
    return -1;
  }
  if (fsync (v->dirfd) == -1) {
    nbdkit_error ("%s: fsync: %m", v->dirname);
    return -1;
  }
  return 0;
}

static struct file_volume *open_layer (int dirfd, const char *dirname,
                                       const char *name, bool readonly,
                                       unsigned flags,
                                       const struct volume_create *create,
                                       size_t max_open_files,
                                       struct volume_chain *chain);

int
file_volume_create_meta (int dirfd, const char *dirname, const char *name,
                         const struct volume_meta *m)
{
  const char *why;
  int r;

  if (!volume_name_is_valid (name, &why)) {
    nbdkit_error ("%s", why);
    errno = EINVAL;
    return -1;
  }
  r = write_meta (dirfd, dirname, name, m, false);
  if (r == 0) {
    nbdkit_error ("volume '%s' already exists in %s", name, dirname);
    errno = EEXIST;
    return -1;
  }
  return r == 1 ? 0 : -1;
}

int
file_volume_prepare (int dirfd, const char *dirname, const char *name,
                     const struct volume_create *create)
{
  CLEANUP_CLOSE int fd = -1;
  struct volume_meta m;

  fd = open_meta (dirfd, dirname, name, create);
  if (fd == -1)
    return -1;
  if (parse_meta_fd (fd, dirname, name, &m) == -1 ||
      volume_check_create (name, dirname, &m, create) == -1)
    return -1;
  /* A shared lock fails only if some process has the volume read-write:
   * say so now rather than at the first client.  Closing fd drops it.
   */
  if (lock_meta (fd, dirname, name, LOCK_SH) == -1)
    return -1;
  /* A broken chain of bases, too. */
  if (m.base[0]) {
    struct volume_chain chain;
    struct file_volume *v;

    volume_chain_start (&chain, name);
    v = open_layer (dirfd, dirname, name, true,
                    VOLUME_OPEN_SERVE | VOLUME_OPEN_META_ONLY, NULL, 1,
                    &chain);
    if (v == NULL)
      return -1;
    file_volume_close (v);
  }
  return 0;
}


/* Open V's base (v->meta.base=), and the overlay of V over it. */
static int
open_base (struct file_volume *v, unsigned flags, size_t max_open_files,
           struct volume_chain *chain)
{
  const struct volume_meta *m = &v->meta;

  if (volume_chain_push (chain, v->dirname, v->name, m->base) == -1)
    return -1;
  v->base = open_layer (v->dirfd, v->dirname, m->base, true,
                        VOLUME_OPEN_SERVE | (flags & VOLUME_OPEN_META_ONLY),
                        NULL, max_open_files, chain);
  return volume_chain_attach (chain, v->dirname, v->name, m,
                              v->base ? &v->base->meta : NULL,
                              v->base ? &v->base->store : NULL,
                              flags, &v->store, &v->overlay);
}

/* The volume tool replaces NAME.meta (snapshot, resize) under the lock
 * of the old file.  A file opened before the replacement and locked
 * after it is no longer the volume's metadata: refuse rather than
 * serve the old generation (which a snapshot has frozen meanwhile).
 */
static int
check_still_current (struct file_volume *v)
{
  char fname[META_NAME_MAX];
  struct stat a, b;

  meta_file_name (v->name, fname, sizeof fname);
  if (fstat (v->meta_fd, &a) == -1 ||
      fstatat (v->dirfd, fname, &b, AT_SYMLINK_NOFOLLOW) == -1) {
    nbdkit_error ("%s/%s: stat: %m", v->dirname, fname);
    return -1;
  }
  if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    nbdkit_error ("volume '%s' in %s: its metadata was replaced while it "
                  "was being opened (a snapshot or resize): open it again",
                  v->name, v->dirname);
    errno = EAGAIN;
    return -1;
  }
  return 0;
}

static struct file_volume *
open_layer (int dirfd, const char *dirname, const char *name, bool readonly,
            unsigned flags, const struct volume_create *create,
            size_t max_open_files, struct volume_chain *chain)
{
  struct file_volume *v;
  const char *why;

  if (!volume_name_is_valid (name, &why)) {
    nbdkit_error ("export name refused: %s", why);
    errno = EINVAL;
    return NULL;
  }
  v = calloc (1, sizeof *v);
  if (v == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  v->meta_fd = -1;
  pthread_mutex_init (&v->sync_lock, NULL);
  v->dirfd = dirfd;
  v->dirname = dirname;
  v->readonly = readonly;
  v->name = strdup (name);
  if (v->name == NULL) {
    nbdkit_error ("strdup: %m");
    goto err;
  }

  if (volume_chain_in_base (chain)) {
    /* A base: name the volume that needs it when it is missing. */
    char fname[META_NAME_MAX];
    meta_file_name (name, fname, sizeof fname);
    if (faccessat (dirfd, fname, F_OK, AT_SYMLINK_NOFOLLOW) == -1 &&
        errno == ENOENT) {
      volume_chain_missing (chain, dirname, name);
      goto err;
    }
  }
  /* Parsed before it is locked (the file is replaced by rename, never
   * rewritten in place, so its contents are those under the lock): a
   * server takes a snapshot's lock shared however it is asked to serve
   * it, so that the servers of the snapshot and of its clones and
   * volume can all run at once.
   */
  v->meta_fd = open_meta (dirfd, dirname, name, readonly ? NULL : create);
  if (v->meta_fd == -1 ||
      parse_meta_fd (v->meta_fd, dirname, name, &v->meta) == -1)
    goto err;
  if (v->meta.read_only && (flags & VOLUME_OPEN_SERVE))
    readonly = true;
  if (lock_meta (v->meta_fd, dirname, name, readonly ? LOCK_SH : LOCK_EX) == -1 ||
      check_still_current (v) == -1 ||
      volume_check_create (name, dirname, &v->meta, create) == -1)
    goto err;

  /* A snapshot is never written: its chunks are another volume's
   * frozen generation.
   */
  if (v->meta.read_only)
    v->readonly = true;
  if (v->meta.data[0])
    volume_chunk_stem (v->meta.data, v->meta.data_generation,
                       v->stem, sizeof v->stem);
  else
    volume_chunk_stem (name, v->meta.generation, v->stem, sizeof v->stem);

  v->fds = fd_cache_new (max_open_files, file_store_open_chunk, v);
  if (v->fds == NULL) {
    nbdkit_error ("fd cache: %m");
    goto err;
  }
  v->store = (struct chunk_store) { .ops = &file_store_ops, .opaque = v };
  if (v->meta.base[0] && !(flags & VOLUME_OPEN_OWN_CHUNKS) &&
      open_base (v, flags, max_open_files, chain) == -1)
    goto err;
  return v;

 err:
  file_volume_close (v);
  return NULL;
}

struct file_volume *
file_volume_open_location (int dirfd, const char *dirname, const char *name,
                           bool readonly, unsigned flags,
                           const struct volume_create *create,
                           size_t max_open_files)
{
  struct volume_chain chain;

  volume_chain_start (&chain, name);
  return open_layer (dirfd, dirname, name, readonly, flags, create,
                     max_open_files, &chain);
}

struct file_volume *
file_volume_open (int dirfd, const char *dirname, const char *name,
                  bool readonly, unsigned flags,
                  const struct volume_create *create, size_t max_open_files)
{
  struct file_volume *v;

  v = file_volume_open_location (dirfd, dirname, name, readonly, flags,
                                 create, max_open_files);
  if (v == NULL)
    return NULL;
  if (flags & VOLUME_OPEN_META_ONLY)
    return v;
  v->engine = chunk_engine_new (name, v->store.ops, v->store.opaque,
                                v->meta.size, v->meta.chunk_size);
  if (v->engine == NULL) {
    file_volume_close (v);
    return NULL;
  }
  return v;
}

void
file_volume_close (struct file_volume *v)
{
  if (v == NULL)
    return;
  chunk_engine_free (v->engine);
  overlay_store_free (v->overlay);
  file_volume_close (v->base);
  fd_cache_free (v->fds);
  if (v->meta_fd >= 0)
    close (v->meta_fd);         /* drops the lock */
  pthread_mutex_destroy (&v->sync_lock);
  free (v->name);
  free (v);
}

int
file_volume_probe (struct file_volume *v)
{
  char fname[META_NAME_MAX + 32];
  struct stat st;
  int fd, r = 0;

  /* Its metadata is still there, and a file can be made beside it. */
  meta_file_name (v->name, fname, sizeof fname);
  if (fstatat (v->dirfd, fname, &st, AT_SYMLINK_NOFOLLOW) == -1)
    return -1;
  snprintf (fname, sizeof fname, ".%s.probe.%ld", v->name, (long) getpid ());
  fd = openat (v->dirfd, fname,
               O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd == -1)
    return -1;
  close (fd);
  if (unlinkat (v->dirfd, fname, 0) == -1)
    return -1;
  /* A failed sync poisons the volume (and its descriptor cache) for
   * good (file-volume.h, fd-cache.h): as a location of a set it is
   * caught up in full instead, so it may serve again.
   */
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&v->sync_lock);
    if (fd_cache_forget_lost (v->fds))
      r = 1;
    if (v->sync_failed) {
      v->sync_failed = 0;
      r = 1;
    }
  }
  return r;
}
