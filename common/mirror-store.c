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
#include "task-pool.h"
#include "thread-buffer.h"

#define COPY_STRIPES 1024

#define BIT(i) (UINT32_C (1) << (i))

struct mirror_store {
  char *name;
  struct chunk_store_ops ops;
  struct mirror_config c;
  uint64_t size;
  uint32_t chunk_size;
  uint64_t nr_chunks;
  uint32_t all;                 /* a bit per location */
  uint32_t up;                  /* atomic */
  unsigned next_read;           /* atomic: round-robin of reads */
  struct missing_set *missing;
  struct task_pool *pool;
  pthread_rwlock_t copy_locks[COPY_STRIPES];

  /* The catch-up thread (mirror_store_run). */
  pthread_mutex_t run_lock;
  pthread_cond_t run_cond;      /* kicked, or stopping */
  bool kicked, stopping;
  struct timespec last_probe[MIRROR_MAX_LOCATIONS];
  /* The lag in the debug log (log_lag), the catch-up thread's own. */
  time_t behind_since[MIRROR_MAX_LOCATIONS];
  time_t last_lag_log;
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
  return __atomic_load_n (&m->up, __ATOMIC_ACQUIRE);
}

bool
mirror_store_is_up (const struct mirror_store *m, unsigned loc)
{
  return up_mask (m) & BIT (loc);
}

uint64_t
mirror_store_lacking (const struct mirror_store *m, unsigned loc)
{
  return missing_set_count (m->missing, loc);
}

/* The locations that lack chunk n. */
static uint32_t
lacking_mask (const struct mirror_store *m, uint64_t n)
{
  uint32_t mask = 0;
  unsigned i;

  for (i = 0; i < m->c.nloc; ++i)
    if (missing_set_test (m->missing, i, n))
      mask |= BIT (i);
  return mask;
}

static unsigned
count_bits (uint32_t mask)
{
  return (unsigned) __builtin_popcount (mask);
}

static void
mark_down (struct mirror_store *m, unsigned loc, int err, const char *what)
{
  uint32_t old = __atomic_fetch_and (&m->up, ~BIT (loc), __ATOMIC_ACQ_REL);

  if (old & BIT (loc))
    nbdkit_error ("%s: location %u (%s) is down: %s failed: %s; what it "
                  "misses is recorded on the others and caught up when it "
                  "answers again", m->name, loc, m->c.loc_name[loc], what,
                  strerror (err ? err : EIO));
}

static void
mark_up (struct mirror_store *m, unsigned loc)
{
  __atomic_fetch_or (&m->up, BIT (loc), __ATOMIC_ACQ_REL);
  nbdkit_debug ("%s: location %u (%s) answers again: %" PRIu64 " chunks "
                "to catch up", m->name, loc, m->c.loc_name[loc],
                missing_set_count (m->missing, loc));
}

static void
kick (struct mirror_store *m)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->run_lock);
  m->kicked = true;
  pthread_cond_signal (&m->run_cond);
}

/* One operation on one location, run side by side with the same one on
 * others by fan_out.
 */
enum op_kind { OP_WRITE, OP_PUNCH, OP_REMOVE, OP_SYNC };

struct loc_op {
  struct mirror_store *m;
  unsigned loc;
  enum op_kind kind;
  uint64_t n;
  const void *buf;
  uint32_t len, off;
  bool fua;
  int r, err;
};

static const char *const op_names[] = {
  [OP_WRITE] = "write", [OP_PUNCH] = "punch", [OP_REMOVE] = "remove",
  [OP_SYNC] = "sync",
};

static void
run_loc_op (void *arg)
{
  struct loc_op *o = arg;
  const struct chunk_store *s = &o->m->c.loc[o->loc];

  switch (o->kind) {
  case OP_WRITE:
    o->r = s->ops->write (s->opaque, o->n, o->buf, o->len, o->off, o->fua);
    break;
  case OP_PUNCH:
    o->r = s->ops->punch (s->opaque, o->n, o->len, o->off, o->fua);
    break;
  case OP_REMOVE:
    o->r = s->ops->remove (s->opaque, &o->n, 1, o->fua);
    break;
  case OP_SYNC:
    o->r = s->ops->sync (s->opaque);
    break;
  }
  o->err = o->r == -1 ? errno : 0;
}

/* Run OP on every location in TARGETS at once.  Returns the locations
 * where it succeeded; the others are marked down.  *RESULT gets the
 * smallest result (punch: 0 if any location still holds data).
 */
