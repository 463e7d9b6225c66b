/* shardkit: chunk-cache filter, the block state machine.
 * GPL-3.0-or-later.
 *
 * Every block of an export is ABSENT, CLEAN, DIRTY, INFLIGHT (a worker
 * is writing it to the plugin) or WRITTEN (in the plugin, waiting for a
 * plugin flush before it counts as clean).  Rules that keep data safe:
 *
 * - A client write copies into the data file, then bumps the block's
 *   generation.  A worker snapshots the generation before it reads the
 *   block; if the generation moved (or a write is still copying) when
 *   the plugin write completes, the block stays dirty and is written
 *   again.  So a rewrite racing a write-back is never lost, and neither
 *   side waits for the other.
 * - Every completed write gets a sequence number.  A block remembers the
 *   oldest write not yet in the plugin (dirty_seq, or pending_seq for
 *   writes that arrived during its write-back).  A flush with sequence S
 *   waits until no block holds a write <= S, then flushes the plugin.
 * - Only CLEAN blocks are in the LRU list, so only they are evicted.
 * - Trim and zero take the blocks they touch exclusively (busy) after any
 *   write-back of them has finished, so an old write-back cannot land on
 *   top of the zeros in the plugin.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "cleanup.h"

pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t cache_cond = PTHREAD_COND_INITIALIZER;
pthread_cond_t work_cond = PTHREAD_COND_INITIALIZER;
struct cache *caches;
bool shutting_down;

/* Threads waiting for a block's pins or writers to drain (trim, zero,
 * write-through): only then do readers and writers need to wake anyone.
 */
static unsigned drain_waiters;

double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t
block_len (struct cache *c, uint64_t blk)
{
  uint64_t start = blk * c->bs;
  return c->size - start < c->bs ? c->size - start : c->bs;
}

bool
data_is_damaged (struct cache *c)
{
  return __atomic_load_n (&c->data_damaged, __ATOMIC_ACQUIRE);
}

/* Called without cache_lock. */
static void
mark_damaged (struct cache *c, const char *what, uint64_t off)
{
  if (!__atomic_exchange_n (&c->data_damaged, true, __ATOMIC_ACQ_REL))
    nbdkit_error ("chunk-cache: %s: the cache file was cut short while in "
                  "use (%s at offset %" PRIu64 "): its data can no longer be "
                  "trusted; dirty blocks are not written back and requests "
                  "that need them fail with EIO; stop nbdkit and check the "
                  "cache directory", c->name, what, off);
  /* Wake flushes waiting for write-back: it will not happen now. */
  pthread_mutex_lock (&cache_lock);
  pthread_cond_broadcast (&cache_cond);
  pthread_mutex_unlock (&cache_lock);
}

int
data_read (struct cache *c, void *buf, size_t n, uint64_t off)
{
  if (data_is_damaged (c)) {
    errno = EIO;
    return -1;
  }
  while (n > 0) {
    ssize_t r = pread (c->data_fd, buf, n, (off_t) off);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0) {
      mark_damaged (c, "a read ran into its end", off);
      errno = EIO;
      return -1;
    }
    buf = (char *) buf + r, n -= r, off += r;
  }
  return 0;
}

int
data_write (struct cache *c, const void *buf, size_t n, uint64_t off)
{
  struct stat st;

  if (data_is_damaged (c)) {
    errno = EIO;
    return -1;
  }
  /* A write past the end of a cut file would extend it again, and the
   * bytes lost in between would then read as zeros: look first.
   */
  if (fstat (c->data_fd, &st) == 0 && (uint64_t) st.st_size < c->size) {
    mark_damaged (c, "shorter than the cache before a write", off);
    errno = EIO;
    return -1;
  }
  while (n > 0) {
    ssize_t r = pwrite (c->data_fd, buf, n, (off_t) off);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf = (const char *) buf + r, n -= r, off += r;
  }
  return 0;
}

/* ---- intrusive lists (lock held) ---- */

void
list_init (struct list *l)
{
  l->head = l->tail = NIL;
  l->count = 0;
}

static struct link *
lnk (struct cache *c, uint32_t i, bool u)
{
  return u ? &c->b[i].u : &c->b[i].q;
}

static void
list_push (struct cache *c, struct list *l, uint32_t i, bool u)
{
  struct link *k = lnk (c, i, u);
  k->next = NIL;
  k->prev = l->tail;
  if (l->tail != NIL)
    lnk (c, l->tail, u)->next = i;
  else
    l->head = i;
  l->tail = i;
  l->count++;
}

static void
list_del (struct cache *c, struct list *l, uint32_t i, bool u)
{
  struct link *k = lnk (c, i, u);
  if (k->prev != NIL)
    lnk (c, k->prev, u)->next = k->next;
  else
    l->head = k->next;
  if (k->next != NIL)
    lnk (c, k->next, u)->prev = k->prev;
  else
    l->tail = k->prev;
  k->prev = k->next = NIL;
  l->count--;
}

static struct list *
qlist_of (struct cache *c, uint8_t which)
{
  switch (which) {
  case Q_LRU: return &c->lru;
  case Q_FIFO: return &c->fifo;
  case Q_RETRY: return &c->retry;
  default: return NULL;
  }
}

static void
q_remove (struct cache *c, uint32_t i)
{
  struct block *b = &c->b[i];
  if (b->qwhich != Q_NONE) {
    list_del (c, qlist_of (c, b->qwhich), i, false);
    b->qwhich = Q_NONE;
  }
}

