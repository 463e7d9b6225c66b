/* shardkit: chunk-cache filter, shared definitions.
 * GPL-3.0-or-later.
 *
 * One "struct cache" per export holds every block of that export and
 * is shared by all connections to it.
 *
 * The files, lowest first.  A file calls only files listed before it,
 * never one after it, and each has a header stating its lock rules:
 *
 *   store.c        the cache files: cache-dir checks and creation, the
 *                  header, the index, data I/O, hole punching
 *   state.c        block states, the lists, eviction
 *   exports.c      the caches of the exports: creation, lookup, freeing
 *   reads.c        reads, misses, prefetch, queueing read-ahead
 *   writeback.c    write-back bookkeeping (pick, done) and flush
 *   writes.c       writes (write-back and write-through), zero, trim
 *   workers.c      the worker threads, shutdown drain, statistics
 *   chunk-cache.c  parameters and the nbdkit callbacks
 *
 * (cfg, set while nbdkit reads the parameters and read-only after, and
 * the lock objects below are data shared by every file, not calls.)
 *
 * Lock rules.  A single mutex, cache_lock, protects every field of
 * every struct cache and struct block, and the list of caches, except
 * where a field says otherwise (the file descriptors and the fields
 * fixed at creation are read without it; data_damaged is atomic).
 * Data is copied to and from the cache files and the plugin with the
 * lock dropped, so it is only ever held for short bookkeeping; a block
 * being copied is pinned (pins, writers) or held (loading, busy) so
 * that its state cannot change under the copy.  Functions named
 * *_locked, and those a header lists as "lock held", must be called
 * with cache_lock held; a few of them drop and retake it (their header
 * says so).  All others take it themselves and must be called without.
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
  double max_age;               /* writeback-max-age= in seconds */
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
  double dirty_since;           /* when the oldest write not yet in the
                                 * plugin was made (see wb_touch) */
  double pending_since;         /* same for pending_seq */
  unsigned retries;
  uint64_t attempt;             /* number of its latest write-back start */
  struct link q;                /* LRU (clean), FIFO (dirty) or retry list */
  struct link u;                /* unclean list (dirty/inflight/written) */
};

struct lender {
  struct lender *next_lender;
  nbdkit_next *next;            /* a connection's own plugin context */
  unsigned users;               /* workers calling it now */
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

  /* Where the files are: cache-dir itself for the export that a plugin
   * context opened outside any connection serves (the plugin's default
   * export), cache-dir/exports/NAME for the others (see exports.c).
   * Fixed at creation.
   */
  char *dir;
  bool is_default;

  /* The plugin contexts that write-back, read-ahead and background
   * flushes go through, never a client's request.  For the default
   * export, bg: its own context, opened outside any connection.  For
   * another export nbdkit 1.32 cannot give such a context its name (see
   * exports.c): the contexts of its open connections are lent instead
   * (lenders, in the order they came), each counting the workers using
   * it, and a connection takes its context back only once none is.
   */
  nbdkit_next *bg;
  struct lender *lenders;
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
  uint64_t tail_checked_ms;     /* when data_check last ran (atomic) */

  /* Read-ahead requests (block numbers), a small ring. */
  uint64_t ra[64];
  unsigned ra_head, ra_count;

  struct stats st;
};

extern pthread_mutex_t cache_lock;   /* see the top of this file */
extern pthread_cond_t cache_cond;   /* any state change: waiters recheck */
extern pthread_cond_t work_cond;    /* work for the workers */

/* Monotonic seconds.  No lock needed. */
double now_s (void);

/* Length of block BLK (the last one may be short).  No lock needed. */
static inline uint64_t
block_len (const struct cache *c, uint64_t blk)
{
  uint64_t start = blk * c->bs;
  return c->size - start < c->bs ? c->size - start : c->bs;
}

#endif /* CHUNK_CACHE_H */
