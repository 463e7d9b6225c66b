/* shardkit sharded-file: NAME.missing.L files.  GPL-3.0-or-later.
 * See missing-file.h for the format.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "crc32c.h"
#include "le-bytes.h"
#include "missing-file.h"
#include "mirror-store.h"
#include "volume-name.h"

#define MAGIC "shardkit-missing"
#define HEADER_LEN 64
#define RECORD_LEN 16
#define KIND_CHUNK 0
#define KIND_STARTED 1
#define FILE_NAME_MAX (VOLUME_NAME_MAX + 32)

/* One file: location HOLDER's record of what LOC lacks. */
struct record_file {
  pthread_mutex_t lock;         /* the descriptor, appends */
  int fd;                       /* -1 until the first append */
  uint64_t appended;            /* appends written (under lock) */
  pthread_mutex_t sync_lock;    /* one fdatasync at a time */
  uint64_t synced;              /* appends durable (under sync_lock) */
  bool dir_unsynced;            /* created, the directory not synced */
};

struct missing_files {
  char *name;
  char uuid[37];
  bool readonly;
  unsigned nloc;
  int dirfds[MIRROR_MAX_LOCATIONS];
  const char *dirnames[MIRROR_MAX_LOCATIONS];
  struct record_file files[MIRROR_MAX_LOCATIONS][MIRROR_MAX_LOCATIONS];
};



static void
file_name (const struct missing_files *f, unsigned loc, char *buf, size_t len)
{
  snprintf (buf, len, "%s.missing.%u", f->name, loc);
}

static void
make_header (const struct missing_files *f, unsigned holder, unsigned loc,
             unsigned char *h)
{
  memset (h, 0, HEADER_LEN);
  memcpy (h, MAGIC, 16);
  memcpy (h + 16, f->uuid, 36);
  put_le32 (h + 52, loc);
  put_le32 (h + 56, holder);
  put_le32 (h + 60, crc32c (0, h, 60));
}

static void
make_record (uint64_t n, uint32_t kind, unsigned char *r)
{
  unsigned i;

  for (i = 0; i < 8; ++i)
    r[i] = (unsigned char) (n >> (8 * i));
  put_le32 (r + 8, kind);
  put_le32 (r + 12, crc32c (0, r, 12));
}