static void
q_put (struct cache *c, uint32_t i, uint8_t which)
{
  q_remove (c, i);
  if (which != Q_NONE) {
    list_push (c, qlist_of (c, which), i, false);
    c->b[i].qwhich = which;
  }
}

static bool
is_unclean (uint8_t s)
{
  return s == B_DIRTY || s == B_INFLIGHT || s == B_WRITTEN;
}

/* Move a block to a new state, keeping lists and counters right. */
static void
set_state (struct cache *c, uint32_t i, uint8_t s)
{
  struct block *b = &c->b[i];
  uint8_t old = b->state;

  if (old == B_ABSENT && s != B_ABSENT)
    c->present++;
  if (old != B_ABSENT && s == B_ABSENT)
    c->present--;
  if ((old == B_DIRTY || old == B_INFLIGHT) &&
      !(s == B_DIRTY || s == B_INFLIGHT))
    c->dirty--;
  if (!(old == B_DIRTY || old == B_INFLIGHT) &&
      (s == B_DIRTY || s == B_INFLIGHT))
    c->dirty++;
  if (old == B_WRITTEN && s != B_WRITTEN)
    c->written--;
  if (old != B_WRITTEN && s == B_WRITTEN)
    c->written++;
  if (is_unclean (old) && !is_unclean (s)) {
    list_del (c, &c->unclean, i, true);
    b->in_unclean = false;
  }
  if (!is_unclean (old) && is_unclean (s)) {
    list_push (c, &c->unclean, i, true);
    b->in_unclean = true;
  }
  b->state = s;
  switch (s) {
  case B_CLEAN: q_put (c, i, Q_LRU); break;
  case B_DIRTY: q_put (c, i, b->failed ? Q_RETRY : Q_FIFO); break;
  default: q_remove (c, i);
  }
}

/* Drop clean blocks, least recently used first, while more than LIMIT
 * are cached.  Returns how many were dropped.
 */
static uint64_t
evict_to_locked (struct cache *c, uint64_t limit)
{
  uint32_t i, next;
  uint64_t n = 0;

  for (i = c->lru.head; i != NIL && c->present > limit; i = next) {
    struct block *b = &c->b[i];
    next = b->q.next;
    if (b->pins || b->writers || b->loading || b->busy)
      continue;
    /* Index first, then the data: see store.c.  If the index byte cannot
     * be written, the file still counts the block as cached, and after
     * a crash its punched-out data would be served as zeros: so the
     * block stays, cached and counted as the file says, and eviction
     * stops until the index can be written again.
     */
    uint8_t old = b->idx;
    if (store_set_idx (c, i, IDX_ABSENT) == -1) {
      b->idx = old;
      nbdkit_debug ("chunk-cache: not evicting block %" PRIu64 ": its "
                    "index byte could not be cleared", (uint64_t) i);
      break;
    }
    set_state (c, i, B_ABSENT);
    if (store_before_punch (c) == 0)
      store_punch (c, i);
    c->st.evictions++;
    n++;
  }
  return n;
}

/* Drop clean blocks, least recently used first, while over cache-size. */
static void
evict_locked (struct cache *c)
{
  if (c->max_present_blocks)
    evict_to_locked (c, c->max_present_blocks);
}

/* The cache file's disk is full (ENOSPC): make room by dropping a few
 * clean blocks whatever cache-size says.  Lock not held.  Returns true
 * if something was dropped, so that the write is worth trying again.
 */
static bool
make_room (struct cache *c)
{
  uint64_t n;

  pthread_mutex_lock (&cache_lock);
  n = evict_to_locked (c, c->present > 4 ? c->present - 4 : 0);
  pthread_mutex_unlock (&cache_lock);
  if (n)
    nbdkit_debug ("chunk-cache: cache disk full: dropped %" PRIu64
                  " clean blocks", n);
  return n > 0;
}

/* Wait until nobody holds the block exclusively. */
static void
wait_usable (struct cache *c, uint64_t blk)
{
  while (c->b[blk].loading || c->b[blk].busy)
    pthread_cond_wait (&cache_cond, &cache_lock);
}

/* Fetch an ABSENT block from the plugin into the cache.  Called with the
 * lock held, drops it while reading.  The block is marked loading so
 * that concurrent readers of it wait for this one read.  Returns -1 if
 * the plugin failed, -2 if the cache file could not take the block (its
 * disk is full): the block stays absent and its space is given back.
 */
int
load_block_locked (struct cache *c, nbdkit_next *next, uint64_t blk,
                   bool readahead, int *err)
{
  struct block *b = &c->b[blk];
  uint64_t len = block_len (c, blk);
  CLEANUP_FREE char *buf = NULL;
  int r;

  b->loading = true;
  pthread_mutex_unlock (&cache_lock);

  buf = malloc (len);
  if (buf == NULL) {
    *err = errno;
    r = -1;
  }
  else {
    r = next->pread (next, buf, len, blk * c->bs, 0, err);
    if (r == 0 && data_write (c, buf, len, blk * c->bs) == -1 &&
        (errno != ENOSPC || !make_room (c) ||
         data_write (c, buf, len, blk * c->bs) == -1)) {
      *err = errno;
      nbdkit_debug ("chunk-cache: caching block %" PRIu64 ": %m", blk);
      store_punch (c, blk);
      r = -2;
    }
  }

  pthread_mutex_lock (&cache_lock);
  b->loading = false;
  if (r == 0) {
    c->st.plugin_reads++;
    if (readahead)
      c->st.readahead_bytes += len;
    b->incarnation++;
    store_set_idx (c, blk, IDX_CLEAN);  /* after the data: see store.c */
    set_state (c, blk, B_CLEAN);
  }
  pthread_cond_broadcast (&cache_cond);
  return r;
}

