/* shardkit: the locations of a redundant set, what the mirror store
 * and the erasure-coded store share.
 * GPL-3.0-or-later.
 *
 * A set is N location stores (chunk-engine.h, "Stores nest").  This
 * module keeps which of them are up (a mask changed atomically: down
 * when an operation on one fails, up again when the owner's probe says
 * it answers), what each lacks (missing-set.h, recorded durably on the
 * others), the per-chunk copy locks, the side-by-side operations on
 * several locations (a task pool), and the catch-up: probe the down
 * locations, then for each chunk a location lacks call the owner's FIX
 * (the mirror copies the chunk from a location that holds it, the EC
 * store rebuilds the location's fragment from K others), under the
 * chunk's exclusive copy lock, then sync the location and empty the
 * records.
 *
 * Copy locks: writes, punches and removals hold a chunk's lock shared,
 * FIX (and read repair) exclusive, so that a fix sees no write in
 * flight and a write never lands before a fix that would undo it.
 */
#ifndef SHARDKIT_STORE_SET_H
#define SHARDKIT_STORE_SET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "chunk-engine.h"
#include "missing-set.h"

#define STORE_SET_MAX_LOCATIONS 32
#define STORE_SET_COPY_STRIPES 1024

#define SET_BIT(i) (UINT32_C (1) << (i))

struct store_set_config {
  unsigned nloc;
  const struct chunk_store *loc;        /* [nloc], borrowed */
  const char *const *loc_name;          /* [nloc], for messages */
  uint32_t down;                        /* locations down at open */
  unsigned threads;                     /* side-by-side workers */
  const struct missing_log_ops *log;
  void *log_opaque;
  /* 0: location answers; 1: answers but may have lost writes (it is
   * then caught up in full); -1: does not answer.
   */
  int (*probe) (void *opaque, unsigned loc);
  /* Optional.  Is location LOC, up, gone from where it was (a directory
   * renamed away or removed: its open descriptor would go on working)?
   * Called from the catch-up at most once per probe interval; true
   * marks it down, and the probe finds it again.
   */
  bool (*moved) (void *opaque, unsigned loc);
  void *probe_opaque;
  /* Bytes a location lacks per chunk it lacks, for the lag in the log
   * (the chunk size; an EC location holds a fragment of it).
   */
  uint64_t lag_bytes_per_chunk;
  /* Bring chunk N up to date on LOC, which lacks it (write it, or
   * remove it where the chunk is gone), with N's copy lock held
   * exclusive.  0, or -1 (LOC still lacks it; FIX marks LOC down if
   * LOC itself failed).
   */
  int (*fix) (void *owner, unsigned loc, uint64_t n);
  void *owner;
};

struct store_set {
  char *name;
  struct store_set_config c;
  uint64_t nr_chunks;
  uint32_t all;                 /* a bit per location */
  uint32_t up;                  /* atomic */
  struct missing_set *missing;
  struct task_pool *pool;
  pthread_rwlock_t copy_locks[STORE_SET_COPY_STRIPES];

  /* The catch-up thread (store_set_run). */
  pthread_mutex_t run_lock;
  pthread_cond_t run_cond;
  bool kicked, stopping;
  struct timespec last_probe[STORE_SET_MAX_LOCATIONS];
  /* The lag in the debug log (log_lag), the catch-up thread's own. */
  time_t behind_since[STORE_SET_MAX_LOCATIONS];
  time_t last_lag_log;
};

/* Returns 0, or -1 after nbdkit_error (then store_set_fini). */
extern int store_set_init (struct store_set *s, const char *name,
                           const struct store_set_config *c,
                           uint64_t nr_chunks);
extern void store_set_fini (struct store_set *s);

static inline unsigned
store_set_count (uint32_t mask)
{
  return (unsigned) __builtin_popcount (mask);
}

extern uint32_t store_set_up (const struct store_set *s);
/* The locations that lack chunk N. */
extern uint32_t store_set_lacking (const struct store_set *s, uint64_t n);
extern void store_set_mark_down (struct store_set *s, unsigned loc, int err,
                                 const char *what);
/* Wake the catch-up thread. */
extern void store_set_kick (struct store_set *s);

