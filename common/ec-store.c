/* shardkit: the erasure-coded store.  GPL-3.0-or-later.  See ec-store.h.
 *
 * Locking is the mirror's (store-set.h): writes and removals hold the
 * chunk's copy lock shared (exclusive when a location they write lacks
 * the chunk: the write then replaces its stale fragment and clears its
 * bit), the catch-up and read repair exclusive.  Reads take none: they
 * skip a location whose bit says it lacks the chunk, and the bit is
 * cleared only once its fragment is whole.  The engine above holds the
 * chunk's own lock exclusive for writes (partial_write is false), so a
 * read never sees half of one write and half of another, except after
 * a crash, which the write stamps catch.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "crc32c.h"
#include "ec-codec.h"
#include "ec-store.h"
#include "le-bytes.h"
#include "store-set.h"
#include "thread-buffer.h"

#define BIT(i) SET_BIT (i)

struct ec_store {
  struct store_set set;
  struct chunk_store_ops ops;
  struct ec_config c;
  unsigned n;                   /* k + m */
  struct ec_codec *codec;
  uint64_t size;
  uint32_t chunk_size;
  uint64_t next_stamp;          /* atomic */
  uint64_t repairs;             /* atomic */
};

/* Reads and writes use one, the repairs they start the other. */
static struct thread_buffer scratch = THREAD_BUFFER_INIT;
static struct thread_buffer fix_scratch = THREAD_BUFFER_INIT;





void
ec_fragment_seal (uint8_t *frag, size_t frag_len, unsigned i, unsigned k,
                  unsigned m, uint64_t n, uint64_t stamp, uint32_t len)
{
  uint8_t *t = frag + frag_len;
  const size_t tlen = ec_trailer_len (frag_len);
  size_t off, j;

  memcpy (t, EC_TRAILER_MAGIC, 4);
  t[4] = (uint8_t) i;
  t[5] = (uint8_t) k;
  t[6] = (uint8_t) m;
  t[7] = 0;
  put_le64 (t + 8, n);
  put_le64 (t + 16, stamp);
  put_le32 (t + 24, len);
  for (off = 0, j = 0; off < frag_len; off += EC_SUB_BLOCK, ++j) {
    size_t l = frag_len - off < EC_SUB_BLOCK ? frag_len - off : EC_SUB_BLOCK;
    put_le32 (t + EC_TRAILER_HEADER + 4 * j, crc32c (0, frag + off, l));
  }
  /* Bytes 28..31 last: the CRC of the rest of the trailer. */
  put_le32 (t + 28, crc32c (crc32c (0, t, 28), t + EC_TRAILER_HEADER,
                            tlen - EC_TRAILER_HEADER));
}

bool
ec_trailer_check (const uint8_t *t, size_t frag_len, unsigned i, unsigned k,
                  unsigned m, uint64_t n, uint32_t len, uint64_t *stamp)
{
  const size_t tlen = ec_trailer_len (frag_len);

  if (memcmp (t, EC_TRAILER_MAGIC, 4) != 0 || t[4] != i || t[5] != k ||
      t[6] != m || t[7] != 0 || get_le64 (t + 8) != n ||
      get_le32 (t + 24) != len ||
      get_le32 (t + 28) != crc32c (crc32c (0, t, 28), t + EC_TRAILER_HEADER,
                                   tlen - EC_TRAILER_HEADER))
    return false;
  *stamp = get_le64 (t + 16);
  return true;
}

bool
ec_fragment_check_range (const uint8_t *frag, size_t frag_len,
                         const uint8_t *t, size_t first, size_t last)
{
  size_t j;

  for (j = first; j <= last; ++j) {
    const size_t off = j * EC_SUB_BLOCK;
    const size_t l = frag_len - off < EC_SUB_BLOCK ? frag_len - off
      : EC_SUB_BLOCK;
    if (get_le32 (t + EC_TRAILER_HEADER + 4 * j) !=
        crc32c (0, frag + off, l))
      return false;
  }
  return true;
}

