/* shardkit volume tool: the nbdkit server functions that the shared
 * code calls.
 * GPL-3.0-or-later.
 *
 * common/, the file store and the S3 store are written for plugins,
 * which get nbdkit_error, nbdkit_debug and the rest from the nbdkit
 * binary that loads them.  The tool links the same code (so that the
 * volume format is implemented once) and so must provide exactly the
 * functions that code calls, as small honest equivalents: errors and
 * (with --verbose) debug messages go to stderr as one line each.
 * Nothing else of nbdkit's API is provided, so that a new call in the
 * shared code fails the tool's link rather than misbehaving.
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "tool.h"

/* See error_capture_begin in tool.h. */
static __thread bool capturing;
static __thread char captured[1024];

void
error_capture_begin (void)
{
  capturing = true;
  captured[0] = '\0';
}

const char *
error_capture_end (void)
{
  capturing = false;
  return captured[0] ? captured : "unknown error";
}

static void
vmessage (const char *prefix, const char *fs, va_list args)
{
  char buf[1024];

  /* nbdkit's messages expand %m: vsnprintf does, with errno as it was. */
  vsnprintf (buf, sizeof buf, fs, args);
  if (capturing && prefix == NULL) {
    memcpy (captured, buf, sizeof captured);
    return;
  }
  /* One write per line, so that lines of threads do not interleave. */
  fprintf (stderr, "%s: %s%s\n", program_name, prefix ? prefix : "", buf);
}

void
nbdkit_error (const char *fs, ...)
{
  va_list args;
  int saved = errno;

  va_start (args, fs);
  vmessage (NULL, fs, args);
  va_end (args);
  errno = saved;
}

/* The tool's own errors are printed (or captured) exactly as the shared
 * code's: one function under both names.
 */
void tool_error (const char *fs, ...) __attribute__ ((alias ("nbdkit_error")));

void
nbdkit_debug (const char *fs, ...)
{
  va_list args;
  int saved = errno;

  if (opts.verbose) {
    va_start (args, fs);
    vmessage ("debug: ", fs, args);
    va_end (args);
  }
  errno = saved;
}

/* The S3 code sleeps between retries and while waiting for a lease; in
 * nbdkit the sleep ends early at shutdown.  The tool has no shutdown
 * (a signal simply ends it), so it sleeps the whole time.
 */
int
nbdkit_nanosleep (unsigned sec, unsigned nsec)
{
  struct timespec ts = { .tv_sec = sec, .tv_nsec = nsec };

  while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
    ;
  return 0;
}

/* The chunk engine and the file store answer NBD extents requests; the
 * tool never makes one, so this is never reached.  Refuse rather than
 * pretend.
 */
int
nbdkit_add_extent (struct nbdkit_extents *extents, uint64_t offset,
                   uint64_t length, uint32_t type)
{
  nbdkit_error ("internal error: extents are not available in the tool");
  errno = ENOTSUP;
  return -1;
}
