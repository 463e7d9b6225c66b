/* shardkit: chunk-cache filter, write-back bookkeeping and flush
 * (writeback.c).
 * GPL-3.0-or-later.
 *
 * A worker picks a dirty block (wb_pick: it becomes INFLIGHT and its
 * generation is snapshotted), writes it to the plugin without the lock,
 * and reports (wb_done): WRITTEN if the generation did not move, else
 * DIRTY again.  WRITTEN blocks become CLEAN after a plugin flush
 * (flush_below_locked).  A client flush waits for the plugin
 * (durability=remote) or syncs the cache files (durability=local).
 * Calls store.c and state.c.
 *
 * Lock rules.  wb_touch, wb_pick, wb_done and flush_below_locked are
 * called with
 * cache_lock held; flush_below_locked drops it while the plugin
 * flushes.  cache_flush takes it itself: call it without.
 */
#ifndef CHUNK_CACHE_WRITEBACK_H
#define CHUNK_CACHE_WRITEBACK_H

#include "cache.h"

void wb_touch (struct cache *c, uint64_t blk, double now);
bool wb_pick (struct cache *c, uint64_t *blk, uint64_t *gen);
void wb_done (struct cache *c, uint64_t blk, uint64_t gen, int err);
int flush_below_locked (struct cache *c, int *err);
int cache_flush (struct cache *c, uint64_t first, uint64_t last, int *err);

#endif /* CHUNK_CACHE_WRITEBACK_H */
