/* shardkit: the erasure-coded store, each chunk as K data and M parity
 * fragments on K+M locations.
 * GPL-3.0-or-later.
 *
 * A store (chunk-engine.h, "Stores nest") over K+M location stores.
 * Chunk n (LEN bytes) is encoded (ec-codec.h) into K+M fragments of
 * ec_fragment_len (K, LEN) bytes; fragment i is chunk n of location i,
 * followed by a trailer of ec_trailer_len (FL) bytes, little-endian:
 *
 *   0   4  magic "SKE2"
 *   4   1  fragment index i
 *   5   1  K
 *   6   1  M
 *   7   1  0
 *   8   8  chunk number n
 *   16  8  write stamp: the same in every fragment of one write of
 *          the chunk, another for every write (so fragments of two
 *          writes are never decoded together)
 *   24  4  LEN, the chunk's length
 *   28  4  CRC32C of trailer bytes 0..27 and of the table that follows
 *   32  4s the table: CRC32C of each EC_SUB_BLOCK (64 KiB) of the
 *          fragment bytes, s = FL / 64 KiB rounded up (the last one
 *          may be shorter)
 *
 * A digest per 64 KiB lets a read of a few KiB fetch the trailer and
 * the sub-blocks it covers rather than the whole fragment (1 MiB of a
 * 4 MiB chunk in 4+2), as s3-object's per-sub-block CRCs do.
 *
 * The location stores keep no checksums: the trailer is the fragment's
 * digest, checked on every read.  A fragment that fails it (or is
 * another chunk's, or another write's than the K others agree on, or
 * cannot be read, or is absent while others hold the chunk) is missing
 * for that read, rebuilt from K others and rewritten (read repair,
 * logged).  Fewer than K good fragments of one write: EIO.
 *
 * Writes take whole chunks (partial_write false: the engine does the
 * read-modify-write under the chunk's exclusive lock).  A write (or a
 * removal) goes to every location that is up, side by side, and
 * succeeds when it is on at least MIN_WRITE (K..K+M, default K+1) of
 * them; a location that failed is marked down and recorded as lacking
 * the chunk, durably, on those that took it (store-set.h, missing-set.h)
 * before the write returns.  Below MIN_WRITE: EIO (what landed is
 * recorded all the same).  The catch-up (store-set.h) rebuilds each
 * fragment a location lacks from K others, or removes it where the
 * chunk is gone.
 *
 * list(): a chunk exists if at least K up locations hold a fragment of
 * it not recorded stale.  Fewer is what a write or removal cut short by
 * a crash leaves (never acknowledged): logged, and not part of the
 * volume.
 */
#ifndef SHARDKIT_EC_STORE_H
#define SHARDKIT_EC_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "chunk-engine.h"
#include "missing-set.h"

#define EC_STORE_MAX_LOCATIONS 16
#define EC_TRAILER_HEADER 32
#define EC_TRAILER_MAGIC "SKE2"
#define EC_SUB_BLOCK (64 * 1024)

/* The bytes of the trailer of a fragment of FRAG_LEN bytes. */
static inline size_t
ec_trailer_len (size_t frag_len)
{
  return EC_TRAILER_HEADER + 4 * ((frag_len + EC_SUB_BLOCK - 1) / EC_SUB_BLOCK);
}

struct ec_config {
  unsigned k, m;
  struct chunk_store loc[EC_STORE_MAX_LOCATIONS];       /* k + m */
  const char *loc_name[EC_STORE_MAX_LOCATIONS];         /* for messages */
  uint32_t down;                /* locations down at open */
  bool readonly;                /* the records are only read */
  unsigned min_write;           /* 0: K+1 (K if M is 0) */
  unsigned threads;             /* side-by-side workers */
  const struct missing_log_ops *log;
  void *log_opaque;
  int (*probe) (void *opaque, unsigned loc);    /* as store_set's */
  bool (*moved) (void *opaque, unsigned loc);   /* as store_set's */
  void *probe_opaque;
};

struct ec_store;

/* The fewest locations that must answer at open: K to read, and one
 * of the MIN_WRITE that took every acknowledged write (so a record of
 * what a location lacks is among them).
 */
static inline unsigned
ec_store_min_up (unsigned k, unsigned m, unsigned min_write)
{
  unsigned rec = k + m - min_write + 1;
  return rec > k ? rec : k;
}