int
cache_read (struct cache *c, nbdkit_next *next, void *buf,
            uint32_t count, uint64_t offset, int *err)
{
  while (count > 0) {
    uint64_t blk = offset / c->bs;
    uint32_t n = c->bs - offset % c->bs;
    struct block *b = &c->b[blk];
    bool hit = true;
    int r;

    if (n > count)
      n = count;
    pthread_mutex_lock (&cache_lock);
    for (;;) {
      wait_usable (c, blk);
      if (b->state != B_ABSENT || data_is_damaged (c))
        break;
      hit = false;
      r = load_block_locked (c, next, blk, false, err);
      if (r == -1) {
        pthread_mutex_unlock (&cache_lock);
        return -1;
      }
      if (r == -2)
        break;
    }
    if (b->state == B_ABSENT ||
        (b->state == B_CLEAN && data_is_damaged (c))) {
      /* The cache's disk is full, or its file was cut short: serve this
       * piece from the plugin without keeping it.  (An absent or clean
       * block has nothing newer here.)
       */
      c->st.misses++;
      pthread_mutex_unlock (&cache_lock);
      if (next->pread (next, buf, n, offset, 0, err) == -1)
        return -1;
      buf = (char *) buf + n, count -= n, offset += n;
      continue;
    }
    if (hit)
      c->st.hits++;
    else
      c->st.misses++;
    if (b->state == B_CLEAN)
      q_put (c, blk, Q_LRU);    /* most recently used */
    b->pins++;
    pthread_mutex_unlock (&cache_lock);

    r = data_read (c, buf, n, offset);
    if (r == -1)
      *err = errno;

    pthread_mutex_lock (&cache_lock);
    if (--b->pins == 0 && drain_waiters)
      pthread_cond_broadcast (&cache_cond);
    evict_locked (c);
    pthread_mutex_unlock (&cache_lock);
    if (r == -1) {
      nbdkit_error ("chunk-cache: reading the cache file: %s",
                    strerror (*err));
      return -1;
    }
    buf = (char *) buf + n, count -= n, offset += n;
  }
  return 0;
}

int
cache_prefetch (struct cache *c, nbdkit_next *next, uint32_t count,
                uint64_t offset, int *err)
{
  uint64_t blk, last = (offset + count - 1) / c->bs;

  pthread_mutex_lock (&cache_lock);
  for (blk = offset / c->bs; blk <= last; ++blk) {
    wait_usable (c, blk);
    if (c->b[blk].state == B_ABSENT) {
      c->st.misses++;
      /* -2, no room in the cache: a prefetch is only a hint. */
      if (load_block_locked (c, next, blk, false, err) == -1) {
        pthread_mutex_unlock (&cache_lock);
        return -1;
      }
      evict_locked (c);
    }
  }
  pthread_mutex_unlock (&cache_lock);
  return 0;
}

/* Queue read-ahead of blocks from BLK on, for the workers. */
void
cache_readahead (struct cache *c, uint64_t blk)
{
  unsigned k;

  pthread_mutex_lock (&cache_lock);
  for (k = 0; k < cfg.readahead && blk + k < c->nblocks; ++k) {
    struct block *b = &c->b[blk + k];
    if (b->state != B_ABSENT || b->loading || b->busy ||
        c->ra_count == sizeof c->ra / sizeof c->ra[0])
      continue;
    c->ra[(c->ra_head + c->ra_count++) % (sizeof c->ra / sizeof c->ra[0])] =
      blk + k;
    /* Wake one worker per block queued, none when all are cached: a
     * cached sequential read must not wake the pool.
     */
    pthread_cond_signal (&work_cond);
  }
  pthread_mutex_unlock (&cache_lock);
}

/* Write-through: the plugin first, then the cache copy (if any), with the
 * block held so that the two cannot be reordered by a concurrent write.
 */