bool
ec_fragment_check (const uint8_t *frag, size_t frag_len, unsigned i,
                   unsigned k, unsigned m, uint64_t n, uint32_t len,
                   uint64_t *stamp)
{
  return frag_len > 0 &&
    ec_trailer_check (frag + frag_len, frag_len, i, k, m, n, len, stamp) &&
    ec_fragment_check_range (frag, frag_len, frag + frag_len, 0,
                             (frag_len - 1) / EC_SUB_BLOCK);
}

static uint32_t
span (const struct ec_store *s, uint64_t n)
{
  return chunk_span_of (s->size, s->chunk_size, n);
}

bool
ec_store_is_up (const struct ec_store *s, unsigned loc)
{
  return store_set_up (&s->set) & BIT (loc);
}

uint64_t
ec_store_lacking (const struct ec_store *s, unsigned loc)
{
  return missing_set_count (s->set.missing, loc);
}

uint64_t
ec_store_repairs (const struct ec_store *s)
{
  return __atomic_load_n (&s->repairs, __ATOMIC_RELAXED);
}

/* The fragments of one chunk in one buffer: fragment i (and its
 * trailer) at BASE + i * (FL + ec_trailer_len (FL)).
 */
struct frags {
  uint64_t n;
  uint32_t len;                 /* the chunk's */
  size_t fl;                    /* fragment length, trailer not counted */
  uint8_t *p[EC_STORE_MAX_LOCATIONS];
  uint8_t *base;
};

static int
frags_get (struct ec_store *s, struct thread_buffer *tb, uint64_t n,
           struct frags *f)
{
  unsigned i;

  f->n = n;
  f->len = span (s, n);
  f->fl = ec_fragment_len (s->c.k, f->len);
  f->base = thread_buffer_get (tb, s->n * (f->fl + ec_trailer_len (f->fl)));
  if (f->base == NULL) {
    nbdkit_error ("%s: malloc: %m", s->set.name);
    return -1;
  }
  for (i = 0; i < s->n; ++i)
    f->p[i] = f->base + i * (f->fl + ec_trailer_len (f->fl));
  return 0;
}

/* What reading some fragments of a chunk found. */
struct gathered {
  uint32_t read;                /* locations read */
  uint32_t good;                /* sound, and of the chosen write */
  uint32_t absent;              /* "does not exist" */
  uint32_t failed;              /* read error */
  uint32_t bad;                 /* digest failed, or another write's */
  uint64_t stamp;               /* the chosen write */
  uint64_t stamps[EC_STORE_MAX_LOCATIONS];
  uint32_t sound;               /* digest good, any write */
};

/* Read the fragments of F->n on the locations in WANT into F, whole,
 * and check them; adds to *G.  Then choose the write the most sound
 * fragments agree on (a crash may leave two).
 */
static void
gather (struct ec_store *s, struct frags *f, uint32_t want,
        struct gathered *g)
{
  int results[EC_STORE_MAX_LOCATIONS];
  const struct set_op op = {
    .kind = SET_OP_READ, .n = f->n, .bufs = (void *const *) f->p,
    .len = (uint32_t) (f->fl + ec_trailer_len (f->fl)),
  };
  unsigned i, j, best = 0;

  if (want)
    store_set_fan_out (&s->set, &op, want, false, results, NULL);
  g->read |= want;
  for (i = 0; i < s->n; ++i) {
    if (!(want & BIT (i)))
      continue;
    if (results[i] == -1)
      g->failed |= BIT (i);
    else if (results[i] == 1)
      g->absent |= BIT (i);
    else if (ec_fragment_check (f->p[i], f->fl, i, s->c.k, s->c.m, f->n,
                                f->len, &g->stamps[i]))
      g->sound |= BIT (i);
    else
      g->bad |= BIT (i);
  }
  /* The stamp with the most sound fragments. */
  g->good = 0;
  for (i = 0; i < s->n; ++i) {
    uint32_t same = 0;
    if (!(g->sound & BIT (i)))
      continue;
    for (j = 0; j < s->n; ++j)
      if ((g->sound & BIT (j)) && g->stamps[j] == g->stamps[i])
        same |= BIT (j);
    if (store_set_count (same) > best) {
      best = store_set_count (same);
      g->good = same;
      g->stamp = g->stamps[i];
    }
  }
}