static uint32_t
fan_out (struct mirror_store *m, const struct loc_op *op, uint32_t targets,
         int *result)
{
  struct loc_op ops[MIRROR_MAX_LOCATIONS];
  void *args[MIRROR_MAX_LOCATIONS] = { NULL };
  uint32_t ok = 0;
  size_t k = 0, i;

  for (i = 0; i < m->c.nloc; ++i)
    if (targets & BIT (i)) {
      ops[k] = *op;
      ops[k].loc = (unsigned) i;
      args[k] = &ops[k];
      k++;
    }
  task_pool_run (m->pool, run_loc_op, args, k);
  *result = 1;
  for (i = 0; i < k; ++i) {
    if (ops[i].r == -1)
      mark_down (m, ops[i].loc, ops[i].err, op_names[op->kind]);
    else {
      ok |= BIT (ops[i].loc);
      if (ops[i].r < *result)
        *result = ops[i].r;
    }
  }
  return ok;
}

/* Record that every location outside OK lacks chunk n, on the
 * locations in OK.  A location whose record fails is down and lacks n
 * too.  Returns what is left of OK.
 */
static uint32_t
settle (struct mirror_store *m, uint64_t n, uint32_t ok)
{
  for (;;) {
    uint32_t failed = 0, lack = m->all & ~ok;
    unsigned i;

    if (ok == 0 || lack == 0)
      return ok;
    if (missing_set_add (m->missing, lack, n, ok, &failed) == -1)
      failed = ok;
    if (failed == 0)
      return ok;
    for (i = 0; i < m->c.nloc; ++i)
      if (failed & BIT (i))
        mark_down (m, i, EIO, "recording what another location misses");
    ok &= ~failed;
  }
}

/* Copy chunk n to LOC, which lacks it, from a location that holds it
 * (or remove it from LOC if none has it).  Called with n's copy lock
 * held exclusive.  Returns 0, or -1 (LOC still lacks it).
 */
static int
copy_chunk_locked (struct mirror_store *m, unsigned loc, uint64_t n)
{
  const struct chunk_store *dst = &m->c.loc[loc];
  const uint32_t len = span (m, n);
  uint32_t sources;
  unsigned i;
  void *buf;
  int r = -1;

  if (!missing_set_test (m->missing, loc, n))
    return 0;                   /* copied meanwhile */
  sources = up_mask (m) & ~lacking_mask (m, n) & ~BIT (loc);
  buf = thread_buffer_get (&scratch, len);
  if (buf == NULL) {
    nbdkit_error ("%s: malloc: %m", m->name);
    return -1;
  }
  for (i = 0; i < m->c.nloc && r == -1; ++i)
    if (sources & BIT (i))
      r = m->c.loc[i].ops->read (m->c.loc[i].opaque, n, buf, len, 0);
  if (r == -1) {
    thread_buffer_put (&scratch, buf);
    nbdkit_error ("%s: chunk %" PRIu64 " cannot be copied to location %u "
                  "(%s): no location that holds it could read it",
                  m->name, n, loc, m->c.loc_name[loc]);
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
  missing_set_done (m->missing, loc, n);
  return 0;
}

static int
copy_chunk (struct mirror_store *m, unsigned loc, uint64_t n)
{
  ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE (&m->copy_locks[n % COPY_STRIPES]);
  return copy_chunk_locked (m, loc, n);
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
modify (struct mirror_store *m, struct loc_op op)
{
  const bool whole = op.kind == OP_REMOVE ||
    (op.kind == OP_WRITE && op.off == 0 && op.len == span (m, op.n));
  const bool async = m->c.mode == MIRROR_ASYNC;
  pthread_rwlock_t *lock = &m->copy_locks[op.n % COPY_STRIPES];
  CLEANUP_RWLOCK_UNLOCK pthread_rwlock_t *locked = NULL;
  uint32_t up = up_mask (m), lacking, targets, ok;
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
        copy_chunk (m, i, op.n);
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
                    "it", m->name, op.n);
      errno = EIO;
      return -1;
    }
    targets = BIT (p);
    /* The others lack it from now on: recorded before the write lands,
     * so that a crash in between leaves a record, never a silent
     * difference.
     */
    if (missing_set_add (m->missing, m->all & ~targets, op.n, targets,
                         &failed) == -1) {
      mark_down (m, (unsigned) p, EIO, "recording what the others miss");
      errno = EIO;
      return -1;
    }
  }
  ok = fan_out (m, &op, targets, &result);
  for (i = 0; i < m->c.nloc; ++i)
    if (ok & lacking & BIT (i))
      missing_set_done (m->missing, i, op.n);
  if (async) {
    if (ok)
      kick (m);
  }
  else
    ok = settle (m, op.n, ok);

  if (count_bits (ok) < m->c.write_quorum) {
    nbdkit_error ("%s: chunk %" PRIu64 ": %s reached %u location(s), "
                  "fewer than write-quorum=%u", m->name, op.n,
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
  return modify (store, (struct loc_op) {
      .m = store, .kind = OP_WRITE, .n = n, .buf = buf, .len = len,
      .off = off, .fua = fua });
}

static int
mr_punch (void *store, uint64_t n, uint32_t len, uint32_t off, bool fua)
{
  return modify (store, (struct loc_op) {
      .m = store, .kind = OP_PUNCH, .n = n, .len = len, .off = off,
      .fua = fua });
}

static int
mr_remove (void *store, const uint64_t *ns, size_t count, bool fua)
{
  size_t i;

  /* One chunk at a time: each under its own copy lock. */
  for (i = 0; i < count; ++i)
    if (modify (store, (struct loc_op) {
          .m = store, .kind = OP_REMOVE, .n = ns[i], .fua = fua }) == -1)
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
  ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE (&m->copy_locks[n % COPY_STRIPES]);
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
                    "and copied back by the catch-up", m->name, n, i,
                    m->c.loc_name[i], holder, m->c.loc_name[holder]);
  }
  if (absent &&
      missing_set_add (m->missing, absent, n, BIT (holder), &failed) == 0)
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
                    "trying the next", m->name, n, i);
    }
    else {
      uint32_t fix = 0;
      /* Read repair: the catch-up rewrites the copies that failed. */
      if (failed &&
          missing_set_add (m->missing, failed, n, BIT (i), &fix) == 0)
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
                  "up-to-date copy", m->name, n);
  else if (absent)
    nbdkit_error ("%s: chunk %" PRIu64 ": some locations do not have it and "
                  "the others could not read it", m->name, n);
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