static int
write_through_piece (struct cache *c, nbdkit_next *next, const void *buf,
                     uint32_t n, uint64_t offset, uint32_t flags, int *err)
{
  uint64_t blk = offset / c->bs;
  struct block *b = &c->b[blk];
  bool whole = offset % c->bs == 0 && n == block_len (c, blk);
  bool copy_failed = false;
  int r;

  /* Also wait for a write-back in flight (of dirty data left by an
   * earlier write-back run in cache-dir): it must not land on top.
   */
  pthread_mutex_lock (&cache_lock);
  for (;;) {
    wait_usable (c, blk);
    if (b->pins == 0 && b->state != B_INFLIGHT)
      break;
    drain_waiters++;
    pthread_cond_wait (&cache_cond, &cache_lock);
    drain_waiters--;
  }
  b->busy = true;
  /* A clean copy is uncounted until it matches the plugin again. */
  if (b->state == B_CLEAN)
    store_set_idx (c, blk, IDX_ABSENT);
  pthread_mutex_unlock (&cache_lock);

  r = next->pwrite (next, buf, n, offset, flags, err);
  /* Any cached copy, clean or dirty, gets the new data too.  If the
   * cache file cannot take it (its disk is full), a clean copy is just
   * dropped: the plugin has the data and the write succeeded.  A dirty
   * copy cannot be dropped: the write fails.
   */
  if (r == 0 && (b->state != B_ABSENT || whole)) {
    if (data_write (c, buf, n, offset) == -1) {
      *err = errno;
      if (b->state == B_CLEAN || b->state == B_ABSENT) {
        nbdkit_debug ("chunk-cache: caching block %" PRIu64 ": %m", blk);
        copy_failed = true;
      }
      else {
        nbdkit_error ("chunk-cache: writing the cache file: %m");
        r = -1;
      }
    }
  }

  pthread_mutex_lock (&cache_lock);
  if (copy_failed) {
    if (b->state == B_CLEAN)
      set_state (c, blk, B_ABSENT);     /* index already says absent */
    if (store_before_punch (c) == 0)
      store_punch (c, blk);
  }
  else if (r == 0 && b->state == B_ABSENT && whole) {
    b->incarnation++;
    store_set_idx (c, blk, IDX_CLEAN);
    set_state (c, blk, B_CLEAN);
  }
  else if (r == 0 && b->state == B_CLEAN)
    store_set_idx (c, blk, IDX_CLEAN);
  else if (r == -1 && b->state == B_CLEAN)
    /* Unknown what the plugin holds now: forget our copy. */
    set_state (c, blk, B_ABSENT);
  b->busy = false;
  evict_locked (c);
  pthread_cond_broadcast (&cache_cond);
  pthread_mutex_unlock (&cache_lock);
  return r;
}

/* Write-back: into the cache only; the block becomes dirty. */
static int
write_back_piece (struct cache *c, nbdkit_next *next, const void *buf,
                  uint32_t n, uint64_t offset, int *err)
{
  uint64_t blk = offset / c->bs;
  struct block *b = &c->b[blk];
  bool whole = offset % c->bs == 0 && n == block_len (c, blk);
  int r;

  pthread_mutex_lock (&cache_lock);
  for (;;) {
    wait_usable (c, blk);
    if (b->state == B_ABSENT && !whole) {
      c->st.misses++;
      if (load_block_locked (c, next, blk, false, err) < 0) {
        pthread_mutex_unlock (&cache_lock);
        nbdkit_error ("chunk-cache: cannot cache block %" PRIu64
                      " for a partial write: %s", blk, strerror (*err));
        return -1;
      }
      continue;
    }
    /* Back-pressure: a block that would add to the dirty data waits
     * while max-dirty is reached (the workers then skip the delay).
     */
    if (b->state != B_DIRTY && b->state != B_INFLIGHT &&
        c->dirty >= c->max_dirty_blocks) {
      struct timespec ts;

      pthread_cond_broadcast (&work_cond);
      /* The wait may be long (a plugin that keeps failing): give it up
       * when nbdkit shuts down or the client goes away, else nbdkit
       * would never exit.
       */
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += 200 * 1000 * 1000;
      if (ts.tv_nsec >= 1000000000)
        ts.tv_sec++, ts.tv_nsec -= 1000000000;
      if (pthread_cond_timedwait (&cache_cond, &cache_lock, &ts) ==
          ETIMEDOUT && nbdkit_nanosleep (0, 0) == -1) {
        pthread_mutex_unlock (&cache_lock);
        *err = ESHUTDOWN;
        nbdkit_error ("chunk-cache: write given up while waiting for "
                      "max-dirty: shutting down");
        return -1;
      }
      continue;
    }
    break;
  }
  if (b->state == B_ABSENT)
    b->incarnation++;
  else if (b->idx == IDX_CLEAN || b->idx == IDX_ABSENT) {
    /* A clean block is marked dirty before its data changes, so that a
     * crash in between cannot leave new data that is never written back.
     * (An absent block is marked after its data: see store.c.)  If the
     * mark cannot be written, the data must not change either.
     */
    uint8_t old = b->idx;
    if (store_set_idx (c, blk, IDX_DIRTY) == -1) {
      *err = errno;
      b->idx = old;
      pthread_mutex_unlock (&cache_lock);
      return -1;
    }
  }
  if (b->state != B_DIRTY && b->state != B_INFLIGHT) {
    b->due = now_s () + cfg.delay;
    b->failed = false;
    b->dirty_seq = 0;
    set_state (c, blk, B_DIRTY);
    pthread_cond_signal (&work_cond);   /* a worker may be idle */
  }
  b->writers++;
  pthread_mutex_unlock (&cache_lock);

  r = data_write (c, buf, n, offset);
  if (r == -1 && errno == ENOSPC && make_room (c))
    r = data_write (c, buf, n, offset);
  if (r == -1)
    *err = errno;

  pthread_mutex_lock (&cache_lock);
  if (--b->writers == 0 && drain_waiters)
    pthread_cond_broadcast (&cache_cond);
  if (r == 0) {
    uint64_t seq = ++c->wseq;
    b->gen++;
    if (b->state == B_INFLIGHT) {
      if (b->pending_seq == 0)
        b->pending_seq = seq;
    }
    else if (b->dirty_seq == 0)
      b->dirty_seq = seq;
    /* The data is cached and will be written back, but a crash would
     * forget it: not acknowledged.
     */
    if (b->idx != IDX_DIRTY && b->idx != IDX_DIRTY_SYNCED &&
        store_set_idx (c, blk, IDX_DIRTY) == -1) {
      *err = EIO;
      r = -1;
    }
  }
  else
    nbdkit_error ("chunk-cache: writing the cache file: %s",
                  strerror (*err));
  evict_locked (c);
  pthread_mutex_unlock (&cache_lock);
  return r;
}

