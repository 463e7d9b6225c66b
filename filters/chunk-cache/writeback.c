/* shardkit: chunk-cache filter, write-back bookkeeping and flush.
 * GPL-3.0-or-later.
 *
 * See writeback.h, and state.c for the rules that keep data safe.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backoff.h"
#include "cleanup.h"
#include "duration.h"
#include "writeback.h"
#include "exports.h"
#include "state.h"
#include "store.h"

/* A block whose write-back failed is tried again after 100 ms, doubling
 * up to 5 s: no jitter, the workers are few and local.
 */
static const struct backoff writeback_backoff = {
  .first = 100 * NS_PER_MS, .max = 5 * NS_PER_S, .jitter = BACKOFF_NO_JITTER,
};

/* A write to block BLK completed at NOW: when may its write-back start?
 * Not before the block has been left alone for writeback-delay, so that
 * a block written again and again is written back once, not after every
 * delay (each time the whole block, for a few KiB of change); but no
 * later than writeback-max-age after the oldest write the plugin does
 * not have yet, so that a block kept busy is never held back for long.
 * A block waiting to retry after an error keeps its back-off.
 */
void
wb_touch (struct cache *c, uint64_t blk, double now)
{
  struct block *b = &c->b[blk];
  double latest;

  if (b->state == B_INFLIGHT) {
    if (b->pending_since == 0)
      b->pending_since = now;
    return;
  }
  if (b->state != B_DIRTY || b->failed)
    return;
  if (b->dirty_since == 0)
    b->dirty_since = now;
  latest = b->dirty_since + cfg.max_age;
  b->due = now + cfg.delay < latest ? now + cfg.delay : latest;
}

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
  c->b[i].pending_since = 0;
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
      b->dirty_since = 0;
      b->written_epoch = c->flush_epoch;
      set_state (c, blk, B_WRITTEN);
    }
    else {
      /* Rewritten while in flight: write it again. */
      b->dirty_seq = b->pending_seq;
      b->dirty_since = b->pending_since;
      set_state (c, blk, B_DIRTY);
      wb_touch (c, blk, now_s ());
    }
  }
  else {
    double backoff = (double) backoff_delay (&writeback_backoff,
                                             b->retries + 1, 0) / NS_PER_S;
    c->st.wb_errors++;
    c->error_events++;
    b->failed = true;
    b->retries++;
    if (b->dirty_seq == 0 ||
        (b->pending_seq && b->pending_seq < b->dirty_seq))
      b->dirty_seq = b->pending_seq;
    b->due = now_s () + backoff;
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
    nbdkit_next *ctx = wb_ctx_get (c);

    if (ctx == NULL) {
      /* No connection to an export other than the default one: its
       * written blocks wait for the next connection.
       */
      *err = EIO;
      r = -1;
    }
    else {
      pthread_mutex_unlock (&cache_lock);
      r = ctx->flush (ctx, 0, err);
      pthread_mutex_lock (&cache_lock);
      wb_ctx_put (c, ctx);
    }
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
  if (data_check (c, "its tail was gone at a flush") == -1) {
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

