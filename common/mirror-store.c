/* shardkit: the mirror store.  GPL-3.0-or-later.  See mirror-store.h.
 *
 * Locking.  The engine above holds a chunk's lock shared for writes to
 * a store that writes in place, so writes of one chunk reach the mirror
 * side by side; that is fine while every location takes every write.
 * What the mirror must settle itself is the catch-up: a copy of chunk n
 * from a location that holds it to one that lacks it must not land
 * after (and so undo) a newer write of n.  Each chunk maps to one of a
 * set of striped reader/writer locks: writes, punches and removals
 * hold it shared, a copy exclusive, so a copy sees no write in flight
 * and no write starts before its bit is cleared.  A write never takes
 * it exclusive while holding it shared (the copy it may need comes
 * first), so the stripes cannot deadlock.  Reads take no lock: they
 * skip a location whose bit says it lacks the chunk, and the bit is
 * cleared only once the copy is whole.
 *
 * Which locations are up is a mask changed with atomic operations:
 * down when an operation on a location fails, up again when the
 * catch-up's probe says it answers (it then still lacks what it
 * missed, chunk by chunk, until the copies are done).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-plugin.h>

#include "chunk-engine.h"
#include "cleanup.h"
#include "mirror-store.h"
#include "missing-set.h"
#include "store-set.h"
#include "thread-buffer.h"

#define BIT(i) SET_BIT (i)

struct mirror_store {
  struct store_set set;
  struct chunk_store_ops ops;
  struct mirror_config c;
  uint64_t size;
  uint32_t chunk_size;
  unsigned next_read;           /* atomic: round-robin of reads */
};

static struct thread_buffer scratch = THREAD_BUFFER_INIT;

static uint32_t
span (const struct mirror_store *m, uint64_t n)
{
  return chunk_span_of (m->size, m->chunk_size, n);
}

static uint32_t
up_mask (const struct mirror_store *m)
{
  return store_set_up (&m->set);
}

bool
mirror_store_is_up (const struct mirror_store *m, unsigned loc)
{
  return up_mask (m) & BIT (loc);
}

uint64_t
mirror_store_lacking (const struct mirror_store *m, unsigned loc)
{
  return missing_set_count (m->set.missing, loc);
}

static uint32_t
lacking_mask (const struct mirror_store *m, uint64_t n)
{
  return store_set_lacking (&m->set, n);
}

static unsigned
count_bits (uint32_t mask)
{
  return store_set_count (mask);
}

static void
mark_down (struct mirror_store *m, unsigned loc, int err, const char *what)
{
  store_set_mark_down (&m->set, loc, err, what);
}

static void
kick (struct mirror_store *m)
{
  store_set_kick (&m->set);
}

static const char *const op_names[] = {
  [SET_OP_WRITE] = "write", [SET_OP_PUNCH] = "punch",
  [SET_OP_REMOVE] = "remove",
};

/* The set's fix: copy chunk n to LOC, which lacks it, from a location
 * that holds it (or remove it from LOC if none has it).  Called with
 * n's copy lock held exclusive.  Returns 0, or -1 (LOC still lacks it).
 */
static int
copy_chunk_locked (void *owner, unsigned loc, uint64_t n)
{
  struct mirror_store *m = owner;
  const struct chunk_store *dst = &m->c.loc[loc];
  const uint32_t len = span (m, n);
  uint32_t sources;
  unsigned i;
  void *buf;
  int r = -1;

  sources = up_mask (m) & ~lacking_mask (m, n) & ~BIT (loc);
  buf = thread_buffer_get (&scratch, len);
  if (buf == NULL) {
    nbdkit_error ("%s: malloc: %m", m->set.name);
    return -1;
  }
  for (i = 0; i < m->c.nloc && r == -1; ++i)
    if (sources & BIT (i))
      r = m->c.loc[i].ops->read (m->c.loc[i].opaque, n, buf, len, 0);
  if (r == -1) {
    thread_buffer_put (&scratch, buf);
    nbdkit_error ("%s: chunk %" PRIu64 " cannot be copied to location %u "
                  "(%s): no location that holds it could read it",
                  m->set.name, n, loc, m->c.loc_name[loc]);
    errno = EIO;
    return -1;
  }
  if (r == 1)
    r = dst->ops->remove (dst->opaque, &n, 1, false);
  else
    r = dst->ops->write (dst->opaque, n, buf, len, 0, false);
  thread_buffer_put (&scratch, buf);
  if (r == -1) {
    mark_down (m, loc, errno, "catching up");
    return -1;
  }
  return 0;
}