int
cache_write (struct cache *c, nbdkit_next *next, const void *buf,
             uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  uint64_t first = offset / c->bs, last = (offset + count - 1) / c->bs;

  while (count > 0) {
    uint32_t n = c->bs - offset % c->bs;
    int r;

    if (n > count)
      n = count;
    if (cfg.mode == MODE_WRITETHROUGH)
      r = write_through_piece (c, next, buf, n, offset, flags, err);
    else
      r = write_back_piece (c, next, buf, n, offset, err);
    if (r == -1)
      return -1;
    buf = (const char *) buf + n, count -= n, offset += n;
  }
  if (cfg.mode == MODE_WRITEBACK && (flags & NBDKIT_FLAG_FUA))
    return cache_flush (c, first, last, err);
  return 0;
}

int
cache_zero_trim (struct cache *c, nbdkit_next *next, bool trim,
                 uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  uint64_t first = offset / c->bs, last = (offset + count - 1) / c->bs;
  uint64_t end = offset + count, blk;
  uint32_t down_flags = flags;
  int r;

  /* Take every block exclusively, in order (no deadlock: nobody else
   * holds more than one block).
   */
  pthread_mutex_lock (&cache_lock);
  for (blk = first; blk <= last; ++blk) {
    struct block *b = &c->b[blk];
    drain_waiters++;
    while (b->loading || b->busy || b->pins || b->writers ||
           b->state == B_INFLIGHT)
      pthread_cond_wait (&cache_cond, &cache_lock);
    drain_waiters--;
    b->busy = true;
  }
  pthread_mutex_unlock (&cache_lock);

  /* A clean copy is not counted in the index while it is being zeroed:
   * a crash before the plugin is zeroed too must not leave zeros that
   * the plugin does not have.
   */
  /* And as in eviction, if that byte cannot be cleared (or an earlier
   * clearing of a synced-dirty byte cannot be synced, see
   * store_before_punch) the file still vouches for the data: punching
   * it out would leave zeros that a restart serves as cached data.  The
   * request fails before anything is changed.
   */
  pthread_mutex_lock (&cache_lock);
  r = 0;
  for (blk = first; blk <= last && r == 0; ++blk)
    if (c->b[blk].state == B_CLEAN &&
        store_set_idx (c, blk, IDX_ABSENT) == -1) {
      c->b[blk].idx = IDX_CLEAN;        /* what the file still says */
      r = -1;
    }
  if (r == 0 && store_before_punch (c) == -1)
    r = -1;
  if (r == -1) {
    /* Count the clean copies already uncounted again (best effort: an
     * uncounted copy is merely fetched again after a restart).
     */
    for (blk = first; blk <= last; ++blk) {
      struct block *b = &c->b[blk];
      if (b->state == B_CLEAN && b->idx == IDX_ABSENT)
        store_set_idx (c, blk, IDX_CLEAN);
      b->busy = false;
    }
    pthread_cond_broadcast (&cache_cond);
    pthread_mutex_unlock (&cache_lock);
    nbdkit_error ("chunk-cache: %s: cache.index cannot be updated: "
                  "cached copies left alone", trim ? "trim" : "zero");
    *err = EIO;
    return -1;
  }
  pthread_mutex_unlock (&cache_lock);

  /* Zero the cached copies.  If one cannot be zeroed (no hole punching
   * and a full disk), the request fails before the plugin sees it: a
   * copy kept with its old data would be served, or written back over
   * the plugin's zeros.  (Clean copies are then dropped below.)
   */
  r = 0;
  for (blk = first; blk <= last && r == 0; ++blk) {
    uint64_t s = blk * c->bs, e = s + block_len (c, blk);
    if (s < offset) s = offset;
    if (e > end) e = end;
    if (c->b[blk].state != B_ABSENT &&
        fallocate (c->data_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   s, e - s) == -1) {
      /* No hole punching here: write zeros instead. */
      CLEANUP_FREE char *z = calloc (1, e - s);
      if (z == NULL || data_write (c, z, e - s, s) == -1) {
        *err = errno;
        nbdkit_error ("chunk-cache: zeroing the cache file: %m");
        r = -1;
      }
    }
  }

  /* In write-back mode FUA is done by our flush afterwards, which also
   * covers the dirty blocks that keep some of the zeros.
   */
  if (cfg.mode == MODE_WRITEBACK)
    down_flags &= ~NBDKIT_FLAG_FUA;
  if (r == 0 && trim)
    r = next->trim (next, count, offset, down_flags, err);
  else if (r == 0)
    r = next->zero (next, count, offset, down_flags, err);

  pthread_mutex_lock (&cache_lock);
  if (r == 0)
    c->below_ops++;
  for (blk = first; blk <= last; ++blk) {
    struct block *b = &c->b[blk];
    uint64_t s = blk * c->bs;
    bool whole = s >= offset && s + block_len (c, blk) <= end;
    bool dirty = b->state == B_DIRTY || b->state == B_WRITTEN;

    if (b->state != B_ABSENT) {
      bool drop;
      if (!dirty)
        /* A clean copy stays only if the plugin now holds the same
         * zeros; a wholly trimmed block is fetched again when read.
         */
        drop = whole || r == -1;
      else
        /* Dirty data wholly replaced below is gone; partly zeroed dirty
         * data (or any, if the plugin failed) keeps the zeros and is
         * written back with them.
         */
        drop = whole && r == 0;
      if (drop) {
        store_set_idx (c, blk, IDX_ABSENT);
        set_state (c, blk, B_ABSENT);
      }
      else if (!dirty)
        store_set_idx (c, blk, IDX_CLEAN);    /* same zeros as the plugin */
      else if (dirty) {
        uint64_t seq = ++c->wseq;
        b->gen++;
        if (b->state == B_WRITTEN) {
          b->due = now_s () + cfg.delay;
          b->dirty_seq = 0;
          set_state (c, blk, B_DIRTY);
        }
        if (b->dirty_seq == 0)
          b->dirty_seq = seq;
        if (b->idx != IDX_DIRTY && b->idx != IDX_DIRTY_SYNCED)
          store_set_idx (c, blk, IDX_DIRTY);
      }
    }
    b->busy = false;
  }
  pthread_cond_broadcast (&cache_cond);
  pthread_mutex_unlock (&cache_lock);
  if (r == -1)
    return -1;
  if (cfg.mode == MODE_WRITEBACK && (flags & NBDKIT_FLAG_FUA))
    return cache_flush (c, first, last, err);
  return 0;
}

