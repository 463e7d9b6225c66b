/* shardkit tests: an LD_PRELOAD library that injects storage faults into
 * nbdkit, to test the paths a healthy disk never takes.
 * GPL-3.0-or-later.
 *
 * Faults are switched on and off while nbdkit runs by creating and
 * removing files in $SHARDKIT_FAULT_DIR:
 *   slow-fdatasync  fdatasync sleeps (milliseconds: the file's content,
 *                   default 1500) before syncing
 *   fail-fdatasync  fdatasync fails with EIO; if the file holds a name,
 *                   only on files whose path ends with "/NAME"
 *   emfile-open     open/openat of a path ending in ".chunk" fails with
 *                   EMFILE (the file's content N > 0: only the next N
 *                   times, then the file is removed)
 *   enospc-pwrite   pwrite writes half of the first buffer it is given,
 *                   then fails with ENOSPC (a disk filling up)
 *   fail-unlink     unlinkat fails with EIO
 *   fail-pwrite     pwrite fails with EIO on the files whose name is the
 *                   file's content (e.g. "cache.index"), others work
 *   fail-dir        everything on the directories whose paths are the
 *                   file's words, and on the files in them, fails with EIO:
 *                   pread, pwrite, fdatasync, fsync, openat, unlinkat
 *                   (a disk that died under one location of a set)
 * Every fdatasync and fsync is logged to $SHARDKIT_FAULT_DIR/log as
 * "START END CALL PATH RESULT" (monotonic seconds).
 */
#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double
now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

/* Is fault NAME on?  Its file's content, if a number, goes to *ARG. */
static int
fault_on (const char *name, long *arg)
{
  const char *dir = getenv ("SHARDKIT_FAULT_DIR");
  char path[4096];
  FILE *f;

  if (dir == NULL)
    return 0;
  snprintf (path, sizeof path, "%s/%s", dir, name);
  f = fopen (path, "r");
  if (f == NULL)
    return 0;
  if (arg && fscanf (f, "%ld", arg) != 1)
    *arg = -1;
  fclose (f);
  return 1;
}

/* Is fault NAME on?  Its file's first word, if any, goes to WORD. */
static int
fault_word (const char *name, char word[256])
{
  const char *dir = getenv ("SHARDKIT_FAULT_DIR");
  char path[4096];
  FILE *f;

  if (dir == NULL)
    return 0;
  snprintf (path, sizeof path, "%s/%s", dir, name);
  f = fopen (path, "r");
  if (f == NULL)
    return 0;
  if (fscanf (f, "%255s", word) != 1)
    word[0] = '\0';
  fclose (f);
  return 1;
}

static int
ends_with (const char *s, const char *suffix)
{
  size_t ls = strlen (s), lx = strlen (suffix);
  return ls >= lx && strcmp (s + ls - lx, suffix) == 0;
}

/* The path that FD refers to, from /proc. */
static void
fd_path (int fd, char *target, size_t len)
{
  char path[64];
  ssize_t n;

  snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
  n = readlink (path, target, len - 1);
  target[n > 0 ? n : 0] = '\0';
}

/* Does fault NAME's file hold the last component of FD's path? */
static int
fault_on_fd (const char *name, int fd)
{
  char want[256], target[4096];
  const char *base;

  if (!fault_word (name, want) || want[0] == '\0')
    return 0;
  fd_path (fd, target, sizeof target);
  base = strrchr (target, '/');
  base = base ? base + 1 : target;
  return strcmp (base, want) == 0;
}

/* Is FD (or, with PATH, PATH relative to FD) in a failing dir?  The
 * file may name several, one per word (two locations of a set).
 */
static int
in_failed_dir (int fd, const char *path)
{
  const char *dir = getenv ("SHARDKIT_FAULT_DIR");
  char fpath[4096], want[256], target[4096];
  int found = 0;
  FILE *f;

  if (dir == NULL)
    return 0;
  snprintf (fpath, sizeof fpath, "%s/fail-dir", dir);
  f = fopen (fpath, "r");
  if (f == NULL)
    return 0;
  if (path && path[0] == '/')
    snprintf (target, sizeof target, "%s", path);
  else
    fd_path (fd, target, sizeof target);
  while (!found && fscanf (f, "%255s", want) == 1) {
    size_t n = strlen (want);
    found = strncmp (target, want, n) == 0 &&
      (target[n] == '\0' || target[n] == '/');
  }
  fclose (f);
  return found;
}

static void
log_sync (const char *call, int fd, double start, int r)
{
  const char *dir = getenv ("SHARDKIT_FAULT_DIR");
  char path[4096], target[4096];
  FILE *f;

  if (dir == NULL)
    return;
  fd_path (fd, target, sizeof target);
  snprintf (path, sizeof path, "%s/log", dir);
  f = fopen (path, "a");
  if (f) {
    fprintf (f, "%.3f %.3f %s %s %d\n", start, now (), call, target, r);
    fclose (f);
  }
}

int
fdatasync (int fd)
{
  static int (*real) (int);
  double start = now ();
  long ms = 0;
  char only[256], target[4096], suffix[260];
  int r, saved, fail = 0;

  if (!real)
    real = (int (*) (int)) dlsym (RTLD_NEXT, "fdatasync");
  if (fault_on ("slow-fdatasync", &ms))
    usleep ((useconds_t) (ms > 0 ? ms : 1500) * 1000);
  if (fault_word ("fail-fdatasync", only)) {
    fail = 1;
    if (only[0]) {
      fd_path (fd, target, sizeof target);
      snprintf (suffix, sizeof suffix, "/%s", only);
      fail = ends_with (target, suffix);
    }
  }
  if (fail || in_failed_dir (fd, NULL)) {
    r = -1;
    errno = EIO;
  }
  else
    r = real (fd);
  saved = errno;
  log_sync ("fdatasync", fd, start, r);
  errno = saved;
  return r;
}

