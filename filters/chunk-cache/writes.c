/* shardkit: chunk-cache filter, writes, zero and trim.
 * GPL-3.0-or-later.
 *
 * See writes.h, and state.c for the rules that keep data safe.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "writes.h"
#include "reads.h"
#include "writeback.h"
#include "state.h"
#include "store.h"

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
    b->dirty_since = 0;
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
    wb_touch (c, blk, now_s ());
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
          b->dirty_seq = 0;
          b->dirty_since = 0;
          set_state (c, blk, B_DIRTY);
        }
        if (b->dirty_seq == 0)
          b->dirty_seq = seq;
        wb_touch (c, blk, now_s ());
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