bool
cache_block_dirty (struct cache *c, uint64_t blk)
{
  return is_unclean (c->b[blk].state);
}

/* ---- write-back (lock held) ---- */

static bool
eligible (struct cache *c, struct block *b, double now)
{
  if (b->writers || b->busy)
    return false;
  return now >= b->due || shutting_down ||
    (b->dirty_seq && b->dirty_seq <= c->urgent_seq) ||
    (!b->failed && c->dirty >= c->max_dirty_blocks);
}

bool
wb_pick (struct cache *c, uint64_t *blk, uint64_t *gen)
{
  double now = now_s ();
  uint32_t i;

  for (i = c->retry.head; i != NIL; i = c->b[i].q.next)
    if (!c->b[i].writers && !c->b[i].busy && now >= c->b[i].due)
      goto found;
  for (i = c->fifo.head; i != NIL; i = c->b[i].q.next)
    if (eligible (c, &c->b[i], now))
      goto found;
  return false;

 found:
  set_state (c, i, B_INFLIGHT);
  c->b[i].attempt = ++c->wb_attempts;
  c->b[i].pending_seq = 0;
  c->inflight++;
  *blk = i;
  *gen = c->b[i].gen;
  return true;
}

void
wb_done (struct cache *c, uint64_t blk, uint64_t gen, int err)
{
  struct block *b = &c->b[blk];

  c->inflight--;
  if (err == 0) {
    c->st.written_back++;
    b->failed = false;
    b->retries = 0;
    if (b->gen == gen && b->writers == 0) {
      b->dirty_seq = 0;
      b->written_epoch = c->flush_epoch;
      set_state (c, blk, B_WRITTEN);
    }
    else {
      /* Rewritten while in flight: write it again. */
      b->dirty_seq = b->pending_seq;
      b->due = now_s () + cfg.delay;
      set_state (c, blk, B_DIRTY);
    }
  }
  else {
    double backoff = 0.1 * (1u << (b->retries < 6 ? b->retries : 6));
    c->st.wb_errors++;
    c->error_events++;
    b->failed = true;
    b->retries++;
    if (b->dirty_seq == 0 ||
        (b->pending_seq && b->pending_seq < b->dirty_seq))
      b->dirty_seq = b->pending_seq;
    b->due = now_s () + (backoff < 5 ? backoff : 5);
    set_state (c, blk, B_DIRTY);
  }
  b->pending_seq = 0;
  pthread_cond_broadcast (&cache_cond);
}

/* Flush the plugin; then blocks written before it are clean. */
int
flush_below_locked (struct cache *c, int *err)
{
  uint64_t epoch = c->flush_epoch++;
  uint64_t below = c->below_ops;
  uint32_t i, next;
  int r = 0;

  if (c->can_flush_below) {
    pthread_mutex_unlock (&cache_lock);
    r = c->bg->flush (c->bg, 0, err);
    pthread_mutex_lock (&cache_lock);
  }
  if (r == 0) {
    if (below > c->below_flushed)
      c->below_flushed = below;
    for (i = c->unclean.head; i != NIL; i = next) {
      struct block *b = &c->b[i];
      next = b->u.next;
      if (b->state == B_WRITTEN && b->written_epoch <= epoch) {
        store_set_idx (c, i, IDX_CLEAN);
        set_state (c, i, B_CLEAN);
      }
    }
    evict_locked (c);
  }
  pthread_cond_broadcast (&cache_cond);
  return r;
}