/* Rebuild the fragments not in G->good from those that are.  0, or -1
 * with errno EIO when fewer than K are.
 */
static int
rebuild (struct ec_store *s, struct frags *f, const struct gathered *g)
{
  bool present[EC_STORE_MAX_LOCATIONS];
  unsigned i;

  for (i = 0; i < s->n; ++i)
    present[i] = g->good & BIT (i);
  return ec_rebuild (s->codec, f->p, present, f->fl);
}

/* The store_set's fix: rebuild LOC's fragment of chunk n from K others
 * and write it, or remove it if no location holds the chunk.  Called
 * with n's copy lock held exclusive.
 */
static int
ec_fix (void *owner, unsigned loc, uint64_t n)
{
  struct ec_store *s = owner;
  const struct chunk_store *dst = &s->c.loc[loc];
  const uint32_t sources =
    store_set_up (&s->set) & ~store_set_lacking (&s->set, n) & ~BIT (loc);
  struct gathered g = { 0 };
  struct frags f;
  int r;

  if (frags_get (s, &fix_scratch, n, &f) == -1)
    return -1;
  gather (s, &f, sources, &g);
  if (g.sound == 0 && g.failed == 0 && g.bad == 0)
    r = dst->ops->remove (dst->opaque, &n, 1, false);
  else if (store_set_count (g.good) < s->c.k || rebuild (s, &f, &g) == -1) {
    thread_buffer_put (&fix_scratch, f.base);
    nbdkit_error ("%s: chunk %" PRIu64 ": fragment %u (%s) cannot be "
                  "rebuilt: only %u sound fragments of one write among the "
                  "others, %u needed", s->set.name, n, loc,
                  s->c.loc_name[loc], store_set_count (g.good), s->c.k);
    errno = EIO;
    return -1;
  }
  else {
    ec_fragment_seal (f.p[loc], f.fl, loc, s->c.k, s->c.m, n, g.stamp, f.len);
    r = dst->ops->write (dst->opaque, n, f.p[loc],
                         (uint32_t) (f.fl + ec_trailer_len (f.fl)), 0, false);
  }
  thread_buffer_put (&fix_scratch, f.base);
  if (r == -1) {
    store_set_mark_down (&s->set, loc, errno, "rebuilding a fragment");
    return -1;
  }
  return 0;
}

/* Read repair: the locations in BAD (up, not recorded as lacking n)
 * gave no good fragment of chunk n, the locations in GOOD did.  Record
 * them as lacking it and rebuild their fragments now.
 */
static void
repair (struct ec_store *s, uint64_t n, uint32_t bad, uint32_t good,
        const struct gathered *g)
{
  uint32_t failed = 0;
  unsigned i;

  for (i = 0; i < s->n; ++i) {
    if (!(bad & BIT (i)))
      continue;
    nbdkit_error ("%s: chunk %" PRIu64 ": fragment %u on location %u (%s) "
                  "%s: rebuilding it from the others",
                  s->set.name, n, i, i, s->c.loc_name[i],
                  g->absent & BIT (i) ? "is missing" :
                  g->failed & BIT (i) ? "could not be read" :
                  g->bad & BIT (i) ? "fails its digest" :
                  "is of another (interrupted) write");
  }
  if (missing_set_add (s->set.missing, bad, n, good, &failed) == -1)
    return;
  for (i = 0; i < s->n; ++i)
    if ((bad & BIT (i)) && store_set_fix (&s->set, i, n) == 0)
      __atomic_fetch_add (&s->repairs, 1, __ATOMIC_RELAXED);
  /* The catch-up empties the records (or retries what failed). */
  store_set_kick (&s->set);
}

