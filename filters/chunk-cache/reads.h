/* shardkit: chunk-cache filter, reads (reads.c).
 * GPL-3.0-or-later.
 *
 * Hits are copied from the data file with the block pinned; a miss
 * fetches the whole block once (loading: concurrent readers of it wait
 * for that one read); sequential reads queue read-ahead for the workers.
 * Calls store.c and state.c.
 *
 * Lock rules.  load_block_locked is called with cache_lock held and
 * drops it while it reads the plugin and writes the data file.  The
 * others take the lock themselves: call them without it.
 */
#ifndef CHUNK_CACHE_READS_H
#define CHUNK_CACHE_READS_H

#include "cache.h"

int load_block_locked (struct cache *c, nbdkit_next *next, uint64_t blk,
                       bool readahead, int *err);
int cache_read (struct cache *c, nbdkit_next *next, void *buf,
                uint32_t count, uint64_t offset, int *err);
int cache_prefetch (struct cache *c, nbdkit_next *next, uint32_t count,
                    uint64_t offset, int *err);
void cache_readahead (struct cache *c, uint64_t blk);

#endif /* CHUNK_CACHE_READS_H */
