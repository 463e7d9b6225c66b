/* shardkit: the locations of a redundant set.  GPL-3.0-or-later.
 * See store-set.h.
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
#include "missing-set.h"
#include "store-set.h"
#include "task-pool.h"

uint32_t
store_set_up (const struct store_set *s)
{
  return __atomic_load_n (&s->up, __ATOMIC_ACQUIRE);
}

uint32_t
store_set_lacking (const struct store_set *s, uint64_t n)
{
  uint32_t mask = 0;
  unsigned i;

  for (i = 0; i < s->c.nloc; ++i)
    if (missing_set_test (s->missing, i, n))
      mask |= SET_BIT (i);
  return mask;
}

void
store_set_mark_down (struct store_set *s, unsigned loc, int err,
                     const char *what)
{
  uint32_t old = __atomic_fetch_and (&s->up, ~SET_BIT (loc), __ATOMIC_ACQ_REL);

  if (old & SET_BIT (loc))
    nbdkit_error ("%s: location %u (%s) is down: %s failed: %s; what it "
                  "misses is recorded on the others and caught up when it "
                  "answers again", s->name, loc, s->c.loc_name[loc], what,
                  strerror (err ? err : EIO));
}

static void
mark_up (struct store_set *s, unsigned loc)
{
  __atomic_fetch_or (&s->up, SET_BIT (loc), __ATOMIC_ACQ_REL);
  nbdkit_debug ("%s: location %u (%s) answers again: %" PRIu64 " chunks "
                "to catch up", s->name, loc, s->c.loc_name[loc],
                missing_set_count (s->missing, loc));
}

void
store_set_kick (struct store_set *s)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->run_lock);
  s->kicked = true;
  pthread_cond_signal (&s->run_cond);
}

struct loc_op {
  const struct set_op *op;
  const struct chunk_store *store;
  unsigned loc;
  int r, err;
};

static const char *const op_names[] = {
  [SET_OP_WRITE] = "write", [SET_OP_PUNCH] = "punch",
  [SET_OP_REMOVE] = "remove", [SET_OP_SYNC] = "sync", [SET_OP_READ] = "read",
};

static void
run_loc_op (void *arg)
{
  struct loc_op *o = arg;
  const struct set_op *op = o->op;
  const struct chunk_store *s = o->store;
  uint64_t n = op->n;

  switch (op->kind) {
  case SET_OP_WRITE:
    o->r = s->ops->write (s->opaque, n, op->bufs ? op->bufs[o->loc] : op->buf,
                          op->len, op->off, op->fua);
    break;
  case SET_OP_PUNCH:
    o->r = s->ops->punch (s->opaque, n, op->len, op->off, op->fua);
    break;
  case SET_OP_REMOVE:
    o->r = s->ops->remove (s->opaque, &n, 1, op->fua);
    break;
  case SET_OP_SYNC:
    o->r = s->ops->sync (s->opaque);
    break;
  case SET_OP_READ:
    o->r = s->ops->read (s->opaque, n, op->bufs[o->loc], op->len, op->off);
    break;
  }
  o->err = o->r == -1 ? errno : 0;
}

uint32_t
store_set_fan_out (struct store_set *s, const struct set_op *op,
                   uint32_t targets, bool mark_down, int *results, int *min)
{
  struct loc_op ops[STORE_SET_MAX_LOCATIONS];
  void *args[STORE_SET_MAX_LOCATIONS] = { NULL };
  uint32_t ok = 0;
  size_t k = 0, i;

  for (i = 0; i < s->c.nloc; ++i)
    if (targets & SET_BIT (i)) {
      ops[k] = (struct loc_op) { .op = op, .store = &s->c.loc[i],
                                 .loc = (unsigned) i };
      args[k] = &ops[k];
      k++;
    }
  task_pool_run (s->pool, run_loc_op, args, k);
  if (min)
    *min = 1;
  for (i = 0; i < k; ++i) {
    if (results) {
      results[ops[i].loc] = ops[i].r;
      if (ops[i].r == -1)
        errno = ops[i].err;
    }
    if (ops[i].r == -1) {
      if (mark_down)
        store_set_mark_down (s, ops[i].loc, ops[i].err, op_names[op->kind]);
    }
    else {
      ok |= SET_BIT (ops[i].loc);
      if (min && ops[i].r < *min)
        *min = ops[i].r;
    }
  }
  return ok;
}

uint32_t
store_set_settle (struct store_set *s, uint64_t n, uint32_t ok)
{
  for (;;) {
    uint32_t failed = 0, lack = s->all & ~ok;
    unsigned i;

    if (ok == 0 || lack == 0)
      return ok;
    if (missing_set_add (s->missing, lack, n, ok, &failed) == -1)
      failed = ok;
    if (failed == 0)
      return ok;
    for (i = 0; i < s->c.nloc; ++i)
      if (failed & SET_BIT (i))
        store_set_mark_down (s, i, EIO,
                             "recording what another location misses");
    ok &= ~failed;
  }
}

int
store_set_fix_locked (struct store_set *s, unsigned loc, uint64_t n)
{
  if (!missing_set_test (s->missing, loc, n))
    return 0;                   /* fixed meanwhile */
  if (s->c.fix (s->c.owner, loc, n) == -1)
    return -1;
  missing_set_done (s->missing, loc, n);
  return 0;
}

