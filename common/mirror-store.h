/* shardkit: the mirror store, every chunk on every location.
 * GPL-3.0-or-later.
 *
 * A store (chunk-engine.h, "Stores nest") over N stores, the locations
 * (a directory each, later buckets), 1 <= N <= MIRROR_MAX_LOCATIONS.
 *
 * Writes.  mirror-mode=sync: a write (or punch, or removal) goes to
 * every location that is up, side by side (a task pool), and succeeds
 * when it is on every one of them that answered and on at least
 * write_quorum; below that it fails with EIO.  A location whose write
 * fails is marked down, and the chunk is recorded as missing there
 * (missing-set.h) on the locations that took the write, durably,
 * before the write returns.  mirror-mode=async: a write goes to the
 * first location that is up (the primary) and returns; the others are
 * first recorded as missing the chunk (durably, on the primary), and
 * the catch-up brings them up to date.
 *
 * A location that lacks a chunk is never written piecemeal: a partial
 * write onto a stale copy would make a chunk that is neither.  In sync
 * mode a write first catches that chunk up on that location (a copy
 * from one that holds it, under the chunk's exclusive copy lock, as
 * overlay-store copies up); in async mode it is left to the catch-up.
 *
 * Reads go to a location that is up and does not lack the chunk,
 * round-robin.  A read error falls back to the next one (and records
 * the chunk as missing on the failing one: the catch-up rewrites it).
 * "Does not exist" from one location while another holds the chunk is
 * an inconsistency: logged, served from the one that holds it, and
 * repaired the same way.  list() is the union of what the up locations
 * hold, leaving out chunks recorded as missing on a location (its copy
 * is stale, or should be gone).
 *
 * Catch-up.  mirror_store_catch_up, called by the owner from a
 * background thread: probes each down location through the owner's
 * probe callback and marks it up again when it answers, then copies to
 * each up location every chunk it lacks (or removes it there when no
 * location holds it), each under the chunk's exclusive copy lock so
 * that a concurrent write (which holds it shared) is never overwritten
 * by an older copy; then syncs the location and empties the records.
 *
 * Opening needs enough locations to have every acknowledged write and
 * every record of what a location lacks: write_quorum Q of N means an
 * acknowledged write is on Q locations, so any N-Q+1 have it.  The
 * owner checks that before mirror_store_new (mirror_store_min_up).
 */
#ifndef SHARDKIT_MIRROR_STORE_H
#define SHARDKIT_MIRROR_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "chunk-engine.h"
#include "missing-set.h"

#define MIRROR_MAX_LOCATIONS 8

enum mirror_mode { MIRROR_SYNC, MIRROR_ASYNC };

struct mirror_config {
  unsigned nloc;
  struct chunk_store loc[MIRROR_MAX_LOCATIONS];
  const char *loc_name[MIRROR_MAX_LOCATIONS]; /* for messages */
  /* Locations that did not answer when the volume was opened: they
   * start down (their stores must still work once they answer).
   */
  uint32_t down;
  enum mirror_mode mode;
  unsigned write_quorum;        /* 1..nloc; async: 1 */
  /* Async: a flush waits until every location holds everything
   * (durability=all), not only the primary.
   */
  bool durable_all;
  /* The records are only read (a read-only server). */
  bool readonly;
  /* Worker threads for the side-by-side writes; 0: one after the
   * other in the caller.
   */
  unsigned threads;
  /* The persistent record of what each location lacks. */
  const struct missing_log_ops *log;
  void *log_opaque;
  /* Does location LOC answer again?  0 if it does (and can be written),
   * 1 if it does but may have lost writes it took (a failed sync: it
   * is caught up in full), -1 if not.  Called from the catch-up only.
   */
  int (*probe) (void *opaque, unsigned loc);
  /* Optional.  Is location LOC, up, gone from where it was (a directory
   * renamed away or removed: its open descriptor would go on working)?
   * Called from the catch-up at most once per probe interval; true
   * marks it down, and the probe finds it again.
   */
  bool (*moved) (void *opaque, unsigned loc);
  void *probe_opaque;
};

struct mirror_store;

/* The fewest locations that must answer at open for a set of NLOC
 * with write quorum Q (async: 1).
 */
static inline unsigned
mirror_store_min_up (unsigned nloc, unsigned quorum)
{
  return nloc - quorum + 1;
}

/* Build a mirror over CONFIG's locations for a volume of SIZE bytes in
 * chunks of CHUNK_SIZE.  Loads the records of what each location lacks
 * and lists the locations.  NAME is for messages.  Returns NULL after
 * nbdkit_error.  The stores stay their owner's.
 */
extern struct mirror_store *mirror_store_new (const char *name,
                                              const struct mirror_config *c,
                                              uint64_t size,
                                              uint32_t chunk_size);
extern void mirror_store_free (struct mirror_store *m);

extern struct chunk_store mirror_store_as_store (struct mirror_store *m);

/* One pass of the catch-up (see above).  Returns 0 when every location
 * that is up lacks nothing, 1 if work is left (a location is down or a
 * copy failed), -1 after nbdkit_error.
 */
extern int mirror_store_catch_up (struct mirror_store *m);

/* The catch-up thread's loop: passes of mirror_store_catch_up, a pass
 * at least every PROBE_INTERVAL_NS and at once when an async write
 * leaves work, until mirror_store_stop.  While a location lacks
 * chunks, a debug line every 10 probe intervals (1 s to 60 s) says how
 * far behind it is: chunks and bytes (chunks x chunk size) and how long
 * it has been behind, as seen by this process (since the volume was
 * opened, for records found at open).
 */
extern void mirror_store_run (struct mirror_store *m,
                              uint64_t probe_interval_ns);
extern void mirror_store_stop (struct mirror_store *m);
/* At a clean close, after mirror_store_stop: store_set_compact. */
extern void mirror_store_compact (struct mirror_store *m);

/* Wait until every up location lacks nothing (durability=all flushes in
 * async mode), then sync them all.  Returns 0, or -1 with errno.
 */
extern int mirror_store_sync_all (struct mirror_store *m);

/* Is location LOC up?  How many chunks does it lack?  For status. */
extern bool mirror_store_is_up (const struct mirror_store *m, unsigned loc);
extern uint64_t mirror_store_lacking (const struct mirror_store *m,
                                      unsigned loc);

#endif /* SHARDKIT_MIRROR_STORE_H */
