/* shardkit: what each location of a redundant set lacks.
 * GPL-3.0-or-later.  See missing-set.h.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "missing-set.h"

struct missing_set {
  char *name;
  unsigned nloc;
  uint64_t nr_chunks;
  const struct missing_log_ops *ops;
  void *opaque;
  /* Chunks a write intent found at load names (missing_set_intend):
   * the owner reconciles them before serving.
   */
  uint8_t *pending;
  struct {
    uint8_t *bits;              /* bit n: lacks chunk n */
    /* Bit n: a write intent "lacks n" is in the records (sync writes,
     * missing_set_intend), though the location does not lack n.
     * Emptied with the records.
     */
    uint8_t *intent;
    uint64_t count;             /* bits set (atomic) */
    bool records;               /* the records may hold entries (atomic) */
    /* Adds hold it shared, a compaction exclusive: the records are
     * emptied only when no add can be between its append and its bit.
     */
    pthread_rwlock_t lock;
  } loc[MISSING_MAX_LOCATIONS];
};

struct missing_set *
missing_set_new (const char *name, unsigned nloc, uint64_t nr_chunks,
                 const struct missing_log_ops *ops, void *opaque)
{
  struct missing_set *s;
  size_t bytes = (size_t) ((nr_chunks + 7) / 8);
  unsigned i;

  if (nloc > MISSING_MAX_LOCATIONS) {
    nbdkit_error ("%s: more than %d locations", name, MISSING_MAX_LOCATIONS);
    errno = EINVAL;
    return NULL;
  }
  s = calloc (1, sizeof *s);
  if (s == NULL || (s->name = strdup (name)) == NULL) {
    nbdkit_error ("calloc: %m");
    free (s);
    return NULL;
  }
  s->nloc = nloc;
  s->nr_chunks = nr_chunks;
  s->ops = ops;
  s->opaque = opaque;
  s->pending = calloc (bytes ? bytes : 1, 1);
  if (s->pending == NULL) {
    nbdkit_error ("calloc: %m");
    missing_set_free (s);
    return NULL;
  }
  /* Reader-preferring, as glibc's default, on purpose: a write holds
   * its targets' locks shared from missing_set_intend to
   * missing_set_intend_done and takes them shared again inside
   * (missing_set_add); a waiting compaction must not block that.
   */
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init (&attr);
  pthread_rwlockattr_setkind_np (&attr, PTHREAD_RWLOCK_PREFER_READER_NP);
  for (i = 0; i < nloc; ++i) {
    pthread_rwlock_init (&s->loc[i].lock, &attr);
    s->loc[i].bits = calloc (bytes ? bytes : 1, 1);
    s->loc[i].intent = calloc (bytes ? bytes : 1, 1);
    if (s->loc[i].bits == NULL || s->loc[i].intent == NULL) {
      nbdkit_error ("calloc: %m");
      pthread_rwlockattr_destroy (&attr);
      missing_set_free (s);
      return NULL;
    }
  }
  pthread_rwlockattr_destroy (&attr);
  return s;
}

void
missing_set_free (struct missing_set *s)
{
  unsigned i;

  if (s == NULL)
    return;
  free (s->pending);
  for (i = 0; i < s->nloc; ++i) {
    free (s->loc[i].bits);
    free (s->loc[i].intent);
    pthread_rwlock_destroy (&s->loc[i].lock);
  }
  free (s->name);
  free (s);
}

bool
missing_set_test (const struct missing_set *s, unsigned loc, uint64_t n)
{
  uint8_t byte = __atomic_load_n (&s->loc[loc].bits[n >> 3], __ATOMIC_ACQUIRE);
  return (byte >> (n & 7)) & 1;
}

uint64_t
missing_set_count (const struct missing_set *s, unsigned loc)
{
  return __atomic_load_n (&s->loc[loc].count, __ATOMIC_ACQUIRE);
}

bool
missing_set_has_records (const struct missing_set *s, unsigned loc)
{
  return __atomic_load_n (&s->loc[loc].records, __ATOMIC_ACQUIRE);
}

