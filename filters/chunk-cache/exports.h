/* shardkit: chunk-cache filter, the caches of the exports (exports.c).
 * GPL-3.0-or-later.
 *
 * One struct cache per export, created on first use and kept until
 * unload, and the plugin contexts the workers use for each.  Calls
 * store.c and state.c.
 *
 * Lock rules.  The list of caches (caches, next_cache) is protected by
 * cache_lock; readers walk it with the lock held.  cache_get takes the
 * lock itself (call it without); cache_free is called at unload when
 * no other thread runs, without the lock.
 */
#ifndef CHUNK_CACHE_EXPORTS_H
#define CHUNK_CACHE_EXPORTS_H

#include "cache.h"

extern struct cache *caches;

/* The cache of an export, created on first use: CLIENT is the calling
 * connection's own context, or NULL in .after_fork (which opens the
 * cache that cache-dir holds for the default export).  Lock NOT held.
 */
struct cache *cache_get (nbdkit_backend *backend, const char *name,
                         bool readonly, uint32_t want_bs,
                         nbdkit_next *client);
void cache_free (struct cache *c);

/* The write-back contexts of a cache (see exports.c).  wb_ctx_get,
 * wb_ctx_put and wb_ctx_any: lock held; a context got must be put back
 * once the call through it returns (the lock may be dropped between).
 * lender_add and lender_remove: lock NOT held; lender_remove may wait
 * up to shutdown-timeout= for write-back (the last connection of an
 * export other than the default one).
 */
nbdkit_next *wb_ctx_get (struct cache *c);
void wb_ctx_put (struct cache *c, nbdkit_next *next);
bool wb_ctx_any (struct cache *c);
void lender_add (struct cache *c, struct lender *l, nbdkit_next *client);
void lender_remove (struct cache *c, struct lender *l);

#endif /* CHUNK_CACHE_EXPORTS_H */