int
ec_store_scrub_chunk (struct ec_store *s, uint64_t n,
                      struct ec_scrub_result *r)
{
  pthread_rwlock_t *lock = store_set_copy_lock (&s->set, n);
  CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *locked = NULL;
  struct gathered g = { 0 };
  struct frags f;
  uint32_t fix, ok;
  unsigned i;
  int ret = 0;

  memset (r, 0, sizeof *r);
  if (frags_get (s, &fix_scratch, n, &f) == -1)
    return -1;
  /* Exclusive, as a fix: no write, removal or read repair of n lands
   * between what is read here and what is rewritten.
   */
  pthread_rwlock_wrlock (lock);
  locked = lock;
  r->read = store_set_up (&s->set) & ~store_set_lacking (&s->set, n);
  gather (s, &f, r->read, &g);
  r->good = g.good;
  r->absent = g.absent;
  r->unreadable = g.failed;
  r->bad = g.bad;
  r->other_write = g.sound & ~g.good;
  fix = r->read & ~g.good;
  if (g.sound == 0 && g.failed == 0 && g.bad == 0)
    r->state = EC_SCRUB_ABSENT;
  else if (store_set_count (r->read & ~g.absent) < s->c.k)
    r->state = EC_SCRUB_CUT_SHORT;
  else if (store_set_count (g.good) < s->c.k)
    r->state = EC_SCRUB_UNRECOVERABLE;
  else if (fix == 0)
    r->state = EC_SCRUB_SOUND;
  else if (rebuild (s, &f, &g) == -1) {
    nbdkit_error ("%s: chunk %" PRIu64 ": cannot rebuild from %u sound "
                  "fragments: %m", s->set.name, n, store_set_count (g.good));
    ret = -1;
  }
  else {
    const struct set_op op = {
      .kind = SET_OP_WRITE, .n = n, .bufs = (void *const *) f.p,
      .len = (uint32_t) (f.fl + ec_trailer_len (f.fl)),
    };

    for (i = 0; i < s->n; ++i)
      if (fix & BIT (i))
        ec_fragment_seal (f.p[i], f.fl, i, s->c.k, s->c.m, n, g.stamp,
                          f.len);
    ok = store_set_fan_out (&s->set, &op, fix, true, NULL, NULL);
    r->state = EC_SCRUB_REPAIRED;
    r->rewritten = ok & ~g.absent;
    r->restored = ok & g.absent;
    r->write_failed = fix & ~ok;
    __atomic_fetch_add (&s->repairs, store_set_count (ok),
                        __ATOMIC_RELAXED);
    if (r->write_failed) {
      nbdkit_error ("%s: chunk %" PRIu64 ": %u rebuilt fragment(s) could "
                    "not be written (location %u, %s, first)", s->set.name,
                    n, store_set_count (r->write_failed),
                    (unsigned) __builtin_ctz (r->write_failed),
                    s->c.loc_name[__builtin_ctz (r->write_failed)]);
      ret = -1;
    }
  }
  thread_buffer_put (&fix_scratch, f.base);
  return ret;
}

/* Copy [OFF, OFF+LEN) of the chunk out of its data fragments. */
static void
copy_out (const struct frags *f, void *buf, uint32_t len, uint32_t off)
{
  uint8_t *p = buf;

  while (len > 0) {
    const size_t i = off / f->fl, at = off % f->fl;
    const uint32_t part = (uint32_t) (f->fl - at < len ? f->fl - at : len);

    memcpy (p, f->p[i] + at, part);
    p += part;
    off += part;
    len -= part;
  }
}

/* Read fragment I's trailer and its sub-blocks S0..S1 (the bytes
 * [S0, S1] * EC_SUB_BLOCK, the last one perhaps shorter) into F, and
 * check them; the fragment must be of the write *STAMP says (unless
 * *FIRST: then it says which).  True if all is well.
 */