int
store_set_fix (struct store_set *s, unsigned loc, uint64_t n)
{
  ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE (store_set_copy_lock (s, n));
  return store_set_fix_locked (s, loc, n);
}

uint32_t
store_set_sync (struct store_set *s, uint32_t targets)
{
  const struct set_op op = { .kind = SET_OP_SYNC };
  uint32_t ok, failed = 0;

  ok = store_set_fan_out (s, &op, targets, true, NULL, NULL);
  if (ok != targets && ok &&
      missing_set_add (s->missing, targets & ~ok, MISSING_ALL, ok,
                       &failed) == 0)
    ok &= ~failed;
  return ok;
}

int
store_set_flush_reached (const struct store_set *s, uint32_t ok,
                         unsigned need, const char *rule)
{
  if (store_set_count (ok) >= need)
    return 0;
  nbdkit_error ("%s: flush reached %u of %u locations, fewer than %s "
                "(the others are down)", s->name, store_set_count (ok),
                s->c.nloc, rule);
  errno = EIO;
  return -1;
}

struct listing {
  const struct store_set *s;
  unsigned loc;
  uint8_t *count;               /* per chunk, up to 255 */
  uint8_t *stale;               /* copies recorded as stale, per chunk */
};

static void
found_chunk (void *opaque, uint64_t n)
{
  struct listing *l = opaque;

  /* Past the end: strays the engine ignores too.  A copy recorded as
   * missing is stale (or should be gone): not part of the volume.
   * Each location lists each chunk once: the counts stay below 33.
   */
  if (n >= l->s->nr_chunks)
    return;
  if (!missing_set_test (l->s->missing, l->loc, n))
    __atomic_fetch_add (&l->count[n], 1, __ATOMIC_RELAXED);
  else
    __atomic_store_n (&l->stale[n], 1, __ATOMIC_RELAXED);
}

int
store_set_list (struct store_set *s, unsigned min_holders,
                void (*found) (void *opaque, uint64_t n), void *opaque)
{
  CLEANUP_FREE uint8_t *count = calloc (s->nr_chunks ? s->nr_chunks : 1, 1);
  CLEANUP_FREE uint8_t *stale = calloc (s->nr_chunks ? s->nr_chunks : 1, 1);
  const uint32_t up = store_set_up (s);
  struct listing l = { .s = s, .count = count, .stale = stale };
  uint64_t n, strays = 0, unknown = 0;

  if (count == NULL || stale == NULL) {
    nbdkit_error ("%s: calloc: %m", s->name);
    return -1;
  }
  for (l.loc = 0; l.loc < s->c.nloc; ++l.loc)
    if ((up & SET_BIT (l.loc)) &&
        s->c.loc[l.loc].ops->list (s->c.loc[l.loc].opaque, found_chunk,
                                   &l) == -1)
      return -1;
  for (n = 0; n < s->nr_chunks; ++n) {
    if (count[n] >= min_holders)
      found (opaque, n);
    else if (count[n])
      strays++;
    else if (stale[n] && (store_set_lacking (s, n) & up) == up) {
      /* Copies exist, and every location that is up is recorded as
       * lacking the chunk: which is right is not known here.  Part of
       * the volume, so that a read fails (EIO) rather than returning
       * zeros; the catch-up settles it when a location that holds it
       * answers.
       */
      found (opaque, n);
      unknown++;
    }
  }
  if (unknown)
    nbdkit_error ("%s: %" PRIu64 " chunks have copies, but every location "
                  "that answers is recorded as lacking them: they read as "
                  "errors until a location that holds them answers",
                  s->name, unknown);
  if (strays)
    nbdkit_error ("%s: %" PRIu64 " chunks are on fewer than %u locations: "
                  "what a write or removal cut short by a crash leaves (it "
                  "was never acknowledged); they read as absent",
                  s->name, strays, min_holders);
  return 0;
}

static int
sync_one (void *arg)
{
  const struct chunk_store *st = arg;
  return st->ops->sync (st->opaque);
}

/* Before the records about a location go (the compaction): what it
 * was given must be durable, and so must what the others hold, whose
 * copies the records (and a sync mirror's write intents) were about:
 * after a power cut the copies must still agree.  A location whose sync
 * fails is down and lacks every chunk (store_set_sync); LOC's own
 * failure keeps the records.
 */
