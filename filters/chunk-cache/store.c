/* shardkit: chunk-cache filter, the files of a cache.
 * GPL-3.0-or-later.
 *
 * With cache-dir=DIR a cache is three files:
 *
 *   DIR/cache.meta   key=value text: export name, size, block size, the
 *                    boot id of the machine that last opened it and
 *                    whether it was closed cleanly.  Replaced atomically.
 *   DIR/cache.index  one byte per block: absent, clean, dirty, or
 *                    dirty-synced (see below).  Updated with pwrite.
 *   DIR/cache.data   the blocks at their own offsets (a sparse file);
 *                    evicted blocks are punched out.  After the last
 *                    block comes a tail (see data_check).
 *
 * Crash safety.  The data of a block is always written before the index
 * byte that makes it count, and an index byte is cleared before its
 * data is punched out, so after a crash of the process (kill -9) the
 * page cache holds a consistent pair and everything is trusted: same
 * boot id.  After a crash of the machine (another boot id, not closed
 * cleanly) only what a flush with durability=local fsynced can be
 * trusted: a flush fsyncs the data, then turns the index bytes of the
 * dirty blocks it covered into IDX_DIRTY_SYNCED and fsyncs the index.
 * Such blocks are written back; plain IDX_DIRTY blocks (writes never
 * flushed, which a disk may lose too) and all clean blocks (cheap to
 * fetch again) are dropped.
 *
 * Every file in cache-dir must be a regular file of its own.  Whoever
 * can write to the directory could plant a symbolic link there (to a
 * disk image, say), and following it would truncate, zero and overwrite
 * its target; a FIFO would hang the open or the reads.  So no name there
 * is ever followed (O_NOFOLLOW, O_EXCL for the temporary name), no open
 * blocks (O_NONBLOCK), and what is opened must be a regular file
 * (open_in_dir); anything else is refused at start-up.
 *
 * Without cache-dir the data lives in an anonymous temporary file in
 * $TMPDIR and there is no index.
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
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "store.h"

#define META_FORMAT "shardkit-chunk-cache"
#define META_VERSION 1

static void
boot_id (char *buf, size_t n)
{
  CLEANUP_CLOSE int fd = open ("/proc/sys/kernel/random/boot_id",
                               O_RDONLY | O_CLOEXEC);
  ssize_t r = fd >= 0 ? read (fd, buf, n - 1) : -1;

  if (r <= 0)
    r = 0;
  buf[r] = '\0';
  buf[strcspn (buf, "\n")] = '\0';
}

/* The files of a cache-dir (the temporary name of cache.meta is not
 * here: it is removed before it is created, see meta_write).
 */
static const char *const cache_files[] = {
  "cache.lock", "cache.meta", "cache.index", "cache.data", NULL
};

/* What a file that is not a regular file is, for error messages. */
static const char *
file_kind (mode_t mode)
{
  if (S_ISLNK (mode))
    return "a symbolic link";
  if (S_ISFIFO (mode))
    return "a FIFO";
  if (S_ISDIR (mode))
    return "a directory";
  if (S_ISSOCK (mode))
    return "a socket";
  if (S_ISCHR (mode) || S_ISBLK (mode))
    return "a device";
  return "something else";
}

static int
refuse_file (const char *dir, const char *name, mode_t mode)
{
  nbdkit_error ("cache-dir=%s: %s is %s, not a regular file: refusing to "
                "use this directory", dir, name, file_kind (mode));
  errno = EINVAL;
  return -1;
}

/* A cache file with another name elsewhere (a hard link, which whoever
 * can write the directory may make to any file of theirs or, without
 * protected_hardlinks, of others on the same file system) would have
 * that file truncated, zeroed and overwritten like a symbolic link's
 * target.  Refused the same way.
 */
static int
refuse_links (const char *dir, const char *name, const struct stat *st)
{
  if (st->st_nlink <= 1)
    return 0;
  nbdkit_error ("cache-dir=%s: %s has %ju hard links (another name "
                "elsewhere would be overwritten with it): refusing to use "
                "this directory", dir, name, (uintmax_t) st->st_nlink);
  errno = EINVAL;
  return -1;
}

