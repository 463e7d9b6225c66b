/* shardkit: chunk-cache filter, block states and lists.
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

#include "cleanup.h"
#include "state.h"
#include "store.h"

pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t cache_cond = PTHREAD_COND_INITIALIZER;
pthread_cond_t work_cond = PTHREAD_COND_INITIALIZER;
bool shutting_down;
unsigned drain_waiters;

double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* Intrusive lists through struct link. */

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

void
q_put (struct cache *c, uint32_t i, uint8_t which)
{
  q_remove (c, i);
  if (which != Q_NONE) {
    list_push (c, qlist_of (c, which), i, false);
    c->b[i].qwhich = which;
  }
}

bool
is_unclean (uint8_t s)
{
  return s == B_DIRTY || s == B_INFLIGHT || s == B_WRITTEN;
}

/* Move a block to a new state, keeping lists and counters right. */
void
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
uint64_t
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
void
evict_locked (struct cache *c)
{
  if (c->max_present_blocks)
    evict_to_locked (c, c->max_present_blocks);
}

/* The cache file's disk is full (ENOSPC): make room by dropping a few
 * clean blocks whatever cache-size says.  Lock not held.  Returns true
 * if something was dropped, so that the write is worth trying again.
 */
bool
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
void
wait_usable (struct cache *c, uint64_t blk)
{
  while (c->b[blk].loading || c->b[blk].busy)
    pthread_cond_wait (&cache_cond, &cache_lock);
}


bool
cache_block_dirty (struct cache *c, uint64_t blk)
{
  return is_unclean (c->b[blk].state);
}