/* NULL after nbdkit_error.  The location stores stay their owner's. */
extern struct ec_store *ec_store_new (const char *name,
                                      const struct ec_config *c,
                                      uint64_t size, uint32_t chunk_size);
extern void ec_store_free (struct ec_store *s);
extern struct chunk_store ec_store_as_store (struct ec_store *s);

/* As mirror_store_catch_up, _run, _stop, _is_up, _lacking. */
extern int ec_store_catch_up (struct ec_store *s);
extern void ec_store_run (struct ec_store *s, uint64_t probe_interval_ns);
extern void ec_store_stop (struct ec_store *s);
extern void ec_store_compact (struct ec_store *s);
extern bool ec_store_is_up (const struct ec_store *s, unsigned loc);
extern uint64_t ec_store_lacking (const struct ec_store *s, unsigned loc);

/* Counters for tests and the debug log. */
extern uint64_t ec_store_repairs (const struct ec_store *s);

/* What ec_store_scrub_chunk found and did, a bit per location. */
enum ec_scrub_state {
  EC_SCRUB_ABSENT,              /* no location holds a fragment */
  EC_SCRUB_SOUND,               /* every fragment read is good */
  EC_SCRUB_REPAIRED,            /* some were not: rebuilt and rewritten */
  EC_SCRUB_CUT_SHORT,           /* fewer than K locations hold one */
  EC_SCRUB_UNRECOVERABLE,       /* K or more do, fewer than K good */
};

struct ec_scrub_result {
  enum ec_scrub_state state;
  uint32_t read;                /* up and not recorded as lacking it */
  uint32_t good;                /* sound, of the write chosen */
  uint32_t absent;              /* no fragment */
  uint32_t unreadable;          /* read error */
  uint32_t bad;                 /* failed its trailer or a sub-block CRC */
  uint32_t other_write;         /* sound, but of another write */
  uint32_t rewritten;           /* present but not good: rewritten */
  uint32_t restored;            /* absent: written */
  uint32_t write_failed;        /* the rewrite failed (marked down) */
};

/* Scrub chunk N: read every fragment of it on every location that is
 * up and not recorded as lacking it (those are the catch-up's), whole,
 * and check each (ec_fragment_check); with K good ones of one write,
 * rebuild every other one (bad, unreadable, of another write, absent)
 * and write it, all under N's copy lock held exclusive (no write or
 * read repair of N meanwhile).  Fewer than K locations with a fragment
 * (what a write or removal cut short by a crash leaves; list() does not
 * count the chunk) or fewer than K good ones: nothing is written, the
 * state says which.  *R says what was found and done.  Returns 0 (also
 * then), or -1 after nbdkit_error (out of memory, or a rewrite failed:
 * R->write_failed).
 */
extern int ec_store_scrub_chunk (struct ec_store *s, uint64_t n,
                                 struct ec_scrub_result *r);

/* Fill the trailer at FRAG + FRAG_LEN of fragment I of chunk N.  For
 * tests and tools that check fragments.
 */
extern void ec_fragment_seal (uint8_t *frag, size_t frag_len, unsigned i,
                              unsigned k, unsigned m, uint64_t n,
                              uint64_t stamp, uint32_t len);
/* True if FRAG (FRAG_LEN bytes + trailer) is a sound fragment I of
 * chunk N of LEN bytes; *STAMP gets its stamp.
 */
extern bool ec_fragment_check (const uint8_t *frag, size_t frag_len,
                               unsigned i, unsigned k, unsigned m,
                               uint64_t n, uint32_t len, uint64_t *stamp);
/* True if the trailer T (of a fragment of FRAG_LEN bytes) is fragment
 * I's of chunk N of LEN bytes and sound itself; *STAMP gets its stamp.
 * Then ec_fragment_check_range checks sub-blocks against it.
 */
extern bool ec_trailer_check (const uint8_t *t, size_t frag_len, unsigned i,
                              unsigned k, unsigned m, uint64_t n,
                              uint32_t len, uint64_t *stamp);
/* True if the sub-blocks FIRST..LAST of FRAG (fragment bytes, FRAG_LEN
 * of them) match the table of the trailer T.
 */
extern bool ec_fragment_check_range (const uint8_t *frag, size_t frag_len,
                                     const uint8_t *t, size_t first,
                                     size_t last);

#endif /* SHARDKIT_EC_STORE_H */
