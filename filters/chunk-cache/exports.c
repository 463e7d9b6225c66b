/* shardkit: chunk-cache filter, the caches of the exports.
 * GPL-3.0-or-later.
 *
 * Every export a client connects to gets its own cache: its own files
 * and its own write-back context.
 *
 * Write-back contexts.  nbdkit 1.32 tells a plugin the export name only
 * in a context that belongs to a client connection: a context a filter
 * opens as shared (outside any connection, or inside one with
 * shared=1) gets no name (nbdkit_export_name fails there) and the
 * plugin serves its default export; a second non-shared context in a
 * connection is not allowed (plugin_open asserts the connection has no
 * export name yet).  So:
 *
 * - the export that a shared context serves (the plugin's default
 *   export; it is recognised by the plugin's description of it, the
 *   same check as for cache.meta) gets that context for its own, opened
 *   at its first connection or, when cache-dir holds its cache, in
 *   .after_fork, so that a restart writes back what a crash left dirty
 *   without waiting for a client;
 * - any other export borrows the contexts of its own connections
 *   (struct lender): the workers use whichever is there, and when its
 *   last connection ends, that connection first waits (up to
 *   shutdown-timeout=) for the export's dirty data to be written back.
 *   What is left (a plugin refusing the data) stays dirty: in cache-dir
 *   it is written back when a client connects to the export again,
 *   after a restart too; without cache-dir it is lost at exit, as are
 *   blocks that keep failing today.
 *
 * Files.  The default export's cache is cache-dir itself (cache.meta,
 * cache.index, cache.data, cache.lock, as before exports had caches of
 * their own, so existing cache directories keep working); export NAME's
 * is the subdirectory cache-dir/exports/NAME (".empty" for the empty
 * name: export names never start with '.').
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
#include "exports.h"
#include "state.h"
#include "store.h"

struct cache *caches;

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

/* Export names are volume names (letters, digits, "._-", not starting
 * with '.', at most 200 bytes): checked again here because one becomes
 * a directory name in cache-dir.
 */
static const char *
export_dir_name (const char *name)
{
  size_t i, n = strlen (name);

  if (n == 0)
    return ".empty";
  if (n > 200 || name[0] == '.')
    return NULL;
  for (i = 0; i < n; ++i)
    if (!((name[i] >= 'a' && name[i] <= 'z') ||
          (name[i] >= 'A' && name[i] <= 'Z') ||
          (name[i] >= '0' && name[i] <= '9') ||
          name[i] == '.' || name[i] == '_' || name[i] == '-'))
      return NULL;
  return name;
}

/* A plugin context for the workers of C, or NULL if it has none now
 * (an export other than the default one with no connection).  Lock
 * held.  Give it back with wb_ctx_put.
 */
nbdkit_next *
wb_ctx_get (struct cache *c)
{
  if (c->bg)
    return c->bg;
  if (c->lenders == NULL)
    return NULL;
  c->lenders->users++;
  return c->lenders->next;
}

void
wb_ctx_put (struct cache *c, nbdkit_next *next)
{
  struct lender *l;

  if (next == NULL || next == c->bg)
    return;
  for (l = c->lenders; l; l = l->next_lender)
    if (l->next == next) {
      if (--l->users == 0)
        pthread_cond_broadcast (&cache_cond);
      return;
    }
  abort ();                     /* a lender leaves only once unused */
}

bool
wb_ctx_any (struct cache *c)
{
  return c->bg != NULL || c->lenders != NULL;
}

/* Create the cache of export NAME.  WB is the context it is checked
 * against and sized from: its own (bg) for the default export, else the
 * first connection's, which becomes its first lender (see prepare).
 * Lock held.
 */
