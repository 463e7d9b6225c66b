/* shardkit: chunk-cache filter, reads.
 * GPL-3.0-or-later.
 *
 * See reads.h.
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
#include "reads.h"
#include "state.h"
#include "store.h"

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