struct compaction {
  struct store_set *s;
  unsigned loc;
};

static int
sync_for_compaction (void *arg)
{
  struct compaction *c = arg;

  if (sync_one ((void *) &c->s->c.loc[c->loc]) == -1)
    return -1;
  store_set_sync (c->s, store_set_up (c->s) & ~SET_BIT (c->loc));
  return 0;
}

int
store_set_catch_up_location (struct store_set *s, unsigned loc)
{
  struct compaction comp = { s, loc };
  uint64_t n = 0, fixed = 0;

  while ((n = missing_set_next (s->missing, loc, n)) != MISSING_ALL) {
    if (__atomic_load_n (&s->stopping, __ATOMIC_ACQUIRE))
      return 1;
    if (!(store_set_up (s) & SET_BIT (loc)) ||
        store_set_fix (s, loc, n) == -1)
      return -1;
    fixed++;
    n++;
  }
  if (fixed)
    nbdkit_debug ("%s: caught up %" PRIu64 " chunks: copied or rebuilt "
                  "to location %u (%s)",
                  s->name, fixed, loc, s->c.loc_name[loc]);
  if (missing_set_compact (s->missing, loc, store_set_up (s) & ~SET_BIT (loc),
                           sync_for_compaction, &comp) == -1) {
    store_set_mark_down (s, loc, errno, "sync after catching up");
    return -1;
  }
  return missing_set_count (s->missing, loc) ? 1 : 0;
}

int
store_set_reconcile (struct store_set *s, bool readonly,
                     uint32_t (*holders) (void *owner, uint64_t n),
                     const char *what)
{
  uint64_t n = 0, count = 0;

  while ((n = missing_set_next_intent (s->missing, n)) != MISSING_ALL) {
    const uint32_t keep = holders (s->c.owner, n);
    const uint32_t lack = s->all & ~keep & ~store_set_lacking (s, n);
    uint32_t failed = 0;
    unsigned loc;

    if (keep && lack) {
      /* Each choice recorded on every location that answers but the
       * one it is about (the others that lack the chunk too): whichever
       * of them answers next time, the same version is kept.
       */
      for (loc = 0; loc < s->c.nloc; ++loc) {
        if (!(lack & SET_BIT (loc)))
          continue;
        if (readonly)
          missing_set_assume (s->missing, SET_BIT (loc), n);
        else if (missing_set_add (s->missing, SET_BIT (loc), n,
                                  store_set_up (s) & ~SET_BIT (loc) &
                                  ~failed, &failed) == -1)
          return -1;
      }
      for (loc = 0; loc < s->c.nloc; ++loc)
        if (failed & SET_BIT (loc))
          store_set_mark_down (s, loc, EIO, "recording a reconciled chunk");
      count++;
    }
    n++;
  }
  if (count) {
    nbdkit_debug ("%s: %" PRIu64 " chunks were being written when the "
                  "last server stopped: %s", s->name, count, what);
    store_set_kick (s);
  }
  return 0;
}

void
store_set_compact (struct store_set *s)
{
  unsigned loc;

  for (loc = 0; loc < s->c.nloc; ++loc) {
    struct compaction comp = { s, loc };
    if ((store_set_up (s) & SET_BIT (loc)) &&
        missing_set_compact (s->missing, loc,
                             store_set_up (s) & ~SET_BIT (loc),
                             sync_for_compaction, &comp) == -1)
      store_set_mark_down (s, loc, errno, "sync at close");
  }
}

/* Has INTERVAL_NS passed since LOC was last probed or checked?  If so
 * the clock starts again.
 */
static bool
probe_due (struct store_set *s, unsigned loc, uint64_t interval_ns)
{
  struct timespec now;
  uint64_t since;

  clock_gettime (CLOCK_MONOTONIC, &now);
  since = (uint64_t) (now.tv_sec - s->last_probe[loc].tv_sec) * 1000000000 +
    (uint64_t) now.tv_nsec - (uint64_t) s->last_probe[loc].tv_nsec;
  if (s->last_probe[loc].tv_sec && since < interval_ns)
    return false;
  s->last_probe[loc] = now;
  return true;
}

/* Probe a down location, at most once per INTERVAL_NS.  True if it
 * answers (and lacks everything, if it says it may have lost writes).
 */
static bool
probe (struct store_set *s, unsigned loc, uint64_t interval_ns)
{
  uint32_t failed = 0;
  int r;

  if (!probe_due (s, loc, interval_ns))
    return false;
  r = s->c.probe ? s->c.probe (s->c.probe_opaque, loc) : -1;
  if (r == 1)
    r = missing_set_add (s->missing, SET_BIT (loc), MISSING_ALL,
                         store_set_up (s) & ~SET_BIT (loc), &failed);
  return r == 0;
}

