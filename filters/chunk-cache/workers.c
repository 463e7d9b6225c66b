/* shardkit: chunk-cache filter, the worker pool and statistics.
 * GPL-3.0-or-later.
 *
 * writeback-threads= workers, started in .after_fork (threads do not
 * survive nbdkit's fork into the background), serve every cache: they
 * fetch read-ahead blocks, write dirty blocks to the plugin through the
 * cache's write-back context (exports.c), and flush the plugin when
 * blocks they wrote are waiting for it.  A stats thread writes stats-file=.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "workers.h"
#include "exports.h"
#include "reads.h"
#include "writeback.h"
#include "state.h"
#include "store.h"

static pthread_t *threads;
static unsigned nthreads;
static pthread_t stats_thread;
static bool stats_running;
static bool stop;
/* Not work_cond: a signal meant for an idle worker must not be taken by
 * the stats thread.
 */
static pthread_cond_t stats_cond = PTHREAD_COND_INITIALIZER;

/* One unit of work from cache C, or false.  Lock held (dropped while
 * the work is done).
 */
static bool
do_one (struct cache *c, char **buf)
{
  uint64_t blk, gen;
  nbdkit_next *ctx;
  int err = 0;

  if (!wb_ctx_any (c))
    return false;

  /* Read-ahead first: a reader may be about to need it. */
  while (c->ra_count) {
    blk = c->ra[c->ra_head];
    c->ra_head = (c->ra_head + 1) % (sizeof c->ra / sizeof c->ra[0]);
    c->ra_count--;
    if (c->b[blk].state == B_ABSENT && !c->b[blk].loading &&
        !c->b[blk].busy) {
      ctx = wb_ctx_get (c);
      load_block_locked (c, ctx, blk, true, &err);
      wb_ctx_put (c, ctx);
      return true;
    }
  }

  if (c->can_write_below && !data_is_damaged (c) &&
      wb_pick (c, &blk, &gen)) {
    uint64_t len = block_len (c, blk);

    ctx = wb_ctx_get (c);
    pthread_mutex_unlock (&cache_lock);
    if (*buf == NULL && (*buf = malloc (c->bs)) == NULL)
      err = ENOMEM;
    else {
      /* The tail is looked at after the read: a cut before or during it
       * leaves holes that read as zeros, never to be written back.
       */
      if (data_read (c, *buf, len, blk * c->bs) == -1 ||
          data_check (c, "its tail was gone after a write-back read") == -1)
        err = errno;
      /* A layer below may set *err and still succeed (a retry filter
       * whose later attempt worked): read the errno only on failure.
       */
      if (err == 0) {
        int perr = 0;

        if (ctx->pwrite (ctx, *buf, len, blk * c->bs, 0, &perr) == -1)
          err = perr ? perr : EIO;
      }
    }
    if (err)
      nbdkit_debug ("chunk-cache: write-back of block %" PRIu64
                    " failed: %s (will retry)", blk, strerror (err));
    pthread_mutex_lock (&cache_lock);
    wb_ctx_put (c, ctx);
    wb_done (c, blk, gen, err);
    return true;
  }

  /* Written blocks become clean (and evictable) after a plugin flush:
   * do one when there is nothing else, or when many are waiting.
   */
  if (c->written && !c->flushing &&
      ((c->fifo.count == 0 && c->inflight == 0) ||
       c->written >= c->max_dirty_blocks / 2 + 1)) {
    int r;

    c->flushing = true;
    /* Success is the return value: *err may be set by a call that
     * succeeded in the end.
     */
    r = flush_below_locked (c, &err);
    if (r == -1)
      nbdkit_debug ("chunk-cache: background flush failed: %s",
                    strerror (err));
    c->flushing = false;
    return r == 0;
  }
  return false;
}