int
fsync (int fd)
{
  static int (*real) (int);
  double start = now ();
  int r, saved;

  if (!real)
    real = (int (*) (int)) dlsym (RTLD_NEXT, "fsync");
  if (in_failed_dir (fd, NULL)) {
    r = -1;
    errno = EIO;
  }
  else
    r = real (fd);
  saved = errno;
  log_sync ("fsync", fd, start, r);
  errno = saved;
  return r;
}

static ssize_t
faulty_pwrite (int fd, const void *buf, size_t count, off_t offset)
{
  static ssize_t (*real) (int, const void *, size_t, off_t);
  static __thread int wrote_half;

  if (!real)
    real = (ssize_t (*) (int, const void *, size_t, off_t))
      dlsym (RTLD_NEXT, "pwrite64");
  if (fault_on_fd ("fail-pwrite", fd) || in_failed_dir (fd, NULL)) {
    errno = EIO;
    return -1;
  }
  if (fault_on ("enospc-pwrite", NULL)) {
    if (!wrote_half && count > 1) {
      wrote_half = 1;
      return real (fd, buf, count / 2, offset);
    }
    wrote_half = 0;
    errno = ENOSPC;
    return -1;
  }
  return real (fd, buf, count, offset);
}

ssize_t
pwrite64 (int fd, const void *buf, size_t count, off_t offset)
{
  return faulty_pwrite (fd, buf, count, offset);
}

ssize_t
pwrite (int fd, const void *buf, size_t count, off_t offset)
{
  return faulty_pwrite (fd, buf, count, offset);
}

int
unlinkat (int dirfd, const char *path, int flags)
{
  static int (*real) (int, const char *, int);

  if (!real)
    real = (int (*) (int, const char *, int)) dlsym (RTLD_NEXT, "unlinkat");
  if (fault_on ("fail-unlink", NULL) || in_failed_dir (dirfd, NULL)) {
    errno = EIO;
    return -1;
  }
  return real (dirfd, path, flags);
}

/* Should this open of PATH fail with EMFILE?  Counts down the fault's
 * budget, if it has one.
 */
static int
emfile_now (const char *path)
{
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  const char *dir = getenv ("SHARDKIT_FAULT_DIR");
  char fname[4096];
  long left = -1;
  FILE *f;
  int r = 0;

  if (dir == NULL || path == NULL || !ends_with (path, ".chunk"))
    return 0;
  pthread_mutex_lock (&lock);
  if (fault_on ("emfile-open", &left)) {
    r = 1;
    if (left > 0) {
      snprintf (fname, sizeof fname, "%s/emfile-open", dir);
      if (left == 1)
        unlink (fname);
      else if ((f = fopen (fname, "w")) != NULL) {
        fprintf (f, "%ld\n", left - 1);
        fclose (f);
      }
    }
  }
  pthread_mutex_unlock (&lock);
  return r;
}

static int
real_openat (int dirfd, const char *path, int flags, mode_t mode)
{
  static int (*real) (int, const char *, int, ...);

  if (!real)
    real = (int (*) (int, const char *, int, ...)) dlsym (RTLD_NEXT, "openat");
  return real (dirfd, path, flags, mode);
}

/* openat and openat64 (one function on 64-bit glibc, two symbols). */
static int
faulty_openat (int dirfd, const char *path, int flags, mode_t mode)
{
  if (emfile_now (path)) {
    errno = EMFILE;
    return -1;
  }
  if (dirfd != AT_FDCWD && in_failed_dir (dirfd, NULL)) {
    errno = EIO;
    return -1;
  }
  return real_openat (dirfd, path, flags, mode);
}

int
openat (int dirfd, const char *path, int flags, ...)
{
  mode_t mode = 0;
  va_list ap;

  va_start (ap, flags);
  if (flags & (O_CREAT | O_TMPFILE))
    mode = va_arg (ap, mode_t);
  va_end (ap);
  return faulty_openat (dirfd, path, flags, mode);
}

int
openat64 (int dirfd, const char *path, int flags, ...)
{
  mode_t mode = 0;
  va_list ap;

  va_start (ap, flags);
  if (flags & (O_CREAT | O_TMPFILE))
    mode = va_arg (ap, mode_t);
  va_end (ap);
  return faulty_openat (dirfd, path, flags, mode);
}

/* pread and pread64 (one function on 64-bit glibc, two symbols). */
static ssize_t
faulty_pread (int fd, void *buf, size_t count, off_t offset)
{
  static ssize_t (*real) (int, void *, size_t, off_t);

  if (!real)
    real = (ssize_t (*) (int, void *, size_t, off_t))
      dlsym (RTLD_NEXT, "pread64");
  if (in_failed_dir (fd, NULL)) {
    errno = EIO;
    return -1;
  }
  return real (fd, buf, count, offset);
}

ssize_t
pread64 (int fd, void *buf, size_t count, off_t offset)
{
  return faulty_pread (fd, buf, count, offset);
}

ssize_t
pread (int fd, void *buf, size_t count, off_t offset)
{
  return faulty_pread (fd, buf, count, offset);
}