/* Sync every location in TARGETS.  One whose sync fails may have lost
 * any write since its last sync (Linux drops the dirty pages): it is
 * down and lacks everything, a full resync.  Returns the locations
 * synced.
 */
static uint32_t
sync_locations (struct mirror_store *m, uint32_t targets)
{
  const struct loc_op op = { .m = m, .kind = OP_SYNC };
  uint32_t ok, failed = 0;
  int result;

  ok = fan_out (m, &op, targets, &result);
  if (ok != targets && ok &&
      missing_set_add (m->missing, targets & ~ok, MISSING_ALL, ok,
                       &failed) == 0)
    ok &= ~failed;
  return ok;
}

/* A flush that reached the locations in OK, of which it needed NEED. */
static int
flush_reached (const struct mirror_store *m, uint32_t ok, unsigned need,
               const char *rule)
{
  if (count_bits (ok) >= need)
    return 0;
  nbdkit_error ("%s: flush reached %u of %u locations, fewer than %s "
                "(the others are down)", m->name, count_bits (ok),
                m->c.nloc, rule);
  errno = EIO;
  return -1;
}

static int
mr_sync (void *store)
{
  struct mirror_store *m = store;

  if (m->c.mode == MIRROR_ASYNC && m->c.durable_all)
    return mirror_store_sync_all (m);
  return flush_reached (m, sync_locations (m, up_mask (m)),
                        m->c.write_quorum, "write-quorum");
}

struct listing {
  const struct mirror_store *m;
  unsigned loc;
  uint8_t *map;
};

static void
found_chunk (void *opaque, uint64_t n)
{
  struct listing *l = opaque;

  /* Past the end: strays the engine ignores too.  A copy recorded as
   * missing is stale (or should be gone): not part of the volume.
   */
  if (n < l->m->nr_chunks && !missing_set_test (l->m->missing, l->loc, n))
    __atomic_fetch_or (&l->map[n >> 3], (uint8_t) (1u << (n & 7)),
                       __ATOMIC_RELAXED);
}