/* The location async writes go to: the first that is up. */
static int
primary (uint32_t up)
{
  return up ? __builtin_ctz (up) : -1;
}

/* A write, punch or removal of chunk n (OP's kind and arguments):
 * see mirror-store.h, Writes.  Returns OP's result, or -1.
 */
static int
modify (struct mirror_store *m, struct set_op op)
{
  const bool whole = op.kind == SET_OP_REMOVE ||
    (op.kind == SET_OP_WRITE && op.off == 0 && op.len == span (m, op.n));
  const bool async = m->c.mode == MIRROR_ASYNC;
  pthread_rwlock_t *lock = store_set_copy_lock (&m->set, op.n);
  CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *locked = NULL;
  uint32_t up = up_mask (m), lacking, targets, ok, intended = 0;
  unsigned i;
  int result;

  /* The locations to write that lack the chunk.  A whole chunk replaces
   * what they have (under the exclusive lock, then they lack nothing);
   * anything less needs the chunk caught up there first.
   */
  lacking = lacking_mask (m, op.n) & up;
  if (async && primary (up) >= 0)
    lacking &= BIT (primary (up));
  if (lacking && !whole) {
    for (i = 0; i < m->c.nloc; ++i)
      if (lacking & BIT (i))
        store_set_fix (&m->set, i, op.n);
    lacking = 0;
  }
  if (lacking)
    pthread_rwlock_wrlock (lock);
  else
    pthread_rwlock_rdlock (lock);
  locked = lock;

  up = up_mask (m);
  targets = up & ~(lacking_mask (m, op.n) & ~lacking);
  if (async) {
    int p = primary (targets);
    uint32_t failed = 0;

    if (p == -1) {
      nbdkit_error ("%s: chunk %" PRIu64 ": no location is up that holds "
                    "it", m->set.name, op.n);
      errno = EIO;
      return -1;
    }
    targets = BIT (p);
    /* The others lack it from now on: recorded before the write lands,
     * so that a crash in between leaves a record, never a silent
     * difference.
     */
    if (missing_set_add (m->set.missing, m->set.all & ~targets, op.n, targets,
                         &failed) == -1) {
      mark_down (m, (unsigned) p, EIO, "recording what the others miss");
      errno = EIO;
      return -1;
    }
  }
  else if (count_bits (targets) > 1) {
    /* Sync: the write intent (missing-set.h), so that a crash in the
     * middle of this write never leaves copies that differ unrecorded.
     */
    uint32_t failed = 0;

    missing_set_intend (m->set.missing, targets, op.n, &failed);
    intended = targets;
    for (i = 0; i < m->c.nloc; ++i)
      if (failed & BIT (i))
        mark_down (m, i, EIO, "recording a write intent");
    targets &= ~failed;
  }
  ok = store_set_fan_out (&m->set, &op, targets, true, NULL, &result);
  for (i = 0; i < m->c.nloc; ++i)
    if (ok & lacking & BIT (i))
      missing_set_done (m->set.missing, i, op.n);
  if (async) {
    if (ok)
      kick (m);
  }
  else
    ok = store_set_settle (&m->set, op.n, ok);
  if (intended)
    missing_set_intend_done (m->set.missing, intended);

  if (count_bits (ok) < m->c.write_quorum) {
    nbdkit_error ("%s: chunk %" PRIu64 ": %s reached %u location(s), "
                  "fewer than write-quorum=%u", m->set.name, op.n,
                  op_names[op.kind], count_bits (ok), m->c.write_quorum);
    errno = EIO;
    return -1;
  }
  return result;
}

static int
mr_write (void *store, uint64_t n, const void *buf, uint32_t len,
          uint32_t off, bool fua)
{
  return modify (store, (struct set_op) {
      .kind = SET_OP_WRITE, .n = n, .buf = buf, .len = len,
      .off = off, .fua = fua });
}

static int
mr_punch (void *store, uint64_t n, uint32_t len, uint32_t off, bool fua)
{
  return modify (store, (struct set_op) {
      .kind = SET_OP_PUNCH, .n = n, .len = len, .off = off,
      .fua = fua });
}

static int
mr_remove (void *store, const uint64_t *ns, size_t count, bool fua)
{
  size_t i;

  /* One chunk at a time: each under its own copy lock. */
  for (i = 0; i < count; ++i)
    if (modify (store, (struct set_op) {
          .kind = SET_OP_REMOVE, .n = ns[i], .fua = fua }) == -1)
      return -1;
  return 0;
}