static struct cache *
cache_create (const char *name, bool readonly, uint32_t want_bs,
              nbdkit_next *wb, bool own_wb, const char *desc)
{
  struct cache *c;
  int64_t size;
  uint64_t i;

  c = calloc (1, sizeof *c);
  if (c == NULL || (c->name = strdup (name)) == NULL) {
    nbdkit_error ("calloc: %m");
    free (c);
    if (own_wb) {
      wb->finalize (wb);
      nbdkit_next_context_close (wb);
    }
    return NULL;
  }
  c->data_fd = c->index_fd = c->dir_fd = c->lock_fd = -1;
  c->readonly = readonly;
  c->is_default = own_wb;
  if (own_wb)
    c->bg = wb;
  if (desc && (c->desc = strdup (desc)) == NULL) {
    nbdkit_error ("strdup: %m");
    goto fail;
  }
  if (cfg.dir) {
    if (own_wb)
      c->dir = strdup (cfg.dir);
    else {
      const char *sub = export_dir_name (name);
      if (sub == NULL) {
        nbdkit_error ("chunk-cache: export name '%s' is not a volume name "
                      "(letters, digits, '._-', not starting with '.'): "
                      "refused", name);
        errno = EINVAL;
        goto fail;
      }
      c->dir = store_make_dir (cfg.dir, sub);
    }
    if (c->dir == NULL)
      goto fail;
  }
  size = wb->get_size (wb);
  if (size <= 0) {
    if (size == 0)
      nbdkit_error ("chunk-cache: export '%s' is empty", name);
    goto fail;
  }
  c->size = size;
  c->bs = want_bs ? want_bs : choose_block_size (wb);
  c->nblocks = (c->size + c->bs - 1) / c->bs;
  if (c->nblocks >= NIL) {
    nbdkit_error ("chunk-cache: export '%s' has too many blocks; use a "
                  "larger cache-block-size", name);
    goto fail;
  }
  c->can_write_below = !readonly && wb->can_write (wb) == 1;
  c->can_flush_below = wb->can_flush (wb) == 1;
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
   * written back as soon as the workers have a context for them.
   */
  for (i = 0; i < c->nblocks; ++i) {
    uint8_t s = c->b[i].state;
    if (s != B_ABSENT) {
      c->b[i].state = B_ABSENT;
      if (s == B_DIRTY) {
        c->b[i].due = 0;
        c->b[i].dirty_since = now_s ();
        c->b[i].dirty_seq = ++c->wseq;
      }
      set_state (c, i, s);
    }
  }
  if (c->dirty) {
    if (!c->can_write_below) {
      nbdkit_error ("cache-dir=%s has %" PRIu64 " dirty blocks but the "
                    "plugin is read-only: cannot write them back", c->dir,
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
  free (c->dir);
  free (c->name);
  free (c);
}

/* Whether opening a shared context has shown that the plugin has no
 * default export: not tried again (each try logs the plugin's error).
 */
static bool no_default;

/* The cache of export NAME, created on first use.  CLIENT is the
 * connection's own context (NULL in .after_fork).  Lock NOT held.
 */
struct cache *
cache_get (nbdkit_backend *backend, const char *name, bool readonly,
           uint32_t want_bs, nbdkit_next *client)
{
  const char *desc = client ? client->export_description (client) : NULL;
  bool have_default = false;
  nbdkit_next *bg = NULL;
  struct cache *c;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&cache_lock);
  for (c = caches; c; c = c->next_cache) {
    if (strcmp (c->name, name) == 0)
      return c;
    have_default |= c->is_default;
  }

  /* Is NAME the export that a context outside any connection serves?
   * Only one export can be, and not if the plugin has no default.
   */
  if (!have_default && !no_default) {
    bg = nbdkit_next_context_open (backend, readonly, name, 1);
    if (bg == NULL || bg->prepare (bg) == -1) {
      if (bg)
        nbdkit_next_context_close (bg);
      bg = NULL;
      if (client == NULL) {
        nbdkit_error ("chunk-cache: cannot open the plugin outside a "
                      "connection for export '%s' (nbdkit 1.32 gives a "
                      "plugin no export name there: it serves its default "
                      "export)", name);
        return NULL;
      }
      no_default = true;
    }
    else if (client && !store_same_volume (desc,
                                           bg->export_description (bg))) {
      /* Another volume: NAME is not the default export. */
      bg->finalize (bg);
      nbdkit_next_context_close (bg);
      bg = NULL;
    }
    else if (client && desc == NULL &&
             bg->export_description (bg) != NULL) {
      bg->finalize (bg);
      nbdkit_next_context_close (bg);
      bg = NULL;
    }
  }
  if (bg)
    return cache_create (name, readonly, want_bs, bg, true,
                         bg->export_description (bg));
  if (client == NULL) {
    nbdkit_error ("chunk-cache: cache-dir=%s holds the cache of export "
                  "'%s', which is not the plugin's default export: its "
                  "dirty data (if any) is written back when a client "
                  "connects to it", cfg.dir, name);
    return NULL;
  }
  return cache_create (name, readonly, want_bs, client, false, desc);
}

/* Lend CLIENT, a connection's context, to the workers of C.  Lock NOT
 * held.
 */
void
lender_add (struct cache *c, struct lender *l, nbdkit_next *client)
{
  struct lender **p;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&cache_lock);
  l->next = client;
  l->users = 0;
  l->next_lender = NULL;
  for (p = &c->lenders; *p; p = &(*p)->next_lender)
    ;
  *p = l;
  pthread_cond_broadcast (&work_cond);
}

/* Take a lent context back (the connection is ending).  If it is the
 * last one, first let the workers write back the export's dirty data
 * through it, bounded by shutdown-timeout=.  Lock NOT held.
 */
void
lender_remove (struct cache *c, struct lender *l)
{
  double start = now_s ();
  struct lender **p;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&cache_lock);
  if (c->lenders == l && l->next_lender == NULL && c->can_write_below &&
      cfg.mode == MODE_WRITEBACK) {
    uint64_t last_errors = c->error_events;
    unsigned failing = 0;

    /* Everything dirty is due now, as at shutdown. */
    if (c->wseq > c->urgent_seq)
      c->urgent_seq = c->wseq;
    while ((c->dirty || c->written) && !data_is_damaged (c) &&
           now_s () - start <= cfg.shutdown_timeout && failing < 4) {
      struct timespec ts;

      pthread_cond_broadcast (&work_cond);
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += 100 * 1000 * 1000;
      if (ts.tv_nsec >= 1000000000)
        ts.tv_sec++, ts.tv_nsec -= 1000000000;
      pthread_cond_timedwait (&cache_cond, &cache_lock, &ts);
      if (c->wseq > c->urgent_seq)
        c->urgent_seq = c->wseq;
      /* A plugin that keeps refusing the data: do not hold the
       * connection for the whole timeout.
       */
      if (c->error_events != last_errors && c->fifo.count == 0 &&
          c->inflight == 0) {
        last_errors = c->error_events;
        failing++;
      }
    }
    if (c->dirty || c->written)
      nbdkit_error ("chunk-cache: export '%s': its last client left with "
                    "%" PRIu64 " blocks not written back%s", c->name,
                    c->dirty + c->written,
                    cfg.dir ? "; they stay dirty in cache-dir and are "
                    "written back when a client connects to it again" :
                    " (no cache-dir: they are written back if a client "
                    "connects to it again before nbdkit exits, else LOST)");
  }
  for (p = &c->lenders; *p != l; p = &(*p)->next_lender)
    ;
  *p = l->next_lender;
  while (l->users)
    pthread_cond_wait (&cache_cond, &cache_lock);
}