static int
mr_list (void *store, void (*found) (void *opaque, uint64_t n), void *opaque)
{
  struct mirror_store *m = store;
  const size_t bytes = (size_t) ((m->nr_chunks + 7) / 8);
  CLEANUP_FREE uint8_t *map = calloc (bytes ? bytes : 1, 1);
  const uint32_t up = up_mask (m);
  struct listing l = { .m = m, .map = map };
  uint64_t n;

  if (map == NULL) {
    nbdkit_error ("%s: calloc: %m", m->name);
    return -1;
  }
  for (l.loc = 0; l.loc < m->c.nloc; ++l.loc)
    if ((up & BIT (l.loc)) &&
        m->c.loc[l.loc].ops->list (m->c.loc[l.loc].opaque, found_chunk,
                                   &l) == -1)
      return -1;
  for (n = 0; n < m->nr_chunks; ++n)
    if (map[n >> 3] & (1u << (n & 7)))
      found (opaque, n);
  return 0;
}

static int
sync_one (void *arg)
{
  const struct chunk_store *s = arg;
  return s->ops->sync (s->opaque);
}

/* Copy to LOC everything it lacks, then empty the records.  Returns 0
 * when it lacks nothing, 1 if it still does, -1 on failure.
 */
static int
catch_up_location (struct mirror_store *m, unsigned loc)
{
  uint64_t n = 0, copied = 0;

  while ((n = missing_set_next (m->missing, loc, n)) != MISSING_ALL) {
    if (__atomic_load_n (&m->stopping, __ATOMIC_ACQUIRE))
      return 1;
    if (!mirror_store_is_up (m, loc) || copy_chunk (m, loc, n) == -1)
      return -1;
    copied++;
    n++;
  }
  if (copied)
    nbdkit_debug ("%s: copied %" PRIu64 " chunks to location %u (%s)",
                  m->name, copied, loc, m->c.loc_name[loc]);
  if (missing_set_compact (m->missing, loc, up_mask (m) & ~BIT (loc),
                           sync_one, &m->c.loc[loc]) == -1) {
    mark_down (m, loc, errno, "sync after catching up");
    return -1;
  }
  return missing_set_count (m->missing, loc) ? 1 : 0;
}

/* Has INTERVAL_NS passed since LOC was last probed or checked?  If so
 * the clock starts again.
 */
static bool
probe_due (struct mirror_store *m, unsigned loc, uint64_t interval_ns)
{
  struct timespec now;
  uint64_t since;

  clock_gettime (CLOCK_MONOTONIC, &now);
  since = (uint64_t) (now.tv_sec - m->last_probe[loc].tv_sec) * 1000000000 +
    (uint64_t) now.tv_nsec - (uint64_t) m->last_probe[loc].tv_nsec;
  if (m->last_probe[loc].tv_sec && since < interval_ns)
    return false;
  m->last_probe[loc] = now;
  return true;
}

/* Probe a down location, at most once per INTERVAL_NS.  True if it
 * answers (and lacks everything, if it says it may have lost writes).
 */
static bool
probe (struct mirror_store *m, unsigned loc, uint64_t interval_ns)
{
  uint32_t failed = 0;
  int r;

  if (!probe_due (m, loc, interval_ns))
    return false;
  r = m->c.probe ? m->c.probe (m->c.probe_opaque, loc) : -1;
  if (r == 1)
    r = missing_set_add (m->missing, BIT (loc), MISSING_ALL,
                         up_mask (m) & ~BIT (loc), &failed);
  return r == 0;
}

/* An up location whose directory went (renamed away, removed) still
 * takes writes through its descriptor, out of sight: down with it, so
 * that what it misses from now on is recorded.
 */
static bool
moved (struct mirror_store *m, unsigned loc, uint64_t interval_ns)
{
  if (m->c.moved == NULL || !probe_due (m, loc, interval_ns) ||
      !m->c.moved (m->c.probe_opaque, loc))
    return false;
  mark_down (m, loc, ENOENT, "looking at its path");
  return true;
}

static int
catch_up_pass (struct mirror_store *m, uint64_t interval_ns)
{
  int more = 0;
  unsigned loc;

  for (loc = 0; loc < m->c.nloc; ++loc) {
    if (mirror_store_is_up (m, loc) && moved (m, loc, interval_ns)) {
      more = 1;
      continue;
    }
    if (!mirror_store_is_up (m, loc)) {
      if (!probe (m, loc, interval_ns)) {
        more = 1;
        continue;
      }
      mark_up (m, loc);
    }
    if (catch_up_location (m, loc) != 0)
      more = 1;
  }
  return more;
}

