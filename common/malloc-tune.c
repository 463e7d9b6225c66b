/* shardkit: keep nbdkit's request buffers mapped between connections
 * (see malloc-tune.h).
 * GPL-3.0-or-later.
 */
#include <config.h>

#include <malloc.h>

#include <nbdkit-plugin.h>

#include "malloc-tune.h"

/* glibc's largest mmap threshold on 64-bit (HEAP_MAX_SIZE / 2): larger
 * values are refused.  NBD requests are at most 32 MiB for most
 * clients (nbdkit accepts 64 MiB; those few stay mmaps).
 */
#define MMAP_THRESHOLD (32 * 1024 * 1024)
/* Free memory at the top of an arena above this goes back to the
 * kernel.  Above what nbdkit's threads hold at once for any usual
 * client (64 threads x 4 MiB = 256 MiB for nbdcopy's 4 connections);
 * a bound nonetheless, for a burst of requests far larger than that.
 */
#define TRIM_THRESHOLD (1024 * 1024 * 1024)

void
malloc_tune_for_request_buffers (void)
{
#ifdef M_MMAP_THRESHOLD
  /* mallopt returns 1 on success, 0 on error (no errno); an error only
   * leaves glibc's defaults, and other C libraries may lack both
   * parameters, hence no failure here.
   */
  if (mallopt (M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1 ||
      mallopt (M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1)
    nbdkit_debug ("mallopt: malloc thresholds not changed");
#endif
}
