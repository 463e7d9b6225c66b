/* shardkit: chunk-cache filter, the cache files (store.c).
 * GPL-3.0-or-later.
 *
 * The lowest layer: it calls nothing else of the filter.
 *
 * Lock rules.  store_open and store_close run while nobody else can see
 * the cache (at creation, at unload): no lock.  Functions that read or
 * write the index bytes (c->b[].idx, idx_error, idx_synced_cleared) must
 * be called with cache_lock held: store_set_idx, store_rewrite_index,
 * store_before_punch.  store_sync_data, store_sync_index, store_punch,
 * data_read, data_write and data_is_damaged touch only the file
 * descriptors (fixed while the cache exists) and data_damaged (atomic):
 * call them with or without the lock, but not holding it across their
 * I/O where avoidable (store_punch and store_sync_index are called with
 * it held because the index byte and the hole must not be reordered).
 * mark_damaged, called inside data_read and data_write, takes cache_lock
 * to wake waiters: data_read and data_write must be called WITHOUT it.
 */
#ifndef CHUNK_CACHE_STORE_H
#define CHUNK_CACHE_STORE_H

#include "cache.h"

/* cache-dir checks (start-up, no lock). */
int store_check_dir (const char *dir);
int store_read_meta_name (const char *dir, char **name, uint64_t *size,
                          uint32_t *bs);

/* DIR/exports/SUB, created if missing, never through a link: the
 * directory of a cache other than the default export's.  Returns the
 * path to free, or NULL.  No lock.
 */
char *store_make_dir (const char *dir, const char *sub);

/* Whether two export descriptions (the plugin's, each possibly NULL)
 * may name the same volume: the one check that a write-back context, a
 * client and cache.meta agree.  A plugin that describes nothing cannot
 * be checked: that passes.  No lock needed.
 */
bool store_same_volume (const char *a, const char *b);

/* Open or close the files of C (no lock: nobody else sees C yet/any
 * more).  store_open fills in the block states the index brings back.
 */
int store_open (struct cache *c);
void store_close (struct cache *c, bool clean);

/* Index (lock held). */
int store_set_idx (struct cache *c, uint64_t blk, uint8_t v);
int store_rewrite_index (struct cache *c);
int store_before_punch (struct cache *c);

/* Syncs and holes (lock held or not). */
int store_sync_data (struct cache *c);
int store_sync_index (struct cache *c);
int store_punch (struct cache *c, uint64_t blk);

/* Read or write N bytes of the data file at OFF.  The file always has
 * the cache's full size and a tail after it: a read that runs into its
 * end, or a tail gone, means it was cut short under us, which sets
 * data_damaged; from then on both fail with EIO.  Writes look at the
 * tail at most every 100 ms, data_check always: it is called before a
 * flush vouches for the file and after a write-back has read a block,
 * so holes left by a cut are never flushed or written back as data.
 * Return 0, or -1 with errno set.  Lock NOT held.
 */
int data_read (struct cache *c, void *buf, size_t n, uint64_t off);
int data_write (struct cache *c, const void *buf, size_t n, uint64_t off);
int data_check (struct cache *c, const char *when);
bool data_is_damaged (struct cache *c);

#endif /* CHUNK_CACHE_STORE_H */