static bool
read_part (struct ec_store *s, struct frags *f, unsigned i, size_t s0,
           size_t s1, uint64_t *stamp, bool *first)
{
  const struct chunk_store *loc = &s->c.loc[i];
  uint8_t *t = f->p[i] + f->fl;
  const size_t rd_off = s0 * EC_SUB_BLOCK;
  const size_t rd_end = (s1 + 1) * EC_SUB_BLOCK < f->fl ?
    (s1 + 1) * EC_SUB_BLOCK : f->fl;
  uint64_t st;

  if (loc->ops->read (loc->opaque, f->n, t,
                      (uint32_t) ec_trailer_len (f->fl),
                      (uint32_t) f->fl) != 0 ||
      !ec_trailer_check (t, f->fl, i, s->c.k, s->c.m, f->n, f->len, &st) ||
      (!*first && st != *stamp))
    return false;
  *stamp = st;
  *first = false;
  return loc->ops->read (loc->opaque, f->n, f->p[i] + rd_off,
                         (uint32_t) (rd_end - rd_off),
                         (uint32_t) rd_off) == 0 &&
    ec_fragment_check_range (f->p[i], f->fl, t, s0, s1);
}

/* The sub-blocks of fragment I that bytes [OFF, OFF+LEN) of the chunk
 * cover (I holds some of them).
 */
static void
sub_blocks (const struct frags *f, unsigned i, uint32_t len, uint32_t off,
            size_t *s0, size_t *s1)
{
  const uint64_t end = (uint64_t) off + len, fstart = (uint64_t) i * f->fl;
  const uint64_t a = (off > fstart ? off : fstart) - fstart;
  const uint64_t b = (end < fstart + f->fl ? end : fstart + f->fl) - fstart;

  *s0 = a / EC_SUB_BLOCK;
  *s1 = (b - 1) / EC_SUB_BLOCK;
}

/* The usual read: only the data fragments in NEED hold the bytes
 * asked for.  Read each one's trailer and just the sub-blocks the
 * request covers, and check them against it.  Returns 0 with the bytes
 * in BUF, or 1 if anything is amiss (a fragment absent, unreadable,
 * failing a digest, or of another write than the others): the caller
 * then reads whole fragments, which tells what and repairs it.
 */
static int
read_range (struct ec_store *s, struct frags *f, uint32_t need, void *buf,
            uint32_t len, uint32_t off)
{
  uint64_t stamp = 0;
  bool first = true;
  size_t s0, s1;
  unsigned i;

  for (i = 0; i < s->n; ++i) {
    if (!(need & BIT (i)))
      continue;
    sub_blocks (f, i, len, off, &s0, &s1);
    if (!read_part (s, f, i, s0, s1, &stamp, &first))
      return 1;
  }
  copy_out (f, buf, len, off);
  return 0;
}

/* A read some of whose data fragments are not at hand (their
 * locations are down or behind): the same sub-blocks of K fragments of
 * one write that are, rebuilt over just that range (Reed-Solomon works
 * on each byte position across the fragments on its own), rather than
 * K whole fragments for a few KiB.  The range is the hull of what the
 * request covers in each data fragment.  Returns 0, or 1 as
 * read_range.
 */
static int
read_range_degraded (struct ec_store *s, struct frags *f, uint32_t cand,
                     uint32_t need, void *buf, uint32_t len, uint32_t off)
{
  bool present[EC_STORE_MAX_LOCATIONS] = { false };
  uint8_t *ptrs[EC_STORE_MAX_LOCATIONS];
  uint32_t use = need & cand;
  uint64_t stamp = 0;
  bool first = true;
  size_t s0 = SIZE_MAX, s1 = 0, a, b, rd_off, rd_end;
  unsigned i;

  for (i = 0; i < s->c.k; ++i)
    if (need & BIT (i)) {
      sub_blocks (f, i, len, off, &a, &b);
      s0 = a < s0 ? a : s0;
      s1 = b > s1 ? b : s1;
    }
  /* K sources: the data fragments asked for first, then the others. */
  for (i = 0; i < s->n && store_set_count (use) < s->c.k; ++i)
    if (cand & BIT (i))
      use |= BIT (i);
  if (store_set_count (use) < s->c.k)
    return 1;
  for (i = 0; i < s->n; ++i)
    if ((use & BIT (i)) && !read_part (s, f, i, s0, s1, &stamp, &first))
      return 1;
  rd_off = s0 * EC_SUB_BLOCK;
  rd_end = (s1 + 1) * EC_SUB_BLOCK < f->fl ? (s1 + 1) * EC_SUB_BLOCK : f->fl;
  for (i = 0; i < s->n; ++i) {
    present[i] = use & BIT (i);
    ptrs[i] = f->p[i] + rd_off;
  }
  if (ec_rebuild (s->codec, ptrs, present, rd_end - rd_off) == -1)
    return 1;
  copy_out (f, buf, len, off);
  return 0;
}