static int
write_all (int fd, const void *buf, size_t len)
{
  const unsigned char *p = buf;

  while (len > 0) {
    ssize_t w = write (fd, p, len);
    if (w == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    len -= (size_t) w;
  }
  return 0;
}

struct missing_files *
missing_files_new (const char *name, const char *uuid, unsigned nloc,
                   const int *dirfds, const char *const *dirnames,
                   bool readonly)
{
  struct missing_files *f;
  unsigned h, l;

  f = calloc (1, sizeof *f);
  if (f == NULL || (f->name = strdup (name)) == NULL) {
    nbdkit_error ("calloc: %m");
    free (f);
    return NULL;
  }
  snprintf (f->uuid, sizeof f->uuid, "%s", uuid);
  f->nloc = nloc;
  f->readonly = readonly;
  for (h = 0; h < nloc; ++h) {
    f->dirfds[h] = dirfds[h];
    f->dirnames[h] = dirnames[h];
    for (l = 0; l < nloc; ++l) {
      pthread_mutex_init (&f->files[h][l].lock, NULL);
      pthread_mutex_init (&f->files[h][l].sync_lock, NULL);
      f->files[h][l].fd = -1;
    }
  }
  return f;
}

void
missing_files_free (struct missing_files *f)
{
  unsigned h, l;

  if (f == NULL)
    return;
  for (h = 0; h < f->nloc; ++h)
    for (l = 0; l < f->nloc; ++l) {
      if (f->files[h][l].fd >= 0)
        close (f->files[h][l].fd);
      pthread_mutex_destroy (&f->files[h][l].lock);
      pthread_mutex_destroy (&f->files[h][l].sync_lock);
    }
  free (f->name);
  free (f);
}

/* Open the record on HOLDER of what LOC lacks (its name into FNAME,
 * FILE_NAME_MAX bytes) for reading.  Returns the descriptor, -2 if
 * there is none, -1 after nbdkit_error.
 */
static int
open_to_read (struct missing_files *f, unsigned holder, unsigned loc,
              char *fname)
{
  int fd;

  file_name (f, loc, fname, FILE_NAME_MAX);
  fd = openat (f->dirfds[holder], fname,
               O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd == -1 && errno == ENOENT)
    return -2;
  if (fd == -1)
    nbdkit_error ("%s/%s: open: %m", f->dirnames[holder], fname);
  return fd;
}

static int
mf_load (void *opaque, unsigned holder, unsigned loc,
         void (*found) (void *arg, uint64_t n), void *arg)
{
  struct missing_files *f = opaque;
  char fname[FILE_NAME_MAX];
  unsigned char want[HEADER_LEN], *buf;
  CLEANUP_CLOSE int fd = -1;
  CLEANUP_FREE unsigned char *data = NULL;
  struct stat st;
  size_t len, got = 0, pos;

  fd = open_to_read (f, holder, loc, fname);
  if (fd < 0)
    return fd == -2 ? 0 : -1;
  if (fstat (fd, &st) == -1 || !S_ISREG (st.st_mode)) {
    nbdkit_error ("%s/%s: not a regular file", f->dirnames[holder], fname);
    errno = EIO;
    return -1;
  }
  len = (size_t) st.st_size;
  if (len == 0)
    return 0;                   /* created, nothing written: no record */
  data = buf = malloc (len);
  if (buf == NULL) {
    nbdkit_error ("%s/%s: malloc: %m", f->dirnames[holder], fname);
    return -1;
  }
  while (got < len) {
    ssize_t r = pread (fd, buf + got, len - got, (off_t) got);
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      nbdkit_error ("%s/%s: read: %m", f->dirnames[holder], fname);
      return -1;
    }
    if (r == 0)
      break;
    got += (size_t) r;
  }
  len = got;

  make_header (f, holder, loc, want);
  if (len < HEADER_LEN || memcmp (buf, MAGIC, 16) != 0 ||
      get_le32 (buf + 60) != crc32c (0, buf, 60)) {
    nbdkit_error ("%s/%s: damaged header: location %u is caught up in "
                  "full", f->dirnames[holder], fname, loc);
    found (arg, MISSING_ALL);
    return 0;
  }
  if (memcmp (buf, want, HEADER_LEN) != 0) {
    nbdkit_error ("%s/%s: the record of another volume or another place "
                  "in the set (uuid %.36s, location %" PRIu32 " kept on %"
                  PRIu32 "; expected %s, %u on %u)", f->dirnames[holder],
                  fname, (const char *) buf + 16, get_le32 (buf + 52),
                  get_le32 (buf + 56), f->uuid, loc, holder);
    errno = EINVAL;
    return -1;
  }
  for (pos = HEADER_LEN; pos + RECORD_LEN <= len; pos += RECORD_LEN) {
    const unsigned char *r = buf + pos;
    const uint32_t kind = get_le32 (r + 8);

    if (get_le32 (r + 12) != crc32c (0, r, 12) ||
        (kind != KIND_CHUNK && kind != KIND_STARTED)) {
      nbdkit_error ("%s/%s: damaged record at byte %zu: location %u is "
                    "caught up in full", f->dirnames[holder], fname, pos, loc);
      found (arg, MISSING_ALL);
      return 0;
    }
    if (kind == KIND_CHUNK)
      found (arg, get_le64 (r));
  }
  if (pos < len)
    nbdkit_debug ("%s/%s: %zu bytes of an append that never completed: "
                  "ignored", f->dirnames[holder], fname, len - pos);
  return 0;
}

/* Open (creating with its header) the file, with rf->lock held. */
static int
open_record (struct missing_files *f, unsigned holder, unsigned loc,
             struct record_file *rf)
{
  char fname[FILE_NAME_MAX];
  unsigned char header[HEADER_LEN + RECORD_LEN];
  struct stat st;
  int fd;

  file_name (f, loc, fname, sizeof fname);
  fd = openat (f->dirfds[holder], fname,
               O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd == -1) {
    nbdkit_error ("%s/%s: open: %m", f->dirnames[holder], fname);
    return -1;
  }
  if (fstat (fd, &st) == -1) {
    nbdkit_error ("%s/%s: fstat: %m", f->dirnames[holder], fname);
    close (fd);
    return -1;
  }
  if (st.st_size < HEADER_LEN) {
    /* New (or a header cut short by a crash: nothing after it was ever
     * acknowledged, so start again).
     */
    make_header (f, holder, loc, header);
    make_record ((uint64_t) time (NULL), KIND_STARTED, header + HEADER_LEN);
    if (ftruncate (fd, 0) == -1 || write_all (fd, header, sizeof header) == -1) {
      nbdkit_error ("%s/%s: write: %m", f->dirnames[holder], fname);
      close (fd);
      return -1;
    }
    rf->dir_unsynced = true;
  }
  else if ((st.st_size - HEADER_LEN) % RECORD_LEN) {
    /* An append cut short: align again, or every later record would be
     * read at the wrong offset.
     */
    if (ftruncate (fd, st.st_size - (st.st_size - HEADER_LEN) % RECORD_LEN)
        == -1) {
      nbdkit_error ("%s/%s: ftruncate: %m", f->dirnames[holder], fname);
      close (fd);
      return -1;
    }
  }
  rf->fd = fd;
  return 0;
}

