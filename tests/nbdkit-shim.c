/* shardkit unit tests: the few nbdkit server functions that common/ calls,
 * for test programs that link common/ without a server.  Errors go to
 * stderr; extents are collected for the test to inspect.
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbdkit-shim.h"

int shim_quiet;

void
nbdkit_error (const char *fs, ...)
{
  va_list args;
  int saved = errno;

  if (!shim_quiet) {
    va_start (args, fs);
    fprintf (stderr, "error: ");
    vfprintf (stderr, fs, args);
    fprintf (stderr, "\n");
    va_end (args);
  }
  errno = saved;
}

void
nbdkit_debug (const char *fs, ...)
{
  (void) fs;
}

int
nbdkit_add_extent (struct nbdkit_extents *exts, uint64_t offset,
                   uint64_t length, uint32_t type)
{
  if (length == 0)
    return 0;
  /* Merge with the previous extent of the same type, as nbdkit does. */
  if (exts->count > 0) {
    struct shim_extent *last = &exts->e[exts->count - 1];
    if (last->offset + last->length == offset && last->type == type) {
      last->length += length;
      return 0;
    }
  }
  if (exts->count == SHIM_MAX_EXTENTS) {
    errno = ENOMEM;
    return -1;
  }
  exts->e[exts->count].offset = offset;
  exts->e[exts->count].length = length;
  exts->e[exts->count].type = type;
  exts->count++;
  return 0;
}