/* Locations in ABSENT said that chunk n does not exist, and HOLDER has
 * it.  Unless a write that creates it is still under way (it holds the
 * copy lock shared: wait for it), that is an inconsistency: record
 * them as lacking it, so that the catch-up copies it.
 */
static void
repair_absent (struct mirror_store *m, uint64_t n, uint32_t absent,
               unsigned holder, void *scratch_buf, uint32_t len)
{
  ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE (store_set_copy_lock (&m->set, n));
  uint32_t failed = 0;
  unsigned i;

  for (i = 0; i < m->c.nloc; ++i) {
    if (!(absent & BIT (i)))
      continue;
    if (m->c.loc[i].ops->read (m->c.loc[i].opaque, n, scratch_buf,
                               len, 0) == 0)
      absent &= ~BIT (i);       /* a write made it meanwhile */
    else
      nbdkit_error ("%s: chunk %" PRIu64 " is missing from location %u "
                    "(%s) but location %u (%s) holds it: served from there, "
                    "and copied back by the catch-up", m->set.name, n, i,
                    m->c.loc_name[i], holder, m->c.loc_name[holder]);
  }
  if (absent &&
      missing_set_add (m->set.missing, absent, n, BIT (holder), &failed) == 0)
    kick (m);
}

static int
mr_read (void *store, uint64_t n, void *buf, uint32_t len, uint32_t off)
{
  struct mirror_store *m = store;
  const unsigned start =
    __atomic_fetch_add (&m->next_read, 1, __ATOMIC_RELAXED) % m->c.nloc;
  const uint32_t candidates = up_mask (m) & ~lacking_mask (m, n);
  uint32_t absent = 0, failed = 0;
  unsigned k;
  int err = EIO;

  for (k = 0; k < m->c.nloc; ++k) {
    const unsigned i = (start + k) % m->c.nloc;
    const struct chunk_store *s = &m->c.loc[i];
    int r;

    if (!(candidates & BIT (i)))
      continue;
    r = s->ops->read (s->opaque, n, buf, len, off);
    if (r == 1)
      absent |= BIT (i);
    else if (r == -1) {
      err = errno;
      failed |= BIT (i);
      nbdkit_debug ("%s: chunk %" PRIu64 ": location %u could not read it, "
                    "trying the next", m->set.name, n, i);
    }
    else {
      uint32_t fix = 0;
      /* Read repair: the catch-up rewrites the copies that failed. */
      if (failed &&
          missing_set_add (m->set.missing, failed, n, BIT (i), &fix) == 0)
        kick (m);
      if (absent) {
        void *tmp = malloc (len ? len : 1);
        if (tmp) {
          repair_absent (m, n, absent, i, tmp, len);
          free (tmp);
        }
      }
      return 0;
    }
  }
  if (absent && !failed)
    return 1;
  if (candidates == 0)
    nbdkit_error ("%s: chunk %" PRIu64 ": no location that is up holds an "
                  "up-to-date copy", m->set.name, n);
  else if (absent)
    nbdkit_error ("%s: chunk %" PRIu64 ": some locations do not have it and "
                  "the others could not read it", m->set.name, n);
  errno = candidates && !absent ? err : EIO;
  return -1;
}

/* A location that is up and holds chunk n, for what any copy answers. */
static const struct chunk_store *
any_holder (const struct mirror_store *m, uint64_t n)
{
  int i = primary (up_mask (m) & ~lacking_mask (m, n));
  return i >= 0 ? &m->c.loc[i] : NULL;
}

static int
mr_extents (void *store, uint64_t n, uint32_t len, uint32_t off,
            uint64_t base, struct nbdkit_extents *extents)
{
  const struct chunk_store *s = any_holder (store, n);

  if (s && s->ops->extents)
    return s->ops->extents (s->opaque, n, len, off, base, extents);
  return nbdkit_add_extent (extents, base + off, len, 0);
}

static int
mr_prefetch (void *store, uint64_t n, uint32_t len, uint32_t off)
{
  const struct chunk_store *s = any_holder (store, n);

  if (s && s->ops->prefetch)
    return s->ops->prefetch (s->opaque, n, len, off);
  return 0;
}