static inline pthread_rwlock_t *
store_set_copy_lock (struct store_set *s, uint64_t n)
{
  return &s->copy_locks[n % STORE_SET_COPY_STRIPES];
}

/* One operation, sent to several locations at once by store_set_fan_out. */
enum set_op_kind { SET_OP_WRITE, SET_OP_PUNCH, SET_OP_REMOVE, SET_OP_SYNC,
                   SET_OP_READ };

struct set_op {
  enum set_op_kind kind;
  uint64_t n;
  const void *buf;              /* write: the same bytes everywhere... */
  void *const *bufs;            /* ... or location i's in bufs[i] (and read) */
  uint32_t len, off;
  bool fua;
};

/* Run OP on every location in TARGETS side by side.  Returns the
 * locations where it succeeded; with MARK_DOWN the others are marked
 * down.  RESULTS[i] (if not NULL) gets location i's result (-1, 0, 1)
 * and ERRS[i] its errno.  *MIN (if not NULL) gets the smallest result
 * of those that succeeded (1 if none).
 */
extern uint32_t store_set_fan_out (struct store_set *s,
                                   const struct set_op *op, uint32_t targets,
                                   bool mark_down, int *results, int *min);

/* Record that every location outside OK lacks chunk N, on the
 * locations in OK, durably.  A location whose record fails is marked
 * down (and lacks N).  Returns what is left of OK.
 */
extern uint32_t store_set_settle (struct store_set *s, uint64_t n,
                                  uint32_t ok);

/* Bring chunk N up to date on LOC if it lacks it, under N's copy lock
 * (taken here, exclusive).  0, or -1.
 */
extern int store_set_fix (struct store_set *s, unsigned loc, uint64_t n);
/* The same with the lock already held exclusive. */
extern int store_set_fix_locked (struct store_set *s, unsigned loc,
                                 uint64_t n);

/* Sync every location in TARGETS; one whose sync fails is down and
 * lacks every chunk (Linux may have dropped its dirty pages).
 * Returns the locations synced.
 */
extern uint32_t store_set_sync (struct store_set *s, uint32_t targets);

/* A flush that reached the locations in OK, of which it needed NEED:
 * 0, or -1 with errno EIO after nbdkit_error naming RULE.
 */
extern int store_set_flush_reached (const struct store_set *s, uint32_t ok,
                                    unsigned need, const char *rule);

/* What the up locations hold, leaving out what a location is recorded
 * as lacking (its copy is stale, or should be gone): the chunks at
 * least MIN_HOLDERS of them list (one byte per chunk while listing).
 */
extern int store_set_list (struct store_set *s, unsigned min_holders,
                           void (*found) (void *opaque, uint64_t n),
                           void *opaque);

/* Catch LOC up: fix every chunk it lacks, then sync it and empty the
 * records.  0 when it lacks nothing, 1 if it still does, -1 on failure.
 */
extern int store_set_catch_up_location (struct store_set *s, unsigned loc);

/* One pass: probe the down locations (at most once per INTERVAL_NS
 * each), catch up the up ones.  0 when no up location lacks anything,
 * 1 if work is left.
 */
extern int store_set_catch_up (struct store_set *s, uint64_t interval_ns);

/* Before serving: the chunks the write intents found at load name
 * (missing-set.h, a crash while they were written).  HOLDERS (OWNER, n)
 * says which locations hold the version to keep (0: nothing to do);
 * every other location is recorded as lacking n, durably on those
 * (READONLY: in memory), and the catch-up brings it over.  WHAT (for
 * the debug line) says how.  0, or -1 after nbdkit_error.
 */
extern int store_set_reconcile (struct store_set *s, bool readonly,
                                uint32_t (*holders) (void *owner,
                                                     uint64_t n),
                                const char *what);

/* Empty the records of every up location that lacks nothing (after
 * syncing the locations, as the catch-up does): at a clean close, so
 * that the next open finds no write intents to reconcile.
 */
extern void store_set_compact (struct store_set *s);

/* The catch-up thread's loop, until store_set_stop. */
extern void store_set_run (struct store_set *s, uint64_t probe_interval_ns);
extern void store_set_stop (struct store_set *s);

#endif /* SHARDKIT_STORE_SET_H */
