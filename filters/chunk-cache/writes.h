/* shardkit: chunk-cache filter, writes, zero and trim (writes.c).
 * GPL-3.0-or-later.
 *
 * Write-back: into the cache file only, the block becomes DIRTY (its
 * index byte marked before a clean block's data changes, after an
 * absent block's).  Write-through: the plugin first, then any cached
 * copy, with the block held.  Zero and trim: the blocks taken
 * exclusively, cached copies zeroed (their index bytes cleared first,
 * or the request fails), then the plugin.  Calls store.c, state.c,
 * reads.c (a partial write of an absent block fetches it) and
 * writeback.c (FUA).
 *
 * Lock rules.  All take cache_lock themselves: call them without it.
 */
#ifndef CHUNK_CACHE_WRITES_H
#define CHUNK_CACHE_WRITES_H

#include "cache.h"

int cache_write (struct cache *c, nbdkit_next *next, const void *buf,
                 uint32_t count, uint64_t offset, uint32_t flags, int *err);
int cache_zero_trim (struct cache *c, nbdkit_next *next, bool trim,
                     uint32_t count, uint64_t offset, uint32_t flags,
                     int *err);

#endif /* CHUNK_CACHE_WRITES_H */
