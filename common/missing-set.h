/* shardkit: what each location of a redundant set lacks, kept in memory
 * and persistently on the other locations.
 * GPL-3.0-or-later.
 *
 * A mirror (and later an erasure-coded set) writes each chunk to
 * several locations.  When one of them cannot take a write (it is
 * down, its write failed, or async mode leaves it behind), the chunk is
 * recorded as missing there ("location LOC lacks chunk n"): reads pass
 * that copy over, and the catch-up brings it up to date later.  The
 * record must outlive a crash, so it is made durable before the write
 * that created the lack is acknowledged, on the locations that took the
 * write (the HOLDERS: the ones that know what LOC lacks).  Where and how
 * it is stored is the owner's business, through struct missing_log_ops:
 * a file per lacking location in each holder's directory for
 * sharded-file (missing-file.c), an object for S3 later.
 *
 * The rules the set keeps:
 *  - a bit goes from clear to set only once the record is durable on at
 *    least one holder (missing_set_add);
 *  - a bit is cleared only by the catch-up, once the copy is written
 *    (missing_set_done), and the records go only once the location
 *    lacks nothing and has synced what it was given
 *    (missing_set_compact, under an exclusive lock that no add holds).
 */
#ifndef SHARDKIT_MISSING_SET_H
#define SHARDKIT_MISSING_SET_H

#include <stdbool.h>
#include <stdint.h>

/* A record meaning "lacks every chunk" (a full resync): the owner's
 * log says so when it cannot say which (a damaged record), and the set
 * records it for a location whose sync failed (Linux may have dropped
 * any of its unsynced writes).
 */
#define MISSING_ALL UINT64_MAX

#define MISSING_MAX_LOCATIONS 32

/* The persistent record, per (holder, lacking location).  Each returns
 * 0, or -1 after nbdkit_error with errno set.
 */
struct missing_log_ops {
  /* Call FOUND (ARG, n) for each chunk the record on HOLDER says LOC
   * lacks (perhaps MISSING_ALL; duplicates allowed).  No record is an
   * empty one.
   */
  int (*load) (void *opaque, unsigned holder, unsigned loc,
               void (*found) (void *arg, uint64_t n), void *arg);
  /* Add NS[0..COUNT) to the record on HOLDER of what LOC lacks, durably
   * on return.  Safe to call from several threads at once.
   */
  int (*append) (void *opaque, unsigned holder, unsigned loc,
                 const uint64_t *ns, size_t count);
  /* Empty the record on HOLDER of what LOC lacks, durably (LOC lacks
   * nothing: the compaction).  Never called at the same time as append
   * for the same HOLDER and LOC.
   */
  int (*clear) (void *opaque, unsigned holder, unsigned loc);
};

struct missing_set;

/* For NLOC locations (at most MISSING_MAX_LOCATIONS) of a volume of
 * NR_CHUNKS chunks.  NAME is for messages.  NULL after nbdkit_error.
 */
extern struct missing_set *missing_set_new (const char *name, unsigned nloc,
                                            uint64_t nr_chunks,
                                            const struct missing_log_ops *ops,
                                            void *opaque);
extern void missing_set_free (struct missing_set *s);

/* Read the records kept on every holder in the mask HOLDERS (bit i:
 * location i) about every other location.  Returns 0, or -1 after
 * nbdkit_error.
 */
extern int missing_set_load (struct missing_set *s, uint32_t holders);

/* Does LOC lack chunk N? */
extern bool missing_set_test (const struct missing_set *s, unsigned loc,
                              uint64_t n);
/* How many chunks LOC lacks. */
extern uint64_t missing_set_count (const struct missing_set *s, unsigned loc);

/* Record that the locations in LOCS lack chunk N (MISSING_ALL: every
 * chunk), durably on each holder in HOLDERS (locations that do not
 * lack it).  Locations already known to lack N need nothing.  A holder
 * whose record could not be written goes into *FAILED (the caller
 * treats it as down); the bits are set if at least one holder has the
 * record.  Returns 0 if one has (or nothing was needed), -1 if none.
 */
extern int missing_set_add (struct missing_set *s, uint32_t locs, uint64_t n,
                            uint32_t holders, uint32_t *failed);

/* The catch-up copied chunk N to LOC (not yet synced): clear its bit. */
extern void missing_set_done (struct missing_set *s, unsigned loc, uint64_t n);

/* The first chunk >= FROM that LOC lacks, or MISSING_ALL if none. */
extern uint64_t missing_set_next (const struct missing_set *s, unsigned loc,
                                  uint64_t from);

/* If LOC lacks nothing and has records: SYNC (ARG) (make what the
 * catch-up gave LOC durable), then empty the records about LOC on every
 * holder in HOLDERS, with no add running.  Returns 1 if compacted, 0
 * if there was nothing to do (or LOC lacks something again), -1 after
 * nbdkit_error (the records stay: harmless, they are caught up again).
 */
extern int missing_set_compact (struct missing_set *s, unsigned loc,
                                uint32_t holders,
                                int (*sync) (void *arg), void *arg);

/* True if the records about LOC may hold entries (it lacked something
 * since they were last emptied).
 */
extern bool missing_set_has_records (const struct missing_set *s,
                                     unsigned loc);

/* The write intent of a write to several locations at once (a sync
 * mirror).  A crash while chunk N is being written to the locations in
 * TARGETS may leave it new on some and old on others, with nothing
 * recorded: the write was never acknowledged, so either is right, but
 * the copies must not differ (two reads would not agree).  So before
 * the write each target records N in its own record (holder and
 * location the same), durably, as md's write-intent bitmap; once per
 * chunk until the compaction empties the records, which waits for the
 * writes in flight (each holds the targets' locks from here to
 * missing_set_intend_done) and syncs the locations first.  At load the
 * intents found are pending (missing_set_next_intent): before serving,
 * the owner picks one location that holds each such chunk and records
 * every other as lacking it, so that the catch-up copies one version
 * everywhere.  A target whose record failed goes into *FAILED (the
 * caller marks it down and leaves it out of the write).  Returns 0.
 */
extern int missing_set_intend (struct missing_set *s, uint32_t targets,
                               uint64_t n, uint32_t *failed);
extern void missing_set_intend_done (struct missing_set *s,
                                     uint32_t targets);
/* Record that the locations in LOCS lack chunk N in this process only
 * (a read-only server, which writes no record, reconciling the write
 * intents: the next read-write open does it again, durably).
 */
extern void missing_set_assume (struct missing_set *s, uint32_t locs,
                                uint64_t n);
/* The first chunk >= FROM a write intent found at load names, or
 * MISSING_ALL.
 */
extern uint64_t missing_set_next_intent (const struct missing_set *s,
                                         uint64_t from);

#endif /* SHARDKIT_MISSING_SET_H */