static int
mf_append (void *opaque, unsigned holder, unsigned loc,
           const uint64_t *ns, size_t count)
{
  struct missing_files *f = opaque;
  struct record_file *rf = &f->files[holder][loc];
  CLEANUP_FREE unsigned char *recs = malloc (count * RECORD_LEN + 1);
  uint64_t seq;
  size_t i;
  int fd;

  if (f->readonly) {
    errno = EROFS;
    return -1;
  }
  if (recs == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  for (i = 0; i < count; ++i)
    make_record (ns[i], KIND_CHUNK, recs + i * RECORD_LEN);
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&rf->lock);
    if (rf->fd == -1 && open_record (f, holder, loc, rf) == -1)
      return -1;
    if (write_all (rf->fd, recs, count * RECORD_LEN) == -1) {
      nbdkit_error ("%s/%s.missing.%u: write: %m", f->dirnames[holder],
                    f->name, loc);
      return -1;
    }
    seq = ++rf->appended;
    fd = rf->fd;
  }
  /* Group commit: one fdatasync covers every append written before it
   * started.  The descriptor stays open while appends can happen (it is
   * closed only by clear, which never runs beside an append).
   */
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&rf->sync_lock);
  if (rf->synced >= seq)
    return 0;
  {
    uint64_t upto = __atomic_load_n (&rf->appended, __ATOMIC_ACQUIRE);
    if (fdatasync (fd) == -1) {
      nbdkit_error ("%s/%s.missing.%u: fdatasync: %m", f->dirnames[holder],
                    f->name, loc);
      return -1;
    }
    if (rf->dir_unsynced) {
      if (fsync (f->dirfds[holder]) == -1) {
        nbdkit_error ("%s: fsync: %m", f->dirnames[holder]);
        return -1;
      }
      rf->dir_unsynced = false;
    }
    rf->synced = upto;
  }
  return 0;
}

static int
mf_clear (void *opaque, unsigned holder, unsigned loc)
{
  struct missing_files *f = opaque;
  struct record_file *rf = &f->files[holder][loc];
  char fname[FILE_NAME_MAX];
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&rf->lock);

  if (f->readonly) {
    errno = EROFS;
    return -1;
  }
  file_name (f, loc, fname, sizeof fname);
  if (rf->fd >= 0)
    close (rf->fd);
  rf->fd = -1;
  if (unlinkat (f->dirfds[holder], fname, 0) == -1 && errno != ENOENT) {
    nbdkit_error ("%s/%s: unlink: %m", f->dirnames[holder], fname);
    return -1;
  }
  if (fsync (f->dirfds[holder]) == -1) {
    nbdkit_error ("%s: fsync: %m", f->dirnames[holder]);
    return -1;
  }
  return 0;
}

void
missing_files_set_dirfd (struct missing_files *f, unsigned h, int dirfd)
{
  f->dirfds[h] = dirfd;
}

int
missing_file_started (struct missing_files *f, unsigned holder, unsigned loc,
                      int64_t *t)
{
  char fname[FILE_NAME_MAX];
  unsigned char buf[HEADER_LEN + RECORD_LEN];
  const unsigned char *r = buf + HEADER_LEN;
  CLEANUP_CLOSE int fd = -1;
  struct stat st;
  ssize_t got;

  fd = open_to_read (f, holder, loc, fname);
  if (fd < 0)
    return fd == -2 ? 0 : -1;
  if (fstat (fd, &st) == -1) {
    nbdkit_error ("%s/%s: fstat: %m", f->dirnames[holder], fname);
    return -1;
  }
  got = pread (fd, buf, sizeof buf, 0);
  if (got == (ssize_t) sizeof buf && get_le32 (r + 8) == KIND_STARTED &&
      get_le32 (r + 12) == crc32c (0, r, 12))
    *t = (int64_t) get_le64 (r);
  else
    *t = (int64_t) st.st_mtime;   /* an older file: its last change */
  return 1;
}

const struct missing_log_ops missing_file_ops = {
  .load = mf_load,
  .append = mf_append,
  .clear = mf_clear,
};