static void *
worker (void *arg)
{
  CLEANUP_FREE char *buf = NULL;
  struct cache *c;

  pthread_mutex_lock (&cache_lock);
  while (!stop) {
    bool did = false;
    for (c = caches; c && !did; c = c->next_cache)
      did = do_one (c, &buf);
    if (!did) {
      /* Poll often while something may become due; otherwise sleep
       * until a writer or reader signals new work.
       */
      struct timespec ts;
      long ms = 500;
      for (c = caches; c; c = c->next_cache)
        if (c->dirty || c->written || c->ra_count)
          ms = 20;
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += ms * 1000 * 1000;
      if (ts.tv_nsec >= 1000000000)
        ts.tv_sec++, ts.tv_nsec -= 1000000000;
      pthread_cond_timedwait (&work_cond, &cache_lock, &ts);
    }
  }
  pthread_mutex_unlock (&cache_lock);
  return NULL;
}

/* Write stats-file= atomically (a reader never sees half a file). */
void
stats_write (void)
{
  CLEANUP_FREE char *tmp = NULL;
  struct cache *c;
  FILE *fp;
  int fd;

  if (cfg.stats_file == NULL)
    return;
  if (asprintf (&tmp, "%s.tmp", cfg.stats_file) == -1)
    return;
  /* The temporary name may have been planted as a link to some other
   * file: remove whatever is there (a link, never its target) and
   * create the file afresh; O_EXCL never follows a link.
   */
  if (unlink (tmp) == -1 && errno != ENOENT) {
    nbdkit_debug ("chunk-cache: stats-file: removing %s: %m", tmp);
    return;
  }
  fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  fp = fd >= 0 ? fdopen (fd, "w") : NULL;
  if (fp == NULL) {
    nbdkit_debug ("chunk-cache: stats-file: %s: %m", tmp);
    if (fd >= 0)
      close (fd);
    return;
  }
  pthread_mutex_lock (&cache_lock);
  for (c = caches; c; c = c->next_cache)
    fprintf (fp,
             "export=%s\nblock-size=%" PRIu32 "\nhits=%" PRIu64 "\n"
             "misses=%" PRIu64 "\nplugin-reads=%" PRIu64 "\n"
             "readahead-bytes=%" PRIu64 "\ncached-blocks=%" PRIu64 "\n"
             "dirty-blocks=%" PRIu64 "\nunflushed-blocks=%" PRIu64 "\n"
             "written-back=%" PRIu64 "\nwriteback-errors=%" PRIu64 "\n"
             "evictions=%" PRIu64 "\n\n",
             c->name, c->bs, c->st.hits, c->st.misses, c->st.plugin_reads,
             c->st.readahead_bytes, c->present, c->dirty, c->written,
             c->st.written_back, c->st.wb_errors, c->st.evictions);
  pthread_mutex_unlock (&cache_lock);
  if (fclose (fp) == 0)
    rename (tmp, cfg.stats_file);
}

static void
stats_debug (void)
{
  struct cache *c;

  pthread_mutex_lock (&cache_lock);
  for (c = caches; c; c = c->next_cache)
    nbdkit_debug ("chunk-cache: %s: hits %" PRIu64 " misses %" PRIu64
                  " readahead-bytes %" PRIu64 " dirty %" PRIu64
                  " written-back %" PRIu64 " writeback-errors %" PRIu64
                  " evictions %" PRIu64,
                  c->name, c->st.hits, c->st.misses, c->st.readahead_bytes,
                  c->dirty + c->written, c->st.written_back, c->st.wb_errors,
                  c->st.evictions);
  pthread_mutex_unlock (&cache_lock);
}

static void *
stats_loop (void *arg)
{
  double next_write = now_s () + cfg.stats_interval;

  pthread_mutex_lock (&cache_lock);
  while (!stop) {
    struct timespec ts;
    if (now_s () >= next_write) {
      pthread_mutex_unlock (&cache_lock);
      stats_write ();
      pthread_mutex_lock (&cache_lock);
      next_write = now_s () + cfg.stats_interval;
    }
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000)
      ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait (&stats_cond, &cache_lock, &ts);
  }
  pthread_mutex_unlock (&cache_lock);
  return NULL;
}