/* Set LOC's bit for N (or every bit), counting the new ones. */
static void
set_bit (struct missing_set *s, unsigned loc, uint64_t n)
{
  uint64_t i;

  if (n == MISSING_ALL) {
    for (i = 0; i < s->nr_chunks; ++i)
      set_bit (s, loc, i);
    return;
  }
  if (n >= s->nr_chunks)
    return;                     /* past the end: a stray record */
  {
    const uint8_t bit = (uint8_t) (1u << (n & 7));
    uint8_t old = __atomic_fetch_or (&s->loc[loc].bits[n >> 3], bit,
                                     __ATOMIC_ACQ_REL);
    if (!(old & bit))
      __atomic_fetch_add (&s->loc[loc].count, 1, __ATOMIC_ACQ_REL);
  }
}

void
missing_set_done (struct missing_set *s, unsigned loc, uint64_t n)
{
  const uint8_t bit = (uint8_t) (1u << (n & 7));
  uint8_t old = __atomic_fetch_and (&s->loc[loc].bits[n >> 3],
                                    (uint8_t) ~bit, __ATOMIC_ACQ_REL);
  if (old & bit)
    __atomic_fetch_sub (&s->loc[loc].count, 1, __ATOMIC_ACQ_REL);
}

uint64_t
missing_set_next (const struct missing_set *s, unsigned loc, uint64_t from)
{
  uint64_t n = from;

  while (n < s->nr_chunks) {
    uint8_t byte = __atomic_load_n (&s->loc[loc].bits[n >> 3],
                                    __ATOMIC_ACQUIRE) >> (n & 7);
    if (byte == 0) {
      n = (n | 7) + 1;          /* the rest of this byte is clear */
      continue;
    }
    if (byte & 1)
      return n;
    n++;
  }
  return MISSING_ALL;
}

struct loading {
  struct missing_set *s;
  unsigned loc;
  bool any;
};

static void
found_missing (void *arg, uint64_t n)
{
  struct loading *l = arg;

  set_bit (l->s, l->loc, n);
  l->any = true;
}

struct intents {
  struct missing_set *s;
  uint64_t count;
};

static void
found_intent (void *arg, uint64_t n)
{
  struct intents *in = arg;
  uint64_t i;

  if (n == MISSING_ALL) {
    for (i = 0; i < in->s->nr_chunks; ++i)
      found_intent (arg, i);
    return;
  }
  if (n >= in->s->nr_chunks)
    return;
  in->count++;
  in->s->pending[n >> 3] |= (uint8_t) (1u << (n & 7));
}

int
missing_set_load (struct missing_set *s, uint32_t holders)
{
  unsigned h, loc;

  for (h = 0; h < s->nloc; ++h) {
    if (!(holders & (UINT32_C (1) << h)))
      continue;
    /* Its own record: the write intents (missing_set_intend). */
    {
      struct intents in = { .s = s };
      if (s->ops->load (s->opaque, h, h, found_intent, &in) == -1)
        return -1;
      if (in.count) {
        s->loc[h].records = true;
        nbdkit_debug ("%s: location %u records write intents for %" PRIu64
                      " chunks (a crash while they were written)",
                      s->name, h, in.count);
      }
    }
    for (loc = 0; loc < s->nloc; ++loc) {
      struct loading l = { .s = s, .loc = loc };
      if (loc == h)
        continue;
      if (s->ops->load (s->opaque, h, loc, found_missing, &l) == -1)
        return -1;
      if (l.any) {
        s->loc[loc].records = true;
        nbdkit_debug ("%s: location %u records that location %u lacks "
                      "%" PRIu64 " chunks", s->name, h, loc,
                      missing_set_count (s, loc));
      }
    }
  }
  return 0;
}

int
missing_set_add (struct missing_set *s, uint32_t locs, uint64_t n,
                 uint32_t holders, uint32_t *failed)
{
  uint32_t need = 0, written = 0;
  unsigned loc, h;

  holders &= ~locs;
  for (loc = 0; loc < s->nloc; ++loc)
    if ((locs & (UINT32_C (1) << loc)) &&
        (n == MISSING_ALL || !missing_set_test (s, loc, n)))
      need |= UINT32_C (1) << loc;
  if (need == 0)
    return 0;

  for (loc = 0; loc < s->nloc; ++loc)
    if (need & (UINT32_C (1) << loc))
      pthread_rwlock_rdlock (&s->loc[loc].lock);
  for (h = 0; h < s->nloc; ++h) {
    bool ok = true;
    if (!(holders & (UINT32_C (1) << h)))
      continue;
    for (loc = 0; loc < s->nloc && ok; ++loc)
      if ((need & (UINT32_C (1) << loc)) &&
          s->ops->append (s->opaque, h, loc, &n, 1) == -1)
        ok = false;
    if (ok)
      written |= UINT32_C (1) << h;
    else
      *failed |= UINT32_C (1) << h;
  }
  for (loc = 0; loc < s->nloc; ++loc)
    if (need & (UINT32_C (1) << loc)) {
      if (written) {
        __atomic_store_n (&s->loc[loc].records, true, __ATOMIC_RELEASE);
        set_bit (s, loc, n);
      }
      pthread_rwlock_unlock (&s->loc[loc].lock);
    }
  if (written == 0) {
    nbdkit_error ("%s: chunk %" PRIu64 " could not be recorded as missing "
                  "on any location that holds it", s->name, n);
    errno = EIO;
    return -1;
  }
  return 0;
}