/* An up location whose directory went (renamed away, removed) still
 * takes writes through its descriptor, out of sight: down with it, so
 * that what it misses from now on is recorded.
 */
static bool
moved (struct store_set *s, unsigned loc, uint64_t interval_ns)
{
  if (s->c.moved == NULL || !probe_due (s, loc, interval_ns) ||
      !s->c.moved (s->c.probe_opaque, loc))
    return false;
  store_set_mark_down (s, loc, ENOENT, "looking at its path");
  return true;
}

int
store_set_catch_up (struct store_set *s, uint64_t interval_ns)
{
  int more = 0;
  unsigned loc;

  for (loc = 0; loc < s->c.nloc; ++loc) {
    if ((store_set_up (s) & SET_BIT (loc)) && moved (s, loc, interval_ns)) {
      more = 1;
      continue;
    }
    if (!(store_set_up (s) & SET_BIT (loc))) {
      if (!probe (s, loc, interval_ns)) {
        more = 1;
        continue;
      }
      mark_up (s, loc);
    }
    if (store_set_catch_up_location (s, loc) != 0)
      more = 1;
  }
  return more;
}

/* The lag of each location that lacks chunks, every LAG_EVERY probe
 * intervals (see mirror-store.h).
 */
#define LAG_EVERY 10
static void
log_lag (struct store_set *s, uint64_t probe_interval_ns)
{
  const time_t now = time (NULL);
  time_t every = (time_t) (LAG_EVERY * probe_interval_ns / 1000000000);
  bool due;
  unsigned loc;

  every = every < 1 ? 1 : every > 60 ? 60 : every;
  due = now - s->last_lag_log >= every;
  for (loc = 0; loc < s->c.nloc; ++loc) {
    const uint64_t lacking = missing_set_count (s->missing, loc);

    if (lacking == 0) {
      s->behind_since[loc] = 0;
      continue;
    }
    if (s->behind_since[loc] == 0)
      s->behind_since[loc] = now;
    if (due)
      nbdkit_debug ("%s: location %u (%s)%s is behind: %" PRIu64 " chunks, "
                    "%" PRIu64 " bytes, for %lds", s->name, loc,
                    s->c.loc_name[loc],
                    store_set_up (s) & SET_BIT (loc) ? "" : ", down,",
                    lacking, lacking * s->c.lag_bytes_per_chunk,
                    (long) (now - s->behind_since[loc]));
  }
  if (due)
    s->last_lag_log = now;
}

void
store_set_run (struct store_set *s, uint64_t probe_interval_ns)
{
  struct timespec until;

  for (;;) {
    store_set_catch_up (s, probe_interval_ns);
    log_lag (s, probe_interval_ns);
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->run_lock);
    if (!s->kicked && !s->stopping) {
      clock_gettime (CLOCK_REALTIME, &until);
      until.tv_sec += (time_t) (probe_interval_ns / 1000000000);
      until.tv_nsec += (long) (probe_interval_ns % 1000000000);
      if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait (&s->run_cond, &s->run_lock, &until);
    }
    s->kicked = false;
    if (s->stopping)
      return;
  }
}

void
store_set_stop (struct store_set *s)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&s->run_lock);
  __atomic_store_n (&s->stopping, true, __ATOMIC_RELEASE);
  pthread_cond_broadcast (&s->run_cond);
}

int
store_set_init (struct store_set *s, const char *name,
                const struct store_set_config *c, uint64_t nr_chunks)
{
  unsigned i;

  memset (s, 0, sizeof *s);
  for (i = 0; i < STORE_SET_COPY_STRIPES; ++i)
    pthread_rwlock_init (&s->copy_locks[i], NULL);
  pthread_mutex_init (&s->run_lock, NULL);
  pthread_cond_init (&s->run_cond, NULL);
  s->c = *c;
  s->nr_chunks = nr_chunks;
  s->all = (uint32_t) ((UINT64_C (1) << c->nloc) - 1);
  s->up = s->all & ~c->down;
  s->name = strdup (name);
  if (s->name == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  s->missing = missing_set_new (name, c->nloc, nr_chunks, c->log,
                                c->log_opaque);
  if (s->missing == NULL ||
      missing_set_load (s->missing, s->up) == -1 ||
      (s->pool = task_pool_new (name, c->threads)) == NULL)
    return -1;
  return 0;
}

void
store_set_fini (struct store_set *s)
{
  unsigned i;

  task_pool_free (s->pool);
  missing_set_free (s->missing);
  for (i = 0; i < STORE_SET_COPY_STRIPES; ++i)
    pthread_rwlock_destroy (&s->copy_locks[i]);
  pthread_mutex_destroy (&s->run_lock);
  pthread_cond_destroy (&s->run_cond);
  free (s->name);
}