static int
mr_sync (void *store)
{
  struct mirror_store *m = store;

  if (m->c.mode == MIRROR_ASYNC && m->c.durable_all)
    return mirror_store_sync_all (m);
  return store_set_flush_reached (&m->set,
                                  store_set_sync (&m->set, up_mask (m)),
                        m->c.write_quorum, "write-quorum");
}

static int
mr_list (void *store, void (*found) (void *opaque, uint64_t n), void *opaque)
{
  struct mirror_store *m = store;
  return store_set_list (&m->set, 1, found, opaque);
}

int
mirror_store_catch_up (struct mirror_store *m)
{
  return store_set_catch_up (&m->set, 0);
}

void
mirror_store_run (struct mirror_store *m, uint64_t probe_interval_ns)
{
  store_set_run (&m->set, probe_interval_ns);
}

void
mirror_store_stop (struct mirror_store *m)
{
  store_set_stop (&m->set);
}

void
mirror_store_compact (struct mirror_store *m)
{
  store_set_compact (&m->set);
}

int
mirror_store_sync_all (struct mirror_store *m)
{
  uint32_t up = up_mask (m);
  unsigned loc;

  /* Catch up here rather than wait for the thread: the copies are
   * under their chunks' locks, so both may work side by side.
   */
  for (loc = 0; loc < m->c.nloc; ++loc)
    if ((up & BIT (loc)) &&
        store_set_catch_up_location (&m->set, loc) == -1)
      up &= ~BIT (loc);
  return store_set_flush_reached (&m->set, store_set_sync (&m->set, up),
                                  m->c.nloc,
                        "durability=all");
}

/* Chunks a crash may have left different on the locations (write
 * intents found at load, missing-set.h): one location that holds each
 * is its source, every other is recorded as lacking it (durably, on the
 * source), and the catch-up copies it.  Any location that holds it is
 * right: the write in flight was never acknowledged, and an
 * acknowledged one is on every location not recorded as lacking it.
 */
static uint32_t
intent_holders (void *owner, uint64_t n)
{
  struct mirror_store *m = owner;
  const uint32_t holders = up_mask (m) & ~lacking_mask (m, n);

  return holders ? BIT (primary (holders)) : 0;
}

struct mirror_store *
mirror_store_new (const char *name, const struct mirror_config *c,
                  uint64_t size, uint32_t chunk_size)
{
  struct store_set_config sc = {
    .nloc = c->nloc, .down = c->down, .threads = c->threads,
    .log = c->log, .log_opaque = c->log_opaque,
    .probe = c->probe, .moved = c->moved, .probe_opaque = c->probe_opaque,
    .lag_bytes_per_chunk = chunk_size,
    .fix = copy_chunk_locked,
  };
  struct mirror_store *m;
  unsigned i;
  bool partial = true, punch = true;

  if (c->nloc < 1 || c->nloc > MIRROR_MAX_LOCATIONS ||
      c->write_quorum < 1 || c->write_quorum > c->nloc) {
    nbdkit_error ("%s: a mirror of %u locations with write quorum %u",
                  name, c->nloc, c->write_quorum);
    errno = EINVAL;
    return NULL;
  }
  m = calloc (1, sizeof *m);
  if (m == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  m->c = *c;
  if (m->c.mode == MIRROR_ASYNC)
    m->c.write_quorum = 1;
  m->size = size;
  m->chunk_size = chunk_size;
  for (i = 0; i < c->nloc; ++i) {
    partial = partial && c->loc[i].ops->partial_write;
    punch = punch && c->loc[i].ops->punch;
  }
  m->ops = (struct chunk_store_ops) {
    .partial_write = partial,
    .read = mr_read,
    .write = mr_write,
    .remove = mr_remove,
    .punch = punch ? mr_punch : NULL,
    .extents = mr_extents,
    .prefetch = mr_prefetch,
    .sync = mr_sync,
    .list = mr_list,
  };
  sc.loc = m->c.loc;
  sc.loc_name = m->c.loc_name;
  sc.owner = m;
  if (store_set_init (&m->set, name, &sc,
                      (size + chunk_size - 1) / chunk_size) == -1 ||
      store_set_reconcile (&m->set, c->readonly, intent_holders,
                           "copied from one location to the others") == -1) {
    mirror_store_free (m);
    return NULL;
  }
  return m;
}

void
mirror_store_free (struct mirror_store *m)
{
  if (m == NULL)
    return;
  store_set_fini (&m->set);
  free (m);
}

struct chunk_store
mirror_store_as_store (struct mirror_store *m)
{
  return (struct chunk_store) { .ops = &m->ops, .opaque = m };
}
