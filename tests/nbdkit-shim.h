/* shardkit unit tests: see nbdkit-shim.c.  GPL-3.0-or-later. */
#ifndef SHARDKIT_NBDKIT_SHIM_H
#define SHARDKIT_NBDKIT_SHIM_H

#include <stdint.h>

#define SHIM_MAX_EXTENTS 4096

struct shim_extent {
  uint64_t offset, length;
  uint32_t type;
};
struct nbdkit_extents {
  size_t count;
  struct shim_extent e[SHIM_MAX_EXTENTS];
};

extern int shim_quiet;          /* set to silence expected errors */

extern void nbdkit_error (const char *fs, ...)
  __attribute__ ((format (printf, 1, 2)));
extern void nbdkit_debug (const char *fs, ...)
  __attribute__ ((format (printf, 1, 2)));
extern int nbdkit_add_extent (struct nbdkit_extents *, uint64_t, uint64_t,
                              uint32_t);

#endif
