/* shardkit tests: an LD_PRELOAD library that injects storage faults into
 * nbdkit, to test the paths a healthy disk never takes.
 * GPL-3.0-or-later.
 *
 * Faults are switched on and off while nbdkit runs by creating and
 * removing files in $SHARDKIT_FAULT_DIR:
 *   slow-fdatasync  fdatasync sleeps (milliseconds: the file's content,
 *                   default 1500) before syncing
 *   fail-fdatasync  fdatasync fails with EIO
 *   enospc-pwrite   pwrite writes half of the first buffer it is given,
 *                   then fails with ENOSPC (a disk filling up)
 *   fail-unlink     unlinkat fails with EIO
 *   fail-pwrite     pwrite fails with EIO on the files whose name is the
 *                   file's content (e.g. "cache.index"), others work
 * Every fdatasync and fsync is logged to $SHARDKIT_FAULT_DIR/log as
 * "START END CALL PATH RESULT" (monotonic seconds).
 */
#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
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

/* Does fault NAME's file hold the last component of FD's path? */
static int
fault_on_fd (const char *name, int fd)
{
  const char *dir = getenv ("SHARDKIT_FAULT_DIR");
  char path[4096], want[256], target[4096];
  const char *base;
  ssize_t n;
  FILE *f;

  if (dir == NULL)
    return 0;
  snprintf (path, sizeof path, "%s/%s", dir, name);
  f = fopen (path, "r");
  if (f == NULL)
    return 0;
  if (fscanf (f, "%255s", want) != 1)
    want[0] = '\0';
  fclose (f);
  snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
  n = readlink (path, target, sizeof target - 1);
  target[n > 0 ? n : 0] = '\0';
  base = strrchr (target, '/');
  base = base ? base + 1 : target;
  return want[0] && strcmp (base, want) == 0;
}

static void
log_sync (const char *call, int fd, double start, int r)
{
  const char *dir = getenv ("SHARDKIT_FAULT_DIR");
  char path[4096], target[4096] = "";
  ssize_t n;
  FILE *f;

  if (dir == NULL)
    return;
  snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
  n = readlink (path, target, sizeof target - 1);
  target[n > 0 ? n : 0] = '\0';
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
  int r, saved;

  if (!real)
    real = (int (*) (int)) dlsym (RTLD_NEXT, "fdatasync");
  if (fault_on ("slow-fdatasync", &ms))
    usleep ((useconds_t) (ms > 0 ? ms : 1500) * 1000);
  if (fault_on ("fail-fdatasync", NULL)) {
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
  if (fault_on_fd ("fail-pwrite", fd)) {
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
  if (fault_on ("fail-unlink", NULL)) {
    errno = EIO;
    return -1;
  }
  return real (dirfd, path, flags);
}