static int
ec_read (void *store, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct ec_store *s = store;
  const uint32_t cand = store_set_up (&s->set) & ~store_set_lacking (&s->set, n);
  struct gathered g = { 0 };
  struct frags f;
  uint32_t need = 0, bad;
  unsigned i;

  if (store_set_count (cand) < s->c.k) {
    nbdkit_error ("%s: chunk %" PRIu64 ": fewer than %u locations that "
                  "answer hold an up-to-date fragment of it", s->set.name,
                  n, s->c.k);
    errno = EIO;
    return -1;
  }
  if (frags_get (s, &scratch, n, &f) == -1)
    return -1;
  /* The data fragments that hold the bytes asked for, if all can. */
  if (len > 0)
    for (i = off / f.fl; i <= (off + len - 1) / f.fl; ++i)
      need |= BIT (i);
  if (need && (need & cand) == need &&
      read_range (s, &f, need, buf, len, off) == 0) {
    thread_buffer_put (&scratch, f.base);
    return 0;
  }
  if (need && (need & cand) != need &&
      read_range_degraded (s, &f, cand, need, buf, len, off) == 0) {
    thread_buffer_put (&scratch, f.base);
    return 0;
  }
  /* Some are missing or bad: read every fragment whole. */
  gather (s, &f, cand, &g);
  if (g.sound == 0 && g.failed == 0 && g.bad == 0) {
    thread_buffer_put (&scratch, f.base);
    return 1;                   /* no location holds it */
  }
  if (store_set_count (g.good) < s->c.k || rebuild (s, &f, &g) == -1) {
    thread_buffer_put (&scratch, f.base);
    nbdkit_error ("%s: chunk %" PRIu64 ": only %u sound fragments of one "
                  "write (%u needed): %u absent, %u unreadable, %u failing "
                  "their digest, %u locations down or behind", s->set.name,
                  n, store_set_count (g.good), s->c.k,
                  store_set_count (g.absent), store_set_count (g.failed),
                  store_set_count (g.bad), s->n - store_set_count (cand));
    errno = EIO;
    return -1;
  }
  copy_out (&f, buf, len, off);
  thread_buffer_put (&scratch, f.base);
  bad = cand & ~g.good;
  if (bad)
    repair (s, n, bad, g.good, &g);
  return 0;
}

