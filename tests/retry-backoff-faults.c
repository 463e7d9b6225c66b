/* shardkit tests: an nbdkit filter, placed below retry-backoff, that fails
 * the two calls no stock plugin or filter fails on demand.
 * GPL-3.0-or-later.
 *
 * Switched by files in $RB_FAULTS_DIR, checked at each call:
 *   open-no-errno   .open fails with nbdkit_error and errno 0 (as a plugin
 *                   that reports no errno)
 *   open-eacces     .open fails with EACCES (nbdkit's sh plugin reports
 *                   every failed open as EIO)
 *   fail-finalize   .finalize fails (as a flush at close that failed)
 * Each call is logged to $RB_FAULTS_DIR/log: "open" or "finalize RESULT".
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <nbdkit-filter.h>

static bool
have (const char *name)
{
  const char *dir = getenv ("RB_FAULTS_DIR");
  char path[4096];

  if (dir == NULL)
    return false;
  snprintf (path, sizeof path, "%s/%s", dir, name);
  return access (path, F_OK) == 0;
}

static void
note (const char *what)
{
  const char *dir = getenv ("RB_FAULTS_DIR");
  char path[4096];
  FILE *f;

  if (dir == NULL)
    return;
  snprintf (path, sizeof path, "%s/log", dir);
  f = fopen (path, "a");
  if (f) {
    fprintf (f, "%s\n", what);
    fclose (f);
  }
}

static void *
faults_open (nbdkit_next_open *next, nbdkit_context *context, int readonly,
             const char *exportname, int is_tls)
{
  note ("open");
  if (have ("open-no-errno")) {
    nbdkit_error ("rb-faults: open fails, no errno");
    errno = 0;
    return NULL;
  }
  if (have ("open-eacces")) {
    nbdkit_error ("rb-faults: open fails with EACCES");
    errno = EACCES;
    return NULL;
  }
  if (next (context, readonly, exportname) == -1)
    return NULL;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static int
faults_finalize (nbdkit_next *next, void *handle)
{
  if (have ("fail-finalize")) {
    note ("finalize failed");
    nbdkit_error ("rb-faults: finalize fails");
    errno = EIO;
    return -1;
  }
  note ("finalize ok");
  return 0;
}

static struct nbdkit_filter filter = {
  .name     = "rb-faults",
  .longname = "shardkit test filter: failing open and finalize",
  .open     = faults_open,
  .finalize = faults_finalize,
};

NBDKIT_REGISTER_FILTER (filter)
