/* shardkit: volume_check_create (declared in volume-layer.h).
 * GPL-3.0-or-later.
 *
 * Kept apart from volume-layer.c because the stores call it while
 * opening a volume, and the volume tool links the stores without the
 * layer of NBD callbacks (which would drag in nbdkit's export and
 * extent functions, which only the server provides).
 */
#include <config.h>

#include <errno.h>

#include <nbdkit-plugin.h>

#include "volume-layer.h"
#include "volume-meta.h"

int
volume_check_create (const char *name, const char *where,
                     const struct volume_meta *m,
                     const struct volume_create *asked)
{
  char why[256];

  if (asked == NULL ||
      volume_meta_check_create (m, asked->size, asked->chunk_size,
                                why, sizeof why) == 0)
    return 0;
  nbdkit_error ("volume '%s' in %s: %s", name, where, why);
  errno = EINVAL;
  return -1;
}
