/* shardkit: nbdkit chunk-cache filter.
 * GPL-3.0-or-later.
 *
 * A persistent local cache in front of a slow plugin, with parallel
 * background write-back and read-ahead (see nbdkit-chunk-cache-filter(1)).
 * This file holds the parameters and the nbdkit callbacks, the top of
 * the layers listed in cache.h.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "duration.h"
#include "params.h"
#include "exports.h"
#include "reads.h"
#include "writes.h"
#include "writeback.h"
#include "workers.h"
#include "state.h"
#include "store.h"

struct cache_config cfg = {
  .mode = MODE_WRITEBACK,
  .durability = DUR_REMOTE,
  .threads = 8,
  .delay = 1.0,
  .max_age = 30.0,
  .readahead = 4,
  .stats_interval = 1.0,
  .shutdown_timeout = 300,
};
static bool max_dirty_set;
static char *dir_real;

/* A duration parameter (100ms, 2s, 1.5, ...: common/duration.h) in
 * seconds, at most a day.
 */
static int
parse_seconds (const char *key, const char *value, double *out)
{
  uint64_t ns;

  if (param_duration (key, value, &ns) == -1)
    return -1;
  *out = (double) ns / NS_PER_S;
  return 0;
}

static int
chunk_cache_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                    const char *key, const char *value)
{
  int64_t r;

  if (strcmp (key, "cache-dir") == 0) {
    free (dir_real);
    dir_real = nbdkit_realpath (value);
    if (dir_real == NULL)
      return -1;
    cfg.dir = dir_real;
  }
  else if (strcmp (key, "cache-block-size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    if (r < 4096 || r > 64 * 1024 * 1024 || (r & (r - 1)) != 0) {
      nbdkit_error ("cache-block-size='%s': must be a power of two from "
                    "4K to 64M", value);
      return -1;
    }
    cfg.block_size = r;
  }
  else if (strcmp (key, "cache-size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    cfg.cache_size = r;
  }
  else if (strcmp (key, "max-dirty") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    if (r == 0) {
      nbdkit_error ("max-dirty must be greater than 0");
      return -1;
    }
    cfg.max_dirty = r;
    max_dirty_set = true;
  }
  else if (strcmp (key, "cache-mode") == 0) {
    if (strcmp (value, "writeback") == 0)
      cfg.mode = MODE_WRITEBACK;
    else if (strcmp (value, "writethrough") == 0)
      cfg.mode = MODE_WRITETHROUGH;
    else if (strcmp (value, "readonly") == 0)
      cfg.mode = MODE_READONLY;
    else {
      nbdkit_error ("cache-mode='%s': expected writeback, writethrough "
                    "or readonly", value);
      return -1;
    }
  }
  else if (strcmp (key, "durability") == 0) {
    if (strcmp (value, "remote") == 0)
      cfg.durability = DUR_REMOTE;
    else if (strcmp (value, "local") == 0)
      cfg.durability = DUR_LOCAL;
    else {
      nbdkit_error ("durability='%s': expected remote or local", value);
      return -1;
    }
  }
  else if (strcmp (key, "writeback-threads") == 0) {
    if (nbdkit_parse_unsigned (key, value, &cfg.threads) == -1)
      return -1;
    if (cfg.threads < 1 || cfg.threads > 256) {
      nbdkit_error ("writeback-threads must be from 1 to 256");
      return -1;
    }
  }
  else if (strcmp (key, "writeback-delay") == 0)
    return parse_seconds (key, value, &cfg.delay);
  else if (strcmp (key, "writeback-max-age") == 0) {
    if (parse_seconds (key, value, &cfg.max_age) == -1)
      return -1;
    if (cfg.max_age <= 0) {
      nbdkit_error ("writeback-max-age must be greater than 0");
      return -1;
    }
  }
  else if (strcmp (key, "readahead") == 0) {
    if (nbdkit_parse_unsigned (key, value, &cfg.readahead) == -1)
      return -1;
    if (cfg.readahead > 64) {
      nbdkit_error ("readahead must be at most 64 blocks");
      return -1;
    }
  }
  else if (strcmp (key, "stats-file") == 0)
    cfg.stats_file = value;
  else if (strcmp (key, "stats-interval") == 0) {
    if (parse_seconds (key, value, &cfg.stats_interval) == -1)
      return -1;
    if (cfg.stats_interval < 0.01)
      cfg.stats_interval = 0.01;
  }
  else if (strcmp (key, "shutdown-timeout") == 0)
    return parse_seconds (key, value, &cfg.shutdown_timeout);
  else
    return next (nxdata, key, value);
  return 0;
}

static int
chunk_cache_config_complete (nbdkit_next_config_complete *next,
                             nbdkit_backend *nxdata)
{
  if (cfg.durability == DUR_LOCAL && cfg.dir == NULL) {
    nbdkit_error ("durability=local needs cache-dir=<DIR>: a temporary "
                  "file does not survive a crash");
    return -1;
  }
  if (cfg.durability == DUR_LOCAL && cfg.mode != MODE_WRITEBACK) {
    nbdkit_error ("durability=local only applies to cache-mode=writeback");
    return -1;
  }
  /* A link or FIFO planted in cache-dir: refused now, with one clear
   * error, rather than when the first client opens the cache.
   */
  if (cfg.dir && store_check_dir (cfg.dir) == -1)
    return -1;
  if (!max_dirty_set)
    cfg.max_dirty = cfg.cache_size ? cfg.cache_size / 2 :
      (uint64_t) 1024 * 1024 * 1024;
  if (cfg.cache_size && cfg.max_dirty > cfg.cache_size) {
    nbdkit_error ("max-dirty must not be larger than cache-size (dirty "
                  "blocks cannot be evicted)");
    return -1;
  }
  return next (nxdata);
}

#define chunk_cache_config_help \
  "cache-dir=<DIR>          Keep the cache (and dirty data) in DIR.\n" \
  "cache-size=<SIZE>        Bound the cache; clean blocks evicted LRU.\n" \
  "cache-block-size=<SIZE>  Cache block size (default: plugin's, else 1M).\n" \
  "cache-mode=writeback|writethrough|readonly\n" \
  "durability=remote|local  What a flush waits for (default remote).\n" \
  "writeback-threads=<N>    Parallel write-back workers (default 8).\n" \
  "writeback-delay=<SECS>   Write back a block idle this long (default 1).\n" \
  "writeback-max-age=<SECS> ...or dirty this long, if busy (default 30).\n" \
  "max-dirty=<SIZE>         Writers wait when this much is dirty.\n" \
  "readahead=<N>            Blocks read ahead on sequential reads (4).\n" \
  "stats-file=<FILE>        Write statistics here.\n" \
  "stats-interval=<SECS>    How often to write them (default 1).\n" \
  "shutdown-timeout=<SECS>  Bound on write-back at exit (default 300)."

static int
chunk_cache_thread_model (void)
{
  return NBDKIT_THREAD_MODEL_PARALLEL;
}

static int
chunk_cache_get_ready (int thread_model)
{
  /* The workers call the plugin from their own threads, outside
   * nbdkit's request locks: only safe for a parallel plugin.
   */
  if (thread_model < NBDKIT_THREAD_MODEL_PARALLEL) {
    nbdkit_error ("chunk-cache needs a plugin (and filters) with the "
                  "parallel thread model");
    return -1;
  }
  return 0;
}

static int
chunk_cache_after_fork (nbdkit_backend *backend)
{
  CLEANUP_FREE char *name = NULL;
  uint64_t size;
  uint32_t bs;
  int r;

  if (workers_start () == -1)
    return -1;
  /* A cache-dir that already holds the default export's cache: open it
   * now, check it against the plugin, and start writing back what a
   * crash left dirty without waiting for a client.  (Other exports'
   * caches, in cache-dir/exports, can only be written back through a
   * connection to them: see exports.c.)
   */
  if (cfg.dir) {
    r = store_read_meta_name (cfg.dir, &name, &size, &bs);
    if (r == -1)
      return -1;
    if (r == 1) {
      if (cfg.block_size && cfg.block_size != bs) {
        nbdkit_error ("cache-dir=%s was created with cache-block-size=%"
                      PRIu32 ", not %" PRIu32 ": refusing it",
                      cfg.dir, bs, cfg.block_size);
        return -1;
      }
      if (cache_get (backend, name, cfg.mode == MODE_READONLY, bs,
                     NULL) == NULL)
        return -1;
    }
  }
  return 0;
}

static void
chunk_cache_cleanup (nbdkit_backend *backend)
{
  struct cache *c;

  drain_all ();
  workers_stop ();
  /* The background contexts are closed here, while the plugin is still
   * loaded; the files are synced and marked clean.
   */
  while ((c = caches) != NULL) {
    caches = c->next_cache;
    if (c->bg) {
      c->bg->finalize (c->bg);
      nbdkit_next_context_close (c->bg);
      c->bg = NULL;
    }
    store_close (c, true);
    cache_free (c);
  }
}

static void
chunk_cache_unload (void)
{
  free (dir_real);
}

struct handle {
  nbdkit_backend *backend;
  char *name;
  bool readonly;
  struct cache *c;
  uint64_t last_end;            /* for sequential read detection */
  uint64_t last_ra_blk;
  bool sent_below;              /* a zero or trim went to the plugin
                                 * through this connection, unflushed */
  struct lender lender;         /* this connection's context, lent to the
                                 * workers of an export other than the
                                 * default one */
  bool lent;
};

static void *
chunk_cache_open (nbdkit_next_open *next, nbdkit_context *context,
                  int readonly, const char *exportname, int is_tls)
{
  struct handle *h;

  if (next (context, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL || (h->name = strdup (exportname)) == NULL) {
    nbdkit_error ("calloc: %m");
    free (h);
    return NULL;
  }
  h->backend = nbdkit_context_get_backend (context);
  h->readonly = readonly || cfg.mode == MODE_READONLY;
  h->last_end = UINT64_MAX;           /* the first read is not sequential */
  h->last_ra_blk = UINT64_MAX;
  return h;
}

static void
chunk_cache_close (void *handle)
{
  struct handle *h = handle;

  /* Not finalized (a filter above us failed to): the context is still
   * open here, closed by nbdkit only after this returns.
   */
  if (h->lent)
    lender_remove (h->c, &h->lender);
  free (h->name);
  free (h);
}

static int
chunk_cache_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;
  int64_t size;

  h->c = cache_get (h->backend, h->name, h->readonly, 0, next);
  if (h->c == NULL)
    return -1;
  size = next->get_size (next);
  if (size == -1)
    return -1;
  /* The plugin's description of the export names the volume: the cache
   * (and its write-back context) must hold the one this connection
   * opened, or data would be served from, and written back to, another.
   */
  if (!store_same_volume (next->export_description (next), h->c->desc)) {
    nbdkit_error ("chunk-cache: export '%s': this connection has \"%s\" "
                  "but the cache's write-back context has \"%s\": "
                  "refused", h->name, next->export_description (next),
                  h->c->desc);
    return -1;
  }
  if ((uint64_t) size != h->c->size) {
    nbdkit_error ("chunk-cache: export '%s' changed size (%" PRIi64
                  ", cache has %" PRIu64 ")", h->name, size, h->c->size);
    return -1;
  }
  /* An export other than the default one is written back through the
   * contexts of its connections (see exports.c).
   */
  if (!h->c->is_default) {
    lender_add (h->c, &h->lender, next);
    h->lent = true;
  }
  return 0;
}

/* Before nbdkit finalizes and closes this connection's context: take it
 * back from the workers (the last connection of an export first waits
 * for its write-back).
 */
static int
chunk_cache_finalize (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;

  if (h->lent) {
    lender_remove (h->c, &h->lender);
    h->lent = false;
  }
  return 0;
}

static int64_t
chunk_cache_get_size (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;
  return h->c->size;
}

static int
chunk_cache_can_write (nbdkit_next *next, void *handle)
{
  if (cfg.mode == MODE_READONLY)
    return 0;
  return next->can_write (next);
}

static int
chunk_cache_can_flush (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
chunk_cache_can_fua (nbdkit_next *next, void *handle)
{
  if (cfg.mode == MODE_WRITETHROUGH)
    return next->can_fua (next);
  return NBDKIT_FUA_NATIVE;
}

static int
chunk_cache_can_fast_zero (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
chunk_cache_can_cache (nbdkit_next *next, void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static int
chunk_cache_can_multi_conn (nbdkit_next *next, void *handle)
{
  /* One cache serves every connection, so a flush on one connection
   * covers the writes of all; the plugin must agree for its part.
   */
  return next->can_multi_conn (next);
}

static int
chunk_cache_pread (nbdkit_next *next, void *handle, void *buf,
                   uint32_t count, uint64_t offset, uint32_t flags,
                   int *err)
{
  struct handle *h = handle;
  struct cache *c = h->c;
  uint64_t last_blk = (offset + count - 1) / c->bs;

  if (cache_read (c, next, buf, count, offset, err) == -1)
    return -1;
  if (cfg.readahead && offset == h->last_end && last_blk != h->last_ra_blk) {
    h->last_ra_blk = last_blk;
    cache_readahead (c, last_blk + 1);
  }
  h->last_end = offset + count;
  return 0;
}

static int
chunk_cache_pwrite (nbdkit_next *next, void *handle, const void *buf,
                    uint32_t count, uint64_t offset, uint32_t flags,
                    int *err)
{
  struct handle *h = handle;
  return cache_write (h->c, next, buf, count, offset, flags, err);
}

/* Zeros and trims go to the plugin through the client's context, but
 * the cache flushes the plugin through the workers' context.  Without
 * multi-conn the plugin does not promise that a flush on one covers the
 * other: flush this connection's context too when it sent any.
 */
static int
flush_own_context (nbdkit_next *next, struct handle *h, int *err)
{
  if (next->can_multi_conn (next) == 1 || next->can_flush (next) != 1 ||
      !__atomic_exchange_n (&h->sent_below, false, __ATOMIC_SEQ_CST))
    return 0;
  if (next->flush (next, 0, err) == -1) {
    __atomic_store_n (&h->sent_below, true, __ATOMIC_SEQ_CST);
    return -1;
  }
  return 0;
}

static int
chunk_cache_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  struct handle *h = handle;

  switch (cfg.mode) {
  case MODE_WRITEBACK:
    if (cache_flush (h->c, 0, h->c->nblocks - 1, err) == -1)
      return -1;
    return flush_own_context (next, h, err);
  case MODE_WRITETHROUGH:
    if (next->can_flush (next) == 1)
      return next->flush (next, 0, err);
    return 0;
  default:
    return 0;
  }
}

static int
chunk_cache_trim (nbdkit_next *next, void *handle, uint32_t count,
                  uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;

  __atomic_store_n (&h->sent_below, true, __ATOMIC_SEQ_CST);
  if (cache_zero_trim (h->c, next, true, count, offset, flags, err) == -1)
    return -1;
  if (cfg.mode == MODE_WRITEBACK && (flags & NBDKIT_FLAG_FUA))
    return flush_own_context (next, h, err);
  return 0;
}

static int
chunk_cache_zero (nbdkit_next *next, void *handle, uint32_t count,
                  uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;

  __atomic_store_n (&h->sent_below, true, __ATOMIC_SEQ_CST);
  if (cache_zero_trim (h->c, next, false, count, offset,
                       flags & ~NBDKIT_FLAG_FAST_ZERO, err) == -1)
    return -1;
  if (cfg.mode == MODE_WRITEBACK && (flags & NBDKIT_FLAG_FUA))
    return flush_own_context (next, h, err);
  return 0;
}

static int
chunk_cache_cache (nbdkit_next *next, void *handle, uint32_t count,
                   uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  return cache_prefetch (h->c, next, count, offset, err);
}

/* The plugin's extents, except that blocks with data not yet written
 * back are data whatever the plugin says.
 */
static int
chunk_cache_extents (nbdkit_next *next, void *handle, uint32_t count,
                     uint64_t offset, uint32_t flags,
                     struct nbdkit_extents *extents, int *err)
{
  struct handle *h = handle;
  struct cache *c = h->c;
  struct nbdkit_extents *below;
  size_t i, n;
  int r = 0;

  below = nbdkit_extents_new (offset, c->size);
  if (below == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, count, offset, flags, below, err) == -1) {
    nbdkit_extents_free (below);
    return -1;
  }
  n = nbdkit_extents_count (below);
  for (i = 0; i < n && r == 0; ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (below, i);
    uint64_t pos = e.offset, end = e.offset + e.length;

    if (e.type == 0) {
      r = nbdkit_add_extent (extents, e.offset, e.length, 0);
      continue;
    }
    while (pos < end && r == 0) {
      uint64_t blk = pos / c->bs;
      uint64_t bend = (blk + 1) * c->bs;
      bool dirty;
      if (bend > end)
        bend = end;
      pthread_mutex_lock (&cache_lock);
      dirty = cache_block_dirty (c, blk);
      pthread_mutex_unlock (&cache_lock);
      r = nbdkit_add_extent (extents, pos, bend - pos, dirty ? 0 : e.type);
      pos = bend;
    }
  }
  nbdkit_extents_free (below);
  if (r == -1)
    *err = errno;
  return r;
}

static struct nbdkit_filter filter = {
  .name              = "chunk-cache",
  .longname          = "shardkit chunk-cache filter",
  .unload            = chunk_cache_unload,
  .config            = chunk_cache_config,
  .config_complete   = chunk_cache_config_complete,
  .config_help       = chunk_cache_config_help,
  .thread_model      = chunk_cache_thread_model,
  .get_ready         = chunk_cache_get_ready,
  .after_fork        = chunk_cache_after_fork,
  .cleanup           = chunk_cache_cleanup,
  .open              = chunk_cache_open,
  .close             = chunk_cache_close,
  .prepare           = chunk_cache_prepare,
  .finalize          = chunk_cache_finalize,
  .get_size          = chunk_cache_get_size,
  .can_write         = chunk_cache_can_write,
  .can_flush         = chunk_cache_can_flush,
  .can_fua           = chunk_cache_can_fua,
  .can_fast_zero     = chunk_cache_can_fast_zero,
  .can_cache         = chunk_cache_can_cache,
  .can_multi_conn    = chunk_cache_can_multi_conn,
  .pread             = chunk_cache_pread,
  .pwrite            = chunk_cache_pwrite,
  .flush             = chunk_cache_flush,
  .trim              = chunk_cache_trim,
  .zero              = chunk_cache_zero,
  .extents           = chunk_cache_extents,
  .cache             = chunk_cache_cache,
};

NBDKIT_REGISTER_FILTER (filter)