int
workers_start (void)
{
  unsigned i;
  int err;

  threads = calloc (cfg.threads, sizeof *threads);
  if (threads == NULL) {
    nbdkit_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < cfg.threads; ++i) {
    err = pthread_create (&threads[i], NULL, worker, NULL);
    if (err) {
      errno = err;
      nbdkit_error ("chunk-cache: starting a worker: %m");
      return -1;
    }
    nthreads++;
  }
  if (cfg.stats_file) {
    err = pthread_create (&stats_thread, NULL, stats_loop, NULL);
    if (err) {
      errno = err;
      nbdkit_error ("chunk-cache: starting the stats thread: %m");
      return -1;
    }
    stats_running = true;
  }
  return 0;
}

/* On a clean exit: write back everything dirty (bounded by
 * shutdown-timeout=), logging progress.
 */
void
drain_all (void)
{
  double start = now_s (), last_log = start;
  struct cache *c;
  uint64_t left;
  int err;

  pthread_mutex_lock (&cache_lock);
  shutting_down = true;
  pthread_cond_broadcast (&work_cond);
  for (;;) {
    uint64_t stuck = 0;
    uint32_t i;
    left = 0;
    for (c = caches; c; c = c->next_cache)
      if (wb_ctx_any (c) && c->can_write_below && !data_is_damaged (c)) {
        left += c->dirty + c->written;
        for (i = c->retry.head; i != NIL; i = c->b[i].q.next)
          if (c->b[i].retries >= 4)
            stuck++;
      }
    if (left == 0 || nthreads == 0)
      break;
    /* Everything left keeps failing (some layers below refuse to work
     * once nbdkit is shutting down): do not wait for the timeout.
     */
    if (stuck == left) {
      nbdkit_error ("chunk-cache: shutdown: %" PRIu64 " blocks keep failing "
                    "to write back%s", left,
                    cfg.dir ? "; they stay dirty in cache-dir and are "
                    "written back at the next start" : " and are LOST "
                    "(no cache-dir)");
      break;
    }
    if (now_s () - start > cfg.shutdown_timeout) {
      nbdkit_error ("chunk-cache: shutdown: %" PRIu64 " blocks could not be "
                    "written back in %g s%s", left, cfg.shutdown_timeout,
                    cfg.dir ? "; they stay dirty in cache-dir and are "
                    "written back at the next start" : " and are LOST "
                    "(no cache-dir)");
      break;
    }
    if (now_s () - last_log >= 1) {
      nbdkit_debug ("chunk-cache: shutdown: %" PRIu64 " dirty blocks left "
                    "to write back", left);
      last_log = now_s ();
    }
    /* Only written blocks left: flush the plugin now. */
    for (c = caches; c; c = c->next_cache)
      if (wb_ctx_any (c) && c->dirty == 0 && c->written &&
          !c->flushing) {
        c->flushing = true;
        flush_below_locked (c, &err);
        c->flushing = false;
      }
    {
      struct timespec ts;
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += 100 * 1000 * 1000;
      if (ts.tv_nsec >= 1000000000)
        ts.tv_sec++, ts.tv_nsec -= 1000000000;
      pthread_cond_timedwait (&cache_cond, &cache_lock, &ts);
    }
  }
  pthread_mutex_unlock (&cache_lock);
  nbdkit_debug ("chunk-cache: shutdown: write-back finished in %.1f s "
                "(%" PRIu64 " blocks left)", now_s () - start, left);
  stats_debug ();
}

void
workers_stop (void)
{
  unsigned i;

  pthread_mutex_lock (&cache_lock);
  stop = true;
  pthread_cond_broadcast (&work_cond);
  pthread_cond_broadcast (&stats_cond);
  pthread_cond_broadcast (&cache_cond);
  pthread_mutex_unlock (&cache_lock);
  for (i = 0; i < nthreads; ++i)
    pthread_join (threads[i], NULL);
  nthreads = 0;
  free (threads);
  threads = NULL;
  if (stats_running) {
    pthread_join (stats_thread, NULL);
    stats_running = false;
  }
  stats_write ();
}