/* A write or removal of chunk n, to every location that is up. */
static int
modify (struct ec_store *s, uint64_t n, const struct frags *f, bool fua)
{
  const struct set_op op = {
    .kind = f ? SET_OP_WRITE : SET_OP_REMOVE, .n = n,
    .bufs = f ? (void *const *) f->p : NULL,
    .len = f ? (uint32_t) (f->fl + ec_trailer_len (f->fl)) : 0, .fua = fua,
  };
  pthread_rwlock_t *lock = store_set_copy_lock (&s->set, n);
  CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *locked = NULL;
  uint32_t up, lacking, ok, intended = 0;
  unsigned i;

  /* A whole fragment replaces a stale one: exclusive, so that no fix
   * of the old one lands after it.
   */
  if (store_set_up (&s->set) & store_set_lacking (&s->set, n))
    pthread_rwlock_wrlock (lock);
  else
    pthread_rwlock_rdlock (lock);
  locked = lock;
  up = store_set_up (&s->set);
  lacking = store_set_lacking (&s->set, n) & up;
  /* The write intent (missing-set.h): a crash in the middle of this
   * write may leave fragments of two writes, which the next open sorts
   * out (store_set_reconcile) rather than a read that needs the stale
   * ones some day.
   */
  if (store_set_count (up) > 1) {
    uint32_t failed = 0;
    missing_set_intend (s->set.missing, up, n, &failed);
    intended = up;
    for (i = 0; i < s->n; ++i)
      if (failed & BIT (i))
        store_set_mark_down (&s->set, i, EIO, "recording a write intent");
    up &= ~failed;
  }
  ok = store_set_fan_out (&s->set, &op, up, true, NULL, NULL);
  for (i = 0; i < s->n; ++i)
    if (ok & lacking & BIT (i))
      missing_set_done (s->set.missing, i, n);
  ok = store_set_settle (&s->set, n, ok);
  if (intended)
    missing_set_intend_done (s->set.missing, intended);
  if (store_set_count (ok) < s->c.min_write) {
    nbdkit_error ("%s: chunk %" PRIu64 ": %s reached %u location(s), "
                  "fewer than ec-min-write=%u", s->set.name, n,
                  f ? "write" : "removal", store_set_count (ok),
                  s->c.min_write);
    errno = EIO;
    return -1;
  }
  if (ok != s->set.all)
    store_set_kick (&s->set);
  return 0;
}

static int
ec_write (void *store, uint64_t n, const void *buf, uint32_t len,
          uint32_t off, bool fua)
{
  struct ec_store *s = store;
  const uint64_t stamp =
    __atomic_fetch_add (&s->next_stamp, 1, __ATOMIC_RELAXED);
  struct frags f;
  unsigned i;
  int r;

  if (off != 0 || len != span (s, n)) {
    nbdkit_error ("%s: chunk %" PRIu64 ": a write of part of a chunk "
                  "reached the erasure-coded store", s->set.name, n);
    errno = EINVAL;
    return -1;
  }
  if (frags_get (s, &scratch, n, &f) == -1)
    return -1;
  ec_encode (s->codec, buf, len, f.p);
  for (i = 0; i < s->n; ++i)
    ec_fragment_seal (f.p[i], f.fl, i, s->c.k, s->c.m, n, stamp, len);
  r = modify (s, n, &f, fua);
  thread_buffer_put (&scratch, f.base);
  return r;
}

static int
ec_remove (void *store, const uint64_t *ns, size_t count, bool fua)
{
  size_t i;

  for (i = 0; i < count; ++i)
    if (modify (store, ns[i], NULL, fua) == -1)
      return -1;
  return 0;
}

static int
ec_sync (void *store)
{
  struct ec_store *s = store;

  return store_set_flush_reached (&s->set,
                                  store_set_sync (&s->set,
                                                  store_set_up (&s->set)),
                                  s->c.min_write, "ec-min-write");
}

static int
ec_list (void *store, void (*found) (void *opaque, uint64_t n), void *opaque)
{
  struct ec_store *s = store;
  return store_set_list (&s->set, s->c.k, found, opaque);
}

int
ec_store_catch_up (struct ec_store *s)
{
  return store_set_catch_up (&s->set, 0);
}

void
ec_store_run (struct ec_store *s, uint64_t probe_interval_ns)
{
  store_set_run (&s->set, probe_interval_ns);
}

void
ec_store_stop (struct ec_store *s)
{
  store_set_stop (&s->set);
}

void
ec_store_compact (struct ec_store *s)
{
  store_set_compact (&s->set);
}

/* Chunks a crash may have left with fragments of two writes (write
 * intents found at load, missing-set.h): the write the most sound
 * fragments agree on, if K do, is the chunk; every other location is
 * recorded as lacking it (durably, on those K or more; a read-only
 * server in memory) and the catch-up rebuilds its fragment.  Fewer
 * than K holding any fragment while K are absent is a write of a new
 * chunk cut short: the strays are removed the same way.  Neither: the
 * crash tore the chunk (a write hole): logged.
 */
