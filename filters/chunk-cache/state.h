/* shardkit: chunk-cache filter, block states and lists (state.c).
 * GPL-3.0-or-later.
 *
 * Every block is in exactly one state (enum block_state); set_state
 * keeps the lists (LRU of clean blocks, FIFO and retry list of dirty
 * ones, the unclean list) and the counters (present, dirty, written) in
 * step with it.  Only CLEAN blocks are in the LRU list, so only they
 * are evicted.  Calls only store.c.
 *
 * Lock rules.  Everything here must be called with cache_lock held,
 * except make_room, which takes it itself.  wait_usable waits on
 * cache_cond (dropping the lock while it waits).
 */
#ifndef CHUNK_CACHE_STATE_H
#define CHUNK_CACHE_STATE_H

#include "cache.h"

/* Threads waiting for a block's pins or writers to drain (trim, zero,
 * write-through): only then do readers and writers need to wake anyone
 * when they unpin.  Lock held.
 */
extern unsigned drain_waiters;
/* Set once at a clean exit: dirty blocks are written back at once. */
extern bool shutting_down;

void list_init (struct list *l);
void q_put (struct cache *c, uint32_t i, uint8_t which);
bool is_unclean (uint8_t s);
void set_state (struct cache *c, uint32_t i, uint8_t s);
bool cache_block_dirty (struct cache *c, uint64_t blk);

/* Eviction: clean blocks, least recently used first.  Index byte first,
 * then the hole; a block whose index byte cannot be cleared stays.
 */
uint64_t evict_to_locked (struct cache *c, uint64_t limit);
void evict_locked (struct cache *c);
/* The cache disk is full: drop a few clean blocks.  Lock NOT held. */
bool make_room (struct cache *c);

/* Wait until nobody holds BLK exclusively (loading, busy). */
void wait_usable (struct cache *c, uint64_t blk);

#endif /* CHUNK_CACHE_STATE_H */
