/* shardkit: chunk-cache filter, the worker threads (workers.c).
 * GPL-3.0-or-later.
 *
 * writeback-threads= workers serve every cache: read-ahead, write-back,
 * background plugin flushes.  A stats thread writes stats-file=.
 * Calls store.c, state.c, exports.c (the list), reads.c, writeback.c.
 *
 * Lock rules.  All take cache_lock themselves: call them without it.
 * workers_start runs in .after_fork, drain_all and workers_stop in
 * .cleanup.
 */
#ifndef CHUNK_CACHE_WORKERS_H
#define CHUNK_CACHE_WORKERS_H

int workers_start (void);
void workers_stop (void);
void drain_all (void);
void stats_write (void);

#endif /* CHUNK_CACHE_WORKERS_H */