int
missing_set_compact (struct missing_set *s, unsigned loc, uint32_t holders,
                     int (*sync) (void *arg), void *arg)
{
  uint32_t left = 0;
  unsigned h;

  if (!missing_set_has_records (s, loc) || missing_set_count (s, loc) > 0)
    return 0;
  ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE (&s->loc[loc].lock);
  if (missing_set_count (s, loc) > 0)
    return 0;
  /* What the catch-up wrote must be durable before the record of its
   * need goes.
   */
  if (sync (arg) == -1)
    return -1;
  /* A holder whose record cannot be emptied now (it failed, or is
   * down) keeps it, and the records of LOC stay marked, so that the
   * next compaction tries again: a stale record left behind could later
   * say LOC lacks a chunk that only LOC holds.  Whatever fails there is
   * that holder's trouble, found by its own requests, not LOC's.
   */
  for (h = 0; h < s->nloc; ++h) {
    if (h == loc)
      continue;
    if ((holders & (UINT32_C (1) << h)) &&
        s->ops->clear (s->opaque, h, loc) == 0)
      continue;
    left |= UINT32_C (1) << h;
  }
  /* Its write intents too (what they were about is synced now). */
  if (s->ops->clear (s->opaque, loc, loc) == -1)
    return -1;
  memset (s->loc[loc].intent, 0, (size_t) ((s->nr_chunks + 7) / 8));
  if (left) {
    nbdkit_debug ("%s: location %u is caught up, but records of it stay "
                  "on %d location(s) that could not empty them: tried "
                  "again later", s->name, loc, __builtin_popcount (left));
    return 1;
  }
  __atomic_store_n (&s->loc[loc].records, false, __ATOMIC_RELEASE);
  nbdkit_debug ("%s: location %u is caught up: its records emptied",
                s->name, loc);
  return 1;
}

int
missing_set_intend (struct missing_set *s, uint32_t targets, uint64_t n,
                    uint32_t *failed)
{
  const uint8_t bit = (uint8_t) (1u << (n & 7));
  unsigned h;

  for (h = 0; h < s->nloc; ++h) {
    if (!(targets & (UINT32_C (1) << h)))
      continue;
    pthread_rwlock_rdlock (&s->loc[h].lock);
    if (__atomic_load_n (&s->loc[h].intent[n >> 3], __ATOMIC_ACQUIRE) & bit)
      continue;                 /* recorded since the last compaction */
    if (s->ops->append (s->opaque, h, h, &n, 1) == -1) {
      *failed |= UINT32_C (1) << h;
      continue;
    }
    __atomic_store_n (&s->loc[h].records, true, __ATOMIC_RELEASE);
    __atomic_fetch_or (&s->loc[h].intent[n >> 3], bit, __ATOMIC_ACQ_REL);
  }
  return 0;
}

void
missing_set_intend_done (struct missing_set *s, uint32_t targets)
{
  unsigned h;

  for (h = 0; h < s->nloc; ++h)
    if (targets & (UINT32_C (1) << h))
      pthread_rwlock_unlock (&s->loc[h].lock);
}

uint64_t
missing_set_next_intent (const struct missing_set *s, uint64_t from)
{
  uint64_t n;

  for (n = from; n < s->nr_chunks; ++n)
    if (s->pending[n >> 3] & (1u << (n & 7)))
      return n;
  return MISSING_ALL;
}

void
missing_set_assume (struct missing_set *s, uint32_t locs, uint64_t n)
{
  unsigned loc;

  for (loc = 0; loc < s->nloc; ++loc)
    if (locs & (UINT32_C (1) << loc))
      set_bit (s, loc, n);
}