static int
flush_local (struct cache *c, uint64_t first, uint64_t last, int *err)
{
  struct item { uint32_t blk, inc; };
  CLEANUP_FREE struct item *items = NULL;
  size_t n = 0, k;
  uint32_t i;

  pthread_mutex_lock (&cache_lock);
  items = malloc ((c->unclean.count + 1) * sizeof *items);
  if (items == NULL) {
    pthread_mutex_unlock (&cache_lock);
    *err = ENOMEM;
    return -1;
  }
  for (i = c->unclean.head; i != NIL; i = c->b[i].u.next)
    if (i >= first && i <= last && c->b[i].idx == IDX_DIRTY)
      items[n++] = (struct item) { i, c->b[i].incarnation };
  pthread_mutex_unlock (&cache_lock);

  if (store_sync_data (c) == -1) {
    pthread_mutex_lock (&cache_lock);
    c->local_sync_failed = true;
    pthread_mutex_unlock (&cache_lock);
    *err = EIO;
    return -1;
  }
  pthread_mutex_lock (&cache_lock);
  for (k = 0; k < n; ++k) {
    struct block *b = &c->b[items[k].blk];
    if (b->incarnation == items[k].inc && b->idx == IDX_DIRTY &&
        is_unclean (b->state))
      store_set_idx (c, items[k].blk, IDX_DIRTY_SYNCED);
  }
  /* An index byte that failed to reach the file (now or since the last
   * flush, e.g. the cache's disk was full) would make recovery drop or
   * misjudge its block: the flush fails unless the whole index can be
   * written again.
   */
  if (store_rewrite_index (c) == -1) {
    pthread_mutex_unlock (&cache_lock);
    *err = EIO;
    return -1;
  }
  /* Zeros and trims went straight to the plugin: only a plugin flush
   * makes them safe.
   */
  if (c->below_ops > c->below_flushed && flush_below_locked (c, err) == -1) {
    pthread_mutex_unlock (&cache_lock);
    nbdkit_error ("chunk-cache: flush: the plugin's flush failed");
    return -1;
  }
  pthread_mutex_unlock (&cache_lock);
  if (store_sync_index (c) == -1) {
    pthread_mutex_lock (&cache_lock);
    c->local_sync_failed = true;
    pthread_mutex_unlock (&cache_lock);
    *err = EIO;
    return -1;
  }
  return 0;
}

/* Wait until every write to blocks FIRST..LAST acknowledged before now is
 * in the plugin, then flush the plugin.
 */
static int
flush_remote (struct cache *c, uint64_t first, uint64_t last, int *err)
{
  uint64_t S, E0, A0;
  uint32_t i;
  double now = now_s ();
  int r;

  pthread_mutex_lock (&cache_lock);
  S = c->wseq;
  E0 = c->error_events;
  A0 = c->wb_attempts;
  if (S > c->urgent_seq)
    c->urgent_seq = S;
  /* Blocks waiting to retry after an error get one immediate retry. */
  for (i = c->retry.head; i != NIL; i = c->b[i].q.next)
    if (i >= first && i <= last)
      c->b[i].due = now;
  pthread_cond_broadcast (&work_cond);

  for (;;) {
    bool pending = false, failed = false;

    if (data_is_damaged (c)) {
      pthread_mutex_unlock (&cache_lock);
      nbdkit_error ("chunk-cache: flush: the cache file was cut short "
                    "while in use: its dirty blocks cannot be written back");
      *err = EIO;
      return -1;
    }
    /* Whether a pending block failed only matters after a failure since
     * this flush began; until then the first pending block ends the scan
     * (the oldest dirty blocks are at the head of the list).
     */
    bool errors_since = c->error_events != E0;
    for (i = c->unclean.head; i != NIL; i = c->b[i].u.next) {
      struct block *b = &c->b[i];
      if (i < first || i > last)
        continue;
      if ((b->state == B_DIRTY || b->state == B_INFLIGHT) &&
          ((b->dirty_seq && b->dirty_seq <= S) ||
           (b->pending_seq && b->pending_seq <= S))) {
        pending = true;
        /* Only an attempt started after this flush began decides: one
         * already in flight may fail from trouble that has since passed,
         * and the block is then retried (at once, see above, or after
         * its back-off) before the flush gives up on it.
         */
        if (b->failed && b->attempt > A0)
          failed = true;
        if (!errors_since || failed)
          break;
      }
    }
    if (!pending)
      break;
    if (failed && c->error_events != E0) {
      pthread_mutex_unlock (&cache_lock);
      nbdkit_error ("chunk-cache: flush: writing dirty blocks to the "
                    "plugin failed; they stay dirty and are retried");
      *err = EIO;
      return -1;
    }
    pthread_cond_wait (&cache_cond, &cache_lock);
  }
  r = flush_below_locked (c, err);
  pthread_mutex_unlock (&cache_lock);
  if (r == -1)
    nbdkit_error ("chunk-cache: flush: the plugin's flush failed");
  return r;
}

int
cache_flush (struct cache *c, uint64_t first, uint64_t last, int *err)
{
  bool local;

  /* Neither a local sync (it would vouch for the lost bytes after a
   * restart) nor a write-back can make a cut cache file durable.
   */
  if (data_is_damaged (c)) {
    nbdkit_error ("chunk-cache: flush: the cache file was cut short "
                  "while in use: its dirty blocks cannot be written back");
    *err = EIO;
    return -1;
  }

  pthread_mutex_lock (&cache_lock);
  local = cfg.durability == DUR_LOCAL && !c->local_sync_failed;
  pthread_mutex_unlock (&cache_lock);
  if (local)
    return flush_local (c, first, last, err);
  if (cfg.durability == DUR_LOCAL)
    nbdkit_debug ("chunk-cache: an fdatasync in cache-dir failed before: "
                  "this flush waits for the plugin");
  return flush_remote (c, first, last, err);
}

/* ---- creation ---- */

static uint32_t
choose_block_size (nbdkit_next *bg)
{
  uint32_t minimum = 0, preferred = 0, maximum = 0;

  uint32_t bs = 1024 * 1024;

  if (bg->block_size (bg, &minimum, &preferred, &maximum) == -1)
    minimum = preferred = maximum = 0;
  if (cfg.block_size)
    return cfg.block_size;
  if (preferred >= 65536 && preferred <= 64 * 1024 * 1024 &&
      (preferred & (preferred - 1)) == 0)
    bs = preferred;
  /* Whole blocks go to the plugin in one request: respect its maximum. */
  while (maximum && bs > maximum && bs > 4096)
    bs /= 2;
  return bs;
}