static uint32_t
intent_holders (void *owner, uint64_t n)
{
  struct ec_store *s = owner;
  struct gathered g = { 0 };
  struct frags f;

  if (frags_get (s, &fix_scratch, n, &f) == -1)
    return 0;
  gather (s, &f, store_set_up (&s->set) & ~store_set_lacking (&s->set, n),
          &g);
  thread_buffer_put (&fix_scratch, f.base);
  if (store_set_count (g.good) >= s->c.k)
    return g.good;
  if (store_set_count (g.absent) >= s->c.k)
    return g.absent;
  if (g.sound | g.bad | g.failed)
    nbdkit_error ("%s: chunk %" PRIu64 ": a crash while it was written "
                  "left fewer than %u sound fragments of any one write "
                  "(%u of the most common): it cannot be read",
                  s->set.name, n, s->c.k, store_set_count (g.good));
  return 0;
}

struct ec_store *
ec_store_new (const char *name, const struct ec_config *c, uint64_t size,
              uint32_t chunk_size)
{
  struct store_set_config sc = {
    .down = c->down, .threads = c->threads,
    .log = c->log, .log_opaque = c->log_opaque,
    .probe = c->probe, .moved = c->moved, .probe_opaque = c->probe_opaque,
    .lag_bytes_per_chunk = ec_fragment_len (c->k, chunk_size) +
      ec_trailer_len (ec_fragment_len (c->k, chunk_size)),
    .fix = ec_fix,
  };
  struct ec_store *s;
  struct timespec now;

  if (c->k < 1 || c->k + c->m > EC_STORE_MAX_LOCATIONS ||
      (c->min_write && (c->min_write < c->k || c->min_write > c->k + c->m))) {
    nbdkit_error ("%s: erasure coding %u+%u with ec-min-write=%u: K+M must "
                  "be at most %d and ec-min-write between K and K+M",
                  name, c->k, c->m, c->min_write, EC_STORE_MAX_LOCATIONS);
    errno = EINVAL;
    return NULL;
  }
  s = calloc (1, sizeof *s);
  if (s == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  s->c = *c;
  s->n = c->k + c->m;
  if (s->c.min_write == 0)
    s->c.min_write = c->m ? c->k + 1 : c->k;
  s->size = size;
  s->chunk_size = chunk_size;
  /* Stamps only need to differ between writes of one chunk: the clock
   * at open is past every stamp of an earlier run (a write a
   * nanosecond).
   */
  clock_gettime (CLOCK_REALTIME, &now);
  s->next_stamp = (uint64_t) now.tv_sec * 1000000000 + (uint64_t) now.tv_nsec;
  s->ops = (struct chunk_store_ops) {
    .partial_write = false,
    .read = ec_read,
    .write = ec_write,
    .remove = ec_remove,
    .sync = ec_sync,
    .list = ec_list,
  };
  sc.nloc = s->n;
  sc.loc = s->c.loc;
  sc.loc_name = s->c.loc_name;
  sc.owner = s;
  s->codec = ec_codec_new (c->k, c->m);
  if (s->codec == NULL) {
    nbdkit_error ("%s: erasure coding %u+%u: %m", name, c->k, c->m);
    free (s);
    return NULL;
  }
  if (store_set_init (&s->set, name, &sc,
                      (size + chunk_size - 1) / chunk_size) == -1 ||
      store_set_reconcile (&s->set, c->readonly, intent_holders,
                           "their other fragments are rebuilt") == -1) {
    ec_store_free (s);
    return NULL;
  }
  return s;
}

void
ec_store_free (struct ec_store *s)
{
  if (s == NULL)
    return;
  store_set_fini (&s->set);
  ec_codec_free (s->codec);
  free (s);
}

struct chunk_store
ec_store_as_store (struct ec_store *s)
{
  return (struct chunk_store) { .ops = &s->ops, .opaque = s };
}