int
mirror_store_catch_up (struct mirror_store *m)
{
  return catch_up_pass (m, 0);
}

/* The lag of each location that lacks chunks, every LAG_EVERY probe
 * intervals (see mirror-store.h).
 */
#define LAG_EVERY 10
static void
log_lag (struct mirror_store *m, uint64_t probe_interval_ns)
{
  const time_t now = time (NULL);
  time_t every = (time_t) (LAG_EVERY * probe_interval_ns / 1000000000);
  bool due;
  unsigned loc;

  every = every < 1 ? 1 : every > 60 ? 60 : every;
  due = now - m->last_lag_log >= every;
  for (loc = 0; loc < m->c.nloc; ++loc) {
    const uint64_t lacking = missing_set_count (m->missing, loc);

    if (lacking == 0) {
      m->behind_since[loc] = 0;
      continue;
    }
    if (m->behind_since[loc] == 0)
      m->behind_since[loc] = now;
    if (due)
      nbdkit_debug ("%s: location %u (%s)%s is behind: %" PRIu64 " chunks, "
                    "%" PRIu64 " bytes, for %lds", m->name, loc,
                    m->c.loc_name[loc],
                    mirror_store_is_up (m, loc) ? "" : ", down,", lacking,
                    lacking * m->chunk_size,
                    (long) (now - m->behind_since[loc]));
  }
  if (due)
    m->last_lag_log = now;
}

void
mirror_store_run (struct mirror_store *m, uint64_t probe_interval_ns)
{
  struct timespec until;

  for (;;) {
    catch_up_pass (m, probe_interval_ns);
    log_lag (m, probe_interval_ns);
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->run_lock);
    if (!m->kicked && !m->stopping) {
      clock_gettime (CLOCK_REALTIME, &until);
      until.tv_sec += (time_t) (probe_interval_ns / 1000000000);
      until.tv_nsec += (long) (probe_interval_ns % 1000000000);
      if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait (&m->run_cond, &m->run_lock, &until);
    }
    m->kicked = false;
    if (m->stopping)
      return;
  }
}

void
mirror_store_stop (struct mirror_store *m)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&m->run_lock);
  __atomic_store_n (&m->stopping, true, __ATOMIC_RELEASE);
  pthread_cond_broadcast (&m->run_cond);
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
    if ((up & BIT (loc)) && catch_up_location (m, loc) == -1)
      up &= ~BIT (loc);
  return flush_reached (m, sync_locations (m, up), m->c.nloc,
                        "durability=all");
}

struct mirror_store *
mirror_store_new (const char *name, const struct mirror_config *c,
                  uint64_t size, uint32_t chunk_size)
{
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
  if (m == NULL || (m->name = strdup (name)) == NULL) {
    nbdkit_error ("calloc: %m");
    free (m);
    return NULL;
  }
  for (i = 0; i < COPY_STRIPES; ++i)
    pthread_rwlock_init (&m->copy_locks[i], NULL);
  pthread_mutex_init (&m->run_lock, NULL);
  pthread_cond_init (&m->run_cond, NULL);
  m->c = *c;
  if (m->c.mode == MIRROR_ASYNC)
    m->c.write_quorum = 1;
  m->size = size;
  m->chunk_size = chunk_size;
  m->nr_chunks = (size + chunk_size - 1) / chunk_size;
  m->all = (uint32_t) ((UINT64_C (1) << c->nloc) - 1);
  m->up = m->all & ~c->down;
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
  m->missing = missing_set_new (name, c->nloc, m->nr_chunks, c->log,
                                c->log_opaque);
  if (m->missing == NULL ||
      missing_set_load (m->missing, m->up) == -1 ||
      (m->pool = task_pool_new (name, c->threads)) == NULL) {
    mirror_store_free (m);
    return NULL;
  }
  return m;
}

void
mirror_store_free (struct mirror_store *m)
{
  unsigned i;

  if (m == NULL)
    return;
  task_pool_free (m->pool);
  missing_set_free (m->missing);
  for (i = 0; i < COPY_STRIPES; ++i)
    pthread_rwlock_destroy (&m->copy_locks[i]);
  pthread_mutex_destroy (&m->run_lock);
  pthread_cond_destroy (&m->run_cond);
  free (m->name);
  free (m);
}

struct chunk_store
mirror_store_as_store (struct mirror_store *m)
{
  return (struct chunk_store) { .ops = &m->ops, .opaque = m };
}