static struct cache *
cache_create (nbdkit_backend *backend, const char *name, bool readonly,
              uint32_t want_bs, const char *client_desc)
{
  struct cache *c;
  int64_t size;
  uint64_t i;

  c = calloc (1, sizeof *c);
  if (c == NULL || (c->name = strdup (name)) == NULL) {
    nbdkit_error ("calloc: %m");
    free (c);
    return NULL;
  }
  c->data_fd = c->index_fd = c->dir_fd = c->lock_fd = -1;
  c->readonly = readonly;
  c->bg = nbdkit_next_context_open (backend, readonly, name, 1);
  if (c->bg == NULL) {
    nbdkit_error ("chunk-cache: cannot open the plugin for export '%s' "
                  "outside a connection (nbdkit gives a plugin no export "
                  "name there: serve the volume as the plugin's default "
                  "export, e.g. export=NAME)", name);
    goto fail;
  }
  if (c->bg->prepare (c->bg) == -1)
    goto fail;
  {
    const char *desc = c->bg->export_description (c->bg);
    if (desc && (c->desc = strdup (desc)) == NULL) {
      nbdkit_error ("strdup: %m");
      goto fail;
    }
  }
  if (client_desc && c->desc && strcmp (client_desc, c->desc) != 0) {
    nbdkit_error ("chunk-cache: export '%s': the client has \"%s\" but "
                  "the cache's write-back context has \"%s\": refused "
                  "(nbdkit gives a plugin no export name outside a "
                  "connection: serve the volume as the plugin's default "
                  "export, e.g. export=NAME)", name, client_desc, c->desc);
    goto fail;
  }
  size = c->bg->get_size (c->bg);
  if (size <= 0) {
    if (size == 0)
      nbdkit_error ("chunk-cache: export '%s' is empty", name);
    goto fail;
  }
  c->size = size;
  c->bs = want_bs ? want_bs : choose_block_size (c->bg);
  c->nblocks = (c->size + c->bs - 1) / c->bs;
  if (c->nblocks >= NIL) {
    nbdkit_error ("chunk-cache: export '%s' has too many blocks; use a "
                  "larger cache-block-size", name);
    goto fail;
  }
  c->can_write_below = !readonly && c->bg->can_write (c->bg) == 1;
  c->can_flush_below = c->bg->can_flush (c->bg) == 1;
  c->b = calloc (c->nblocks, sizeof *c->b);
  if (c->b == NULL) {
    nbdkit_error ("calloc: %m");
    goto fail;
  }
  for (i = 0; i < c->nblocks; ++i)
    c->b[i].q.prev = c->b[i].q.next = c->b[i].u.prev = c->b[i].u.next = NIL;
  list_init (&c->lru);
  list_init (&c->fifo);
  list_init (&c->retry);
  list_init (&c->unclean);
  c->max_present_blocks = cfg.cache_size ? cfg.cache_size / c->bs : 0;
  if (cfg.cache_size && c->max_present_blocks < 2)
    c->max_present_blocks = 2;
  c->max_dirty_blocks = cfg.max_dirty / c->bs;
  if (c->max_dirty_blocks < 1)
    c->max_dirty_blocks = 1;

  if (store_open (c) == -1)
    goto fail;
  /* Put the blocks the index brought back in their lists; dirty ones are
   * written back as soon as the workers run.
   */
  for (i = 0; i < c->nblocks; ++i) {
    uint8_t s = c->b[i].state;
    if (s != B_ABSENT) {
      c->b[i].state = B_ABSENT;
      if (s == B_DIRTY) {
        c->b[i].due = 0;
        c->b[i].dirty_seq = ++c->wseq;
      }
      set_state (c, i, s);
    }
  }
  if (c->dirty) {
    if (!c->can_write_below) {
      nbdkit_error ("cache-dir=%s has %" PRIu64 " dirty blocks but the "
                    "plugin is read-only: cannot write them back", cfg.dir,
                    c->dirty);
      goto fail;
    }
    nbdkit_debug ("chunk-cache: %s: recovering %" PRIu64 " dirty blocks",
                  name, c->dirty);
  }
  c->next_cache = caches;
  caches = c;
  pthread_cond_broadcast (&work_cond);
  return c;

 fail:
  cache_free (c);
  return NULL;
}

void
cache_free (struct cache *c)
{
  if (c->bg) {
    c->bg->finalize (c->bg);
    nbdkit_next_context_close (c->bg);
    c->bg = NULL;
  }
  store_close (c, false);
  free (c->b);
  free (c->desc);
  free (c->name);
  free (c);
}

/* The cache of export NAME, created on first use.  With cache-dir there
 * is only one, and it belongs to one export.
 */
struct cache *
cache_get (nbdkit_backend *backend, const char *name, bool readonly,
           uint32_t want_bs, const char *client_desc)
{
  struct cache *c;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&cache_lock);
  for (c = caches; c; c = c->next_cache)
    if (strcmp (c->name, name) == 0)
      return c;
  if (cfg.dir && caches) {
    nbdkit_error ("cache-dir=%s holds the cache of export '%s': export "
                  "'%s' refused (use one nbdkit per cached export)",
                  cfg.dir, caches->name, name);
    errno = EINVAL;
    return NULL;
  }
  return cache_create (backend, name, readonly, want_bs, client_desc);
}
