/* shardkit: chunk-cache filter, shared definitions.
 * GPL-3.0-or-later.
 *
 * One "struct cache" per export holds every block of that export and
 * is shared by all connections to it.  A single mutex (cache_lock)
 * protects the state of every cache; data is copied to and from the
 * cache files and the plugin outside the lock, so the lock is only
 * ever held for short bookkeeping.
 */
#ifndef CHUNK_CACHE_H
#define CHUNK_CACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-filter.h>

/* Configuration (chunk-cache.c). */
enum cache_mode { MODE_WRITEBACK, MODE_WRITETHROUGH, MODE_READONLY };
enum durability { DUR_REMOTE, DUR_LOCAL };
struct cache_config {
  const char *dir;              /* cache-dir=, NULL for a temp file */
  uint32_t block_size;          /* cache-block-size=, 0 = from plugin */
  uint64_t cache_size;          /* cache-size=, 0 = unbounded */
  uint64_t max_dirty;           /* max-dirty= */
  enum cache_mode mode;
  enum durability durability;
  unsigned threads;             /* writeback-threads= */
  double delay;                 /* writeback-delay= in seconds */
  unsigned readahead;           /* readahead= blocks */
  const char *stats_file;       /* stats-file= */
  double stats_interval;        /* stats-interval= seconds */
  double shutdown_timeout;      /* shutdown-timeout= seconds */
};
extern struct cache_config cfg;

/* Block states.  A block is in exactly one of them. */
enum block_state {
  B_ABSENT,                     /* not in the cache */
  B_CLEAN,                      /* cached, same as the plugin (in LRU) */
  B_DIRTY,                      /* cached, newer than the plugin (in FIFO
                                 * or, after an error, in the retry list) */
  B_INFLIGHT,                   /* being written back by a worker */
  B_WRITTEN,                    /* written to the plugin, not yet flushed
                                 * there: not evictable, index still dirty */
};

/* Bytes of the index file, one per block.  See store.c for why two
 * kinds of dirty exist.
 */
enum { IDX_ABSENT = 0, IDX_CLEAN = 1, IDX_DIRTY = 2, IDX_DIRTY_SYNCED = 3 };

#define NIL UINT32_MAX
enum qlist { Q_NONE, Q_LRU, Q_FIFO, Q_RETRY };

struct link { uint32_t prev, next; };
struct list { uint32_t head, tail; uint64_t count; };

struct block {
  uint8_t state;                /* enum block_state */
  uint8_t idx;                  /* what the index file says */
  bool loading;                 /* a reader is fetching it from the plugin */
  bool busy;                    /* trim/zero in progress: others wait */
  bool failed;                  /* last write-back failed */
  uint8_t qwhich;               /* which list .q is in (enum qlist) */
  bool in_unclean;              /* in the unclean list via .u */
  uint32_t pins;                /* copies to/from the data file running */
  uint32_t writers;             /* client writes to the data file running */
  uint32_t incarnation;         /* bumped when the block is (re)filled */
  uint64_t gen;                 /* bumped by every completed write */
  uint64_t dirty_seq;           /* oldest write not yet in the plugin */
  uint64_t pending_seq;         /* oldest write since the in-flight snapshot */
  uint64_t written_epoch;       /* flush epoch when written to the plugin */
  double due;                   /* when write-back may start */
  unsigned retries;
  uint64_t attempt;             /* number of its latest write-back start */
  struct link q;                /* LRU (clean), FIFO (dirty) or retry list */
  struct link u;                /* unclean list (dirty/inflight/written) */
};

struct stats {
  uint64_t hits, misses, readahead_bytes, written_back, wb_errors;
  uint64_t evictions, plugin_reads;
};

struct cache {
  struct cache *next_cache;
  char *name;                   /* export name */
  char *desc;                   /* plugin's export description, or NULL */
  uint64_t size;
  uint32_t bs;
  uint64_t nblocks;
  struct block *b;

  /* Files (store.c). */
  int data_fd, index_fd, dir_fd, lock_fd;
  bool persistent;              /* cache-dir= */
  bool idx_synced_cleared;      /* a synced-dirty byte changed, unsynced */
  bool idx_error;               /* an index write failed: the file is behind
                                 * the .idx bytes until rewritten whole */

  /* The plugin context used by the workers, never a client's. */
  nbdkit_next *bg;
  bool can_flush_below;
  bool can_write_below;