/* Open NAME in the cache directory DIR_FD (DIR for messages) with FLAGS
 * (O_CREAT to create it), never following a symbolic link and never
 * blocking, and only if it is a regular file: see the top of this file.
 * Returns the descriptor, in blocking mode, or -1 with errno set and an
 * error logged; a missing NAME without O_CREAT is ENOENT, not logged.
 */
static int
open_in_dir (int dir_fd, const char *dir, const char *name, int flags)
{
  struct stat st;
  int fd, fl, e;

  /* Refuse what is plainly no regular file before opening it: opening
   * a device node may do something.  The fstat below is what decides.
   */
  if (fstatat (dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      !S_ISREG (st.st_mode))
    return refuse_file (dir, name, st.st_mode);
  fd = openat (dir_fd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
               0644);
  if (fd == -1) {
    e = errno;
    if (e == ENOENT && !(flags & O_CREAT))
      return -1;
    /* Replaced by something else since the fstatat (O_NOFOLLOW fails
     * with ELOOP on a link): say what is there.
     */
    if (fstatat (dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISREG (st.st_mode))
      return refuse_file (dir, name, st.st_mode);
    errno = e;
    nbdkit_error ("cache-dir=%s: %s: %m", dir, name);
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    nbdkit_error ("cache-dir=%s: fstat: %s: %m", dir, name);
    goto fail;
  }
  if (!S_ISREG (st.st_mode)) {
    refuse_file (dir, name, st.st_mode);
    goto fail;
  }
  if (refuse_links (dir, name, &st) == -1)
    goto fail;
  /* O_NONBLOCK was only for the open: I/O to the cache files blocks. */
  fl = fcntl (fd, F_GETFL);
  if (fl == -1 || fcntl (fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
    nbdkit_error ("cache-dir=%s: fcntl: %s: %m", dir, name);
    goto fail;
  }
  return fd;

 fail:
  e = errno;
  close (fd);
  errno = e;
  return -1;
}

/* At start-up, before anything in cache-dir is opened or created: one
 * clear error for a file there that is not a regular file, even when
 * the directory holds no cache yet (its files are then only opened by
 * the first client).
 */
int
store_check_dir (const char *dir)
{
  CLEANUP_CLOSE int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  size_t i;

  if (dir_fd == -1) {
    nbdkit_error ("cache-dir=%s: %m", dir);
    return -1;
  }
  for (i = 0; cache_files[i]; ++i) {
    if (fstatat (dir_fd, cache_files[i], &st, AT_SYMLINK_NOFOLLOW) == -1) {
      if (errno == ENOENT)
        continue;
      nbdkit_error ("cache-dir=%s: %s: %m", dir, cache_files[i]);
      return -1;
    }
    if (!S_ISREG (st.st_mode))
      return refuse_file (dir, cache_files[i], st.st_mode);
    if (refuse_links (dir, cache_files[i], &st) == -1)
      return -1;
  }
  return 0;
}

/* The directory of a cache other than the default export's: DIR/exports
 * /SUB, created if missing.  Neither name may be a symbolic link (a link
 * planted there would send the cache files elsewhere) or anything but a
 * directory.  Returns the path (to free), or NULL with an error logged.
 */
char *
store_make_dir (const char *dir, const char *sub)
{
  const char *names[2] = { "exports", sub };
  CLEANUP_CLOSE int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char *path = NULL;
  size_t i;

  if (fd == -1) {
    nbdkit_error ("cache-dir=%s: %m", dir);
    return NULL;
  }
  for (i = 0; i < 2; ++i) {
    struct stat st;
    int sub_fd;

    if (mkdirat (fd, names[i], 0755) == -1 && errno != EEXIST) {
      nbdkit_error ("cache-dir=%s: creating %s%s%s: %m", dir,
                    i ? "exports/" : "", names[i], "");
      return NULL;
    }
    if (fstatat (fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == -1) {
      nbdkit_error ("cache-dir=%s: %s: %m", dir, names[i]);
      return NULL;
    }
    if (!S_ISDIR (st.st_mode)) {
      nbdkit_error ("cache-dir=%s: %s%s is %s, not a directory: refusing "
                    "to use it", dir, i ? "exports/" : "", names[i],
                    file_kind (st.st_mode));
      errno = EINVAL;
      return NULL;
    }
    sub_fd = openat (fd, names[i],
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub_fd == -1) {
      nbdkit_error ("cache-dir=%s: %s: %m", dir, names[i]);
      return NULL;
    }
    close (fd);
    fd = sub_fd;
  }
  if (asprintf (&path, "%s/exports/%s", dir, sub) == -1) {
    nbdkit_error ("asprintf: %m");
    return NULL;
  }
  return path;
}

struct meta {
  bool tail;                    /* data-tail=1: cache.data has its tail */
  char export[256];
  char desc[512];
  uint64_t size;
  uint32_t bs;
  char boot[64];
  bool clean;
};

/* Returns 1 if there is a meta file, 0 if none, -1 on error. */
static int
meta_read (int dir_fd, const char *dir, struct meta *m)
{
  /* A FIFO put there must not hang the start-up, nor a link to a file
   * elsewhere pass for the header: see open_in_dir.
   */
  CLEANUP_CLOSE int fd = open_in_dir (dir_fd, dir, "cache.meta", O_RDONLY);
  char buf[4096], *line, *save;
  ssize_t r;
  bool fmt = false;

  memset (m, 0, sizeof *m);
  if (fd == -1)
    return errno == ENOENT ? 0 : -1;
  r = read (fd, buf, sizeof buf - 1);
  if (r < 0) {
    nbdkit_error ("cache-dir=%s: cache.meta: %m", dir);
    return -1;
  }
  buf[r] = '\0';
  for (line = strtok_r (buf, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    char *eq = strchr (line, '=');
    if (line[0] == '#' || eq == NULL)
      continue;
    *eq++ = '\0';
    if (strcmp (line, "format") == 0)
      fmt = strcmp (eq, META_FORMAT) == 0;
    else if (strcmp (line, "export") == 0)
      snprintf (m->export, sizeof m->export, "%s", eq);
    else if (strcmp (line, "plugin-export") == 0)
      snprintf (m->desc, sizeof m->desc, "%s", eq);
    else if (strcmp (line, "size") == 0)
      m->size = strtoull (eq, NULL, 10);
    else if (strcmp (line, "block-size") == 0)
      m->bs = strtoul (eq, NULL, 10);
    else if (strcmp (line, "boot-id") == 0)
      snprintf (m->boot, sizeof m->boot, "%s", eq);
    else if (strcmp (line, "state") == 0)
      m->clean = strcmp (eq, "clean") == 0;
    else if (strcmp (line, "data-tail") == 0)
      m->tail = strcmp (eq, "1") == 0;
  }
  if (!fmt || m->size == 0 || m->bs == 0) {
    nbdkit_error ("cache-dir=%s: cache.meta is not a chunk-cache header "
                  "(refusing to use this directory)", dir);
    errno = EINVAL;
    return -1;
  }
  return 1;
}

/* The one line of a description that cache.meta keeps. */
static void
desc_line (char *buf, size_t n, const char *desc)
{
  snprintf (buf, n, "%s", desc ? desc : "");
  buf[strcspn (buf, "\n")] = '\0';
}

bool
store_same_volume (const char *a, const char *b)
{
  char la[512], lb[512];

  desc_line (la, sizeof la, a);
  desc_line (lb, sizeof lb, b);
  return la[0] == '\0' || lb[0] == '\0' || strcmp (la, lb) == 0;
}

static int
meta_write (struct cache *c, bool clean)
{
  char buf[2048], boot[64], desc[512];
  int fd, len;

  boot_id (boot, sizeof boot);
  /* One line: the plugin's description of what it serves. */
  desc_line (desc, sizeof desc, c->desc);
  len = snprintf (buf, sizeof buf,
                  "# shardkit chunk-cache: do not edit\n"
                  "format=" META_FORMAT "\nversion=%d\nexport=%s\n"
                  "plugin-export=%s\n"
                  "size=%" PRIu64 "\nblock-size=%" PRIu32 "\n"
                  "boot-id=%s\nstate=%s\ndata-tail=1\n",
                  META_VERSION, c->name, desc, c->size, c->bs, boot,
                  clean ? "clean" : "open");
  /* The temporary name may be left over from a crash, or planted as a
   * link to a file elsewhere: remove whatever is there (that removes a
   * link, never its target) and create the file afresh.  O_EXCL never
   * follows a link, nor opens what was put there in between.
   */
  if (unlinkat (c->dir_fd, "cache.meta.tmp", 0) == -1 && errno != ENOENT) {
    nbdkit_error ("cache-dir=%s: removing cache.meta.tmp: %m", c->dir);
    return -1;
  }
  fd = openat (c->dir_fd, "cache.meta.tmp",
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd == -1 || write (fd, buf, len) != len || fsync (fd) == -1) {
    nbdkit_error ("cache-dir=%s: writing cache.meta: %m", c->dir);
    if (fd >= 0)
      close (fd);
    return -1;
  }
  close (fd);
  /* rename replaces the name cache.meta, whatever it is, not what a link
   * there points to.
   */
  if (renameat (c->dir_fd, "cache.meta.tmp", c->dir_fd, "cache.meta") == -1 ||
      fsync (c->dir_fd) == -1) {
    nbdkit_error ("cache-dir=%s: renaming cache.meta: %m", c->dir);
    return -1;
  }
  return 0;
}

/* What a cache-dir belongs to, for start-up checks.  Returns 1 and fills
 * in the fields when it has a header, 0 when it is new.
 */
int
store_read_meta_name (const char *dir, char **name, uint64_t *size,
                      uint32_t *bs)
{
  CLEANUP_CLOSE int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct meta m;
  int r;

  if (dir_fd == -1) {
    nbdkit_error ("cache-dir=%s: %m", dir);
    return -1;
  }
  r = meta_read (dir_fd, dir, &m);
  if (r == 1) {
    *name = strdup (m.export);
    if (*name == NULL) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
    *size = m.size;
    *bs = m.bs;
  }
  return r;
}

static int
open_tmpfile (struct cache *c)
{
  const char *tmp = getenv ("TMPDIR");
  CLEANUP_FREE char *template = NULL;

  if (tmp == NULL || *tmp == '\0')
    tmp = "/var/tmp";
#ifdef O_TMPFILE
  c->data_fd = open (tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (c->data_fd >= 0)
    return 0;
#endif
  if (asprintf (&template, "%s/chunk-cache.XXXXXX", tmp) == -1) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  c->data_fd = mkostemp (template, O_CLOEXEC);
  if (c->data_fd == -1) {
    nbdkit_error ("%s: %m", template);
    return -1;
  }
  unlink (template);
  return 0;
}

/* Load the index into the block array (allocated by the caller, all
 * absent) applying the trust rules described at the top.
 */
static int
load_index (struct cache *c, bool trust_all)
{
  CLEANUP_FREE uint8_t *idx = malloc (c->nblocks);
  ssize_t r;
  uint64_t i, dropped = 0, dirty = 0, present = 0;

  if (idx == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  r = pread (c->index_fd, idx, c->nblocks, 0);
  if (r < 0) {
    nbdkit_error ("cache-dir=%s: cache.index: %m", c->dir);
    return -1;
  }
  if ((uint64_t) r < c->nblocks) {
    nbdkit_error ("cache-dir=%s: cache.index is truncated (%zd of %" PRIu64
                  " bytes): refusing to use this directory", c->dir, r,
                  c->nblocks);
    errno = EINVAL;
    return -1;
  }
  for (i = 0; i < c->nblocks; ++i)
    if (idx[i] > IDX_DIRTY_SYNCED) {
      nbdkit_error ("cache-dir=%s: cache.index is corrupt (byte %u for "
                    "block %" PRIu64 "): refusing to use this directory",
                    c->dir, idx[i], i);
      errno = EINVAL;
      return -1;
    }
  for (i = 0; i < c->nblocks; ++i) {
    uint8_t v = idx[i];
    if (!trust_all && (v == IDX_CLEAN || v == IDX_DIRTY))
      v = IDX_ABSENT, dropped++;
    c->b[i].idx = v;
    if (v != idx[i]) {
      if (store_set_idx (c, i, v) == -1)
        return -1;
      store_punch (c, i);
    }
    if (v == IDX_CLEAN) {
      c->b[i].state = B_CLEAN;
      present++;
    }
    else if (v == IDX_DIRTY || v == IDX_DIRTY_SYNCED) {
      c->b[i].state = B_DIRTY;
      present++;
      dirty++;
    }
  }
  nbdkit_debug ("chunk-cache: %s: index loaded: %" PRIu64 " blocks cached, "
                "%" PRIu64 " dirty (to write back), %" PRIu64 " dropped "
                "after a machine crash",
                c->dir, present, dirty, dropped);
  return 0;
}

static int store_open_files (struct cache *c);

/* The tail of cache.data: TAIL_LEN bytes past the last block, starting
 * with TAIL_MAGIC.  Nothing writes there after creation, so a file cut
 * short loses its tail for good, even if a write into a block past the
 * cut extends it again (leaving holes that would read as zeros).  One
 * small pread then tells whether the file is whole, where an fstat per
 * client write could only see a file that is short right now.  Older
 * caches have no tail (cache.meta without data-tail=1): it is added when
 * they are opened.
 */
#define TAIL_LEN 4096
static const char tail_magic[16] = "shardkit-tail-1";

static bool
tail_intact (struct cache *c)
{
  char buf[sizeof tail_magic];

  return pread (c->data_fd, buf, sizeof buf, (off_t) c->size) ==
    (ssize_t) sizeof buf && memcmp (buf, tail_magic, sizeof buf) == 0;
}

static int
write_tail (struct cache *c)
{
  if (ftruncate (c->data_fd, c->size + TAIL_LEN) == -1 ||
      pwrite (c->data_fd, tail_magic, sizeof tail_magic, (off_t) c->size) !=
      (ssize_t) sizeof tail_magic) {
    if (errno == 0)
      errno = ENOSPC;
    nbdkit_error ("%s: cache.data: writing its tail: %m",
                  c->dir ? c->dir : "chunk-cache");
    return -1;
  }
  return 0;
}

/* Files that do not match the header were cut short or replaced: the
 * blocks they claim would be served (or written back) as zeros.  And an
 * index with blocks in it but no header lost its header: starting afresh
 * would silently drop its dirty data.  Refuse both.
 */
static int
check_files (struct cache *c, bool have_meta, bool have_tail)
{
  struct stat si, sd;

  if (fstat (c->index_fd, &si) == -1 || fstat (c->data_fd, &sd) == -1) {
    nbdkit_error ("cache-dir=%s: fstat: %m", c->dir);
    return -1;
  }
  if (!S_ISREG (si.st_mode) || !S_ISREG (sd.st_mode)) {
    nbdkit_error ("cache-dir=%s: cache.index or cache.data is not a "
                  "regular file: refusing to use this directory", c->dir);
    errno = EINVAL;
    return -1;
  }
  if (have_meta) {
    /* A cache from before the tail may have it already (added just
     * before a crash, cache.meta not yet rewritten).
     */
    bool data_ok = (uint64_t) sd.st_size == c->size + TAIL_LEN ?
      tail_intact (c) : !have_tail && (uint64_t) sd.st_size == c->size;
    if ((uint64_t) si.st_size != c->nblocks || !data_ok) {
      nbdkit_error ("cache-dir=%s: cache.index has %" PRIu64 " bytes (needs "
                    "%" PRIu64 ") and cache.data %" PRIu64 " (needs %" PRIu64
                    " and its tail): truncated or replaced, refusing to use "
                    "this directory", c->dir, (uint64_t) si.st_size,
                    c->nblocks, (uint64_t) sd.st_size, c->size + TAIL_LEN);
      errno = EINVAL;
      return -1;
    }
  }
  else if (si.st_size > 0) {
    CLEANUP_FREE uint8_t *idx = malloc (si.st_size);
    ssize_t r, i;

    if (idx == NULL) {
      nbdkit_error ("malloc: %m");
      return -1;
    }
    r = pread (c->index_fd, idx, si.st_size, 0);
    for (i = 0; i < r; ++i)
      if (idx[i] != IDX_ABSENT) {
        nbdkit_error ("cache-dir=%s: cache.index holds cached blocks but "
                      "cache.meta is missing: refusing to use this "
                      "directory (remove it to start afresh)", c->dir);
        errno = EINVAL;
        return -1;
      }
  }
  return 0;
}

/* Hits are read with pread, not copied out of a mapping of the data
 * file: a mapping is about 10% faster on cached re-reads, but an I/O
 * error of the cache disk, or a cache file cut short or on a full tmpfs,
 * is then SIGBUS, which kills nbdkit with every connection; pread
 * returns the error for the one request.
 */
int
store_open (struct cache *c)
{
  return store_open_files (c);
}

static int
store_open_files (struct cache *c)
{
  struct meta m;
  char boot[64];
  int r;

  c->data_fd = c->index_fd = c->dir_fd = c->lock_fd = -1;
  if (c->dir == NULL) {
    c->persistent = false;
    if (open_tmpfile (c) == -1)
      return -1;
    return write_tail (c);
  }

  c->persistent = true;
  c->dir_fd = open (c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
                    (c->is_default ? 0 : O_NOFOLLOW));
  if (c->dir_fd == -1) {
    nbdkit_error ("cache-dir=%s: %m", c->dir);
    return -1;
  }
  /* One process per cache directory. */
  c->lock_fd = open_in_dir (c->dir_fd, c->dir, "cache.lock",
                           O_RDWR | O_CREAT);
  if (c->lock_fd == -1)
    return -1;
  if (flock (c->lock_fd, LOCK_EX | LOCK_NB) == -1) {
    nbdkit_error ("cache-dir=%s: cannot lock (is another nbdkit using "
                  "it?): %m", c->dir);
    return -1;
  }
  r = meta_read (c->dir_fd, c->dir, &m);
  if (r == -1)
    return -1;
  if (r == 1) {
    /* The plugin's own description names the volume it opened: a plugin
     * that gives the write-back context another volume than the one
     * this cache holds is caught here.
     */
    if (!store_same_volume (m.desc, c->desc)) {
      nbdkit_error ("cache-dir=%s holds the cache of '%s' but the plugin "
                    "now serves '%s': refusing to serve it; use another "
                    "cache-dir", c->dir, m.desc, c->desc);
      errno = EINVAL;
      return -1;
    }
    if (strcmp (m.export, c->name) != 0 || m.size != c->size ||
        m.bs != c->bs) {
      nbdkit_error ("cache-dir=%s holds the cache of export '%s' "
                    "(size %" PRIu64 ", block size %" PRIu32 "), not of "
                    "export '%s' (size %" PRIu64 ", block size %" PRIu32 "): "
                    "refusing to serve it; use another cache-dir",
                    c->dir, m.export, m.size, m.bs,
                    c->name, c->size, c->bs);
      errno = EINVAL;
      return -1;
    }
  }
  /* Both are truncated below when the cache is new: never through a
   * link (see open_in_dir).
   */
  c->index_fd = open_in_dir (c->dir_fd, c->dir, "cache.index",
                             O_RDWR | O_CREAT);
  if (c->index_fd == -1)
    return -1;
  c->data_fd = open_in_dir (c->dir_fd, c->dir, "cache.data",
                            O_RDWR | O_CREAT);
  if (c->data_fd == -1)
    return -1;
  if (check_files (c, r == 1, m.tail) == -1)
    return -1;
  if (r == 0) {
    /* A new cache: start from empty files, then write the header last so
     * that a half-created directory is simply created again.
     */
    if (ftruncate (c->index_fd, 0) == -1 || ftruncate (c->data_fd, 0) == -1) {
      nbdkit_error ("cache-dir=%s: ftruncate: %m", c->dir);
      return -1;
    }
  }
  if (ftruncate (c->index_fd, c->nblocks) == -1) {
    nbdkit_error ("cache-dir=%s: ftruncate: %m", c->dir);
    return -1;
  }
  if (write_tail (c) == -1)
    return -1;
  /* Allocate the index now: a one-byte update that needed a new page of
   * a full disk later would fail (best effort; see store_rewrite_index).
   */
  errno = posix_fallocate (c->index_fd, 0, c->nblocks);
  if (errno)
    nbdkit_debug ("cache-dir=%s: allocating cache.index: %m", c->dir);
  if (r == 1) {
    boot_id (boot, sizeof boot);
    /* Without a boot id a crash of the machine cannot be ruled out. */
    if (load_index (c, m.clean ||
                    (boot[0] && strcmp (boot, m.boot) == 0)) == -1)
      return -1;
    if (fdatasync (c->index_fd) == -1) {
      nbdkit_error ("cache-dir=%s: fdatasync: %m", c->dir);
      return -1;
    }
  }
  return meta_write (c, false);
}

void
store_close (struct cache *c, bool clean)
{
  if (c->persistent && c->data_fd >= 0 && c->index_fd >= 0) {
    /* An index the file is behind on is never marked clean. */
    if (store_rewrite_index (c) == -1)
      nbdkit_error ("cache-dir=%s: cache.index could not be brought up to "
                    "date: not marked clean", c->dir);
    else if (fdatasync (c->data_fd) == -1 || fdatasync (c->index_fd) == -1)
      nbdkit_error ("cache-dir=%s: fdatasync: %m", c->dir);
    else if (clean)
      meta_write (c, true);
  }
  if (c->data_fd >= 0)
    close (c->data_fd);
  if (c->index_fd >= 0)
    close (c->index_fd);
  if (c->lock_fd >= 0)
    close (c->lock_fd);
  if (c->dir_fd >= 0)
    close (c->dir_fd);
  c->data_fd = c->index_fd = c->lock_fd = c->dir_fd = -1;
}

int
store_set_idx (struct cache *c, uint64_t blk, uint8_t v)
{
  if (c->b[blk].idx == IDX_DIRTY_SYNCED && v != IDX_DIRTY_SYNCED)
    c->idx_synced_cleared = true;
  c->b[blk].idx = v;
  if (!c->persistent)
    return 0;
  if (pwrite (c->index_fd, &v, 1, blk) != 1) {
    /* The in-memory byte stays the truth; a durability=local flush
     * must not report success until the file agrees again.
     */
    c->idx_error = true;
    nbdkit_error ("cache-dir=%s: cache.index: %m", c->dir);
    return -1;
  }
  return 0;
}

/* After a failed index write: write the whole index from memory.  Lock
 * held.
 */
int
store_rewrite_index (struct cache *c)
{
  CLEANUP_FREE uint8_t *buf = NULL;
  uint64_t i;
  ssize_t r;

  if (!c->persistent || !c->idx_error)
    return 0;
  buf = malloc (c->nblocks);
  if (buf == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  for (i = 0; i < c->nblocks; ++i)
    buf[i] = c->b[i].idx;
  r = pwrite (c->index_fd, buf, c->nblocks, 0);
  if (r != (ssize_t) c->nblocks) {
    if (r >= 0)
      errno = ENOSPC;
    nbdkit_error ("cache-dir=%s: rewriting cache.index: %m", c->dir);
    return -1;
  }
  c->idx_error = false;
  return 0;
}

int
store_sync_data (struct cache *c)
{
  if (c->persistent && fdatasync (c->data_fd) == -1) {
    nbdkit_error ("cache-dir=%s: fdatasync cache.data: %m", c->dir);
    return -1;
  }
  return 0;
}

int
store_sync_index (struct cache *c)
{
  if (c->persistent && fdatasync (c->index_fd) == -1) {
    nbdkit_error ("cache-dir=%s: fdatasync cache.index: %m", c->dir);
    return -1;
  }
  return 0;
}

/* Before giving back the data of a block: a block that a durability=local
 * flush marked synced-dirty and that was since written back has a clean
 * (or absent) index byte only in the page cache.  After a machine crash
 * the old synced-dirty byte could come back while the punched-out data
 * reads as zeros, and recovery would write zeros over good data in the
 * plugin.  So such index changes reach the disk before any punch.
 */
int
store_before_punch (struct cache *c)
{
  if (!c->idx_synced_cleared)
    return 0;
  if (store_sync_index (c) == -1)
    return -1;
  c->idx_synced_cleared = false;
  return 0;
}

/* Give back the disk space of a block (it then reads as zeros). */
int
store_punch (struct cache *c, uint64_t blk)
{
  uint64_t len = block_len (c, blk);

  if (fallocate (c->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                 blk * c->bs, len) == -1) {
    /* Not fatal: the space stays used, the data is no longer counted. */
    nbdkit_debug ("chunk-cache: punching block %" PRIu64 ": %m", blk);
    return -1;
  }
  return 0;
}

bool
data_is_damaged (struct cache *c)
{
  return __atomic_load_n (&c->data_damaged, __ATOMIC_ACQUIRE);
}

/* Called without cache_lock. */
static void
mark_damaged (struct cache *c, const char *what, uint64_t off)
{
  if (!__atomic_exchange_n (&c->data_damaged, true, __ATOMIC_ACQ_REL))
    nbdkit_error ("chunk-cache: %s: the cache file was cut short while in "
                  "use (%s at offset %" PRIu64 "): its data can no longer be "
                  "trusted; dirty blocks are not written back and requests "
                  "that need them fail with EIO; stop nbdkit and check the "
                  "cache directory", c->name, what, off);
  /* Wake flushes waiting for write-back: it will not happen now. */
  pthread_mutex_lock (&cache_lock);
  pthread_cond_broadcast (&cache_cond);
  pthread_mutex_unlock (&cache_lock);
}

int
data_read (struct cache *c, void *buf, size_t n, uint64_t off)
{
  if (data_is_damaged (c)) {
    errno = EIO;
    return -1;
  }
  while (n > 0) {
    ssize_t r = pread (c->data_fd, buf, n, (off_t) off);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0) {
      mark_damaged (c, "a read ran into its end", off);
      errno = EIO;
      return -1;
    }
    buf = (char *) buf + r, n -= r, off += r;
  }
  return 0;
}

/* Linux (6.x) caches file data in folios as large as the write that
 * created them: one 4 MiB pwrite of a whole block makes 2 MiB folios.
 * ext4 then walks every 4 KiB buffer of a folio on each write into it,
 * so a 4 KiB client write into such a block costs as much as a 2 MiB
 * one (a third of nbdkit's CPU in ext4_block_write_begin under 4 KiB
 * random writes).  Writing the cache file in aligned pieces bounds the
 * folios; 64 KiB keeps whole-block copies cheap (64 calls per 4 MiB).
 */
#define DATA_WRITE_PIECE (64 * 1024)

#define TAIL_CHECK_INTERVAL_MS 100

/* Milliseconds of the coarse monotonic clock (a few ms of resolution is
 * plenty here, and it is cheaper to read than CLOCK_MONOTONIC).
 */
static uint64_t
coarse_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether the file still has its tail (see tail_intact); if not, it is
 * marked damaged.  Lock NOT held.
 */
int
data_check (struct cache *c, const char *when)
{
  if (data_is_damaged (c)) {
    errno = EIO;
    return -1;
  }
  __atomic_store_n (&c->tail_checked_ms, coarse_ms (), __ATOMIC_RELAXED);
  if (!tail_intact (c)) {
    mark_damaged (c, when, c->size);
    errno = EIO;
    return -1;
  }
  return 0;
}

int
data_write (struct cache *c, const void *buf, size_t n, uint64_t off)
{
  uint64_t last = __atomic_load_n (&c->tail_checked_ms, __ATOMIC_RELAXED);

  if (data_is_damaged (c)) {
    errno = EIO;
    return -1;
  }
  /* A write past the end of a cut file extends it again, and the bytes
   * lost in between then read as zeros.  Looking before every write
   * would cost a system call per request, so writes look at most every
   * TAIL_CHECK_INTERVAL; flushes and write-backs always look (a hole
   * is never written back nor vouched for by a flush).
   */
  if (coarse_ms () - last >= TAIL_CHECK_INTERVAL_MS &&
      data_check (c, "its tail was gone before a write") == -1)
    return -1;
  while (n > 0) {
    /* At most DATA_WRITE_PIECE bytes, aligned, per pwrite: see above. */
    size_t piece = DATA_WRITE_PIECE - off % DATA_WRITE_PIECE;
    ssize_t r = pwrite (c->data_fd, buf, n < piece ? n : piece, (off_t) off);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf = (const char *) buf + r, n -= r, off += r;
  }
  return 0;
}