  struct list lru, fifo, retry, unclean;
  uint64_t present;             /* blocks in the cache */
  uint64_t dirty;               /* blocks in DIRTY/INFLIGHT */
  uint64_t written;             /* blocks in WRITTEN */
  bool flushing;                /* a worker is flushing the plugin */
  bool readonly;
  uint64_t max_dirty_blocks, max_present_blocks;

  uint64_t wseq;                /* sequence number of completed writes */
  uint64_t urgent_seq;          /* write back blocks dirty at or before */
  uint64_t flush_epoch;
  uint64_t error_events;        /* write-back failures, ever */
  uint64_t wb_attempts;         /* write-backs started, ever */
  uint64_t inflight;
  /* Zeros and trims sent to the plugin, and how many of them a plugin
   * flush has covered: a durability=local flush must flush the plugin
   * for them, the cache does not hold them.
   */
  uint64_t below_ops, below_flushed;
  /* An fdatasync in cache-dir failed: Linux may have dropped the dirty
   * pages and a later fdatasync would succeed without them, so local
   * syncs are no longer trusted; flushes wait for the plugin instead.
   */
  bool local_sync_failed;
  /* cache.data was cut short while in use (a read ran into its end, or
   * it had shrunk before a write): nothing in it can be trusted, so hits
   * of dirty blocks, writes into it, write-back and flushes fail with
   * EIO, and clean blocks are read from the plugin.  Set once, atomically
   * (read without cache_lock).
   */
  bool data_damaged;

  /* Read-ahead requests (block numbers), a small ring. */
  uint64_t ra[64];
  unsigned ra_head, ra_count;

  struct stats st;
};

extern pthread_mutex_t cache_lock;
extern pthread_cond_t cache_cond;   /* any state change: waiters recheck */
extern pthread_cond_t work_cond;    /* work for the workers */
extern struct cache *caches;
extern bool shutting_down;

double now_s (void);

/* lists.c-like helpers (blocks.c). */
void list_init (struct list *l);

/* store.c */
int store_check_dir (const char *dir);
int store_open (struct cache *c);
void store_close (struct cache *c, bool clean);
int store_set_idx (struct cache *c, uint64_t blk, uint8_t v);
int store_sync_data (struct cache *c);
int store_sync_index (struct cache *c);
int store_rewrite_index (struct cache *c);
int store_read_meta_name (const char *dir, char **name, uint64_t *size,
                          uint32_t *bs);
int store_punch (struct cache *c, uint64_t blk);
int store_before_punch (struct cache *c);

/* blocks.c: read or write N bytes of the data file at OFF.  The file
 * always has the cache's full size: a read that runs into its end, or a
 * write when it has shrunk, means it was cut short under us, which sets
 * data_damaged; from then on both fail with EIO (a write never extends a
 * cut file again, so its holes cannot pass for data).  Return 0, or -1
 * with errno set.
 */
int data_read (struct cache *c, void *buf, size_t n, uint64_t off);
int data_write (struct cache *c, const void *buf, size_t n, uint64_t off);
bool data_is_damaged (struct cache *c);

/* blocks.c: everything below is called without cache_lock held. */
struct cache *cache_get (nbdkit_backend *backend, const char *name,
                         bool readonly, uint32_t want_bs,
                         const char *client_desc);
int cache_read (struct cache *c, nbdkit_next *next, void *buf,
                uint32_t count, uint64_t offset, int *err);
int cache_write (struct cache *c, nbdkit_next *next, const void *buf,
                 uint32_t count, uint64_t offset, uint32_t flags, int *err);
int cache_zero_trim (struct cache *c, nbdkit_next *next, bool trim,
                     uint32_t count, uint64_t offset, uint32_t flags,
                     int *err);
int cache_flush (struct cache *c, uint64_t first, uint64_t last, int *err);
int cache_prefetch (struct cache *c, nbdkit_next *next, uint32_t count,
                    uint64_t offset, int *err);
bool cache_block_dirty (struct cache *c, uint64_t blk);
void cache_readahead (struct cache *c, uint64_t blk);
void cache_free (struct cache *c);

/* Worker helpers (blocks.c), called with cache_lock held. */
bool wb_pick (struct cache *c, uint64_t *blk, uint64_t *gen);
void wb_done (struct cache *c, uint64_t blk, uint64_t gen, int err);
int load_block_locked (struct cache *c, nbdkit_next *next, uint64_t blk,
                       bool readahead, int *err);
int flush_below_locked (struct cache *c, int *err);
uint64_t block_len (struct cache *c, uint64_t blk);

/* workers.c */
int workers_start (void);
void workers_stop (void);
void drain_all (void);
void stats_write (void);

#endif /* CHUNK_CACHE_H */
